"""edgemeta.domain.x509: normal forms, registration id templates, proofs, path validation
limits and the issuing CA, without a service."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from edgemeta.domain import x509 as certs
from edgemeta.domain.attestation import AttestationError
from tests.support import x509pki as pki


def test_thumbprints_and_serials_have_one_normal_form() -> None:
    hexed = "AB:" * 31 + "CD"
    assert certs.normal_thumbprint(hexed) == "ab" * 31 + "cd"
    with pytest.raises(ValueError, match="SHA-256"):
        certs.normal_thumbprint("abcd")
    assert certs.normal_serial("00:1A:2b") == certs.normal_serial("0x1a2b") == "1a2b"
    with pytest.raises(ValueError, match="hex"):
        certs.normal_serial("not-hex")


def test_templates_take_the_registration_id_from_the_subject_or_a_san() -> None:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "cn-1"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "ou-1"),
        ]
    )
    san = [
        x509.DNSName("a.example"),
        x509.DNSName("b.example"),
        x509.UniformResourceIdentifier("urn:d:1"),
    ]
    cert = pki.leaf("x", None, subject=subject, san=san).cert
    assert certs.registration_ids(cert, "subject:CN") == ["cn-1"]
    assert certs.registration_ids(cert, "subject:OU") == ["ou-1"]
    assert certs.registration_ids(cert, "subject:O") == []
    assert certs.registration_ids(cert, "san:dns") == ["a.example", "b.example"]
    assert certs.registration_ids(cert, "san:uri") == ["urn:d:1"]
    for bad in ("subject:XX", "san:email", "cn", ""):
        with pytest.raises(ValueError):
            certs.check_template(bad)


@pytest.mark.parametrize("kind", ["rsa2048", "p256", "p384"])
def test_proofs_verify_for_each_supported_key(kind: str) -> None:
    device = pki.leaf("d", None, kind)
    message = certs.signed_message("n1", "d")
    for pss in (True, False):
        signature = certs.decode_signature(pki.sign(device.key, message, pss=pss))
        certs.verify_proof(device.cert, message, signature)
        with pytest.raises(AttestationError, match="does not verify"):
            certs.verify_proof(device.cert, certs.signed_message("n2", "d"), signature)


@pytest.mark.parametrize("kind", ["rsa1024", "p521", "ed25519"])
def test_unsupported_keys_are_refused(kind: str) -> None:
    device = pki.leaf("d", None, kind)
    with pytest.raises(AttestationError, match=r"not supported|too short"):
        certs.check_key(device.cert)


def test_path_validation_counts_intermediates() -> None:
    cas = pki.chain_of(4)  # root + 3 intermediates
    device = pki.leaf("d", cas[-1])
    chain = [device.cert, *(c.cert for c in reversed(cas[1:]))]
    now = pki.now()
    verified = certs.validate_path(chain, [cas[0].cert], now=now, max_depth=3)
    assert [c.subject for c in verified] == [device.cert.subject] + [
        c.cert.subject for c in reversed(cas)
    ]
    with pytest.raises(AttestationError, match="depth"):
        certs.validate_path(chain, [cas[0].cert], now=now, max_depth=2)
    # Enrolling an intermediate makes the chain end there.
    short = certs.validate_path(chain, [cas[3].cert], now=now, max_depth=0)
    assert short == [device.cert, cas[3].cert]
    assert certs.validate_path(chain, [cas[2].cert], now=now, max_depth=1)[-1] == cas[2].cert
    with pytest.raises(AttestationError, match="does not validate"):
        certs.validate_path(chain, [cas[0].cert], now=now + dt.timedelta(days=90), max_depth=3)


def test_the_issuing_ca_must_be_a_ca_with_its_own_key() -> None:
    ca = pki.root("Issuer", "p256")
    cert_pem = ca.pem.encode()
    assert certs.Issuer.load(cert_pem, ca.key_pem, None).certificate == ca.cert
    other = pki.new_key("p256").private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="not the key"):
        certs.Issuer.load(cert_pem, other, None)
    device = pki.leaf("d", None)
    with pytest.raises(ValueError, match="not a CA"):
        certs.Issuer.load(device.pem.encode(), device.key_pem, None)
    issuer = certs.Issuer.load(cert_pem, ca.key_pem, None)
    csr = certs.load_csr(pki.csr("ignored", pki.new_key("p384")))
    issued = issuer.issue(csr, "dev-7", "san:dns", now=pki.now(), days=2)
    assert certs.registration_ids(issued, "san:dns") == ["dev-7"]
    assert certs.validate_path([issued], [ca.cert], now=pki.now(), max_depth=0)
    with pytest.raises(certs.CsrError, match="2048"):
        certs.load_csr(pki.csr("weak", pki.new_key("rsa1024")))
