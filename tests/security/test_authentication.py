"""Authentication against a real issuer (a JWKS served over HTTP) and API keys: what is
accepted, what answers 401 (and changes nothing), what answers 403."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import jwt
import pytest

from edgemeta.bootstrap import build
from edgemeta.security.config import InsecureExposure
from edgemeta.settings import Settings
from edgemeta.usecases.apikeys import revoke_key
from tests.security.issuer import AUDIENCE, ISSUER, Issuer
from tests.support.auth import api_key, auth_app, bearer

SERVICE = [
    {
        "apiVersion": "v3",
        "service": {"name": "ds-x", "baseAddress": "http://h:1", "adminState": "UNLOCKED"},
    }
]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(payload).encode())


def _claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "eve", "exp": now + 300, "roles": ["admin"]}
    claims.update(over)
    return claims


def _refused(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    body = r.json()
    assert body["apiVersion"] == "v3" and body["statusCode"] == 401 and body["message"]
    assert r.headers["www-authenticate"].startswith('Bearer realm="edgemeta"')


async def test_tokens_of_the_issuer_are_accepted_and_every_forgery_is_401(
    issuer: Issuer, tmp_path: Any
) -> None:
    async with auth_app("sqlite", tmp_path, issuer, auth_clock_skew=5) as (service, meta, _):
        good = issuer.token("alice", ["read"])
        r = await meta.get("/api/v3/device/all", headers=bearer(good))
        assert r.status_code == 200, r.text

        pem = issuer.public_pem()
        hs_input = _unsigned({"alg": "HS256", "typ": "JWT", "kid": issuer.kid}, _claims())
        hs_sig = _b64(hmac.new(pem, hs_input.encode(), hashlib.sha256).digest())
        head, payload, sig = good.split(".")
        tampered_payload = json.loads(base64.urlsafe_b64decode(payload + "=="))
        tampered_payload["roles"] = ["admin"]
        ghost = Issuer()  # a key the issuer never published
        forged = {
            "expired": issuer.token(lifetime=-60),
            "not yet valid": issuer.token(nbf=int(time.time()) + 600),
            "wrong issuer": issuer.token(iss="https://evil.test"),
            "wrong audience": issuer.token(aud="someone-else"),
            "alg none": _unsigned({"alg": "none", "typ": "JWT"}, _claims()) + ".",
            "HS256 with the RSA public key": f"{hs_input}.{hs_sig}",
            "tampered payload": f"{head}.{_b64(json.dumps(tampered_payload).encode())}.{sig}",
            "unknown kid": ghost.token(kid=ghost.kid),
            "no subject": issuer.token(sub=""),
            "garbage": "not-a-jwt",
        }
        for what, token in forged.items():
            r = await meta.post("/api/v3/deviceservice", json=SERVICE, headers=bearer(token))
            _refused(r)
            assert 'error="invalid_token"' in r.headers["www-authenticate"], what
        # Nothing reached the store.
        async with service.store.read() as tx:
            assert await tx.services.get("ds-x") is None
        # No credential: 401 without an error code; a non-Bearer scheme: 401.
        r = await meta.get("/api/v3/device/all")
        _refused(r)
        assert "error=" not in r.headers["www-authenticate"]
        _refused(await meta.get("/api/v3/device/all", headers={"Authorization": "Basic eDp5"}))


async def test_key_rotation_is_picked_up_without_restart(issuer: Issuer, tmp_path: Any) -> None:
    async with auth_app("sqlite", tmp_path, issuer, auth_jwks_min_refresh=0.2) as (_, meta, _d):
        old = issuer.token(roles=["read"])
        old_kid = issuer.kid
        old_key = issuer.keys[old_kid]
        assert (await meta.get("/api/v3/version", headers=bearer(old))).status_code == 200
        await asyncio.sleep(0.3)
        issuer.rotate(keep_old=False)
        new = issuer.token(roles=["read"])
        assert (await meta.get("/api/v3/version", headers=bearer(new))).status_code == 200
        # A fresh token signed with the withdrawn key is refused (the key set was refetched).
        withdrawn = jwt.encode(
            _claims(roles=["read"]), old_key, algorithm="RS256", headers={"kid": old_kid}
        )
        _refused(await meta.get("/api/v3/version", headers=bearer(withdrawn)))
        issuer.rotate(kind="ec")  # an EC key beside the RSA one
        ec_token = issuer.token(roles=["read"])
        await asyncio.sleep(0.3)
        assert (await meta.get("/api/v3/version", headers=bearer(ec_token))).status_code == 200


async def test_random_kids_cannot_hammer_the_issuer(issuer: Issuer, tmp_path: Any) -> None:
    async with auth_app("sqlite", tmp_path, issuer, auth_jwks_min_refresh=60) as (svc, meta, _):
        ok = issuer.token(roles=["read"])
        assert (await meta.get("/api/v3/version", headers=bearer(ok))).status_code == 200
        verifier = svc.authenticator.verifier  # type: ignore[union-attr]
        assert verifier is not None
        before = verifier.fetches
        ghost = Issuer()
        results = await asyncio.gather(
            *(
                meta.get("/api/v3/version", headers=bearer(ghost.token(headers={"kid": f"k{i}"})))
                for i in range(30)
            )
        )
        assert {r.status_code for r in results} == {401}
        assert verifier.fetches - before <= 1


async def test_roles_from_the_claim_and_from_scope(issuer: Issuer, tmp_path: Any) -> None:
    async with auth_app("sqlite", tmp_path, issuer, auth_roles_claim="realm_access.roles") as (
        _,
        meta,
        _d,
    ):
        nested = issuer.token(roles=[], realm_access={"roles": ["device-write"]})
        r = await meta.post("/api/v3/deviceservice", json=SERVICE, headers=bearer(nested))
        assert r.status_code == 207, r.text
        scoped = issuer.token(roles=[], scope="openid read")
        assert (await meta.get("/api/v3/device/all", headers=bearer(scoped))).status_code == 200
        reader = issuer.token(roles=[], scope="read")
        r = await meta.post("/api/v3/deviceservice", json=SERVICE, headers=bearer(reader))
        assert r.status_code == 403 and r.json()["statusCode"] == 403
        assert "device-write" in r.json()["message"]


async def test_static_pem_keys(issuer: Issuer, tmp_path: Any) -> None:
    pem = tmp_path / "keys.pem"
    pem.write_bytes(issuer.public_pem())
    async with auth_app(
        "sqlite",
        tmp_path,
        auth_public_keys=pem,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
    ) as (_, meta, _d):
        good = issuer.token(roles=["read"])
        assert (await meta.get("/api/v3/version", headers=bearer(good))).status_code == 200
        other = Issuer()
        _refused(await meta.get("/api/v3/version", headers=bearer(other.token())))


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_api_keys(backend: str, tmp_path: Any) -> None:
    async with auth_app(backend, tmp_path, auth_apikey_cache_seconds=0) as (svc, meta, data):
        key = await api_key(svc, "read", "device-write")
        # Either header works; the same key opens core-data.
        assert (await meta.get("/api/v3/device/all", headers=bearer(key))).status_code == 200
        r = await meta.post("/api/v3/deviceservice", json=SERVICE, headers={"X-API-Key": key})
        assert r.status_code == 207 and r.json()[0]["statusCode"] == 201
        assert (await data.get("/api/v3/event/count", headers=bearer(key))).status_code == 200
        # Wrong role: 403, nothing changed.
        r = await meta.post("/api/v3/device/reassign", json=[], headers=bearer(key))
        assert r.status_code == 403
        # A JWT-looking credential with no issuer configured, an unknown key: 401.
        _refused(await meta.get("/api/v3/device/all", headers=bearer("eyJ.x.y")))
        _refused(await meta.get("/api/v3/device/all", headers=bearer(key[:-2] + "xx")))
        # Revoked: 401.
        await revoke_key(svc.store, key.split("_")[1])
        _refused(await meta.get("/api/v3/device/all", headers=bearer(key)))
        # Expired: 401.
        short = await api_key(svc, "read", lifetime_s=0.05)
        await asyncio.sleep(0.1)
        r = await meta.get("/api/v3/device/all", headers=bearer(short))
        _refused(r)
        assert "expired" in r.json()["message"]
        async with svc.store.read() as tx:
            stored = await tx.apikeys.all()
        assert all(key not in (k.key_hash, k.id) for k in stored)  # only the hash is kept


async def test_open_routes_cors_and_unknown_paths(tmp_path: Any) -> None:
    origin = "https://console.test"
    async with auth_app("sqlite", tmp_path, cors_origins=origin) as (_, meta, data):
        for client in (meta, data):
            assert (await client.get("/api/v3/ping")).status_code == 200
            health = await client.get("/api/v3/health")
            assert health.status_code == 200 and health.json()["store"] == "ok"
        assert (await meta.get("/api/v3/openapi.yaml")).status_code == 200
        _refused(await data.get("/api/v3/event/all"))
        assert (await meta.get("/api/v3/nothing/here")).status_code == 404
        preflight = await meta.options(
            "/api/v3/device/all",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        stranger = await meta.options(
            "/api/v3/device/all",
            headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "GET"},
        )
        assert stranger.status_code == 400
        assert "access-control-allow-origin" not in stranger.headers


async def test_auth_off_beyond_loopback_refuses_to_start(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(InsecureExposure, match="EDGEMETA_AUTH_ALLOW_INSECURE_OFF"):
        await build(Settings(database_url=url, host="0.0.0.0"))
    for ok in (
        Settings(database_url=url, host="0.0.0.0", auth_allow_insecure_off=True),
        Settings(database_url=url, host="0.0.0.0", auth="on"),
        Settings(database_url=url, host="::1"),
    ):
        service = await build(ok)
        await service.stop()
    with pytest.raises(ValueError, match="EDGEMETA_AUTH_ISSUER"):
        Settings(database_url=url, auth="on", auth_jwks_url="http://127.0.0.1:1/jwks")


async def test_an_unreachable_issuer_is_503_not_a_pass(tmp_path: Any) -> None:
    from tests.e2e.procs import free_port

    dead = f"http://127.0.0.1:{free_port()}/jwks"
    async with auth_app(
        "sqlite", tmp_path, auth_jwks_url=dead, auth_issuer=ISSUER, auth_audience=AUDIENCE
    ) as (_, meta, _d):
        token = Issuer().token()
        r = await meta.get("/api/v3/version", headers=bearer(token))
        assert r.status_code == 503, r.text


def test_jwt_library_refuses_none_itself() -> None:
    """Belt and braces: PyJWT with a pinned list never accepts an unsigned token."""
    token = _unsigned({"alg": "none"}, _claims()) + "."
    with pytest.raises(jwt.InvalidAlgorithmError):
        jwt.decode(token, key="", algorithms=["RS256"], audience=AUDIENCE)
