"""Database and disk failures answer a clear 503 or 507, never 500, and change nothing
(issue 15): a private PostgreSQL stopped under load and started again, and SQLite on a disk
that fills up."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from edgemeta.bootstrap import Service, build
from edgemeta.domain.errors import InsufficientStorage, ServerError, ServiceUnavailable
from edgemeta.settings import Settings
from edgemeta.store import postgres, sqlite
from tests.support.api import Api
from tests.support.private_pg import private_postgres


def device(name: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "serviceName": "ds",
        "profileName": "prof",
        "adminState": "UNLOCKED",
        "operatingState": "UP",
        "protocols": {"other": {"Address": name}},
    }
    body.update(extra)
    return {"apiVersion": "v3", "device": body}


@contextlib.asynccontextmanager
async def client_for(service: Service) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://e", timeout=60) as c:
        yield Api(c, service)


async def stored_names(api: Api) -> set[str]:
    """Every stored device's name (page by page: a list returns at most 1024)."""
    names: set[str] = set()
    while True:
        r = await api.get("/device/all", offset=len(names), limit=1000)
        assert r.status_code == 200, r.text
        page = r.json()
        names |= {d["name"] for d in page["devices"]}
        if not page["devices"] or len(names) >= page["totalCount"]:
            return names


# -- the mapping itself ----------------------------------------------------------------------


def test_postgres_failures_map_to_503_and_507_without_internals() -> None:
    refused = postgres.failure(ConnectionRefusedError(111, "Connect call failed ('h', 5432)"))
    assert isinstance(refused, ServiceUnavailable)
    assert refused.message == "database unavailable: PostgreSQL refused the connection"
    lost = postgres.failure(asyncpg.ConnectionDoesNotExistError("closed in the middle"))
    assert isinstance(lost, ServiceUnavailable) and "was lost" in lost.message
    detached = postgres.failure(asyncpg.InterfaceError("released back to the pool"))
    assert isinstance(detached, ServiceUnavailable)
    shutdown = postgres.failure(asyncpg.AdminShutdownError("terminating connection"))
    assert isinstance(shutdown, ServiceUnavailable) and "shutting down" in shutdown.message
    full = postgres.failure(asyncpg.DiskFullError("could not extend file"))
    assert isinstance(full, InsufficientStorage)
    assert full.message == "insufficient storage: the disk holding the database is full"
    assert isinstance(postgres.failure(asyncpg.UndefinedTableError("no table")), ServerError)


def test_sqlite_failures_map_to_503_and_507() -> None:
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    assert isinstance(sqlite.failure(full), InsufficientStorage)
    nospace = OSError(errno.ENOSPC, "No space left on device")
    assert sqlite.failure(nospace).message == sqlite.DISK_FULL
    ioerr = sqlite3.OperationalError("disk I/O error")
    ioerr.sqlite_errorcode = sqlite3.SQLITE_IOERR_WRITE  # type: ignore[attr-defined]
    assert isinstance(sqlite.failure(ioerr), ServiceUnavailable)


# -- PostgreSQL stopped under load -----------------------------------------------------------


async def test_postgres_stopped_under_load_answers_503_never_500_and_recovers() -> None:
    """20 writers add devices (single adds and 3-device batches, one transaction each) while
    the private PostgreSQL is stopped at once (``pg_ctl -m immediate``) and started again."""
    pg = private_postgres()
    try:
        service = await build(Settings(database_url=pg.url, device_validation="never"))
        try:
            async with client_for(service) as api:
                await api.add_service("ds")
                await api.add_profile("prof")
                await _outage_under_load(api, pg)
        finally:
            await service.store.close()
    finally:
        pg.destroy()


