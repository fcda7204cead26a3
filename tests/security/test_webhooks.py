"""The allocation webhook client's limits, against a real local HTTPS receiver.

The receiver is a Starlette app behind uvicorn with a certificate from the test CA. The
adapter is exercised directly (what it refuses and how fast) and through the API (a failed
webhook falls back; a bad URL is a 400 naming the field).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

import edgemeta.api
from edgemeta.domain.attestation import derive_device_key, make_token
from edgemeta.domain.enrollment import webhook_url_problem
from edgemeta.domain.errors import ServiceUnavailable
from edgemeta.peers.webhooks import HttpAllocationHook, request_body, verification
from edgemeta.security import signatures
from edgemeta.security.tls import files, server_context
from tests.support.api import Api, make_service, serve_http
from tests.support.pki import Pki

GROUP_KEY = "c2VjcmV0LWdyb3VwLWtleS0xMjM0NTY3OA=="
REQUEST: dict[str, object] = {
    "registrationId": "badge-1",
    "enrollment": "badges",
    "candidates": ["ds1", "ds2"],
    "report": {"site": "Ä"},
}


class Receiver:
    """What the webhook receiver was sent."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[bytes]] = {}
        self.signatures: list[str] = []
        self.secret = ""  # set: /signed answers ds2 only to requests signed with it

    def app(self) -> Starlette:
        async def allocate(request: Request) -> Response:
            self.bodies.setdefault("allocate", []).append(await request.body())
            return JSONResponse({"serviceName": "ds2"})

        async def signed(request: Request) -> Response:
            # What a receiver does: check X-Edgemeta-Signature over the exact body.
            body = await request.body()
            header = request.headers.get("x-edgemeta-signature", "")
            self.signatures.append(header)
            if not signatures.verify(self.secret, header, body):
                return JSONResponse({"message": "bad signature"}, status_code=401)
            return JSONResponse({"serviceName": "ds2"})

        async def big(request: Request) -> Response:
            # Declared too large: refused from the Content-Length alone.
            return JSONResponse({"serviceName": "ds2", "pad": "x" * 100_000})

        async def big_chunked(request: Request) -> Response:
            # No Content-Length: refused while streaming, once past the limit.
            async def chunks() -> AsyncIterator[bytes]:
                yield b'{"serviceName": "ds2", "pad": "'
                for _ in range(1000):
                    self.bodies.setdefault("big_chunked_sent", []).append(b"")
                    yield b"x" * 1024
                    await asyncio.sleep(0)
                yield b'"}'

            return StreamingResponse(chunks(), media_type="application/json")

        async def drip(request: Request) -> Response:
            # One byte every 0.05 s: each read is far inside any read timeout, the whole
            # answer takes 1.2 s.
            async def chunks() -> AsyncIterator[bytes]:
                answer = b'{"serviceName": "ds2"}  '
                for byte in answer:
                    yield bytes([byte])
                    await asyncio.sleep(0.05)

            return StreamingResponse(chunks(), media_type="application/json")

        async def redirect(request: Request) -> Response:
            return RedirectResponse("/allocate", status_code=307)

        async def gzipped(request: Request) -> Response:
            return Response(
                gzip.compress(b'{"serviceName": "ds2"}'),
                media_type="application/json",
                headers={"Content-Encoding": "gzip"},
            )

        async def deep(request: Request) -> Response:
            return Response(b"[" * 60_000, media_type="application/json")

        async def not_json(request: Request) -> Response:
            return Response(b"\xff\xfe ds2", media_type="application/json")

        return Starlette(
            routes=[
                Route(f"/{name}", handler, methods=["POST"])
                for name, handler in [
                    ("allocate", allocate),
                    ("signed", signed),
                    ("big", big),
                    ("big_chunked", big_chunked),
                    ("drip", drip),
                    ("redirect", redirect),
                    ("gzip", gzipped),
                    ("deep", deep),
                    ("not_json", not_json),
                ]
            ]
        )


@pytest.fixture
async def receiver(pki: Pki) -> AsyncIterator[tuple[Receiver, str]]:
    r = Receiver()
    ctx = server_context(files(pki.server.cert, pki.server.key, None) or _never())
    async with serve_http(r.app(), tls=ctx) as url:
        yield r, url


def _never() -> Any:
    raise AssertionError("TLS files expected")


