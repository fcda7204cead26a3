"""Every response of every route of a real ``edgemeta serve`` sends canonical header names.

EdgeX's Go services send ``Content-Type``, ``X-Correlation-Id``, ``Date`` ... and EdgeX
clients look them up case-sensitively. ``http.client`` and a raw socket keep the names as
received, so this walks every operation of the OpenAPI document and every core-data route on
one server process and checks every name against Go's canonical form.
"""

from __future__ import annotations

import http.client
import re
import socket
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import orjson
import pytest
import yaml

from edgemeta.api.routes import coredata as data_routes
from tests.e2e.procs import ServeProcess, free_port, start

_METHODS = ("get", "post", "put", "patch", "delete")


def _go_canonical(name: str) -> str:
    """Go's CanonicalMIMEHeaderKey, written independently of edgemeta's."""
    return "-".join(word[:1].upper() + word[1:].lower() for word in name.split("-"))


def _metadata_operations() -> list[tuple[str, str]]:
    spec = yaml.safe_load(
        resources.files("edgemeta.api").joinpath("openapi.yaml").read_text("utf-8")
    )
    return [
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method in ops
        if method in _METHODS
    ]


def _data_operations() -> list[tuple[str, str]]:
    # The routes only close over the context; nothing is called on it while listing them.
    return [
        (method, route.path)
        for route in data_routes.routes(MagicMock())
        for method in sorted(route.methods or ())
        if method != "HEAD"
    ]


def _fill(path: str) -> str:
    # Any value does: unknown names answer 404, which must be canonical too.
    return re.sub(r"\{[^}]+\}", "1", path)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, int]]:
    tmp = tmp_path_factory.mktemp("headers")
    data_port = free_port()
    p = start(tmp, env={"EDGEMETA_DATA_PORT": str(data_port)})
    try:
        p.wait_ready()
        yield p, data_port
    finally:
        p.stop()


def _request(
    port: int, method: str, path: str, body: Any = None
) -> tuple[int, list[tuple[str, str]]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        payload = None if body is None else orjson.dumps(body)
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn.request(method, path, body=payload, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.getheaders()
    finally:
        conn.close()


def _assert_canonical(where: str, status: int, headers: list[tuple[str, str]]) -> None:
    names = [name for name, _ in headers]
    wrong = [n for n in names if n != _go_canonical(n)]
    assert not wrong, f"{where} -> {status}: non-canonical {wrong} in {names}"
    for needed in ("Content-Type", "Date", "X-Correlation-Id"):
        assert needed in names, f"{where} -> {status}: no {needed} in {names}"
    assert "Content-Length" in names or "Transfer-Encoding" in names, (where, names)


def _service(name: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v3",
            "service": {"name": name, "baseAddress": "http://x:1", "adminState": "UNLOCKED"},
        }
    ]


def test_every_operation_answers_canonical_header_names(
    server: tuple[ServeProcess, int],
) -> None:
    p, data_port = server
    # Some records first, so that reads answer 200 bodies and writes answer 201/207 too.
    status, headers = _request(p.port, "POST", "/api/v3/deviceservice", _service("ds"))
    assert status == 207
    _assert_canonical("POST /deviceservice (207)", status, headers)
    seen: set[int] = set()
    for port, operations in ((p.port, _metadata_operations()), (data_port, _data_operations())):
        assert operations
        for method, path in operations:
            if path.endswith("/stream"):
                continue  # below: it never ends
            body = [] if method in ("POST", "PUT", "PATCH") else None
            status, headers = _request(port, method, "/api/v3" + _fill(path), body)
            assert status != 500, (method, path)
            seen.add(status)
            _assert_canonical(f"{method} {path} on {port}", status, headers)
    # Unknown routes, a wrong method, a wrong body: EdgeX's envelope and canonical names.
    for port in (p.port, data_port):
        for method, path, want in (
            ("GET", "/api/v3/nothing/here", 404),
            ("DELETE", "/api/v3/ping", 405),
            ("GET", "/elsewhere", 404),
        ):
            status, headers = _request(port, method, path)
            assert status == want
            _assert_canonical(f"{method} {path} on {port}", status, headers)
    assert {200, 207, 400, 404} <= seen, seen


def test_the_event_stream_answers_canonical_header_names(
    server: tuple[ServeProcess, int],
) -> None:
    p, _ = server
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
    try:
        conn.request("GET", "/api/v3/systemevent/stream")
        resp = conn.getresponse()  # returns at the end of the head; the body never ends
        assert resp.status == 200
        headers = resp.getheaders()
    finally:
        conn.close()
    _assert_canonical("GET /systemevent/stream", resp.status, headers)
    assert ("Transfer-Encoding", "chunked") in headers


def _raw(port: int, request: bytes) -> list[str]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = s.recv(65536)
            if not chunk:
                break
            received += chunk
    head = received.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    return [line.split(":", 1)[0] for line in head[1:]]


def test_uvicorns_own_headers_and_answers_are_canonical_too(
    server: tuple[ServeProcess, int],
) -> None:
    p, _ = server
    # HTTP/1.0 without keep-alive: the server adds a Connection header of its own.
    names = _raw(p.port, b"GET /api/v3/ping HTTP/1.0\r\nHost: x\r\n\r\n")
    assert "Connection" in names and "Date" in names
    assert names == [_go_canonical(n) for n in names], names
    # A request the HTTP parser rejects never reaches the app: uvicorn answers it alone.
    names = _raw(p.port, b"GET /api/v3/ping HTTP/1.1\r\nHost x\r\n\r\n")
    assert "Content-Type" in names, names
    assert names == [_go_canonical(n) for n in names], names


def test_header_case_module_is_what_serve_uses(tmp_path: Path) -> None:
    # The protocol is chosen in the uvicorn config edgemeta serve builds for every port.
    from edgemeta import cli
    from edgemeta.api.http_protocol import CanonicalHttpToolsProtocol
    from edgemeta.settings import Settings

    config = cli._config(MagicMock(), Settings(data_dir=tmp_path), 1)
    # (a subclass of it: edgemeta.api.http_limits adds the header and timeout limits)
    assert isinstance(config.http, type) and issubclass(config.http, CanonicalHttpToolsProtocol)
