"""X.509 attestation: devices that prove who they are with a certificate (after Azure DPS).

An **individual** enrolment names one device certificate by its SHA-256 thumbprint; a
**group** enrolment names CA certificates (a root or any intermediate). A registering device
presents its chain (leaf first) and proves it holds the leaf's private key — by signing a
server nonce (:func:`verify_proof`), or through a TLS handshake with a client certificate.

Path validation is the ``cryptography`` package's (:mod:`cryptography.x509.verification`, the
web PKI profile): signatures, validity period, basic constraints, name chaining, maximum
depth. edgemeta narrows it for device certificates: the leaf must carry the client-auth
extended key usage and, when it has a key usage, digital signature; a subject alternative name
is optional (DPS devices are named by their CN); and every key in the chain must be RSA of at
least 2048 bits or ECDSA on P-256 or P-384 (the verifier itself accepts Ed25519 and short
RSA leaf keys, which the nonce proof does not support).

Nothing here does I/O; every refusal is an :class:`~edgemeta.domain.attestation.AttestationError`
whose message goes to the log, never to the device.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from edgemeta.domain.attestation import AttestationError

MAX_CHAIN = 8  # certificates a registration may present
MAX_PEM = 16 * 1024  # characters per certificate
MIN_RSA_BITS = 2048
CURVES = {"secp256r1": hashes.SHA256, "secp384r1": hashes.SHA384}

# The registration id templates: where in the certificate the device's name is.
SUBJECT_ATTRIBUTES = {
    "CN": NameOID.COMMON_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "serialNumber": NameOID.SERIAL_NUMBER,
    "UID": NameOID.USER_ID,
    "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "C": NameOID.COUNTRY_NAME,
}
SAN_KINDS = {"dns": x509.DNSName, "uri": x509.UniformResourceIdentifier}
DEFAULT_TEMPLATE = "subject:CN"


def check_template(template: str) -> str:
    """``template`` if it names a subject attribute or a SAN kind; ValueError otherwise."""
    kind, _, what = template.partition(":")
    if (kind == "subject" and what in SUBJECT_ATTRIBUTES) or (kind == "san" and what in SAN_KINDS):
        return template
    raise ValueError(
        "must be subject:<attribute> (" + ", ".join(SUBJECT_ATTRIBUTES) + ") or san:dns or san:uri"
    )


def thumbprint(cert: x509.Certificate) -> str:
    """The certificate's SHA-256 thumbprint: lower-case hex of its DER encoding's digest."""
    return cert.fingerprint(hashes.SHA256()).hex()


def normal_thumbprint(value: str) -> str:
    """A thumbprint as edgemeta keeps it (lower case, no colons); ValueError if not SHA-256."""
    hexed = value.replace(":", "").strip().lower()
    if len(hexed) != 64 or any(c not in "0123456789abcdef" for c in hexed):
        raise ValueError("must be a SHA-256 thumbprint (64 hex digits, colons allowed)")
    return hexed


def normal_serial(value: str) -> str:
    """A serial number as edgemeta keeps it (lower-case hex, no leading zeros); ValueError if
    it is not hex (``openssl x509 -serial`` prints it so)."""
    hexed = value.replace(":", "").strip().lower().removeprefix("0x")
    try:
        number = int(hexed, 16)
    except ValueError:
        raise ValueError("must be a serial number in hex (colons allowed)") from None
    return format(number, "x")


def serial_of(cert: x509.Certificate) -> str:
    """The certificate's serial number, as :func:`normal_serial` keeps it."""
    return format(cert.serial_number, "x")


_PARSED: dict[str, x509.Certificate] = {}


def load_pem(pem: str) -> x509.Certificate:
    """One certificate from PEM; AttestationError if it is not one (parsed ones are kept:
    enrolments' CA certificates are read on every registration)."""
    found = _PARSED.get(pem)
    if found is not None:
        return found
    if len(pem) > MAX_PEM:
        raise AttestationError("a certificate is larger than 16 KiB")
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise AttestationError(f"not a PEM certificate: {exc}") from None
    if len(_PARSED) > 4096:
        _PARSED.clear()
    _PARSED[pem] = cert
    return cert