async def test_a_trusted_https_webhook_answers(pki: Pki, receiver: tuple[Receiver, str]) -> None:
    r, url = receiver
    hook = HttpAllocationHook(ca_file=pki.ca.cert_file)
    try:
        assert await hook.decide(f"{url}/allocate", 2.0, REQUEST) == "ds2"
        # localhost is in the certificate too
        local = url.replace("127.0.0.1", "localhost")
        assert await hook.decide(f"{local}/allocate", 2.0, REQUEST) == "ds2"
    finally:
        await hook.close()
    # The bytes sent are exactly the one body builder's (where a signature will go).
    assert r.bodies["allocate"] == [request_body(REQUEST)] * 2
    assert json.loads(r.bodies["allocate"][0]) == REQUEST


async def test_an_untrusted_certificate_fails(pki: Pki, receiver: tuple[Receiver, str]) -> None:
    r, url = receiver
    hook = HttpAllocationHook()  # the system's CAs: they do not know the test CA
    try:
        with pytest.raises(ServiceUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            await hook.decide(f"{url}/allocate", 2.0, REQUEST)
    finally:
        await hook.close()
    assert "allocate" not in r.bodies  # nothing was sent to it


@pytest.mark.parametrize("route", ["big", "big_chunked"])
async def test_an_oversized_answer_fails(
    pki: Pki, receiver: tuple[Receiver, str], route: str
) -> None:
    r, url = receiver
    hook = HttpAllocationHook(ca_file=pki.ca.cert_file, max_bytes=4096)
    try:
        with pytest.raises(ServiceUnavailable, match="answered more than 4096 bytes"):
            await hook.decide(f"{url}/{route}", 5.0, REQUEST)
    finally:
        await hook.close()
    if route == "big_chunked":  # stopped reading long before the end of the stream
        assert len(r.bodies["big_chunked_sent"]) < 1000


async def test_the_default_limit_allows_a_normal_answer_only(
    pki: Pki, receiver: tuple[Receiver, str]
) -> None:
    _, url = receiver
    hook = HttpAllocationHook(ca_file=pki.ca.cert_file)  # 65536
    try:
        assert await hook.decide(f"{url}/allocate", 2.0, REQUEST) == "ds2"
        with pytest.raises(ServiceUnavailable, match="more than 65536 bytes"):
            await hook.decide(f"{url}/big", 2.0, REQUEST)
    finally:
        await hook.close()


async def test_a_slow_drip_answer_fails_within_the_time_limit(
    pki: Pki, receiver: tuple[Receiver, str]
) -> None:
    _, url = receiver
    hook = HttpAllocationHook(ca_file=pki.ca.cert_file)
    try:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable, match=r"did not answer within 0\.5 s"):
            await hook.decide(f"{url}/drip", 0.5, REQUEST)
        elapsed = time.monotonic() - started
        # The drip would take 1.2 s; every gap (0.05 s) is inside httpx's per-read timeout
        # (which is the same 0.5 s).
        assert 0.45 <= elapsed < 1.0, elapsed
        # The same answer read in full is good: only the deadline refused it.
        assert await hook.decide(f"{url}/drip", 10.0, REQUEST) == "ds2"
    finally:
        await hook.close()


async def test_redirects_are_not_followed(pki: Pki, receiver: tuple[Receiver, str]) -> None:
    r, url = receiver
    hook = HttpAllocationHook(ca_file=pki.ca.cert_file)
    try:
        with pytest.raises(ServiceUnavailable, match=r"307 \(redirects are not followed\)"):
            await hook.decide(f"{url}/redirect", 2.0, REQUEST)
    finally:
        await hook.close()
    assert "allocate" not in r.bodies


async def test_a_compressed_answer_is_refused(pki: Pki, receiver: tuple[Receiver, str]) -> None:
    _, url = receiver
    hook = HttpAllocationHook(ca_file=pki.ca.cert_file)
    try:
        with pytest.raises(ServiceUnavailable, match="Content-Encoding 'gzip'"):
            await hook.decide(f"{url}/gzip", 2.0, REQUEST)
    finally:
        await hook.close()


@pytest.mark.parametrize("route", ["deep", "not_json"])
async def test_a_malformed_answer_fails(
    pki: Pki, receiver: tuple[Receiver, str], route: str
) -> None:
    _, url = receiver
    hook = HttpAllocationHook(ca_file=pki.ca.cert_file)
    try:
        with pytest.raises(ServiceUnavailable, match=f"allocation webhook {url}/{route}"):
            await hook.decide(f"{url}/{route}", 2.0, REQUEST)
    finally:
        await hook.close()


