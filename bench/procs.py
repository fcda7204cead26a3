"""Processes the runner starts: the servers under test and wrk; and the databases they use."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

PG_BASE = os.environ.get(
    "EDGEMETA_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def request(
    port: int, method: str, path: str, body: bytes | None = None, timeout: float = 60.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# -- servers --------------------------------------------------------------------------------


@dataclass
class Server:
    """One server process, with its start-up time and an RSS sampler."""

    name: str
    argv: list[str]
    port: int
    ready_path: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    startup_s: float = 0.0
    rss_max: int = 0
    _stop_sampler: threading.Event = field(default_factory=threading.Event)

    def start(self, timeout: float = 30.0) -> float:
        """Start; return seconds from spawn to the first 200 on ``ready_path``."""
        out = self.log.open("ab")
        env = {**os.environ, **self.env}
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        out.close()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; see {self.log}"
                )
            try:
                status, _ = request(self.port, "GET", self.ready_path, timeout=1.0)
                if status == 200:
                    break
            except OSError:
                pass
            if time.perf_counter() - t0 > timeout:
                self.stop()
                raise RuntimeError(f"{self.name} did not answer within {timeout}s; see {self.log}")
            time.sleep(0.005)
        self.startup_s = time.perf_counter() - t0
        self._stop_sampler.clear()
        threading.Thread(target=self._sample, daemon=True).start()
        return self.startup_s

    @property
    def ps(self) -> psutil.Process:
        assert self.proc is not None
        return psutil.Process(self.proc.pid)

    def _family(self) -> list[psutil.Process]:
        """The process and its children (``EDGEMETA_WORKERS=N``: the supervisor's workers)."""
        return [self.ps, *self.ps.children(recursive=True)]

    def rss(self) -> int:
        rss = 0
        for p in self._family():
            with contextlib.suppress(psutil.NoSuchProcess):
                rss += p.memory_info().rss
        self.rss_max = max(self.rss_max, rss)
        return rss

    def cpu_s(self) -> float:
        total = 0.0
        for p in self._family():
            with contextlib.suppress(psutil.NoSuchProcess):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def _sample(self) -> None:
        while not self._stop_sampler.wait(0.25):
            with contextlib.suppress(psutil.Error, AssertionError):
                self.rss()

    def settle(self, max_wait: float = 30.0, idle_cpu: float = 0.03) -> None:
        """Wait until the process uses under ``idle_cpu`` of a core over 0.5 s."""
        deadline = time.monotonic() + max_wait
        while time.monotonic() < deadline:
            c0 = self.cpu_s()
            time.sleep(0.5)
            if self.cpu_s() - c0 < idle_cpu * 0.5:
                return

    def stop(self) -> None:
        self._stop_sampler.set()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def app_server(kind: str, log: Path) -> Server:
    port = free_port()
    return Server(
        kind, [sys.executable, "-m", "bench.apps", kind, "--port", str(port)], port, "/", log
    )


def edgemeta_server(
    database_url: str, log: Path, log_level: str = "WARNING", src: Path | None = None
) -> Server:
    """``edgemeta serve`` on a free port; ``src``: run the edgemeta package found there."""
    port = free_port()
    if src is None:
        exe = shutil.which("edgemeta", path=str(Path(sys.executable).parent)) or "edgemeta"
        cmd = [exe]
    else:
        boot = (
            f"import sys; sys.path.insert(0, {str(src)!r}); import edgemeta; "
            f"assert edgemeta.__file__.startswith({str(src)!r}), edgemeta.__file__; "
            "sys.argv[0] = 'edgemeta'; from edgemeta.cli import main; main()"
        )
        cmd = [sys.executable, "-c", boot]
    argv = [
        *cmd,
        "serve",
        "--port",
        str(port),
        "--database-url",
        database_url,
        "--device-validation",
        "never",
        "--log-level",
        log_level,
    ]
    # core-data on a port of its own, so that servers can run side by side (older revisions
    # in an A/B run ignore the variable).
    return Server(
        "edgemeta",
        argv,
        port,
        "/api/v3/ping",
        log,
        env={
            "EDGEMETA_DATA_PORT": str(free_port()),
            "EDGEMETA_KEEPER_PORT": str(free_port()),
            "EDGEMETA_COMMAND_PORT": str(free_port()),
        },
    )


# -- databases ------------------------------------------------------------------------------


class Database:
    """A fresh database for one edgemeta run: an SQLite file or a PostgreSQL schema."""

    def __init__(self, backend: str, tag: str) -> None:
        self.backend = backend
        if backend == "sqlite":
            self.dir = Path(tempfile.mkdtemp(prefix=f"edgemeta-bench-{tag}-"))
            self.url = f"sqlite:///{self.dir / 'edgemeta.db'}"
            self.schema = ""
        elif backend == "postgres":
            self.schema = f"bench_{tag}".lower()
            self.url = f"{PG_BASE}?schema={self.schema}"
        else:
            raise ValueError(backend)

    def _pg(self, sql: str) -> Any:
        import asyncpg

        async def go() -> Any:
            conn = await asyncpg.connect(PG_BASE)
            try:
                return await conn.fetchval(sql)
            finally:
                await conn.close()

        return asyncio.run(go())

    def pending_events(self) -> int:
        """Outbox rows the relay has not delivered yet."""
        sql = "SELECT count(*) FROM {t}outbox WHERE pos IS NULL"
        if self.backend == "sqlite":
            conn = sqlite3.connect(f"file:{self.dir / 'edgemeta.db'}?mode=ro", uri=True)
            try:
                return int(conn.execute(sql.format(t="")).fetchone()[0])
            finally:
                conn.close()
        return int(self._pg(sql.format(t=f'"{self.schema}".')))

    def wait_delivered(self, timeout: float = 120.0) -> float:
        """Wait until the relay has published every event; return the seconds waited."""
        t0 = time.monotonic()
        while self.pending_events() and time.monotonic() - t0 < timeout:
            time.sleep(0.2)
        return time.monotonic() - t0

    def size_bytes(self) -> int:
        if self.backend == "sqlite":
            return sum(p.stat().st_size for p in self.dir.iterdir())
        return int(
            self._pg(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                f" JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{self.schema}'"
                " AND c.relkind = 'r'"
            )
        )

    def server_version(self) -> str:
        if self.backend == "sqlite":
            return sqlite3.sqlite_version
        return str(self._pg("SHOW server_version"))

    def drop(self) -> None:
        if self.backend == "sqlite":
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            self._pg(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


# -- wrk ------------------------------------------------------------------------------------


def _postgres_cpu_s() -> float:
    total = 0.0
    for p in psutil.process_iter(["name", "cpu_times"]):
        if (p.info["name"] or "").startswith("postgres") and p.info["cpu_times"]:
            total += p.info["cpu_times"].user + p.info["cpu_times"].system
    return total


def _busy_s() -> float:
    t = psutil.cpu_times()
    return float(
        sum(t)
        - t.idle
        - getattr(t, "iowait", 0.0)
        - getattr(t, "guest", 0.0)
        - getattr(t, "guest_nice", 0.0)
    )


def wrk(
    port: int,
    script: str,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    timeout: str = "10s",
    workdir: Path,
) -> dict[str, Any]:
    """Run wrk with a Lua script; the numbers its ``done`` hook printed."""
    workdir.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(suffix=".lua", dir=workdir)
    with os.fdopen(fd, "w") as f:
        f.write(script)
    try:
        argv = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            f"--timeout={timeout}",
            "-s",
            path,
            f"http://127.0.0.1:{port}",
        ]
        busy0, pg0 = _busy_s(), _postgres_cpu_s()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        steal0 = getattr(psutil.cpu_times(), "steal", 0.0)
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy, pg = _busy_s() - busy0, _postgres_cpu_s() - pg0
        steal = getattr(psutil.cpu_times(), "steal", 0.0) - steal0
    finally:
        os.unlink(path)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            result: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
            secs = result["duration_us"] / 1e6
            result["rps"] = result["requests"] / secs if secs else 0.0
            result["errors"] = sum(result[k] for k in ("connect", "read", "write", "timeout"))
            wrk_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
            # CPU seconds of the whole machine during the run, and who used them: the server
            # is added by the caller; "other" is then what neither wrk, the server nor
            # PostgreSQL used (other people's work on a shared machine).
            result["machine_busy_s"] = round(busy, 3)
            result["wrk_cpu_s"] = round(wrk_cpu, 3)
            result["postgres_cpu_s"] = round(pg, 3)
            result["steal_s"] = round(steal, 3)
            return result
    raise RuntimeError(f"wrk gave no result: {out.stdout}\n{out.stderr}")