def check_pem(pem: str) -> str:
    """``pem`` if it is one certificate; ValueError (a 400 naming the field) otherwise."""
    try:
        load_pem(pem)
    except AttestationError as exc:
        raise ValueError(str(exc)) from None
    return pem


def load_chain(pems: Sequence[str]) -> list[x509.Certificate]:
    """The presented chain, leaf first."""
    if not pems:
        raise AttestationError("the chain is empty")
    if len(pems) > MAX_CHAIN:
        raise AttestationError(f"the chain has more than {MAX_CHAIN} certificates")
    return [load_pem(p) for p in pems]


def registration_ids(cert: x509.Certificate, template: str) -> list[str]:
    """The names ``template`` takes from the certificate (a SAN may give several)."""
    kind, _, what = template.partition(":")
    if kind == "subject":
        attrs = cert.subject.get_attributes_for_oid(SUBJECT_ATTRIBUTES[what])
        return [a.value if isinstance(a.value, str) else a.value.decode() for a in attrs]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    if what == "dns":
        return list(san.get_values_for_type(x509.DNSName))
    return list(san.get_values_for_type(x509.UniformResourceIdentifier))


def check_key(cert: x509.Certificate) -> None:
    """Refuse a key edgemeta does not accept: RSA under 2048 bits, curves other than P-256 and
    P-384, and any other algorithm (Ed25519, Ed448, DSA)."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise AttestationError(f"an RSA key of {key.key_size} bits is too short")
        return
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in CURVES:
            raise AttestationError(f"the curve {key.curve.name} is not supported")
        return
    raise AttestationError(f"the key type {type(key).__name__} is not supported")


def _client_auth(policy: Policy, cert: x509.Certificate, eku: x509.ExtendedKeyUsage) -> None:
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise ValueError("the extended key usage lacks clientAuth")


def _signing_usage(policy: Policy, cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    if usage is not None and (not usage.digital_signature or usage.key_cert_sign):
        raise ValueError("the key usage lacks digitalSignature or asserts keyCertSign")


_EE_POLICY = (
    ExtensionPolicy.webpki_defaults_ee()
    .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    .require_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _client_auth)
    .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _signing_usage)
)
_CA_POLICY = ExtensionPolicy.webpki_defaults_ca()


def validate_path(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    *,
    now: dt.datetime,
    max_depth: int,
) -> list[x509.Certificate]:
    """The verified chain from the leaf (``chain[0]``, with ``chain[1:]`` as intermediates) to
    one of ``anchors``; AttestationError if there is none."""
    builder = (
        PolicyBuilder()
        .store(Store(list(anchors)))
        .time(now)
        .max_chain_depth(max_depth)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
    )
    try:
        verified = builder.build_client_verifier().verify(chain[0], list(chain[1:]))
    except VerificationError as exc:
        raise AttestationError(f"the chain does not validate: {exc}") from None
    for cert in verified.chain:
        check_key(cert)
    return list(verified.chain)


def signed_message(nonce: str, registration_id: str) -> bytes:
    """What a device signs to prove its key: ``<nonce>\\n<registrationId>``, UTF-8."""
    return f"{nonce}\n{registration_id}".encode()


def decode_signature(value: str) -> bytes:
    """A base64 signature; AttestationError if it is not base64."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise AttestationError("the signature is not base64") from None


def verify_proof(cert: x509.Certificate, message: bytes, signature: bytes) -> None:
    """Check that the leaf's key signed ``message``: RSA-PSS (any salt length) or PKCS#1 v1.5
    with SHA-256; ECDSA (DER) with SHA-256 on P-256, SHA-384 on P-384."""
    check_key(cert)
    key = cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            try:
                pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
                key.verify(signature, message, pss, hashes.SHA256())
            except InvalidSignature:
                key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
            return
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(CURVES[key.curve.name]()))
            return
    except InvalidSignature:
        raise AttestationError("the signature over the nonce does not verify") from None
    raise AttestationError("the leaf's key cannot sign a nonce")  # check_key let it through


