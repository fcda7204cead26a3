"""X.509 registration end to end, on SQLite and PostgreSQL: enrolments naming certificates, the
server-nonce proof of possession, path validation, revocation, and certificates issued from
CSRs (docs/provisioning.md, issue 13)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from typer.testing import CliRunner

from edgemeta.cli import app as cli_app
from edgemeta.domain.attestation import derive_device_key, make_token
from tests.api.world import World
from tests.support import x509pki as pki
from tests.support.api import Api, make_service
from tests.support.schema import drop_schema

GROUP_KEY = "ZWRnZW1ldGEtdGVzdC1ncm91cC1rZXktMDEyMzQ1Njc4OWFiY2RlZg=="


async def _world(backend: str, tmp_path: Path, **settings: Any) -> AsyncIterator[World]:
    service, schema = await make_service(backend, tmp_path, **settings)
    await service.start()
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
        w = World(Api(client, service))
        await w.api.add_profile("prof")
        for name in ("ds1", "ds2", "ds3"):
            await w.api.add_service(name)
        yield w
    await service.stop()
    if schema:
        await drop_schema(schema)


@pytest.fixture(params=["sqlite", "postgres"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async for w in _world(request.param, tmp_path):
        yield w


async def enroll(
    w: World,
    name: str,
    attestation: dict[str, Any],
    *,
    kind: str = "group",
    service: str = "ds1",
    **extra: Any,
) -> httpx.Response:
    body: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "allocation": {"policy": "static", "services": [{"name": service}]},
        "initialState": {"profileName": "prof"},
        "attestation": {"type": "x509", **attestation},
        "holdDownSeconds": 0,
        **extra,
    }
    r = await w.api.post("/enrollment", [{"apiVersion": "v3", "enrollment": body}])
    assert r.status_code == 207 and r.json()[0]["statusCode"] == 201, r.text
    return r


async def nonce(w: World) -> str:
    r = await w.api.get("/registration/challenge")
    assert r.status_code == 200, r.text
    value: str = r.json()["nonce"]
    return value


async def register(
    w: World,
    rid: str,
    device: pki.Node,
    chain: list[str] | None = None,
    *,
    key: pki.Key | None = None,
    signed_id: str | None = None,
    use_nonce: str | None = None,
    pss: bool = True,
    csr: str | None = None,
) -> httpx.Response:
    n = use_nonce or await nonce(w)
    message = f"{n}\n{signed_id or rid}".encode()
    body: dict[str, Any] = {
        "registrationId": rid,
        "attestation": {
            "type": "x509",
            "chain": chain if chain is not None else device.chain(),
            "nonce": n,
            "signature": pki.sign(key or device.key, message, pss=pss),
        },
    }
    if csr is not None:
        body["csr"] = csr
    return await w.api.client.post(
        "/api/v3/registration", json={"apiVersion": "v3", "registration": body}
    )


async def nothing_created(w: World, rid: str) -> bool:
    device = await w.api.get(f"/device/name/{rid}")
    record = await w.api.get(f"/registration/name/{rid}")
    return device.status_code == 404 and record.status_code == 404


async def test_challenge_is_a_nonce_with_an_expiry(world: World) -> None:
    first = (await world.api.get("/registration/challenge")).json()
    second = (await world.api.get("/registration/challenge")).json()
    assert first["statusCode"] == 200 and first["nonce"] != second["nonce"]
    assert int(time.time()) + 50 <= first["expiry"] <= int(time.time()) + 61


async def test_chains_of_depth_1_to_4_with_rsa_p256_p384_leaves_register(world: World) -> None:
    kinds = ["rsa2048", "p256", "p384"]
    for depth in range(1, 5):
        cas = pki.chain_of(depth, kind="p256" if depth % 2 else "rsa2048", name=f"R{depth}")
        await enroll(world, f"depth-{depth}", {"caCertificates": [cas[0].pem]})
        for i, kind in enumerate(kinds):
            rid = f"dev-{depth}-{kind}"
            device = pki.leaf(rid, cas[-1], kind)
            r = await register(world, rid, device, pss=i % 2 == 0)
            assert r.status_code == 200, (depth, kind, r.text)
            body = r.json()
            rec = body["registration"]
            assert (rec["status"], rec["enrollment"], rec["assignedService"]) == (
                "assigned",
                f"depth-{depth}",
                "ds1",
            )
            att = rec["attestation"]
            assert att["type"] == "x509" and att["thumbprint"] == device.thumbprint
            assert att["serial"] == device.serial and att["proof"] == "nonce"
            assert att["issuer"] == cas[-1].cert.subject.rfc4514_string()
            assert att["enrolledCertificate"] == cas[0].thumbprint
            assert body["device"]["serviceName"] == "ds1"
            # the record holds public facts only
            assert "PRIVATE" not in r.text
    page = (await world.api.get("/registration/all")).json()
    assert page["totalCount"] == 12


async def test_individual_before_group_and_the_most_specific_ca_wins(world: World) -> None:
    root, inter = pki.chain_of(2, name="Spec")
    await enroll(world, "by-root", {"caCertificates": [root.pem]}, service="ds1")
    await enroll(world, "by-inter", {"caCertificates": [inter.pem]}, service="ds2")
    under_inter = pki.leaf("dev-a", inter)
    r = await register(world, "dev-a", under_inter)
    assert r.json()["registration"]["enrollment"] == "by-inter", r.text
    assert r.json()["registration"]["attestation"]["enrolledCertificate"] == inter.thumbprint
    # an individual enrolment by thumbprint beats both groups
    mine = pki.leaf("dev-b", inter)
    await enroll(
        world,
        "just-b",
        {"thumbprint": mine.thumbprint.upper()},
        kind="individual",
        registrationId="dev-b",
        service="ds3",
    )
    r = await register(world, "dev-b", mine)
    assert r.json()["registration"]["enrollment"] == "just-b", r.text
    assert r.json()["device"]["serviceName"] == "ds3"
    # a self-signed device certificate enrolled individually (by its PEM)
    selfsigned = pki.leaf("dev-c", None)
    await enroll(
        world,
        "just-c",
        {"certificate": selfsigned.pem},
        kind="individual",
        registrationId="dev-c",
    )
    got = (await world.api.get("/enrollment/name/just-c")).json()["enrollment"]
    assert got["attestation"]["thumbprint"] == selfsigned.thumbprint
    r = await register(world, "dev-c", selfsigned)
    assert r.status_code == 200 and r.json()["registration"]["enrollment"] == "just-c", r.text


async def test_registration_id_from_a_san_or_another_subject_field(world: World) -> None:
    ca = pki.root("San Root")
    await enroll(world, "by-dns", {"caCertificates": [ca.pem], "registrationIdFrom": "san:dns"})
    device = pki.leaf("ignored-cn", ca, san=[x509.DNSName("dev-dns.example")])
    assert (await register(world, "dev-dns.example", device)).status_code == 200
    other = pki.leaf("ignored-cn-2", ca, san=[x509.DNSName("dev-other.example")])
    r = await register(world, "ignored-cn-2", other)
    assert r.status_code == 401 and await nothing_created(world, "ignored-cn-2")
    bad = await world.api.post(
        "/enrollment",
        [
            {
                "apiVersion": "v3",
                "enrollment": {
                    "name": "bad-template",
                    "kind": "group",
                    "allocation": {"policy": "static", "services": [{"name": "ds1"}]},
                    "attestation": {
                        "type": "x509",
                        "caCertificates": [ca.pem],
                        "registrationIdFrom": "subject:XX",
                    },
                },
            }
        ],
    )
    assert bad.status_code == 400 and "attestation.registrationIdFrom" in bad.text


async def test_negative_corpus_is_refused_and_creates_nothing(world: World) -> None:
    root, inter = pki.chain_of(2, name="Neg")
    other_root = pki.root("Other Root")
    revoked_serial = pki.leaf("dev-revoked-serial", inter)
    revoked_thumb = pki.leaf("dev-revoked-thumb", inter)
    await enroll(
        world,
        "neg",
        {
            "caCertificates": [root.pem],
            "revoked": {
                "serials": [revoked_serial.serial.upper()],
                "thumbprints": [revoked_thumb.thumbprint],
            },
        },
    )
    disabled_root = pki.root("Disabled Root")
    await enroll(world, "off", {"caCertificates": [disabled_root.pem]}, enabled=False)
    day = dt.timedelta(days=1)
    now = pki.now()
    cases: dict[str, tuple[str, pki.Node, dict[str, Any]]] = {
        "expired": (
            "dev-e1",
            pki.leaf("dev-e1", inter, not_before=now - 3 * day, not_after=now - day),
            {},
        ),
        "not yet valid": ("dev-e2", pki.leaf("dev-e2", inter, not_before=now + day), {}),
        "other CA": ("dev-e3", pki.leaf("dev-e3", other_root), {}),
        "wrong EKU": (
            "dev-e4",
            pki.leaf("dev-e4", inter, eku=[ExtendedKeyUsageOID.SERVER_AUTH]),
            {},
        ),
        "wrong key usage": (
            "dev-e5",
            pki.leaf("dev-e5", inter, usage=pki._usage(sign=False, encipher=True)),
            {},
        ),
        "CA certificate as leaf": (
            "Neg d2 i1",
            inter,
            {"chain": [inter.pem]},
        ),
        "name mismatch": ("dev-e7", pki.leaf("dev-someone-else", inter), {}),
        "self-signed leaf not enrolled": ("dev-e8", pki.leaf("dev-e8", None), {}),
        "truncated chain": ("dev-e9", pki.leaf("dev-e9", inter), {"chain": "leaf only"}),
        "Ed25519 leaf": ("dev-e10", pki.leaf("dev-e10", inter, "ed25519"), {}),
        "RSA-1024 leaf": ("dev-e11", pki.leaf("dev-e11", inter, "rsa1024"), {}),
        "P-521 leaf": ("dev-e12", pki.leaf("dev-e12", inter, "p521"), {}),
        "bad signature": ("dev-e13", pki.leaf("dev-e13", inter), {"key": pki.new_key("p256")}),
        "signature over another id": (
            "dev-e14",
            pki.leaf("dev-e14", inter),
            {"signed_id": "dev-other"},
        ),
        "unknown nonce": ("dev-e15", pki.leaf("dev-e15", inter), {"use_nonce": "made-up"}),
        "chain deeper than allowed": ("dev-e16", pki.leaf("dev-e16", None), {"deep": True}),
    }
    refused: dict[str, int] = {}
    for kind, (rid, device, how) in cases.items():
        chain = how.pop("chain", None)
        if chain == "leaf only":
            chain = [device.pem]
        if how.pop("deep", False):
            cas = pki.chain_of(7, name="Deep")  # root + 6 intermediates > the default 4
            await enroll(world, "deep", {"caCertificates": [cas[0].pem]})
            device = pki.leaf(rid, cas[-1])
        r = await register(world, rid, device, chain, **how)
        refused[kind] = r.status_code
        assert r.json()["message"] == "registration refused", (kind, r.text)
        assert await nothing_created(world, rid), kind
    assert refused == dict.fromkeys(cases, 401)
    # Revoked (by serial, by thumbprint) and disabled: 403, and the record says so.
    for rid, device in (
        ("dev-revoked-serial", revoked_serial),
        ("dev-revoked-thumb", revoked_thumb),
        ("dev-off", pki.leaf("dev-off", disabled_root)),
    ):
        r = await register(world, rid, device)
        assert r.status_code == 403, (rid, r.text)
        assert (await world.api.get(f"/device/name/{rid}")).status_code == 404
        rec = (await world.api.get(f"/registration/name/{rid}")).json()["registration"]
        assert rec["status"] == "disabled" and rec["attestation"]["thumbprint"] == device.thumbprint
        assert ("revoked" if "revoked" in rid else "disabled") in rec["error"]
    # A token is no certificate: X.509 enrolments (catch-all groups here) do not cover it...
    tok = make_token(derive_device_key(GROUP_KEY, "dev-tok"), "dev-tok", int(time.time()) + 60)
    body = {"apiVersion": "v3", "registration": {"registrationId": "dev-tok", "token": tok}}
    r = await world.api.client.post("/api/v3/registration", json=body)
    assert r.status_code == 401 and await nothing_created(world, "dev-tok")
    # ... and they do not capture token registrations a symmetric-key group covers.
    r = await world.api.post(
        "/enrollment",
        [
            {
                "apiVersion": "v3",
                "enrollment": {
                    "name": "keys",
                    "kind": "group",
                    "priority": -5,
                    "allocation": {"policy": "static", "services": [{"name": "ds2"}]},
                    "attestation": {"primaryKey": GROUP_KEY},
                },
            }
        ],
    )
    assert r.json()[0]["statusCode"] == 201, r.text
    r = await world.api.client.post("/api/v3/registration", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["registration"]["attestation"] == {"type": "symmetricKey"}


async def test_nonces_are_single_use_and_expire(world: World) -> None:
    ca = pki.root("Nonce Root")
    await enroll(world, "nonces", {"caCertificates": [ca.pem]})
    device = pki.leaf("dev-n", ca)
    n = await nonce(world)
    assert (await register(world, "dev-n", device, use_nonce=n)).status_code == 200
    replay = await register(world, "dev-n", device, use_nonce=n)
    assert replay.status_code == 401
    # A nonce is spent by a failed attempt too.
    n = await nonce(world)
    wrong = await register(world, "dev-n", device, use_nonce=n, key=pki.new_key("p256"))
    assert wrong.status_code == 401
    assert (await register(world, "dev-n", device, use_nonce=n)).status_code == 401
    # An expired nonce (issued with an expiry in the past) is refused.
    now_s = int(time.time())
    async with world.api.service.deps.store.write() as tx:
        await tx.registrations.add_challenge("stale-nonce", now_s - 1, now_s - 5)
    other = pki.leaf("dev-n2", ca)
    stale = await register(world, "dev-n2", other, use_nonce="stale-nonce")
    assert stale.status_code == 401 and await nothing_created(world, "dev-n2")
    # Two registrations racing on one nonce: the database lets exactly one through.
    n = await nonce(world)
    async with world.api.service.deps.store.write() as tx:
        first = await tx.registrations.take_challenge(n, int(time.time()))
    async with world.api.service.deps.store.write() as tx:
        second = await tx.registrations.take_challenge(n, int(time.time()))
    assert (first, second) == (True, False)


async def test_revocation_by_patch_refuses_the_next_registration(world: World) -> None:
    ca = pki.root("Patch Root")
    await enroll(world, "patched", {"caCertificates": [ca.pem]})
    device = pki.leaf("dev-p", ca)
    assert (await register(world, "dev-p", device)).status_code == 200
    current = (await world.api.get("/enrollment/name/patched")).json()["enrollment"]
    assert current["attestation"]["revoked"] == {"serials": [], "thumbprints": []}
    current["attestation"]["revoked"] = {"thumbprints": [device.thumbprint]}
    r = await world.api.patch("/enrollment", [{"apiVersion": "v3", "enrollment": current}])
    assert r.json()[0]["statusCode"] == 200, r.text
    again = await register(world, "dev-p", device)
    assert again.status_code == 403
    rec = (await world.api.get("/registration/name/dev-p")).json()["registration"]
    assert rec["status"] == "disabled" and "revoked" in rec["error"]
    # The device itself stays where it was; revocation refuses registrations.
    assert (await world.api.get("/device/name/dev-p")).json()["device"]["serviceName"] == "ds1"
    # A PATCH that leaves attestation out keeps it (CA certificates and the denylist).
    current.pop("attestation")
    r = await world.api.patch("/enrollment", [{"apiVersion": "v3", "enrollment": current}])
    kept = (await world.api.get("/enrollment/name/patched")).json()["enrollment"]
    assert kept["attestation"]["revoked"]["thumbprints"] == [device.thumbprint]
    assert kept["attestation"]["caCertificates"] == [ca.pem]


async def test_reregistration_applies_the_reprovisioning_policy(world: World) -> None:
    ca = pki.root("Again Root")
    await enroll(world, "again", {"caCertificates": [ca.pem]})
    device = pki.leaf("dev-g", ca)
    assert (await register(world, "dev-g", device)).status_code == 200
    current = (await world.api.get("/enrollment/name/again")).json()["enrollment"]
    current["allocation"] = {"policy": "static", "services": [{"name": "ds2"}]}
    current.pop("attestation")
    await world.api.patch("/enrollment", [{"apiVersion": "v3", "enrollment": current}])
    r = await register(world, "dev-g", device)
    assert r.status_code in (200, 202), r.text
    rec = (await world.api.get("/registration/name/dev-g")).json()["registration"]
    for _ in range(100):
        if rec["status"] != "assigning":
            break
        await asyncio.sleep(0.05)
        rec = (await world.api.get("/registration/name/dev-g")).json()["registration"]
    assert (rec["status"], rec["assignedService"], rec["substatus"]) == (
        "assigned",
        "ds2",
        "deviceDataMigrated",
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_cli_revokes_a_certificate_with_direct_database_access(
    backend: str, tmp_path: Path
) -> None:
    ca = pki.root("Cli Root")
    device = pki.leaf("dev-cli", ca)
    other = pki.leaf("dev-cli-2", ca)
    state: dict[str, Any] = {}

    async def seed() -> None:
        service, _ = await make_service(backend, tmp_path)  # its schema stays for the CLI
        await service.start()
        transport = httpx.ASGITransport(app=service.app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                w = World(Api(client, service))
                await w.api.add_profile("prof")
                await w.api.add_service("ds1")
                await enroll(w, "cli", {"caCertificates": [ca.pem]})
                state["url"] = service.settings.database_url
                assert (await register(w, "dev-cli", device)).status_code == 200
        finally:
            await service.stop()

    asyncio.run(seed())
    done = CliRunner().invoke(
        cli_app,
        ["enrollment", "revoke", "cli", "--serial", device.serial.upper(),
         "--thumbprint", other.thumbprint, "--database-url", state["url"]],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "1 serial(s) and 1 thumbprint(s)" in done.output
    unknown = CliRunner().invoke(
        cli_app, ["enrollment", "revoke", "nope", "--serial", "1", "--database-url", state["url"]]
    )
    assert unknown.exit_code == 1 and "not found" in unknown.output

    async def check() -> None:
        service, _ = await _reopen(state["url"], tmp_path)
        transport = httpx.ASGITransport(app=service.app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                w = World(Api(client, service))
                assert (await register(w, "dev-cli", device)).status_code == 403
                assert (await register(w, "dev-cli-2", other)).status_code == 403
                rec = (await w.api.get("/registration/name/dev-cli")).json()["registration"]
                assert rec["status"] == "disabled" and "revoked" in rec["error"]
        finally:
            await service.stop()
            if "schema=" in state["url"]:
                await drop_schema(state["url"].rsplit("schema=", 1)[1])

    asyncio.run(check())


async def _reopen(url: str, tmp_path: Path) -> tuple[Any, None]:
    from edgemeta.bootstrap import build
    from edgemeta.settings import Settings

    service = await build(Settings(database_url=url, device_validation="never"))
    await service.start()
    return service, None


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _openssl_pki(tmp: Path) -> None:
    """A root and two device certificates (P-256, RSA-2048) made with the openssl CLI, as
    docs/provisioning.md shows."""
    (tmp / "ca.ext").write_text(
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier=hash\n"
    )
    (tmp / "dev.ext").write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key", cwd=tmp)
    _openssl(
        "req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=OpenSSL Test CA",
        "-days", "30", "-sha256", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.pem", cwd=tmp,
    )  # fmt: skip
    for name, keygen in (
        ("ossl-ec", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        ("ossl-rsa", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
    ):
        _openssl(*keygen, "-out", f"{name}.key", cwd=tmp)
        _openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}",
                 "-out", f"{name}.csr", cwd=tmp)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "7", "-sha256", "-extfile", "dev.ext",
                 "-out", f"{name}.pem", cwd=tmp)  # fmt: skip


async def test_openssl_made_certificates_and_signatures_register(
    world: World, tmp_path: Path
) -> None:
    _openssl_pki(tmp_path)
    await enroll(world, "ossl", {"caCertificates": [(tmp_path / "ca.pem").read_text()]})
    for name, sigopts in (("ossl-ec", []), ("ossl-rsa", ["-sigopt", "rsa_padding_mode:pss"])):
        n = await nonce(world)
        (tmp_path / "msg").write_bytes(f"{n}\n{name}".encode())
        _openssl("dgst", "-sha256", "-sign", f"{name}.key", *sigopts, "-out", "sig", "msg",
                 cwd=tmp_path)  # fmt: skip
        body = {
            "registrationId": name,
            "attestation": {
                "type": "x509",
                "chain": [(tmp_path / f"{name}.pem").read_text()],
                "nonce": n,
                "signature": base64.b64encode((tmp_path / "sig").read_bytes()).decode(),
            },
        }
        r = await world.api.client.post(
            "/api/v3/registration", json={"apiVersion": "v3", "registration": body}
        )
        assert r.status_code == 200, (name, r.text)
        assert r.json()["registration"]["attestation"]["enrolledCertificate"]


def _verify(ca: Path, cert: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "verify", "-CAfile", str(ca), str(cert)], capture_output=True, text=True
    )


@pytest.fixture(params=["sqlite", "postgres"])
async def issuing_world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    ca = pki.root("Issuing CA", "p384")
    key = ca.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    (tmp_path / "issuing.pem").write_text(ca.pem)
    (tmp_path / "issuing.key").write_bytes(key)
    (tmp_path / "issuing.pass").write_text("s3cret\n")
    async for w in _world(
        request.param,
        tmp_path,
        issuing_ca_cert_file=tmp_path / "issuing.pem",
        issuing_ca_key_file=tmp_path / "issuing.key",
        issuing_ca_key_password_file=tmp_path / "issuing.pass",
    ):
        w.extra = {"ca": ca, "dir": tmp_path}  # type: ignore[attr-defined]
        yield w


async def test_csr_gets_an_operational_certificate_openssl_verifies(issuing_world: World) -> None:
    w = issuing_world
    issuing: pki.Node = w.extra["ca"]  # type: ignore[attr-defined]
    tmp: Path = w.extra["dir"]  # type: ignore[attr-defined]
    claim_ca = pki.root("Claim CA")
    await enroll(
        w,
        "issuing",
        {
            # the issuing CA is enrolled too: a device renews with its operational certificate
            "caCertificates": [claim_ca.pem, issuing.pem],
            "issueCertificate": {"validityDays": 7},
        },
    )
    claim = pki.leaf("dev-i", claim_ca)
    device_key = pki.new_key("p256")
    r = await register(w, "dev-i", claim, csr=pki.csr("dev-i", device_key))
    assert r.status_code == 200, r.text
    pem = r.json()["certificate"]
    (tmp / "issued.pem").write_text(pem)
    done = _verify(tmp / "issuing.pem", tmp / "issued.pem")
    assert done.returncode == 0 and "OK" in done.stdout, done.stdout + done.stderr
    issued = x509.load_pem_x509_certificate(pem.encode())
    assert issued.not_valid_after_utc - issued.not_valid_before_utc < dt.timedelta(days=8)
    rec = (await w.api.get("/registration/name/dev-i")).json()["registration"]
    assert rec["issuedCertificate"]["certificate"] == pem
    assert rec["attestation"]["thumbprint"] == claim.thumbprint
    # Renewal: register again with the operational certificate and a new CSR.
    operational = pki.Node(issued, device_key, issuing)
    renewed = await register(w, "dev-i", operational, csr=pki.csr("dev-i", pki.new_key("p256")))
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["certificate"] != pem
    rec = renewed.json()["registration"]
    assert rec["attestation"]["enrolledCertificate"] == issuing.thumbprint
    # A CSR that is not one is a 400.
    bad = await register(w, "dev-i", operational, csr="-----BEGIN CERTIFICATE REQUEST-----")
    assert bad.status_code == 400, bad.text


async def test_quarantine_can_require_a_new_certificate_before_release(
    issuing_world: World,
) -> None:
    w = issuing_world
    issuing: pki.Node = w.extra["ca"]  # type: ignore[attr-defined]
    claim_ca = pki.root("Claim CA")
    await w.api.add_service("quarantine")
    await enroll(
        w,
        "q",
        {"caCertificates": [claim_ca.pem, issuing.pem], "issueCertificate": {"validityDays": 7}},
    )
    claim = pki.leaf("dev-q", claim_ca)
    assert (await register(w, "dev-q", claim)).status_code == 200
    body = {"apiVersion": "v3", "quarantine": {"serviceName": "quarantine", "requireReissue": True}}
    r = await w.api.client.post("/api/v3/registration/name/dev-q/quarantine", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["registration"]["reissueRequiredFor"] == [claim.thumbprint]
    # Registering again with the same certificate does not let it out, nor does an operator.
    assert (await register(w, "dev-q", claim)).status_code == 200
    out = await w.api.client.post("/api/v3/registration/name/dev-q/release")
    assert out.status_code == 409 and "new certificate" in out.json()["message"], out.text
    assert await w.owner("dev-q") == "quarantine"
    # A registration with a CSR gets a new certificate: now it may leave.
    r = await register(w, "dev-q", claim, csr=pki.csr("dev-q", pki.new_key("p256")))
    assert r.status_code == 200 and r.json()["certificate"], r.text
    out = await w.api.client.post("/api/v3/registration/name/dev-q/release")
    assert out.status_code == 200, out.text
    assert "reissueRequiredFor" not in out.json()["registration"]
    assert await w.owner("dev-q") == "ds1"


async def test_require_reissue_needs_a_certificate_device(world: World) -> None:
    await world.api.add_service("quarantine")
    body = {
        "name": "sym",
        "kind": "individual",
        "registrationId": "dev-s",
        "allocation": {"policy": "static", "services": [{"name": "ds1"}]},
        "initialState": {"profileName": "prof"},
        "attestation": {"primaryKey": GROUP_KEY},
    }
    r = await world.api.post("/enrollment", [{"apiVersion": "v3", "enrollment": body}])
    assert r.json()[0]["statusCode"] == 201, r.text
    token = make_token(GROUP_KEY, "dev-s", int(time.time()) + 300)
    reg = {"apiVersion": "v3", "registration": {"registrationId": "dev-s", "token": token}}
    assert (await world.api.client.post("/api/v3/registration", json=reg)).status_code == 200
    q = {"apiVersion": "v3", "quarantine": {"serviceName": "quarantine", "requireReissue": True}}
    r = await world.api.client.post("/api/v3/registration/name/dev-s/quarantine", json=q)
    assert r.status_code == 400 and "certificate" in r.json()["message"], r.text
    assert await world.owner("dev-s") == "ds1"
