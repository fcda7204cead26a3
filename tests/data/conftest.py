"""core-data test fixtures: one service per backend, with its core-metadata and core-data
apps reachable in-process, and helpers to make events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.api import Api, make_service
from tests.support.data import Data
from tests.support.schema import drop_schema as _drop_schema


async def _open(backend: str, tmp_path: Any, **settings: Any) -> AsyncIterator[Data]:
    service, schema = await make_service(backend, tmp_path, **settings)
    assert service.data_app is not None
    meta_t = httpx.ASGITransport(app=service.app)
    data_t = httpx.ASGITransport(app=service.data_app)
    async with (
        httpx.AsyncClient(transport=meta_t, base_url="http://edgemeta") as meta,
        httpx.AsyncClient(transport=data_t, base_url="http://edgemeta-data") as data,
    ):
        yield Data(Api(meta, service), data)
    await service.store.close()
    if schema:
        await _drop_schema(schema)


@pytest.fixture(params=["sqlite", "postgres"])
async def data(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Data]:
    """An empty service with core-data, on each backend."""
    async for d in _open(request.param, tmp_path):
        yield d


@pytest.fixture(params=["sqlite", "postgres"])
async def seeded(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Data]:
    """A service ``ds``, profile ``prof`` (temp, switch; command ``all``), device ``dev``."""
    async for d in _open(request.param, tmp_path):
        await d.meta.add_service()
        await d.meta.add_profile()
        r = await d.meta.add_device()
        assert r.json()[0]["statusCode"] == 201, r.text
        yield d
