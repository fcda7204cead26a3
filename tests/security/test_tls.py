"""TLS and mutual TLS on both HTTP ports of a real ``edgemeta serve``, with real handshakes.

A CA, a server certificate (SAN 127.0.0.1 and localhost) and client certificates are made
with ``cryptography`` for each module; a second CA issues a client certificate the server
must refuse.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgemeta.api.http_protocol import CanonicalHttpToolsProtocol
from edgemeta.security.tls import TlsConfigError, files, server_context
from tests.e2e.procs import ServeProcess, free_port, start
from tests.support.api import serve_http
from tests.support.pki import Issued, Pki

# A handshake (or the first read after it, in TLS 1.3) refused: never a timeout, never a
# response.
REFUSED = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)


def client_ctx(pki: Pki, cert: Issued | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca.cert_file))
    if cert is not None:
        ctx.load_cert_chain(cert.cert, cert.key)
    return ctx


def wait_ready(p: ServeProcess, base: str, ctx: ssl.SSLContext, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.proc.poll() is not None:
            raise RuntimeError(f"edgemeta exited with {p.proc.returncode}:\n{p.log()}")
        try:
            if httpx.get(f"{base}/ping", verify=ctx, timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"edgemeta did not answer over TLS within {timeout}s:\n{p.log()}")


def serve_tls(tmp_path: Path, pki: Pki, **env: str) -> tuple[ServeProcess, int]:
    data_port = free_port()
    p = start(
        tmp_path,
        env={
            "EDGEMETA_TLS_CERT_FILE": str(pki.server.cert),
            "EDGEMETA_TLS_KEY_FILE": str(pki.server.key),
            "EDGEMETA_DATA_PORT": str(data_port),
            **env,
        },
    )
    return p, data_port


def test_https_on_both_ports(tmp_path: Path, pki: Pki) -> None:
    p, data_port = serve_tls(tmp_path, pki)
    ctx = client_ctx(pki)
    try:
        wait_ready(p, f"https://127.0.0.1:{p.port}/api/v3", ctx)
        for port in (p.port, data_port):
            for host in ("127.0.0.1", "localhost"):
                r = httpx.get(f"https://{host}:{port}/api/v3/ping", verify=ctx)
                assert r.status_code == 200, r.text
                assert r.json()["apiVersion"] == "v3"
                raw_names = {name for name, _ in r.headers.raw}
                assert b"Content-Type" in raw_names and b"X-Correlation-Id" in raw_names, raw_names
            # Plain HTTP to the TLS port gets no answer, and neither does a client that does not
            # trust edgemeta's CA (the system CAs do not know it).
            with pytest.raises(REFUSED):
                httpx.get(f"http://127.0.0.1:{port}/api/v3/ping", timeout=5)
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                httpx.get(f"https://127.0.0.1:{port}/api/v3/ping", timeout=5)
        # A streamed answer (the system-event stream) through the TLS transport: a device
        # service added while it is open arrives on it.
        with httpx.Client(verify=ctx, timeout=10) as client:
            base = f"https://127.0.0.1:{p.port}/api/v3"
            with client.stream("GET", f"{base}/systemevent/stream") as stream:
                assert stream.status_code == 200
                assert b"Content-Type" in {name for name, _ in stream.headers.raw}
                added = client.post(
                    f"{base}/deviceservice",
                    json=[
                        {
                            "apiVersion": "v3",
                            "service": {
                                "name": "ds-tls",
                                "baseAddress": "http://x:1",
                                "adminState": "UNLOCKED",
                            },
                        }
                    ],
                )
                assert added.json()[0]["statusCode"] == 201
                seen = ""
                for text in stream.iter_text():
                    seen += text
                    if "ds-tls" in seen:
                        break
                assert "ds-tls" in seen
        # A client certificate is not asked for (no client CA): the server never requests one.
        with httpx.Client(verify=client_ctx(pki, pki.stranger)) as client:
            assert client.get(f"https://127.0.0.1:{p.port}/api/v3/ping").status_code == 200
    finally:
        code = p.stop()
    assert code == 0, p.log()
    log = p.log()
    assert f"listening on https://127.0.0.1:{p.port}/api/v3" in log, log
    assert f"core-data on https://127.0.0.1:{data_port}/api/v3" in log, log
    assert ", TLS on" in log, log


def test_mutual_tls_requires_a_certificate_from_the_client_ca(tmp_path: Path, pki: Pki) -> None:
    p, data_port = serve_tls(
        tmp_path,
        pki,
        EDGEMETA_TLS_CLIENT_CA_FILE=str(pki.ca.cert_file),
        EDGEMETA_AUTH="on",
    )
    good = client_ctx(pki, pki.client)
    try:
        wait_ready(p, f"https://127.0.0.1:{p.port}/api/v3", good)
        for port in (p.port, data_port):
            url = f"https://127.0.0.1:{port}/api/v3/ping"
            with pytest.raises(REFUSED):
                httpx.get(url, verify=client_ctx(pki), timeout=5)
            with pytest.raises(REFUSED):
                httpx.get(url, verify=client_ctx(pki, pki.stranger), timeout=5)
            # Over TLS 1.2 the refusal is visibly in the handshake itself (in TLS 1.3 the
            # client finishes first and the server drops the connection before any answer).
            tls12 = client_ctx(pki)
            tls12.maximum_version = ssl.TLSVersion.TLSv1_2
            with pytest.raises(httpx.ConnectError):
                httpx.get(url, verify=tls12, timeout=5)
            r = httpx.get(url, verify=good)
            assert r.status_code == 200
            assert b"Content-Type" in {name for name, _ in r.headers.raw}
        # The verified subject reaches the app: the auth gate's refusal names it.
        r = httpx.get(f"https://127.0.0.1:{p.port}/api/v3/device/all", verify=good)
        assert r.status_code == 401
    finally:
        code = p.stop()
    assert code == 0, p.log()
    log = p.log()
    assert f"listening on https://127.0.0.1:{p.port}/api/v3" in log
    assert f"mutual TLS (client certificates from {pki.ca.cert_file})" in log
    assert f"to TLS client {pki.client.subject}" in log, log
    assert pki.client.subject == "CN=ds-virtual,O=edgemeta tests"


def run_serve(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("EDGEMETA_")}
    full.update(env, EDGEMETA_DATA_DIR=str(tmp_path / "data"))
    return subprocess.run(
        [sys.executable, "-m", "edgemeta", "serve", "--port", str(free_port())],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "case",
    ["cert-without-key", "key-without-cert", "unreadable-cert", "ca-without-cert", "wrong-key"],
)
def test_bad_tls_settings_refuse_to_start(tmp_path: Path, pki: Pki, case: str) -> None:
    cert, key = str(pki.server.cert), str(pki.server.key)
    env, expected = {
        "cert-without-key": (
            {"EDGEMETA_TLS_CERT_FILE": cert},
            "EDGEMETA_TLS_CERT_FILE is set but EDGEMETA_TLS_KEY_FILE is not",
        ),
        "key-without-cert": (
            {"EDGEMETA_TLS_KEY_FILE": key},
            "EDGEMETA_TLS_KEY_FILE is set but EDGEMETA_TLS_CERT_FILE is not",
        ),
        "unreadable-cert": (
            {"EDGEMETA_TLS_CERT_FILE": str(tmp_path / "nope.pem"), "EDGEMETA_TLS_KEY_FILE": key},
            f"EDGEMETA_TLS_CERT_FILE {tmp_path / 'nope.pem'}: cannot read it",
        ),
        "ca-without-cert": (
            {"EDGEMETA_TLS_CLIENT_CA_FILE": str(pki.ca.cert_file)},
            "EDGEMETA_TLS_CLIENT_CA_FILE needs EDGEMETA_TLS_CERT_FILE and EDGEMETA_TLS_KEY_FILE",
        ),
        "wrong-key": (
            {"EDGEMETA_TLS_CERT_FILE": cert, "EDGEMETA_TLS_KEY_FILE": str(pki.client.key)},
            "not a usable PEM certificate chain and matching unencrypted private key",
        ),
    }[case]
    done = run_serve(tmp_path, env)
    assert done.returncode == 2, done.stderr
    assert "edgemeta: cannot start:" in done.stderr and expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    # Refused before anything was opened: no database file was made.
    assert not (tmp_path / "data" / "edgemeta.db").exists()


def test_server_context_floor_and_client_verification(pki: Pki) -> None:
    ctx = server_context(files(pki.server.cert, pki.server.key, pki.ca.cert_file) or _never())
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    plain = server_context(files(pki.server.cert, pki.server.key, None) or _never())
    assert plain.verify_mode == ssl.CERT_NONE
    assert files(None, None, None) is None
    with pytest.raises(TlsConfigError, match="not PEM CA certificates"):
        server_context(files(pki.server.cert, pki.server.key, pki.server.key) or _never())


def _never() -> Any:
    raise AssertionError("TLS files expected")


def _subject_of(der: bytes) -> str:
    from cryptography import x509

    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


@contextlib.asynccontextmanager
async def echo_server(ctx: ssl.SSLContext | None) -> AsyncIterator[str]:
    """An ASGI app behind edgemeta's protocol class, answering with its TLS extension
    (over plain HTTP when ``ctx`` is None)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        import json

        tls = (scope.get("extensions") or {}).get("tls")
        if tls is not None:  # the certificate itself (DER) as its subject, to compare
            der = tls.get("client_certificate")
            tls = {**tls, "client_certificate": _subject_of(der) if der else None}
        body = json.dumps(tls).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    async with serve_http(app, tls=ctx, http=CanonicalHttpToolsProtocol) as url:
        yield url


async def test_the_verified_client_subject_is_in_the_scope(pki: Pki) -> None:
    mutual = server_context(files(pki.server.cert, pki.server.key, pki.ca.cert_file) or _never())
    async with (
        echo_server(mutual) as url,
        httpx.AsyncClient(verify=client_ctx(pki, pki.client)) as client,
    ):
        for _ in range(2):  # a second request on the same connection carries it too
            r = await client.get(url)
            subject = "CN=ds-virtual,O=edgemeta tests"
            assert r.json() == {"client_subject": subject, "client_certificate": subject}
    one_way = server_context(files(pki.server.cert, pki.server.key, None) or _never())
    async with (
        echo_server(one_way) as url,
        httpx.AsyncClient(verify=client_ctx(pki, pki.client)) as client,
    ):
        assert (await client.get(url)).json() is None  # no client CA: none asked for
    async with echo_server(None) as url, httpx.AsyncClient() as client:
        assert (await client.get(url)).json() is None  # plain HTTP: no TLS extension