async def _outage_under_load(api: Api, pg: Any) -> None:
    answered: dict[str, int] = {}  # device name -> the status its add was answered
    messages: set[str] = set()
    stop = asyncio.Event()

    async def writer(w: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            names = [f"w{w}-{i}-{k}" for k in range(3 if w % 2 else 1)]
            r = await api.post("/device", [device(n) for n in names])
            if r.status_code == 207:
                for n, item in zip(names, r.json(), strict=True):
                    answered[n] = item["statusCode"]
                    messages.add(item.get("message", ""))
            else:
                messages.add(r.json()["message"])
                for n in names:
                    answered[n] = r.status_code
            await asyncio.sleep(0.002)

    writers = [asyncio.create_task(writer(w)) for w in range(20)]
    try:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(pg.stop, "immediate")
        await asyncio.sleep(2.0)
        await asyncio.to_thread(pg.start)
        await asyncio.sleep(2.0)
    finally:
        stop.set()
        await asyncio.gather(*writers)

    statuses = set(answered.values())
    assert statuses <= {201, 503}, f"unexpected statuses {statuses - {201, 503}}: {messages}"
    refused = {n for n, s in answered.items() if s == 503}
    accepted = {n for n, s in answered.items() if s == 201}
    assert refused, "the outage was never noticed"
    assert accepted, "nothing was accepted"
    assert not any("[Errno" in m or "asyncpg" in m for m in messages), messages
    # A 503 changed nothing; every 201 is stored.
    assert await stored_names(api) == accepted
    # Writes work again after the restart.
    r = await api.add_device("after-restart")
    assert r.status_code == 207 and r.json()[0]["statusCode"] == 201


# -- SQLite on a full disk -------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(base: Path) -> Any:
    """A 4 MiB tmpfs at ``base/disk`` (root only); None where it cannot be mounted."""
    mnt = base / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        yield None
        return
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        yield None
        return
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(where: Path) -> Path:
    """Fill the filesystem at ``where`` with one file; returns it."""
    filler = where / "filler"
    with filler.open("wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    return filler


async def test_sqlite_on_a_full_disk_answers_507_and_writes_resume(tmp_path: Path) -> None:
    """On a real full disk: a 4 MiB tmpfs when the test may mount one (root), filled up by
    a file. Without root the full disk is simulated with SQLite's ``PRAGMA max_page_count``
    (the same SQLITE_FULL error); the test says which in its output."""
    with small_disk(tmp_path) as mnt:
        db = (mnt or tmp_path) / "edgemeta.db"
        service = await build(Settings(database_url=f"sqlite:///{db}", device_validation="never"))
        store = service.store
        assert isinstance(store, sqlite.SqliteStore)
        try:
            async with client_for(service) as api:
                await api.add_service("ds")
                await api.add_profile("prof")
                assert (await api.add_device("before")).json()[0]["statusCode"] == 201
                if mnt is not None:
                    print("full disk: a 4 MiB tmpfs, filled")
                    filler = _fill(mnt)
                else:
                    print("full disk: simulated with PRAGMA max_page_count")
                    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
                    store.conn.execute(f"PRAGMA max_page_count={pages}")
                big = {"labels": [f"label-{i:04d}-" + "x" * 200 for i in range(100)]}
                answers: list[httpx.Response] = []
                for i in range(200):
                    r = await api.post("/device", [device(f"big-{i}", **big)])
                    answers.append(r)
                    if r.status_code != 207 or r.json()[0]["statusCode"] != 201:
                        break
                last = answers[-1]
                status = last.json()[0] if last.status_code == 207 else last.json()
                assert status["statusCode"] == 507, last.text
                assert status["message"] == (
                    "insufficient storage: the disk holding the database is full"
                )
                accepted = {f"big-{i}" for i in range(len(answers) - 1)}
                assert await stored_names(api) == {"before"} | accepted
                # Space comes back: writes resume, and the database is intact.
                if mnt is not None:
                    filler.unlink()
                else:
                    store.conn.execute("PRAGMA max_page_count=1073741823")
                r = await api.add_device("after")
                assert r.status_code == 207 and r.json()[0]["statusCode"] == 201, r.text
                assert "after" in await stored_names(api)
                assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            await store.close()
