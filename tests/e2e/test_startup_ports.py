"""Start-up and its ports, as a new user meets them (issue 17 item 7): the "listening" line is
logged once the ports are bound (so it is true), and a port in use refuses to start with a
message naming the port and the setting that changes it, before anything else is opened."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.procs import start


@pytest.fixture
def occupied() -> Iterator[int]:
    """A port another program listens on, for the duration of the test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_port_in_use_names_the_port_and_how_to_change_it(tmp_path: Path, occupied: int) -> None:
    proc = start(tmp_path, "--host", "127.0.0.1", "--port", str(occupied))
    assert proc.proc.wait(30) == 2
    log = proc.log()
    assert "listening" not in log
    assert f"core-metadata port {occupied} on 127.0.0.1 is already in use" in log
    assert "--port or EDGEMETA_PORT" in log
    assert "Traceback" not in log
    # Refused before the database was opened: no SQLite file was made.
    assert not list((tmp_path / "data").glob("*.db"))


def test_the_other_ports_name_their_own_settings(tmp_path: Path, occupied: int) -> None:
    # core-data's port (core-keeper's is the same code, with --keeper-port/EDGEMETA_KEEPER_PORT)
    variable, flag = "EDGEMETA_DATA_PORT", "--data-port"
    proc = start(tmp_path, env={variable: str(occupied)})
    assert proc.proc.wait(30) == 2
    log = proc.log()
    assert f"port {occupied} on 127.0.0.1 is already in use" in log
    assert f"{flag} or {variable}" in log
    assert "listening" not in log


def test_the_listening_line_comes_after_the_bind(tmp_path: Path) -> None:
    # Port 0 (the last --port wins): the system chooses, and the line names the port bound.
    proc = start(tmp_path, "--port", "0")
    try:
        port = ""
        deadline = time.monotonic() + 15
        while not port and time.monotonic() < deadline:
            assert proc.proc.poll() is None, proc.log()
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)/api/v3", proc.log())
            if match:
                port = match.group(1)
            else:
                time.sleep(0.01)
        assert port and port != "0", proc.log()
        # The moment the line is there, the port answers: it was bound before it was logged.
        r = httpx.get(f"http://127.0.0.1:{port}/api/v3/health/live", timeout=5)
        assert r.status_code == 200 and r.json()["status"] == "alive"
    finally:
        assert proc.stop() == 0
