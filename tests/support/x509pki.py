"""A test PKI made with ``cryptography``: roots, intermediates, device certificates, and the
signature a device makes over a server nonce."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def new_key(kind: str) -> Key:
    """A key: ``rsa2048``, ``rsa1024``, ``p256``, ``p384``, ``p521`` or ``ed25519``."""
    if kind.startswith("rsa"):
        return rsa.generate_private_key(65537, int(kind[3:]))
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    curve = {"p256": ec.SECP256R1, "p384": ec.SECP384R1, "p521": ec.SECP521R1}[kind]
    return ec.generate_private_key(curve())


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Node:
    """A certificate, its key, and the CA that issued it (None: self-signed)."""

    cert: x509.Certificate
    key: Key
    parent: Node | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def thumbprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()

    @property
    def serial(self) -> str:
        return format(self.cert.serial_number, "x")

    def chain(self) -> list[str]:
        """This certificate and the intermediates above it (not the self-signed root)."""
        out, node = [self.pem], self.parent
        while node is not None and node.parent is not None:
            out.append(node.pem)
            node = node.parent
        return out


def _usage(*, sign: bool = True, cert_sign: bool = False, encipher: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=encipher,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def certificate(
    name: str,
    key: Key,
    parent: Node | None = None,
    *,
    ca: bool = False,
    eku: list[x509.ObjectIdentifier] | None = None,
    usage: x509.KeyUsage | None = None,
    san: list[x509.GeneralName] | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    subject: x509.Name | None = None,
) -> Node:
    """A certificate for ``name`` (its CN), issued by ``parent`` (self-signed without one)."""
    subject = subject or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_key = parent.key if parent is not None else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(parent.cert.subject if parent is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now() - dt.timedelta(days=1))
        .not_valid_after(not_after or now() + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .add_extension(usage or _usage(cert_sign=ca), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(eku or [ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    digest = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return Node(builder.sign(issuer_key, digest), key, parent)


def root(name: str = "Test Root", kind: str = "p256") -> Node:
    """A self-signed root CA."""
    return certificate(name, new_key(kind), ca=True)


def chain_of(depth: int, kind: str = "p256", name: str = "Root") -> list[Node]:
    """``depth`` CAs: a root and ``depth - 1`` intermediates under it, root first."""
    cas = [root(f"{name} d{depth}", kind)]
    for i in range(1, depth):
        cas.append(certificate(f"{name} d{depth} i{i}", new_key(kind), cas[-1], ca=True))
    return cas


def leaf(name: str, parent: Node | None, kind: str = "p256", **kw: Any) -> Node:
    """A device certificate (CN ``name``, clientAuth)."""
    return certificate(name, new_key(kind), parent, **kw)


def sign(key: Key, message: bytes, *, pss: bool = True) -> str:
    """What a device sends as ``signature``: base64 of its key's signature over ``message``."""
    if isinstance(key, rsa.RSAPrivateKey):
        pad: padding.AsymmetricPadding = (
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
            if pss
            else padding.PKCS1v15()
        )
        raw = key.sign(message, pad, hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        digest = hashes.SHA384() if key.curve.key_size == 384 else hashes.SHA256()
        raw = key.sign(message, ec.ECDSA(digest))
    else:
        raw = key.sign(message)
    return base64.b64encode(raw).decode()


def csr(name: str, key: Key) -> str:
    """A certificate signing request for ``name``, PEM."""
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return request.public_bytes(serialization.Encoding.PEM).decode()
