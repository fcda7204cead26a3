"""Private broker processes that a test may stop and restart (the machine's shared Mosquitto
and NATS are never touched): a real Mosquitto or nats-server on a free port."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_port(port: int, up: bool, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not come {'up' if up else 'down'}")


class PrivateBroker:
    """A broker process on its own port; ``stop()`` and ``start()`` at will."""

    def __init__(self, kind: str, workdir: Path, *, persistent: bool = False) -> None:
        self.kind = kind
        self.port = _free_port()
        self.workdir = workdir
        # Mosquitto only: keep persistent sessions (subscriptions and queued QoS 1 messages)
        # across a restart. nats-server always keeps JetStream in its -sd directory.
        self.persistent = persistent
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'mqtt' if self.kind == 'mqtt' else 'nats'}://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        if self.kind == "mqtt":
            conf = self.workdir / "mosquitto.conf"
            lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true"]
            if self.persistent:
                store = self.workdir / "mosquitto-data"
                store.mkdir(exist_ok=True)
                # Run as root, Mosquitto drops to its own user, which may not write here.
                lines += [
                    f"user {getpass.getuser()}",
                    "persistence true",
                    f"persistence_location {store}/",
                ]
            else:
                lines.append("persistence false")
            # A subscriber that is away or slow must not lose what is queued for it: the
            # default keeps 1000 messages per client and drops the rest.
            lines += ["max_queued_messages 0", "max_queued_bytes 0"]
            # Without it each small packet may wait ~40 ms for the peer's delayed ACK (Nagle):
            # a move's five QoS 1 hops in a row took 3-4x longer (see docs/moves.md).
            lines.append("set_tcp_nodelay true")
            conf.write_text("\n".join(lines) + "\n")
            return ["mosquitto", "-c", str(conf)]
        store = self.workdir / "jetstream"
        store.mkdir(exist_ok=True)
        return ["nats-server", "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(store)]

    def start(self) -> None:
        log = (self.workdir / f"{self.kind}.log").open("ab")
        self.proc = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT)
        _wait_port(self.port, up=True)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:  # a loaded machine (tests run in parallel) may take a while to stop it
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None
        _wait_port(self.port, up=False)


@contextmanager
def private_broker(
    kind: str, workdir: Path, *, persistent: bool = False
) -> Iterator[PrivateBroker]:
    """A private broker of ``kind`` ("mqtt" or "nats"), skipped if the binary is missing
    (and failed under CI, where the machine must have it). ``persistent``: Mosquitto keeps
    persistent sessions across ``stop()``/``start()``."""
    binary = "mosquitto" if kind == "mqtt" else "nats-server"
    if shutil.which(binary) is None:
        import os

        if os.environ.get("CI"):
            pytest.fail(f"{binary} is not installed; CI needs it")
        pytest.skip(f"{binary} is not installed")
    broker = PrivateBroker(kind, workdir, persistent=persistent)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
