"""System events end to end on the in-process bus: exact envelope and topic for every type and
action, EdgeX-style subscriptions, the relay's behaviour on failure, the SSE stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from edgemeta.bus.memory import MemoryBus
from edgemeta.domain.errors import ServiceUnavailable
from edgemeta.ports import Message
from tests.support.api import Api, make_service, serve_http

CID = "1c7e4f0e-4a8b-4f38-b6a8-0b2a0b5e9c11"


@pytest.fixture(params=["sqlite", "postgres"])
async def live(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Api]:
    """A started service (relay running) on each backend."""
    service, schema = await make_service(request.param, tmp_path)
    await service.start()
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://edgemeta", headers={"X-Correlation-ID": CID}
    ) as client:
        yield Api(client, service)
    await service.stop()
    if schema:
        from tests.support.schema import drop_schema

        await drop_schema(schema)


async def collect(sub: Any, n: int, timeout: float = 5.0) -> list[Message]:
    out = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            out.append(await sub.get())
    return out


async def nothing_more(sub: Any, wait: float = 0.3) -> bool:
    try:
        async with asyncio.timeout(wait):
            await sub.get()
    except TimeoutError:
        return True
    return False


async def test_every_type_and_action_has_edgex_envelope_and_topic(live: Api) -> None:
    bus = live.service.bus
    assert isinstance(bus, MemoryBus)
    sub = await bus.subscribe("edgex/system-events/#")
    await live.add_service("ds")
    await live.add_service("ds2")
    await live.add_profile("prof")
    await live.add_device("d1")
    await live.patch(
        "/device", [{"apiVersion": "v3", "device": {"name": "d1", "description": "x"}}]
    )
    await live.patch(
        "/deviceprofile/basicinfo",
        [{"apiVersion": "v3", "basicinfo": {"name": "prof", "model": "M"}}],
    )
    await live.patch(
        "/deviceservice", [{"apiVersion": "v3", "service": {"name": "ds2", "adminState": "LOCKED"}}]
    )
    await live.post(
        "/provisionwatcher",
        [
            {
                "apiVersion": "v3",
                "provisionWatcher": {
                    "name": "w",
                    "serviceName": "ds",
                    "identifiers": {"a": "b"},
                    "adminState": "UNLOCKED",
                    "discoveredDevice": {"profileName": "prof", "adminState": "UNLOCKED"},
                },
            }
        ],
    )
    await live.patch(
        "/provisionwatcher",
        [{"apiVersion": "v3", "provisionWatcher": {"name": "w", "adminState": "LOCKED"}}],
    )
    await live.delete("/provisionwatcher/name/w")
    await live.delete("/device/name/d1")
    await live.delete("/deviceprofile/name/prof")
    await live.delete("/deviceservice/name/ds2")
    messages = await collect(sub, 14)
    p = "edgex/system-events/core-metadata"
    assert [m.topic for m in messages] == [
        f"{p}/deviceservice/add/ds",
        f"{p}/deviceservice/add/ds2",
        f"{p}/deviceprofile/add/core-metadata/prof",
        f"{p}/device/add/ds/prof",
        f"{p}/device/update/ds/prof",
        f"{p}/deviceprofile/update/core-metadata/prof",
        f"{p}/deviceprofile/update/ds/prof",  # one per service owning a device of the profile
        f"{p}/deviceservice/update/ds2",
        f"{p}/provisionwatcher/add/ds/prof",
        f"{p}/provisionwatcher/update/ds/prof",
        f"{p}/provisionwatcher/delete/ds/prof",
        f"{p}/device/delete/ds/prof",
        f"{p}/deviceprofile/delete/core-metadata/prof",
        f"{p}/deviceservice/delete/ds2",
    ]
    envelopes = [orjson.loads(m.payload) for m in messages]
    first = envelopes[3]
    assert list(first) == [
        "apiVersion",
        "receivedTopic",
        "correlationID",
        "requestID",
        "errorCode",
        "payload",
        "contentType",
    ]
    assert first["apiVersion"] == "v3" and first["correlationID"] == CID
    assert first["requestID"] == "" and first["errorCode"] == 0
    assert first["contentType"] == "application/json"
    event = first["payload"]
    assert list(event) == [
        "apiVersion",
        "type",
        "action",
        "source",
        "owner",
        "tags",
        "details",
        "timestamp",
    ]
    assert (event["type"], event["action"], event["source"], event["owner"]) == (
        "device",
        "add",
        "core-metadata",
        "ds",
    )
    assert event["details"]["name"] == "d1" and event["details"]["id"]
    assert abs(event["timestamp"] - time.time_ns()) < 60 * 10**9  # nanoseconds
    assert event["tags"]["revision"] == "1"
    ids = [e["payload"]["tags"]["eventId"] for e in envelopes]
    assert len(set(ids)) == len(ids)
    assert envelopes[4]["payload"]["tags"]["revision"] == "2"
    assert envelopes[11]["payload"]["details"]["name"] == "d1"  # delete carries the device
    assert envelopes[5]["payload"]["details"]["linkedDeviceCount"] == 0
    assert await nothing_more(sub)


async def test_a_device_service_sees_exactly_its_events(live: Api) -> None:
    bus = live.service.bus
    assert isinstance(bus, MemoryBus)
    mine = await bus.subscribe("edgex/system-events/core-metadata/+/+/ds/#")
    await live.add_service("ds")
    await live.add_service("other")
    await live.add_profile("prof")
    await live.add_device("a", service="ds")
    await live.add_device("b", service="other")
    await live.patch(
        "/device", [{"apiVersion": "v3", "device": {"name": "b", "serviceName": "ds"}}]
    )
    await live.patch(
        "/device", [{"apiVersion": "v3", "device": {"name": "a", "serviceName": "other"}}]
    )
    got = [
        (
            m.topic.split("/")[3],
            m.topic.split("/")[4],
            orjson.loads(m.payload)["payload"]["details"]["name"],
        )
        for m in await collect(mine, 4)
    ]
    assert got == [
        ("deviceservice", "add", "ds"),
        ("device", "add", "a"),
        ("device", "update", "b"),
        ("device", "update", "a"),
    ]
    assert await nothing_more(mine)


async def test_no_change_no_event(live: Api) -> None:
    bus = live.service.bus
    assert isinstance(bus, MemoryBus)
    await live.add_service("ds")
    await live.service.relay.drain()
    sub = await bus.subscribe("edgex/#")
    r = await live.patch(
        "/deviceservice",
        [{"apiVersion": "v3", "service": {"name": "ds", "adminState": "UNLOCKED"}}],
    )
    assert r.json()[0]["statusCode"] == 200
    assert await nothing_more(sub)


class FlakyBus(MemoryBus):
    """An in-process bus whose broker is 'down' until told otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.attempts = 0

    async def publish_batch(self, messages: Any) -> int:
        self.attempts += 1
        if self.down:
            raise ServiceUnavailable("broker is down")
        return await super().publish_batch(messages)