@dataclass(frozen=True, slots=True)
class Attested:
    """What a validated chain says about the device (kept on its registration record)."""

    thumbprint: str
    serial: str
    subject: str
    issuer: str
    not_after: int  # ms

    def doc(self) -> dict[str, str | int]:
        """The record's view (public facts only)."""
        return {
            "thumbprint": self.thumbprint,
            "serial": self.serial,
            "subject": self.subject,
            "issuer": self.issuer,
            "notAfter": self.not_after,
        }


def attested(leaf: x509.Certificate) -> Attested:
    """The public facts of a device certificate."""
    return Attested(
        thumbprint=thumbprint(leaf),
        serial=serial_of(leaf),
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        not_after=int(leaf.not_valid_after_utc.timestamp() * 1000),
    )


def pem_of(cert: x509.Certificate) -> str:
    """The certificate in PEM."""
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class CsrError(ValueError):
    """A certificate signing request edgemeta will not sign (a 400: the device can fix it)."""


IssuingKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def load_csr(pem: str) -> x509.CertificateSigningRequest:
    """A device's CSR, signed by its own key, for a key edgemeta accepts; CsrError if not."""
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
    except ValueError:
        raise CsrError("csr is not a PEM certificate signing request") from None
    if not csr.is_signature_valid:
        raise CsrError("csr is not signed by its own key")
    public = csr.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        if public.key_size < MIN_RSA_BITS:
            raise CsrError(f"csr has an RSA key of {public.key_size} bits (2048 at least)")
    elif not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name not in CURVES:
        raise CsrError("csr's key must be RSA (2048 bits or more) or ECDSA P-256 / P-384")
    return csr


@dataclass(frozen=True, slots=True)
class Issuer:
    """The CA that signs devices' operational certificates from their CSRs. edgemeta never
    sees a device's private key: the CSR carries the public key, signed by the private one."""

    certificate: x509.Certificate
    key: IssuingKey

    @classmethod
    def load(cls, cert_pem: bytes, key_pem: bytes, password: bytes | None) -> Issuer:
        """From a PEM certificate and a PEM PKCS#8 key (encrypted when ``password`` is given);
        ValueError when they do not fit together or the certificate is not a CA's."""
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=password)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError("the issuing CA key must be RSA or ECDSA")
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
            raise ValueError("the issuing CA key is not the key of the issuing CA certificate")
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            raise ValueError("the issuing CA certificate has no basicConstraints") from None
        if not constraints.ca:
            raise ValueError("the issuing CA certificate is not a CA certificate")
        return cls(cert, key)

    def issue(
        self,
        csr: x509.CertificateSigningRequest,
        registration_id: str,
        template: str,
        *,
        now: dt.datetime,
        days: int,
    ) -> x509.Certificate:
        """A client certificate for ``registration_id`` with the CSR's public key (checked by
        :func:`load_csr`), named where ``template`` takes the registration id from (so
        re-registering with it works)."""
        public = csr.public_key()
        assert isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
        kind, _, what = template.partition(":")
        attr = SUBJECT_ATTRIBUTES[what] if kind == "subject" else NameOID.COMMON_NAME
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(attr, registration_id)]))
            .issuer_name(self.certificate.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))  # clocks of devices drift
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=isinstance(public, rsa.RSAPublicKey),
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if kind == "san":
            name: x509.GeneralName = (
                x509.DNSName(registration_id)
                if what == "dns"
                else x509.UniformResourceIdentifier(registration_id)
            )
            builder = builder.add_extension(x509.SubjectAlternativeName([name]), critical=False)
        digest = (
            hashes.SHA384()
            if self.key.key_size >= 384 and isinstance(self.key, ec.EllipticCurvePrivateKey)
            else hashes.SHA256()
        )
        return builder.sign(self.key, digest)
