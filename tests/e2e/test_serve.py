"""``edgemeta serve`` as a real process: defaults, settings, the log line, clean stops."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest

from tests.e2e.procs import start
from tests.support import servers


def test_serves_on_the_embedded_defaults_and_stops_on_sigterm(tmp_path: Path) -> None:
    p = start(tmp_path)
    try:
        p.wait_ready()
        r = httpx.post(
            f"{p.url}/deviceservice",
            json=[
                {
                    "apiVersion": "v3",
                    "service": {
                        "name": "ds",
                        "baseAddress": "http://x:1",
                        "adminState": "UNLOCKED",
                    },
                }
            ],
        )
        assert r.json()[0]["statusCode"] == 201
    finally:
        code = p.stop(signal.SIGTERM)
    assert code == 0, p.log()
    log = p.log()
    assert f"listening on http://127.0.0.1:{p.port}/api/v3" in log
    assert f"SQLite {tmp_path / 'data' / 'edgemeta.db'}" in log
    assert "edgemeta stopped" in log
    assert (tmp_path / "data" / "edgemeta.db").exists()


def test_restart_keeps_data_and_sigint_stops(tmp_path: Path) -> None:
    p = start(tmp_path)
    p.wait_ready()
    httpx.post(
        f"{p.url}/deviceservice",
        json=[
            {
                "apiVersion": "v3",
                "service": {"name": "kept", "baseAddress": "http://x:1", "adminState": "UNLOCKED"},
            }
        ],
    )
    assert p.stop(signal.SIGINT) == 0
    q = start(tmp_path)
    try:
        q.wait_ready()
        assert httpx.get(f"{q.url}/deviceservice/name/kept").status_code == 200
    finally:
        q.stop()


def test_settings_from_environment_and_flags(tmp_path: Path) -> None:
    db = tmp_path / "custom.db"
    p = start(
        tmp_path,
        "--database-url",
        f"sqlite:///{db}",
        env={"EDGEMETA_MAX_RESULT_COUNT": "7", "EDGEMETA_BUS_PREFIX": "site1"},
    )
    try:
        p.wait_ready()
        config = httpx.get(f"{p.url}/config").json()["config"]
        assert config["Service"]["MaxResultCount"] == 7
        assert config["MessageBus"]["BaseTopicPrefix"] == "site1"
        assert httpx.get(f"{p.url}/device/all", params={"limit": 8}).status_code == 400
    finally:
        p.stop()
    assert db.exists()


def test_bad_settings_exit_with_a_message(tmp_path: Path) -> None:
    p = start(tmp_path, "--bus-url", "carrier-pigeon://x")
    assert p.proc.wait(15) != 0
    assert "carrier-pigeon" in p.log()


def test_two_processes_on_one_postgres_never_create_a_name_twice(tmp_path: Path) -> None:
    servers.require(servers.POSTGRES_URL, "PostgreSQL")
    schema = servers.unique("two")
    url = f"{servers.POSTGRES_URL}?schema={schema}"
    a = start(tmp_path, "--database-url", url, "--device-validation", "never")
    b = start(tmp_path, "--database-url", url, "--device-validation", "never")
    try:
        a.wait_ready()
        b.wait_ready()
        httpx.post(
            f"{a.url}/deviceservice",
            json=[
                {
                    "apiVersion": "v3",
                    "service": {
                        "name": "ds",
                        "baseAddress": "http://x:1",
                        "adminState": "UNLOCKED",
                    },
                }
            ],
        )

        async def race() -> list[int]:
            names = [f"dev-{i}" for i in range(40)]

            async def add(client: httpx.AsyncClient, base: str, name: str) -> int:
                r = await client.post(
                    f"{base}/device",
                    json=[
                        {
                            "apiVersion": "v3",
                            "device": {
                                "name": name,
                                "serviceName": "ds",
                                "adminState": "UNLOCKED",
                                "operatingState": "UP",
                                "protocols": {},
                            },
                        }
                    ],
                )
                code: int = r.json()[0]["statusCode"]
                return code

            async with httpx.AsyncClient(timeout=30) as client:
                jobs = [add(client, base, n) for n in names for base in (a.url, b.url, a.url)]
                return await asyncio.gather(*jobs)

        codes = asyncio.run(race())
        assert codes.count(201) == 40 and codes.count(409) == 80, codes
        listing = httpx.get(f"{b.url}/device/all", params={"limit": -1}).json()
        assert listing["totalCount"] == 40
        assert len({d["name"] for d in listing["devices"]}) == 40
    finally:
        a.stop()
        b.stop()
        asyncio.run(_drop(schema))


async def _drop(schema: str) -> None:
    from tests.support.schema import drop_schema

    await drop_schema(schema)


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_start_to_first_answer_is_quick(tmp_path: Path, sig: int) -> None:
    p = start(tmp_path)
    try:
        elapsed = p.wait_ready()
    finally:
        p.stop(sig)
    # A sanity bound only; the figure itself is measured by the benchmarks.
    assert elapsed < 10
