"""Bounded work per request (issue 15): a batch longer than ``EDGEMETA_MAX_BATCH`` is one 413
before anything is written, a long batch yields to other requests, and chunked validation
still names the first invalid item by its index in the whole batch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from tests.support.api import Api, make_service
from tests.support.schema import drop_schema


def device(i: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"d{i}",
        "serviceName": "ds",
        "profileName": "prof",
        "adminState": "UNLOCKED",
        "operatingState": "UP",
        "protocols": {"other": {"Address": f"a{i}"}},
    }
    body.update(extra)
    return {"apiVersion": "v3", "device": body}


async def _ready(request: pytest.FixtureRequest, tmp_path: Any, **settings: Any) -> Any:
    service, schema = await make_service(request.param, tmp_path, **settings)
    transport = httpx.ASGITransport(app=service.app)
    client = httpx.AsyncClient(transport=transport, base_url="http://edgemeta", timeout=120)
    api = Api(client, service)
    await api.add_service("ds")
    await api.add_profile("prof")
    await api.clear_events()
    return api, schema


async def _close(api: Api, schema: str | None) -> None:
    await api.client.aclose()
    await api.service.store.close()
    if schema:
        await drop_schema(schema)


@pytest.fixture(params=["sqlite", "postgres"])
async def small(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Api]:
    """A service whose batches hold at most 10 requests."""
    api, schema = await _ready(request, tmp_path, max_batch=10)
    yield api
    await _close(api, schema)


@pytest.fixture(params=["sqlite", "postgres"])
async def default(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Api]:
    """A service with the default limit (5000)."""
    api, schema = await _ready(request, tmp_path)
    yield api
    await _close(api, schema)


async def test_a_batch_over_the_limit_is_413_naming_it_and_stores_nothing(small: Api) -> None:
    r = await small.post("/device", [device(i) for i in range(11)])
    assert r.status_code == 413
    body = r.json()
    assert body["statusCode"] == 413 and body["apiVersion"] == "v3"
    assert body["message"] == (
        "batch of 11 requests exceeds the limit of 10 requests per batch (EDGEMETA_MAX_BATCH)"
    )
    listed = (await small.get("/device/all")).json()
    assert listed["totalCount"] == 0
    assert await small.events() == []
    # Every batch route shares the limit: PATCH too.
    patch = [{"apiVersion": "v3", "device": {"name": f"d{i}"}} for i in range(11)]
    assert (await small.patch("/device", patch)).status_code == 413


async def test_a_batch_at_the_limit_is_handled(small: Api) -> None:
    r = await small.post("/device", [device(i) for i in range(10)])
    assert r.status_code == 207
    assert [x["statusCode"] for x in r.json()] == [201] * 10


async def test_chunked_validation_names_the_item_by_its_index_in_the_batch(default: Api) -> None:
    batch = [device(i) for i in range(700)]
    batch[301]["device"]["adminState"] = "SIDEWAYS"
    batch[650]["device"].pop("serviceName")
    r = await default.post("/device", batch)
    assert r.status_code == 400
    msg = r.json()["message"]
    assert msg.startswith("[301].device.adminState: "), msg
    assert msg.endswith("(and 1 more problems)"), msg
    assert (await default.get("/device/all")).json()["totalCount"] == 0


async def test_a_ping_during_a_max_size_batch_is_answered_promptly(default: Api) -> None:
    """Loosely timed (< 1 s) for a noisy machine; the figure is in BENCHMARKS.md."""
    body = orjson.dumps([device(i) for i in range(5000)])
    headers = {"content-type": "application/json"}
    started = asyncio.Event()
    worst = 0.0

    async def batch() -> httpx.Response:
        started.set()
        return await default.client.post("/api/v3/device", content=body, headers=headers)

    task = asyncio.create_task(batch())
    await started.wait()
    pings = 0
    while not task.done():
        t = time.perf_counter()
        assert (await default.client.get("/api/v3/ping")).status_code == 200
        worst = max(worst, time.perf_counter() - t)
        pings += 1
        await asyncio.sleep(0.01)
    r = await task
    assert r.status_code == 207
    assert all(x["statusCode"] == 201 for x in r.json())
    assert (await default.get("/device/all")).json()["totalCount"] == 5000
    assert pings > 1, "the batch never let a ping in"
    assert worst < 1.0, f"a ping waited {worst:.3f} s during the batch"
