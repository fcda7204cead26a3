"""core-data's bus ingest: events published by device services reach the store.

On the in-process bus and on the machine's Mosquitto, in-process; and end to end, an
``edgemeta serve`` killed with SIGKILL in the middle of a stream of QoS 1 events on a private
Mosquitto loses none and stores none twice once restarted.
"""

from __future__ import annotations

import asyncio
import base64
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import orjson
import pytest

from edgemeta.workers.ingest import EventIngest
from tests.e2e.procs import free_port, start
from tests.e2e.wire import Api, device_doc, profile_doc, service_doc
from tests.support import servers
from tests.support.brokers import private_broker
from tests.support.data import Data, make_event


def envelope(event: dict[str, Any], *, b64: bool = False) -> bytes:
    """An EdgeX MessageEnvelope carrying an AddEventRequest."""
    request = {"apiVersion": "v3", "event": event}
    payload: Any = request
    if b64:
        payload = base64.b64encode(orjson.dumps(request)).decode()
    return orjson.dumps(
        {
            "apiVersion": "v3",
            "receivedTopic": "",
            "correlationID": str(uuid.uuid4()),
            "requestID": str(uuid.uuid4()),
            "errorCode": 0,
            "payload": payload,
            "contentType": "application/json",
        }
    )


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def test_memory_bus_ingest(seeded: Data) -> None:
    service = seeded.meta.service
    ingest = EventIngest(service.deps, service.bus, prefix="edgex", bus_url="memory://")
    await service.bus.start()
    ingest.start()
    await asyncio.wait_for(ingest.ready.wait(), 5)
    topic = "edgex/events/device/ds/prof/dev/temp"
    good = [make_event() for _ in range(3)]
    await service.bus.publish(topic, envelope(good[0]))
    await service.bus.publish(topic, envelope(good[1], b64=True))
    await service.bus.publish(topic, orjson.dumps({"apiVersion": "v3", "event": good[2]}))
    # refused: not JSON, topic that does not match the event, bad value, wrong topic shape
    await service.bus.publish(topic, b"not json")
    await service.bus.publish("edgex/events/device/ds/prof/other/temp", envelope(make_event()))
    bad = make_event(readings=[{"resourceName": "temp", "valueType": "Float32", "value": "x"}])
    await service.bus.publish(topic, envelope(bad))
    await service.bus.publish("edgex/events/device/ds/prof", envelope(make_event()))
    # a redelivered event is stored once
    await service.bus.publish(topic, envelope(good[0]))

    async def settled() -> bool:
        return ingest.stored + ingest.refused + ingest.duplicates == 8

    await wait_for(settled)
    await ingest.stop()
    assert (ingest.stored, ingest.refused, ingest.duplicates) == (3, 4, 1)
    assert await seeded.counts() == (3, 3)
    await service.bus.close()


@pytest.mark.mqtt
async def test_mqtt_ingest_on_the_machine_broker(seeded: Data) -> None:
    servers.require(servers.MQTT_URL, "Mosquitto")
    prefix = servers.unique("ingest")
    service = seeded.meta.service
    client_id = servers.unique("edgemeta-cd")
    ingest = EventIngest(
        service.deps, service.bus, prefix=prefix, bus_url=servers.MQTT_URL, client_id=client_id
    )
    ingest.start()
    try:
        await asyncio.wait_for(ingest.ready.wait(), 10)
        host, port = "127.0.0.1", int(servers.MQTT_URL.rsplit(":", 1)[1])
        async with aiomqtt.Client(host, port) as pub:
            for _ in range(50):
                await pub.publish(
                    f"{prefix}/events/device/ds/prof/dev/temp", envelope(make_event()), qos=1
                )

        async def all_in() -> bool:
            return ingest.stored == 50

        await wait_for(all_in)
        assert await seeded.counts() == (50, 50)
    finally:
        await ingest.stop()
        # forget the persistent session on the shared broker
        async with aiomqtt.Client(host, port, identifier=client_id, clean_session=True):
            pass


async def _count(client: httpx.AsyncClient, what: str = "event") -> int:
    try:
        return int((await client.get(f"/{what}/count", timeout=2)).json()["count"])
    except httpx.HTTPError:
        return -1


@pytest.mark.mqtt
@pytest.mark.slow
async def test_sigkill_mid_stream_loses_no_reading(tmp_path: Path) -> None:
    """QoS 1 with acknowledgement after commit: kill -9 while events stream in, restart,
    and the store ends with every published event exactly once."""
    (tmp_path / "broker").mkdir()
    with private_broker("mqtt", tmp_path / "broker", persistent=True) as broker:
        data_port = free_port()
        env = {
            "EDGEMETA_BUS_URL": broker.url,
            "EDGEMETA_DEVICE_VALIDATION": "never",
            "EDGEMETA_DATA_PORT": str(data_port),
            "EDGEMETA_DATABASE_URL": f"sqlite:///{tmp_path / 'ingest.db'}",
        }
        proc = start(tmp_path, env=env)
        proc.wait_ready()
        data_url = f"http://127.0.0.1:{data_port}/api/v3"
        api = Api(proc.url)
        try:
            assert await api.batch("POST", "/deviceservice", "service", [service_doc("ds")]) == [
                201
            ]
            assert await api.batch("POST", "/deviceprofile", "profile", [profile_doc("p")]) == [201]
            devices = [device_doc("d", "ds", "p")]
            assert await api.batch("POST", "/device", "device", devices) == [201]
        finally:
            await api.close()
        total = 3000
        published = 0

        async def publish() -> None:
            nonlocal published
            host, port = "127.0.0.1", broker.port
            async with aiomqtt.Client(host, port, identifier="probe-pub") as pub:
                for i in range(total):
                    event = make_event(
                        "d",
                        "temp",
                        [{"resourceName": "temp", "valueType": "Float32", "value": str(i)}],
                        profile="p",
                    )
                    await pub.publish("edgex/events/device/ds/p/d/temp", envelope(event), qos=1)
                    published += 1
                    if i % 50 == 0:
                        await asyncio.sleep(0.005)

        publisher = asyncio.create_task(publish())
        client = httpx.AsyncClient(base_url=data_url)
        # kill it once part of the stream is stored
        deadline = time.monotonic() + 30
        while await _count(client) < total // 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        stored_before = await _count(client)
        proc.stop(signal.SIGKILL)
        print("stored before the kill:", stored_before)
        assert 0 < stored_before < total, stored_before
        await asyncio.sleep(0.5)  # events keep arriving while edgemeta is down
        proc = start(tmp_path, env=env)
        proc.wait_ready()
        try:
            await asyncio.wait_for(publisher, 60)
            deadline = time.monotonic() + 60
            while await _count(client) < total and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # and nothing more than that arrives
            assert published == total
            assert await _count(client) == total
            assert await _count(client, "reading") == total
        finally:
            await client.aclose()
            proc.stop()