# The webhook URL pattern the OpenAPI document publishes.
_DOC = yaml.safe_load((Path(edgemeta.api.__file__).parent / "openapi.yaml").read_text())
_ALLOCATION = _DOC["components"]["schemas"]["Enrollment"]["properties"]["allocation"]
OPENAPI_URL = re.compile(_ALLOCATION["properties"]["webhook"]["properties"]["url"]["pattern"])


BAD_URLS = [
    ("ftp://hooks.example/allocate", "must be an http:// or https:// URL"),
    ("https:///allocate", "must name a host"),
    ("http://user:secret@hooks.example/allocate", "must not carry a user name or password"),
    ("http://token@hooks.example/allocate", "must not carry a user name or password"),
    ("https://hooks.example/allocate#frag", "must not have a fragment"),
    ("https://hooks.example/allocate#", "must not have a fragment"),
    ("https://hooks.example:99999/allocate", "is not a valid URL"),
    ("https://hooks.example/al locate", "must not contain whitespace"),
    ("hooks.example/allocate", "must be an http:// or https:// URL"),
    ("HTTPS://hooks.example/allocate", "must be an http:// or https:// URL"),
    ("https://hooks.example/\ufeffallocate", "must not contain whitespace or control"),
    ("http://?x", "must name a host"),
    ("http://hooks.example:0/", "must not use port 0"),
]


@pytest.mark.parametrize(("url", "problem"), BAD_URLS)
def test_webhook_url_rules(url: str, problem: str) -> None:
    assert problem in (webhook_url_problem(url) or "")
    # The OpenAPI document's pattern says no more than the check (what it refuses, edgemeta
    # refuses; edgemeta may refuse more).
    assert OPENAPI_URL.fullmatch(url) is None or problem in (
        "is not a valid URL",
        "must not use port 0",
        "must not contain whitespace or control",  # \ufeff: \s in ECMA, not in Python
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/allocate",
        "https://hooks.example/a?tenant=1&at=x@y",
        "https://[::1]:443/",
        "http://hooks.example",
    ],
)
def test_good_webhook_urls(url: str) -> None:
    assert webhook_url_problem(url) is None
    assert OPENAPI_URL.fullmatch(url) is not None


async def test_a_bad_stored_url_is_refused_before_any_connection() -> None:
    hook = HttpAllocationHook()
    try:
        with pytest.raises(ServiceUnavailable, match="must not carry a user name or password"):
            await hook.decide("http://user:secret@127.0.0.1:9/allocate", 2.0, REQUEST)
    finally:
        await hook.close()


