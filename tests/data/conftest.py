"""core-data test fixtures: one service per backend, with its core-metadata and core-data
apps reachable in-process, and helpers to make events."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.conftest import Api, make_service
from tests.conftest import _drop_schema


@dataclass
class Data:
    """The core-metadata client (``meta``) and a core-data client of one service."""

    meta: Api
    client: httpx.AsyncClient

    async def post_event(
        self,
        device: str = "dev",
        source: str = "temp",
        readings: list[dict[str, Any]] | None = None,
        *,
        profile: str = "prof",
        service: str = "ds",
        origin: int | None = None,
        **event: Any,
    ) -> httpx.Response:
        body = {
            "apiVersion": "v3",
            "event": make_event(device, source, readings, profile=profile, origin=origin, **event),
        }
        return await self.client.post(
            f"/api/v3/event/{service}/{profile}/{device}/{source}", json=body
        )

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(f"/api/v3{path}", params=params)

    async def delete(self, path: str) -> httpx.Response:
        return await self.client.delete(f"/api/v3{path}")

    async def counts(self) -> tuple[int, int]:
        events = (await self.get("/event/count")).json()["count"]
        readings = (await self.get("/reading/count")).json()["count"]
        return events, readings

    async def associations(
        self, *, profile: str | None = None, device: str | None = None
    ) -> list[Any]:
        async with self.meta.service.store.read() as tx:
            return await tx.data.associations(profile=profile, device=device)


def make_event(
    device: str = "dev",
    source: str = "temp",
    readings: list[dict[str, Any]] | None = None,
    *,
    profile: str = "prof",
    origin: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An EdgeX event; by default one Float32 reading of ``temp``."""
    origin = origin or time.time_ns()
    if readings is None:
        readings = [{"resourceName": "temp", "valueType": "Float32", "value": "21.5"}]
    full = []
    for r in readings:
        item = {"deviceName": device, "profileName": profile, "origin": origin}
        item.update(r)
        full.append(item)
    event: dict[str, Any] = {
        "apiVersion": "v3",
        "id": str(uuid.uuid4()),
        "deviceName": device,
        "profileName": profile,
        "sourceName": source,
        "origin": origin,
        "readings": full,
    }
    event.update(extra)
    return event


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
