"""Start ``edgemeta serve`` as a real process for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ServeProcess:
    """A running ``edgemeta serve``."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    started: float = field(default_factory=time.monotonic)
    keeper_port: int = 0

    @property
    def keeper_url(self) -> str:
        return f"http://127.0.0.1:{self.keeper_port}/api/v3"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v3"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 40.0) -> float:
        """Wait until /ping answers; returns seconds from process start to first answer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"edgemeta exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/ping", timeout=0.5).status_code == 200:
                    return time.monotonic() - self.started
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"edgemeta did not answer within {timeout}s:\n{self.log()}")

    def wait_keeper_ready(self, timeout: float = 40.0) -> None:
        """Wait until the core-keeper port's /ping answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"edgemeta exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.keeper_url}/ping", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"core-keeper did not answer within {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``sig`` and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> ServeProcess:
    """Start ``edgemeta serve`` on a free port with ``args``; logs go to a file."""
    port = free_port()
    log_path = tmp_path / f"serve-{port}.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEMETA_")}
    full_env.update(env or {})
    full_env.setdefault("EDGEMETA_DATA_DIR", str(tmp_path / "data"))
    # core-data listens too: on a port of its own, so that processes can run side by side.
    full_env.setdefault("EDGEMETA_DATA_PORT", str(free_port()))
    full_env.setdefault("EDGEMETA_KEEPER_PORT", str(free_port()))
    full_env.setdefault("EDGEMETA_COMMAND_PORT", str(free_port()))
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgemeta", "serve", "--port", str(port), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
    return ServeProcess(proc, port, log_path, keeper_port=int(full_env["EDGEMETA_KEEPER_PORT"]))


_REPO = Path(__file__).resolve().parents[2]


@dataclass
class VirtualService:
    """The example virtual device service, run as ``python -m examples.virtual_device_service``."""

    port: int  # its REST endpoint on 127.0.0.1
    proc: subprocess.Popen[bytes]
    log: Path


@contextlib.contextmanager
def virtual_device_service(
    url: str, bus_url: str, prefix: str, log: Path
) -> Iterator[VirtualService]:
    """Start the example against edgemeta's API ``url`` and wait until it answers a read on its
    REST port (the test fails with its log otherwise); SIGTERM it on the way out."""
    import pytest  # only tests use this module

    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "examples.virtual_device_service", "--url", url,
             "--bus-url", bus_url, "--prefix", prefix, "--http-port", str(port)],
            cwd=_REPO, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        values = f"http://127.0.0.1:{port}/api/v3/device/name/virtual-thermostat/values"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(values, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        else:
            pytest.fail(log.read_text())
        yield VirtualService(port, proc, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
