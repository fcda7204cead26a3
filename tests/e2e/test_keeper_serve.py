"""``edgemeta serve`` answers core-keeper's key/value API on its third port: a writable
setting flipped there holds for the very next request and after a restart (SQLite and
PostgreSQL), and ``EDGEMETA_CORE_KEEPER=false`` leaves the port closed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.procs import ServeProcess, start
from tests.support import servers
from tests.support.schema import drop_schema

STRICT = "edgex/v4/core-metadata/Writable/ProfileChange/StrictDeviceProfileChanges"
PROFILE = {
    "apiVersion": "v3",
    "profile": {
        "name": "kp",
        "deviceResources": [
            {"name": "t", "properties": {"valueType": "Float32", "readWrite": "R"}}
        ],
    },
}


def _update(p: ServeProcess) -> httpx.Response:
    return httpx.put(f"{p.url}/deviceprofile", json=[PROFILE])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An SQLite file, or a PostgreSQL schema of the test's own (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'keeper.db'}"
        return
    servers.require(servers.POSTGRES_URL, "PostgreSQL")
    schema = servers.unique("keeper")
    try:
        yield f"{servers.POSTGRES_URL}?schema={schema}"
    finally:
        asyncio.run(drop_schema(schema))


def test_a_flipped_setting_applies_at_once_and_survives_a_restart(
    database_url: str, tmp_path: Path
) -> None:
    env = {"EDGEMETA_DATABASE_URL": database_url}
    p = start(tmp_path, env=env)
    try:
        p.wait_ready()
        p.wait_keeper_ready()
        assert f"core-keeper on http://127.0.0.1:{p.keeper_port}/api/v3" in p.log()
        r = httpx.post(f"{p.url}/deviceprofile", json=[PROFILE])
        assert r.json()[0]["statusCode"] == 201, r.text
        assert _update(p).status_code == 207
        r = httpx.put(f"{p.keeper_url}/kvs/key/{STRICT}", json={"apiVersion": "v3", "value": True})
        assert r.status_code == 200 and r.json()["response"] == [STRICT], r.text
        assert r.headers["X-Correlation-ID"]  # the EdgeX header, canonical name
        assert _update(p).status_code == 423
    finally:
        assert p.stop() == 0, p.log()
    # Restarted with the environment's default (false): the stored value wins.
    q = start(tmp_path, env=env)
    try:
        q.wait_ready()
        q.wait_keeper_ready()
        r = _update(q)
        assert r.status_code == 423 and "StrictDeviceProfileChanges" in r.json()["message"]
        got = httpx.get(f"{q.keeper_url}/kvs/key/{STRICT}", params={"plaintext": "true"})
        assert got.json()["response"][0]["value"] == "true"
        config = httpx.get(f"{q.url}/config").json()["config"]
        assert config["Writable"]["ProfileChange"]["StrictDeviceProfileChanges"] is True
        # Deleting the key puts the environment's value back, at once.
        assert httpx.delete(f"{q.keeper_url}/kvs/key/{STRICT}").status_code == 200
        assert _update(q).status_code == 207
    finally:
        assert q.stop() == 0, q.log()


def test_core_keeper_off_leaves_its_port_closed(tmp_path: Path) -> None:
    p = start(tmp_path, env={"EDGEMETA_CORE_KEEPER": "false"})
    try:
        p.wait_ready()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{p.keeper_url}/ping", timeout=1.0)
        assert "core-keeper on" not in p.log()
    finally:
        p.stop()