async def test_relay_keeps_events_while_the_bus_is_down_then_delivers_in_order(
    tmp_path: Any,
) -> None:
    from edgemeta.workers.relay import Relay

    service, _ = await make_service("sqlite", tmp_path)
    bus = FlakyBus()
    relay = Relay(service.store, bus, poll_interval=0.05, backoff_max=0.1)
    service.store.on_commit(relay.nudge)
    relay.start()
    sub = await bus.subscribe("edgex/#")
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as c:
        api = Api(c, service)
        for i in range(20):
            await api.add_service(f"s{i:02d}")
        await asyncio.sleep(0.3)
        assert bus.attempts >= 2 and relay.delivered_total == 0
        assert len(await api.events()) == 20  # all still in the outbox
        bus.down = False
        got = await collect(sub, 20)
    assert [m.topic.rsplit("/", 1)[1] for m in got] == [f"s{i:02d}" for i in range(20)]
    assert await api.events() == []
    await relay.stop()
    await service.store.close()


async def test_only_one_relay_publishes_on_a_shared_postgres(tmp_path: Any) -> None:
    from edgemeta.workers.relay import Relay
    from tests.support import servers
    from tests.support.schema import drop_schema

    servers.require(servers.POSTGRES_URL, "PostgreSQL")
    a, schema = await make_service("postgres", tmp_path)
    from edgemeta.bootstrap import build
    from edgemeta.settings import Settings

    b = await build(Settings(database_url=f"{servers.POSTGRES_URL}?schema={schema}"))
    bus = MemoryBus()
    sub = await bus.subscribe("edgex/#")
    relays = [Relay(s.store, bus, poll_interval=0.05) for s in (a, b)]
    for r in relays:
        r.start()
    try:
        transport = httpx.ASGITransport(app=a.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://e") as c:
            for i in range(30):
                await Api(c, a).add_service(f"s{i:02d}")
        got = await collect(sub, 30)
        assert [m.topic.rsplit("/", 1)[1] for m in got] == [f"s{i:02d}" for i in range(30)]
        assert sum(r.leader for r in relays) == 1
        assert await nothing_more(sub)
        leader = next(r for r in relays if r.leader)
        await leader.stop()  # the lease goes; the other relay takes over
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=b.app), base_url="http://e"
        ) as c:
            await Api(c, b).add_service("after")
        got = await collect(sub, 1)
        assert got[0].topic.endswith("/after")
    finally:
        for r in relays:
            await r.stop()
        await a.store.close()
        await b.store.close()
        await drop_schema(schema)


