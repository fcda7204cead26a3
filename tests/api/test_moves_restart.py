"""A device service restarted in the middle of a move to it (found by bench/soak.py): it must
not serve the device before the old owner let go, nor after the move was rolled back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from edgemeta.bus.envelope import decode
from tests.api.world import World
from tests.support.api import Api, make_service


@pytest.fixture
async def world(tmp_path: Any) -> AsyncIterator[World]:
    service, _ = await make_service(
        "sqlite", tmp_path, move_ack_timeout=1.0, validation_timeout=1.0, device_validation="auto"
    )
    await service.start()
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
        w = World(Api(client, service))
        await w.api.add_profile("wearable")
        yield w
        for p in w.participants.values():
            await p.stop()
    await service.stop()


async def test_new_owner_restarted_while_the_move_waits_does_not_serve(world: World) -> None:
    ds1 = await world.participant("ds1")
    ds2 = await world.participant("ds2")
    r = await world.api.add_device("badge", service="ds1", profile="wearable")
    assert r.json()[0]["statusCode"] == 201
    await world.settle("badge", ["ds1"])
    told_ds2 = await world.api.service.bus.subscribe(
        "edgex/system-events/core-metadata/device/update/ds2/#"
    )
    await ds1.stop()  # confirms releases, but is gone: the move waits, then rolls back
    move = asyncio.create_task(world.reassign("badge", "ds2"))
    for _ in range(200):  # until commit A: the store names ds2 while the move waits
        if await world.owner("badge") == "ds2":
            break
        await asyncio.sleep(0.01)
    assert await world.owner("badge") == "ds2"
    await ds2.stop()
    await ds2.start()  # reconciles while the move is releasing
    assert "badge" not in ds2.serving
    result = await move
    assert result["move"]["state"] == "rolledBack"
    assert "badge" not in ds2.serving
    # The rollback told the new owner too, naming the old one.
    async with asyncio.timeout(5):
        message = await anext(aiter(told_ds2))
    event = decode(message.payload)["payload"]
    assert event["details"]["serviceName"] == "ds1"
    assert orjson.loads(message.payload)  # a well-formed envelope
    await told_ds2.close()
    await ds1.start()
    await world.settle("badge", ["ds1"])


@pytest.mark.mqtt
async def test_service_that_missed_its_event_in_an_outage_reconciles_on_reconnect(
    tmp_path: Any,
) -> None:
    from edgemeta.bus.mqtt import MqttBus
    from edgemeta.sdk import DeviceServiceParticipant
    from tests.support import servers
    from tests.support.tcpproxy import TcpProxy

    servers.require(servers.MQTT_URL, "Mosquitto")
    prefix = servers.unique("mv")
    host, port = servers.MQTT_URL.removeprefix("mqtt://").split(":")
    service, _ = await make_service(
        "sqlite", tmp_path, bus_url=servers.MQTT_URL, bus_prefix=prefix, move_ack_timeout=2.0
    )
    await service.start()
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    buses = [MqttBus(servers.MQTT_URL), MqttBus(f"mqtt://127.0.0.1:{proxy.port}")]
    for bus in buses:
        await bus.start()
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
        api = Api(client, service)
        await api.add_profile("wearable")
        url = "http://edgemeta"
        ds1, ds2 = (
            DeviceServiceParticipant(n, api_url=url, bus=b, prefix=prefix, http=client)
            for n, b in zip(("ds1", "ds2"), buses, strict=True)
        )
        await ds1.start()
        await ds2.start()
        await api.add_device("badge", service="ds1", profile="wearable")
        async with asyncio.timeout(5):
            while "badge" not in ds1.serving:
                await asyncio.sleep(0.01)
        await proxy.stop()  # ds2 loses the broker; its events are not kept (clean session)
        r = await api.patch(
            "/device",
            [{"apiVersion": "v3", "device": {"name": "badge", "serviceName": "ds2"}}],
            bypassValidation="true",  # ds2 cannot answer a validation request now
        )
        assert r.json()[0]["statusCode"] == 200, r.text
        assert "badge" not in ds1.serving and "badge" not in ds2.serving
        await proxy.start()  # ds2 reconnects, and reconciles
        async with asyncio.timeout(10):
            while "badge" not in ds2.serving:
                await asyncio.sleep(0.02)
        assert "badge" not in ds1.serving
        await ds1.stop()
        await ds2.stop()
    for bus in buses:
        await bus.close()
    await proxy.stop()
    await service.stop()


async def test_a_move_that_cannot_watch_for_the_release_fails_and_frees_the_device(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgemeta.domain.errors import ServiceUnavailable

    await world.participant("ds1")
    await world.participant("ds2")
    await world.api.add_device("badge", service="ds1", profile="wearable")
    await world.settle("badge", ["ds1"])

    async def broker_down(service: str, move_id: str, device: str = "") -> Any:
        raise ServiceUnavailable("mqtt broker is not connected")

    releases = world.api.service.deps.releases
    real = releases.watch
    monkeypatch.setattr(releases, "watch", broker_down)
    result = await world.reassign("badge", "ds2")
    assert result["statusCode"] == 503 and result["move"]["state"] == "failed", result
    assert await world.owner("badge") == "ds1"
    monkeypatch.setattr(releases, "watch", real)
    # Nothing is left unfinished: the device can be moved at once.
    assert (await world.reassign("badge", "ds2"))["statusCode"] == 200
    await world.settle("badge", ["ds2"])
