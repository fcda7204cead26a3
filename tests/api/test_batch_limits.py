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
    assert body["message"] == "a batch may hold at most 10 requests (EDGEMETA_MAX_BATCH)"
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


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "request body is empty"),
        (b"[1, 2", "request body is not valid JSON: "),
        (b"[NaN]", "request body is not valid JSON: "),
        (b"[" + b"9" * 5000 + b"]", "request body is not valid JSON: "),
        (b'{"a": 1}', "request body must be a JSON array of requests"),
        (b"[] x", "request body is not valid JSON: "),
        (b"[" * 80 + b"]" * 80, "request body is nested deeper than 64 levels"),
        (b"[" * 1010 + b"]" * 1010, "request body is "),
        (b"\xff[]", "request body is not valid JSON: "),
    ],
)
async def test_a_batch_body_that_is_not_an_array_of_json_is_one_400(
    small: Api, body: bytes, message: str
) -> None:
    r = await small.client.post(
        "/api/v3/device", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert r.json()["message"].startswith(message), r.json()["message"]


async def test_an_empty_batch_is_an_empty_207(small: Api) -> None:
    r = await small.client.post(
        "/api/v3/device", content=b" [ ] ", headers={"content-type": "application/json"}
    )
    assert r.status_code == 207 and r.json() == []


async def test_a_huge_batch_is_refused_without_parsing_it_whole(default: Api) -> None:
    """80,000 devices (~15 MiB): the 413 comes after element 5001, not after a full parse."""
    body = orjson.dumps([device(i) for i in range(80_000)])
    t = time.perf_counter()
    r = await default.client.post(
        "/api/v3/device", content=body, headers={"content-type": "application/json"}
    )
    took = time.perf_counter() - t
    assert r.status_code == 413
    assert r.json()["message"] == "a batch may hold at most 5000 requests (EDGEMETA_MAX_BATCH)"
    assert (await default.get("/device/all")).json()["totalCount"] == 0
    print(f"80,000-device batch refused in {took * 1000:.0f} ms")


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