async def test_sse_stream_filters_and_resumes(live: Api) -> None:
    from edgemeta.client import system_events

    await live.add_service("ds")
    await live.add_service("ds2")
    await live.add_profile("prof")
    for i in range(3):
        await live.add_device(f"d{i}", service="ds" if i != 1 else "ds2")
    seen = []
    async with serve_http(live.service.app) as url:
        stream = system_events(
            url, ["edgex/system-events/core-metadata/device/+/ds/#"], last_event_id=0
        )
        async with asyncio.timeout(5):
            async for ev in stream:
                seen.append(ev)
                if len(seen) == 2:
                    break
        await stream.aclose()
        assert [e.event["details"]["name"] for e in seen] == ["d0", "d2"]
        assert all(
            e.topic.startswith("edgex/system-events/core-metadata/device/add/ds") for e in seen
        )
        resume_from = seen[0].position
        again = system_events(url, ["edgex/system-events/#"], last_event_id=resume_from)
        async with asyncio.timeout(5):
            first_after = await again.__anext__()
        # Live: an event committed after the stream started arrives too.
        live_stream = system_events(url, ["edgex/system-events/core-metadata/deviceservice/#"])
        waiter = asyncio.create_task(live_stream.__anext__())
        await asyncio.sleep(0.3)
        await live.add_service("late")
        async with asyncio.timeout(5):
            late = await waiter
        await again.aclose()
        await live_stream.aclose()
    assert first_after.position == resume_from + 1
    assert late.event["details"]["name"] == "late"


async def test_sse_stream_rejects_bad_filters_and_ids(sqlite_api: Api) -> None:
    r = await sqlite_api.client.get("/api/v3/systemevent/stream", params={"topic": "a/#/b"})
    assert r.status_code == 400
    r = await sqlite_api.client.get("/api/v3/systemevent/stream", headers={"Last-Event-ID": "abc"})
    assert r.status_code == 400


async def test_sse_stream_reports_a_gap_after_purge(tmp_path: Any) -> None:
    from edgemeta.client import GapError, system_events

    service, _ = await make_service("sqlite", tmp_path)
    await service.start()
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as c:
        api = Api(c, service)
        for i in range(3):
            await api.add_service(f"s{i}")
        await service.relay.drain()
        async with service.store.write() as tx:
            assert await tx.feed.purge_delivered(time.time_ns() + 1) == 3
        await api.add_service("s3")
        await service.relay.drain()
        async with serve_http(service.app) as url:
            stream = system_events(url, last_event_id=1)
            with pytest.raises(GapError) as gap:
                async with asyncio.timeout(5):
                    await stream.__anext__()
            tolerant = system_events(url, last_event_id=1, allow_gaps=True)
            async with asyncio.timeout(5):
                ev = await tolerant.__anext__()
            await tolerant.aclose()
        assert (gap.value.first, gap.value.last) == (2, 3)
        assert ev.position == 4 and ev.event["details"]["name"] == "s3"
    await service.stop()


class PickyBus(MemoryBus):
    """A bus that refuses one topic for good, as a broker refuses a topic or a payload."""

    async def publish_batch(self, messages: Any) -> int:
        from edgemeta.domain.errors import LimitExceeded

        for i, (topic, _) in enumerate(messages):
            if topic.endswith("/poison"):
                if i == 0:
                    raise LimitExceeded("payload over the broker's limit")
                await super().publish_batch(messages[:i])
                return i
        return await super().publish_batch(messages)


async def test_an_event_the_bus_refuses_for_good_is_set_aside_not_retried(tmp_path: Any) -> None:
    from edgemeta.workers.relay import Relay

    service, _ = await make_service("sqlite", tmp_path)
    bus = PickyBus()
    relay = Relay(service.store, bus, poll_interval=0.05, backoff_max=0.1)
    sub = await bus.subscribe("edgex/#")
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as c:
        api = Api(c, service)
        for name in ("a", "poison", "b"):
            await api.add_service(name)
        await relay.drain()
        got = await collect(sub, 2)
    assert [m.topic.rsplit("/", 1)[1] for m in got] == ["a", "b"]
    assert relay.set_aside == 1
    async with service.store.read() as tx:
        kept = await tx.feed.delivered_since(0, 10)
        failure = await tx.feed.db.fetchval(
            "SELECT failure FROM outbox WHERE record_key = 'poison'"
        )
    assert [e.record_key for e in kept] == ["a", "poison", "b"]  # still in the feed, in order
    assert "limit" in failure
    await service.store.close()


async def test_service_starts_and_accepts_writes_while_the_broker_is_down(tmp_path: Any) -> None:
    from tests.support.brokers import private_broker

    with private_broker("mqtt", tmp_path) as broker:
        broker.stop()
        service, _ = await make_service("sqlite", tmp_path, bus_url=broker.url)
        await service.start()  # does not fail, does not hang
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://e") as c:
            api = Api(c, service)
            for i in range(5):
                await api.add_service(f"s{i}")
            assert len(await api.events()) == 5  # kept in the outbox
            broker.start()
            from edgemeta.bus.mqtt import MqttBus

            watcher = MqttBus(broker.url)
            await watcher.start()
            sub = await watcher.subscribe("edgex/#")
            async with asyncio.timeout(30):
                while await api.events():
                    await asyncio.sleep(0.1)
            await watcher.close()
        await service.stop()
    assert sub is not None
