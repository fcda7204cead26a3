"""``edgemeta serve --workers 2``: a real supervisor and two API processes on one port, on
SQLite and PostgreSQL, publishing to a private Mosquitto.

Writes go through fresh connections (the kernel spreads them over the workers); every
committed event must reach the subscriber exactly once (one relay leader: two publishers
would send each event twice), and after the leader is killed with SIGKILL another worker's
relay (or the supervisor's replacement of it) delivers what follows.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.procs import ServeProcess
from tests.e2e.wire import (
    LiveMqtt,
    postgres_outbox,
    running,
    service_doc,
    serving,
    sqlite_outbox,
)
from tests.support import servers
from tests.support.brokers import PrivateBroker, private_broker
from tests.support.schema import drop_schema

pytestmark = [pytest.mark.slow, pytest.mark.mqtt]
PREFIX = "edgex"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    (tmp_path / "broker").mkdir()
    with private_broker("mqtt", tmp_path / "broker") as b:
        yield b


def workers_of(p: ServeProcess) -> list[psutil.Process]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    return [
        c
        for c in psutil.Process(p.proc.pid).children()
        if any("spawn_main" in part for part in c.cmdline())
    ]


def sqlite_leader(lock_file: Path) -> int:
    """The pid holding the relay's flock (from /proc/locks)."""
    inode = os.stat(lock_file).st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "FLOCK" in fields and fields[5].split(":")[-1] == str(inode):
            return int(fields[4])
    raise AssertionError("nobody holds the relay lock")


def files(directory: Path, pattern: str) -> list[Path]:
    """The multi-process metric files matching ``pattern`` (``counter_<pid>.db``, ...)."""
    return list(directory.glob(pattern))


def is_dir(path: Path) -> bool:
    """Whether the directory is (still) there."""
    return path.is_dir()


async def add_services(url: str, names: list[str]) -> None:
    """One service per request, each on a new connection (so both workers get some)."""

    async def one(name: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            r = await http.post(
                "/deviceservice", json=[{"apiVersion": "v3", "service": service_doc(name)}]
            )
            assert r.status_code == 207 and r.json()[0]["statusCode"] == 201, r.text

    await asyncio.gather(*(one(n) for n in names))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_two_workers_one_relay(backend: str, broker: PrivateBroker, tmp_path: Path) -> None:
    args = ["--workers", "2", "--bus-url", broker.url, "--device-validation", "never"]
    schema = ""
    if backend == "postgres":
        servers.require(servers.POSTGRES_URL, "PostgreSQL")
        schema = servers.unique("workers")
        args += ["--database-url", f"{servers.POSTGRES_URL}?schema={schema}"]
    db = tmp_path / "data" / "edgemeta.db"

    async def outbox() -> list[str]:
        rows = (
            sqlite_outbox(db) if not schema else await postgres_outbox(servers.POSTGRES_URL, schema)
        )
        return [e.event_id for e in rows]

    try:
        async with running(LiveMqtt(broker.url, [f"{PREFIX}/system-events/#"])) as sub:
            with serving(tmp_path, *args) as p:
                assert len(workers_of(p)) == 2
                # The supervisor's multi-process metrics directory, as the workers inherit it.
                metrics_dir = Path(workers_of(p)[0].environ()["PROMETHEUS_MULTIPROC_DIR"])
                assert is_dir(metrics_dir)
                await add_services(p.url, [f"svc-a{i}" for i in range(30)])
                stored = await outbox()
                assert len(stored) == 30
                got = await sub.wait_unique(30)
                await sub.quiet(0.3)
                # Exactly once: a second publisher would have sent every event twice.
                assert sorted(m.event_id for m in sub.snapshot()) == sorted(stored)
                assert {m.event_id for m in got} == set(stored)

                before = {w.pid for w in workers_of(p)}
                victim = (
                    sqlite_leader(Path(f"{db}.outbox-relay.lock")) if not schema else min(before)
                )
                assert victim in before
                os.kill(victim, signal.SIGKILL)
                await add_services(p.url, [f"svc-b{i}" for i in range(20)])
                await sub.wait_unique(50, within=30)
                assert {m.event_id for m in sub.unique()} == set(await outbox())
                # The supervisor replaced the killed worker.
                for _ in range(200):
                    now = {w.pid for w in workers_of(p)}
                    if len(now) == 2 and victim not in now:
                        break
                    await asyncio.sleep(0.05)
                assert len(now) == 2 and victim not in now
                # Reaped: the killed worker's live gauges (moves in flight, bus connected)
                # are no longer summed into the scrapes; its counters stay.
                assert not files(metrics_dir, f"gauge_live*_{victim}.db")
                assert files(metrics_dir, f"counter_{victim}.db")
            assert p.proc.returncode == 0
            assert not is_dir(metrics_dir)  # removed when the supervisor stopped
    finally:
        if schema:
            await drop_schema(schema)
