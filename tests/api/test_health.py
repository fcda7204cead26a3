"""Liveness and readiness (issue 17, docs/operations.md#health): on every port, in the EdgeX
envelope, open; readiness follows the real database (a real PostgreSQL cut off behind a TCP
proxy, migrations rolled back under a running service) and the bus."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from edgemeta.api.health import CHECK_TIMEOUT_S
from edgemeta.bootstrap import Service, build
from edgemeta.settings import Settings
from edgemeta.store.migrations import migrations
from tests.e2e.procs import free_port
from tests.support import servers
from tests.support.api import BACKENDS, make_service
from tests.support.schema import drop_schema
from tests.support.tcpproxy import TcpProxy

LATEST = len(migrations("sqlite"))


@contextlib.asynccontextmanager
async def built(backend: str, tmp_path: Any, **settings: Any) -> AsyncIterator[Service]:
    service, schema = await make_service(backend, tmp_path, **settings)
    try:
        yield service
    finally:
        await service.store.close()
        if schema:
            await drop_schema(schema)


async def get(app: Any, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://e", timeout=30) as c:
        return await c.get(f"/api/v3{path}")


async def test_every_port_answers_live_and_ready_in_the_envelope(tmp_path: Any) -> None:
    async with built("sqlite", tmp_path) as service:
        ports = {
            "core-metadata": service.app,
            "core-data": service.data_app,
            "core-keeper": service.keeper_app,
        }
        for name, app in ports.items():
            live = await get(app, "/health/live")
            assert live.status_code == 200, (name, live.text)
            assert live.json() == {
                "apiVersion": "v3",
                "statusCode": 200,
                "status": "alive",
                "serviceName": name,
            }
            ready = await get(app, "/health/ready")
            assert ready.status_code == 200, (name, ready.text)
            body = ready.json()
            assert body["apiVersion"] == "v3" and body["statusCode"] == 200
            assert body["status"] == "ready" and body["serviceName"] == name
            assert "message" not in body
            assert body["checks"] == {
                "database": {"status": "up"},
                "migrations": {"status": "up", "applied": LATEST, "expected": LATEST},
                "bus": {"status": "up", "outbox": "accepting"},
            }


async def test_probes_need_no_credential_with_auth_on(tmp_path: Any) -> None:
    async with built("sqlite", tmp_path, auth="on") as service:
        assert (await get(service.app, "/device/all")).status_code == 401
        for app in (service.app, service.data_app, service.keeper_app):
            assert (await get(app, "/health/live")).status_code == 200
            assert (await get(app, "/health/ready")).status_code == 200


@pytest.mark.parametrize("backend", BACKENDS)
async def test_migrations_behind_are_503_and_ahead_is_degraded(backend: str, tmp_path: Any) -> None:
    async with built(backend, tmp_path) as service:
        async with service.store.write() as tx:
            # As if the database were restored from a backup older than the code's schema.
            await tx.kv.db.execute(  # type: ignore[attr-defined]
                f"DELETE FROM schema_migrations WHERE version = {LATEST}"
            )
        r = await get(service.app, "/health/ready")
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["statusCode"] == 503 and body["status"] == "not-ready"
        assert body["checks"]["migrations"] == {
            "status": "behind",
            "applied": LATEST - 1,
            "expected": LATEST,
        }
        assert f"at migration {LATEST - 1}" in body["message"]
        assert (await get(service.app, "/health/live")).status_code == 200

        async with service.store.write() as tx:
            # A newer edgemeta migrated the shared database further (a rolling upgrade).
            await tx.kv.db.execute(  # type: ignore[attr-defined]
                f"INSERT INTO schema_migrations VALUES (99, 'future', 0), ({LATEST}, 'back', 0)"
            )
        r = await get(service.app, "/health/ready")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "degraded"
        assert r.json()["checks"]["migrations"]["status"] == "ahead"
        assert "upgrade this one" in r.json()["message"]


@pytest.mark.postgres
async def test_postgres_unreachable_is_503_then_ready_again(tmp_path: Any) -> None:
    servers.require(servers.POSTGRES_URL, "PostgreSQL")
    where = urlsplit(servers.POSTGRES_URL)
    proxy = TcpProxy(where.hostname or "127.0.0.1", where.port or 5432)
    await proxy.start()
    url = servers.POSTGRES_URL.replace(f"{where.hostname}:{where.port}", f"127.0.0.1:{proxy.port}")
    schema = servers.unique("health")
    service = await build(
        Settings(database_url=f"{url}?schema={schema}", device_validation="never")
    )
    try:
        assert (await get(service.data_app, "/health/ready")).status_code == 200
        await proxy.stop()  # every connection cut, new ones refused
        r = await get(service.data_app, "/health/ready")
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["status"] == "not-ready" and body["statusCode"] == 503
        assert body["checks"]["database"] == {"status": "down"}
        assert body["message"].startswith("the database does not answer")
        assert (await get(service.data_app, "/health/live")).status_code == 200

        await proxy.start()
        r = await get(service.data_app, "/health/ready")
        assert r.status_code == 200 and r.json()["status"] == "ready", r.text

        proxy.pause()  # a database that hangs: the probe answers anyway, in time
        began = time.monotonic()
        r = await get(service.app, "/health/ready")
        assert r.status_code == 503 and r.json()["checks"]["database"]["status"] == "down"
        assert time.monotonic() - began < CHECK_TIMEOUT_S + 2
        proxy.resume()
    finally:
        await proxy.stop()
        await proxy.start()  # the store closes its pool through the proxy
        await service.store.close()
        await proxy.stop()
        await drop_schema(schema)


async def test_bus_down_is_degraded_and_writes_still_land_in_the_outbox(tmp_path: Any) -> None:
    # An MQTT bus whose broker is not there (nothing listens on the port): never connected.
    async with built("sqlite", tmp_path, bus_url=f"mqtt://127.0.0.1:{free_port()}") as service:
        r = await get(service.app, "/health/ready")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "degraded"
        assert body["checks"]["bus"] == {"status": "down", "outbox": "accepting"}
        assert "events wait in the outbox" in body["message"]
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://e") as c:
            added = await c.post(
                "/api/v3/deviceservice",
                json=[
                    {
                        "apiVersion": "v3",
                        "service": {
                            "name": "ds",
                            "baseAddress": "http://x",
                            "adminState": "UNLOCKED",
                        },
                    }
                ],
            )
        assert added.json()[0]["statusCode"] == 201, added.text
        async with service.store.read() as tx:
            pending = await tx.feed.pending(10)
        assert [(e.type, e.action) for e in pending][-1] == ("deviceservice", "add")
