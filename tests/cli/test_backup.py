"""``edgemeta backup FILE``: an online, consistent copy of a running service's SQLite file
(SQLite's backup API), never overwriting, and a clear refusal for PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from edgemeta.cli import app
from edgemeta.store import open_store
from edgemeta.store.migrations import migrations
from tests.support.api import Api, make_service


def assert_standalone(copy: Path) -> None:
    """One complete file, no WAL beside it, no partial copy left."""
    assert copy.is_file()
    assert not Path(f"{copy}-wal").exists()
    assert not list(copy.parent.glob(".*partial"))
    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


async def test_backup_of_a_live_database_holds_every_committed_write(tmp_path: Any) -> None:
    service, _ = await make_service("sqlite", tmp_path)
    url = f"sqlite:///{tmp_path / 'api.db'}"
    copy = tmp_path / "backups" / "edgemeta-1.db"
    copy.parent.mkdir()
    runner = CliRunner()
    try:
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://e") as client:
            api = Api(client, service)
            await api.add_service("ds")
            await api.add_profile("prof")
            for i in range(20):
                r = await api.add_device(f"d{i}")
                assert r.json()[0]["statusCode"] == 201, r.text
            # The service is running and its writes may sit in the WAL, not the main file.
            result = runner.invoke(app, ["backup", str(copy), "--database-url", url])
            assert result.exit_code == 0, result.output
            assert f"schema at migration {len(migrations('sqlite'))}" in result.output
            # Writes after the copy are not in it.
            await api.add_device("after")
    finally:
        await service.store.close()
    assert_standalone(copy)
    restored = await open_store(f"sqlite:///{copy}")
    try:
        async with restored.read() as tx:
            assert await tx.services.get("ds") is not None
            assert await tx.devices.get("d19") is not None
            assert await tx.devices.get("after") is None
    finally:
        await restored.close()

    again = runner.invoke(app, ["backup", str(copy), "--database-url", url])
    assert again.exit_code == 1 and "exists" in again.output


def test_backup_refuses_postgres_and_a_missing_database(tmp_path: Path) -> None:
    runner = CliRunner()
    pg = runner.invoke(
        app, ["backup", str(tmp_path / "x.db"), "--database-url", "postgresql://u@h/db"]
    )
    assert pg.exit_code == 2 and "pg_dump" in pg.output
    missing = runner.invoke(
        app, ["backup", str(tmp_path / "x.db"), "--database-url", f"sqlite:///{tmp_path}/no.db"]
    )
    assert missing.exit_code == 1 and "no SQLite database" in missing.output
    assert not (tmp_path / "x.db").exists()
