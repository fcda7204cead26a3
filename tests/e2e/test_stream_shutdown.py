"""The event stream on a real ``edgemeta serve``: a raw ``+`` in a filter is the MQTT wildcard
(docs/events.md's example works as written), and SIGTERM or Ctrl-C stops the service while a
client holds a stream open, after the stream has sent what was delivered."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.procs import ServeProcess, start


def _open_stream(p: ServeProcess, raw_query: str) -> socket.socket:
    """A stream request written by hand, so the query goes out exactly as curl sends it."""
    sock = socket.create_connection(("127.0.0.1", p.port), timeout=10)
    sock.sendall(
        f"GET /api/v3/systemevent/stream?{raw_query} HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    return sock


def _read_until(sock: socket.socket, needle: bytes, timeout: float = 10.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _add_service(p: ServeProcess, name: str) -> None:
    r = httpx.post(
        f"{p.url}/deviceservice",
        json=[
            {
                "apiVersion": "v3",
                "service": {"name": name, "baseAddress": "http://x:1", "adminState": "UNLOCKED"},
            }
        ],
    )
    assert r.json()[0]["statusCode"] == 201, r.text


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_with_an_open_stream_ends_the_stream_and_the_process(
    tmp_path: Path, sig: signal.Signals
) -> None:
    p = start(tmp_path)
    try:
        p.wait_ready()
        # docs/events.md's filter, with raw + wildcards and an encoded #
        sock = _open_stream(p, "topic=edgex/system-events/core-metadata/+/add/%23")
        head = _read_until(sock, b": edgemeta system events")
        assert b" 200 " in head.split(b"\r\n", 1)[0], head
        _add_service(p, "ds-before-stop")
        got = _read_until(sock, b"ds-before-stop")
        assert b"event: systemevent" in got and b"ds-before-stop" in got, got
        stopping = time.monotonic()
        p.proc.send_signal(sig)
        rest = b""
        sock.settimeout(15)
        while chunk := sock.recv(65536):
            rest += chunk
        # The response ends properly (the chunked body's last chunk), not by a reset.
        assert rest.endswith(b"0\r\n\r\n"), rest[-200:]
        code = p.proc.wait(15)
        took = time.monotonic() - stopping
    finally:
        p.stop(signal.SIGKILL)
    assert code == 0, p.log()
    assert took < 10, f"stopping took {took:.1f}s"
    assert "Traceback" not in p.log(), p.log()
    assert "edgemeta stopped" in p.log()


def test_a_space_inside_a_level_still_decodes_as_a_space(tmp_path: Path) -> None:
    # httpx and other form encoders send a space as +: inside a level it stays a space, so
    # such a filter is valid (it matches nothing here), while a whole-level + is a wildcard.
    p = start(tmp_path)
    try:
        p.wait_ready()
        with httpx.stream(
            "GET",
            f"{p.url}/systemevent/stream",
            params={"topic": "edgex/system-events/core-metadata/deviceservice/add/my svc"},
            timeout=5,
        ) as r:
            assert r.status_code == 200
        bad = httpx.get(f"{p.url}/systemevent/stream?topic=a/%23/b", timeout=5)
        assert bad.status_code == 400
    finally:
        assert p.stop(signal.SIGTERM) == 0, p.log()
