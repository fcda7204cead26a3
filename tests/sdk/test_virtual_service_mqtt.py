"""The virtual device service on a real Mosquitto: edgemeta and the service each on their own
connection, a get and a set through EdgeX's request/response topics, a refusal, and an event
pushed to core-data through the broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.sdk.kit import DEVICE, World, command, until, virtual_world
from tests.support import servers

pytestmark = pytest.mark.mqtt


@pytest.fixture
async def world(tmp_path: Any) -> AsyncIterator[World]:
    servers.require(servers.MQTT_URL, "Mosquitto")
    prefix = servers.unique("sdk")
    async with virtual_world("sqlite", tmp_path, bus_url=servers.MQTT_URL, prefix=prefix) as w:
        yield w


async def test_get_set_refusal_and_pushevent_over_mosquitto(world: World) -> None:
    bus = world.api.service.bus
    assert world.virtual.bus is not bus  # the service has its own broker connection
    done = await command(bus, world.prefix, DEVICE, "setpoint", "set", {"setpoint": "29.5"})
    assert done.error_code == 0 and done.payload["statusCode"] == 200, done.payload
    refused = await command(bus, world.prefix, DEVICE, "setpoint", "set", {"setpoint": "30.5"})
    assert refused.error_code == 1 and refused.payload.startswith("400 "), refused.payload
    assert world.driver.setpoints[DEVICE] == 29.5
    got = await command(bus, world.prefix, DEVICE, "values", params={"ds-pushevent": "true"})
    assert got.error_code == 0, got.payload
    readings = {r["resourceName"]: r["value"] for r in got.payload["event"]["readings"]}
    assert readings["setpoint"] == "29.5" and readings["counter"] == "1"
    stored = await until(lambda: world.events(source="values"))
    assert [e["id"] for e in stored] == [got.payload["event"]["id"]]
