"""HTTP limits on a real ``edgemeta serve`` (issue 15), over raw sockets: a header block past
the size or count limit is a 431 and the connection is closed without the process growing,
a slow sender is cut off after the header or body timeout, and normal requests (keep-alive
included) are unaffected."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.procs import ServeProcess, start

HEADER_TIMEOUT = 1.5
BODY_TIMEOUT = 1.5
KEEPALIVE_TIMEOUT = 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("limits")
    env = {
        "EDGEMETA_HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "EDGEMETA_HTTP_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "EDGEMETA_HTTP_KEEPALIVE_TIMEOUT": str(KEEPALIVE_TIMEOUT),
    }
    p = start(tmp, env=env)
    try:
        p.wait_ready()
        yield p
    finally:
        p.stop()


def connect(p: ServeProcess) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", p.port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_all(s: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    s.settimeout(timeout)
    chunks = []
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def send_quietly(s: socket.socket, data: bytes) -> bool:
    """Send ``data``; False once the server has closed the connection."""
    try:
        s.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def rss(p: ServeProcess) -> int:
    return int(psutil.Process(p.proc.pid).memory_info().rss)


def ping(p: ServeProcess) -> None:
    r = httpx.get(f"{p.url}/ping", timeout=5)
    assert r.status_code == 200


def test_20_mib_of_headers_is_431_and_closed_without_memory_growth(server: ServeProcess) -> None:
    before = rss(server)
    refused: list[bytes] = []

    def attack() -> None:
        s = connect(server)
        with s:
            send_quietly(s, b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\n")
            line = b"X-Filler: " + b"a" * 8180 + b"\r\n"
            for _ in range(20 * 1024 * 1024 // len(line)):
                if not send_quietly(s, line):
                    break
            refused.append(read_all(s))

    threads = [threading.Thread(target=attack) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(refused) == 20
    for answer in refused:
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert b"EDGEMETA_HTTP_MAX_HEADER_BYTES" in answer
        assert b"Connection: close" in answer
    grown = rss(server) - before
    assert grown < 50 * 1024 * 1024, f"the process grew by {grown / 2**20:.0f} MiB"
    ping(server)


def test_one_header_value_of_20_mib_is_refused_too(server: ServeProcess) -> None:
    before = rss(server)
    s = connect(server)
    with s:
        send_quietly(s, b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\nX-Big: ")
        for _ in range(20 * 16):
            if not send_quietly(s, b"b" * 65536):
                break
        answer = read_all(s)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert rss(server) - before < 50 * 1024 * 1024


def test_too_many_header_fields_is_431(server: ServeProcess) -> None:
    s = connect(server)
    with s:
        fields = b"".join(b"X-H%d: v\r\n" % i for i in range(101))
        s.sendall(b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
        answer = read_all(s)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"EDGEMETA_HTTP_MAX_HEADERS" in answer
    # 100 fields (98 and Host and Connection) are fine.
    fields = b"".join(b"X-H%d: v\r\n" % i for i in range(98))
    s = connect(server)
    with s:
        s.sendall(b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + fields[:-10])
        s.sendall(fields[-10:] + b"\r\n")
        assert read_all(s).startswith(b"HTTP/1.1 200 ")


def test_slow_header_senders_are_cut_off_after_the_timeout(server: ServeProcess) -> None:
    sockets = [connect(server) for _ in range(50)]
    started = time.monotonic()
    try:
        for s in sockets:
            s.sendall(b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\n")
        # Keep trickling a header byte now and then: never a complete header block.
        for _ in range(3):
            time.sleep(0.3)
            for s in sockets:
                send_quietly(s, b"X")
        ping(server)  # everyone else is still served meanwhile
        answers = [read_all(s, timeout=HEADER_TIMEOUT + 10) for s in sockets]
    finally:
        for s in sockets:
            s.close()
    took = time.monotonic() - started
    for a in answers:
        assert a.startswith(b"HTTP/1.1 408 "), a[:200]
    assert took < HEADER_TIMEOUT + 5, took
    # A connection that never sends anything is closed too.
    s = connect(server)
    with s:
        assert read_all(s, timeout=HEADER_TIMEOUT + 10).startswith(b"HTTP/1.1 408 ")


def test_a_stalled_body_is_cut_off_after_the_timeout(server: ServeProcess) -> None:
    s = connect(server)
    with s:
        s.sendall(
            b"POST /api/v3/device HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n[{"
        )
        started = time.monotonic()
        answer = read_all(s, timeout=BODY_TIMEOUT + 10)
        took = time.monotonic() - started
    assert BODY_TIMEOUT - 0.5 < took < BODY_TIMEOUT + 5, took
    assert not answer.startswith(b"HTTP/1.1 2"), answer[:200]


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(
    server: ServeProcess,
) -> None:
    s = connect(server)
    with s:
        s.sendall(b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        answer = read_all(s, timeout=KEEPALIVE_TIMEOUT + 10)
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert KEEPALIVE_TIMEOUT - 0.5 < took < KEEPALIVE_TIMEOUT + 5, took


def test_normal_requests_are_unaffected(server: ServeProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        # Keep-alive: many requests on one connection, a body sent in slow chunks, and a
        # pause between requests shorter than the header timeout.
        for _ in range(5):
            assert client.get("/ping").status_code == 200
        time.sleep(HEADER_TIMEOUT + 0.5)
        big = {"X-Big": "v" * 30_000, "Authorization": "Bearer " + "t" * 8000}
        assert client.get("/ping", headers=big).status_code == 200

        def slow() -> Iterator[bytes]:
            body = b'[{"apiVersion": "v3", "service": {"name": "slow-ds", '
            yield body
            time.sleep(BODY_TIMEOUT / 2)
            yield b'"baseAddress": "http://127.0.0.1:1", "adminState": "UNLOCKED"}}]'

        r = client.post(
            "/deviceservice", content=slow(), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 207 and r.json()[0]["statusCode"] == 201, r.text


def test_past_the_connection_limit_requests_are_503(tmp_path: Path) -> None:
    p = start(tmp_path, env={"EDGEMETA_HTTP_MAX_CONNECTIONS": "5"})
    try:
        p.wait_ready()
        idle = [connect(p) for _ in range(4)]
        try:
            time.sleep(0.2)
            s = connect(p)
            with s:
                s.sendall(b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = read_all(s)
            assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
            assert b"EDGEMETA_HTTP_MAX_CONNECTIONS" in answer
        finally:
            for c in idle:
                c.close()
        time.sleep(0.2)
        ping(p)  # below the limit again
    finally:
        p.stop()
