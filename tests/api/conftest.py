"""API test fixtures: an edgemeta app on each backend (in-process through httpx's ASGI
transport, or over real HTTP), empty or seeded with a small inventory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.api.live import LiveApp, open_live_app
from tests.api.seed import seed
from tests.support.api import BACKENDS, Api, make_service
from tests.support.schema import drop_schema as _drop_schema


@pytest.fixture(params=["sqlite", "postgres"])
async def api(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Api]:
    """A service on each backend. The relay is not started: events stay in the outbox."""
    service, schema = await make_service(request.param, tmp_path)
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
        yield Api(client, service)
    await service.store.close()
    if schema:
        await _drop_schema(schema)


@pytest.fixture
async def sqlite_api(tmp_path: Any) -> AsyncIterator[Api]:
    """A service on SQLite only, for tests of API behaviour that no store changes."""
    service, _ = await make_service("sqlite", tmp_path)
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
        yield Api(client, service)
    await service.store.close()


@pytest.fixture(params=BACKENDS, scope="module")
def seeded_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApp]:
    """One app per backend for a whole module, seeded once."""
    app = open_live_app(request.param, tmp_path_factory.mktemp("seeded"))
    try:
        seed(app)
        yield app
    finally:
        app.close()


@pytest.fixture(params=BACKENDS)
def live_app(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[LiveApp]:
    """A fresh, seeded app per test, on each backend."""
    app = open_live_app(request.param, tmp_path)
    try:
        seed(app)
        yield app
    finally:
        app.close()