def test_an_unusable_webhook_ca_file_refuses_to_build(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"EDGEMETA_WEBHOOK_CA_FILE .*not a readable PEM CA"):
        verification(tmp_path / "missing.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="EDGEMETA_WEBHOOK_CA_FILE"):
        verification(junk)


# Through the API: enrolments, registrations, the fallback.


@pytest.fixture
async def api(pki: Pki, tmp_path: Path) -> AsyncIterator[Api]:
    service, _ = await make_service("sqlite", tmp_path, webhook_ca_file=pki.ca.cert_file)
    await service.start()
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
        yield Api(client, service)
    await service.stop()


def enrollment(name: str, webhook: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "group",
        "match": {"namePattern": f"{name}-.*"},
        "allocation": {
            "policy": "custom",
            "services": [{"name": "ds1"}, {"name": "ds2", "weight": 0}],
            "webhook": {"timeout": 0.5, "fallback": "static", **webhook},
        },
        "attestation": {"primaryKey": GROUP_KEY},
        "holdDownSeconds": 0,
    }


async def register(api: Api, rid: str) -> httpx.Response:
    token = make_token(derive_device_key(GROUP_KEY, rid), rid, int(time.time()) + 300)
    return await api.client.post(
        "/api/v3/registration",
        json={"apiVersion": "v3", "registration": {"registrationId": rid, "token": token}},
    )


@pytest.mark.parametrize(("url", "problem"), BAD_URLS[:5])
async def test_bad_webhook_urls_are_400_naming_the_field(api: Api, url: str, problem: str) -> None:
    r = await api.post(
        "/enrollment", [{"apiVersion": "v3", "enrollment": enrollment("hooked", {"url": url})}]
    )
    # The body is refused whole, in the EdgeX envelope, before any item is looked at.
    assert r.status_code == 400, r.text
    refusal = r.json()
    assert refusal["apiVersion"] == "v3" and refusal["statusCode"] == 400
    assert refusal["message"].startswith("[0].enrollment.allocation.webhook.url: " + problem)
    assert (await api.get("/enrollment/name/hooked")).status_code == 404

    # An update to a bad URL is refused the same way, and changes nothing.
    good = enrollment("hooked", {"url": "https://127.0.0.1:9/allocate"})
    r = await api.post("/enrollment", [{"apiVersion": "v3", "enrollment": good}])
    assert r.json()[0]["statusCode"] == 201, r.text
    bad = enrollment("hooked", {"url": url})
    r = await api.patch("/enrollment", [{"apiVersion": "v3", "enrollment": bad}])
    assert r.status_code == 400, r.text
    assert r.json()["message"].startswith("[0].enrollment.allocation.webhook.url: " + problem)
    stored = (await api.get("/enrollment/name/hooked")).json()["enrollment"]
    assert stored["allocation"]["webhook"]["url"] == "https://127.0.0.1:9/allocate"


async def test_registrations_use_a_trusted_webhook_and_fall_back_when_it_fails(
    api: Api, receiver: tuple[Receiver, str]
) -> None:
    """EDGEMETA_WEBHOOK_CA_FILE makes the test CA trusted; every failure falls back to ds1."""
    _, url = receiver
    await api.add_profile("wearable")
    for name in ("ds1", "ds2"):
        await api.add_service(name)
    cases = {"good": "/allocate", "big": "/big", "drip": "/drip", "redirect": "/redirect"}
    # An http:// URL on an https port: the exchange fails (plain bytes to a TLS server).
    cases["plain"] = "/allocate"
    for name, path in cases.items():
        base = url.replace("https://", "http://") if name == "plain" else url
        body = enrollment(name, {"url": f"{base}{path}"})
        body["initialState"] = {"profileName": "wearable"}
        r = await api.post("/enrollment", [{"apiVersion": "v3", "enrollment": body}])
        assert r.json()[0]["statusCode"] == 201, r.text
    for name in cases:
        started = time.monotonic()
        r = await register(api, f"{name}-1")
        assert r.status_code == 200, r.text
        expected = "ds2" if name == "good" else "ds1"
        assert r.json()["registration"]["assignedService"] == expected, (name, r.text)
        assert time.monotonic() - started < 2.0, name  # the 0.5 s timeout held


async def test_webhook_requests_are_signed_with_the_enrolment_secret(
    api: Api, receiver: tuple[Receiver, str]
) -> None:
    """The receiver trusts only requests whose X-Edgemeta-Signature verifies with the secret
    the enrolment was given; one with another secret falls back (the receiver refuses it)."""
    rec, url = receiver
    await api.add_profile("wearable")
    for name in ("ds1", "ds2"):
        await api.add_service(name)
    secret = base64.b64encode(b"s" * 32).decode()
    rec.secret = secret
    for name, given in (("right", secret), ("wrong", base64.b64encode(b"w" * 32).decode())):
        body = enrollment(name, {"url": f"{url}/signed", "secret": given})
        body["initialState"] = {"profileName": "wearable"}
        r = await api.post("/enrollment", [{"apiVersion": "v3", "enrollment": body}])
        assert r.json()[0]["statusCode"] == 201, r.text
        # The secret comes back with the keys (on create), never in a plain read.
        assert r.json()[0]["enrollment"]["allocation"]["webhook"]["secret"] == given
        plain = (await api.get(f"/enrollment/name/{name}")).json()["enrollment"]
        assert "secret" not in plain["allocation"]["webhook"]
    r = await register(api, "right-1")
    assert r.json()["registration"]["assignedService"] == "ds2", r.text
    r = await register(api, "wrong-1")
    assert r.json()["registration"]["assignedService"] == "ds1", r.text  # the fallback
    assert len(rec.signatures) == 2 and all(h.startswith("t=") for h in rec.signatures)


def test_signature_checks() -> None:
    secret = base64.b64encode(b"k" * 32).decode()
    header = signatures.sign(secret, b"{}", now=1_000_000)
    assert signatures.verify(secret, header, b"{}", now=1_000_010)
    assert not signatures.verify(secret, header, b"{ }", now=1_000_010)  # another body
    assert not signatures.verify(secret, header, b"{}", now=1_000_400)  # too old: a replay
    other = base64.b64encode(b"o" * 32).decode()
    assert not signatures.verify(other, header, b"{}", now=1_000_010)
    assert not signatures.verify(secret, "garbage", b"{}", now=1_000_010)
