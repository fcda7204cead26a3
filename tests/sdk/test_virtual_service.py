"""The example virtual device service end to end on a real edgemeta (in-process bus, and a real
Mosquitto and NATS for the tests on ``lite``): get and
set through EdgeX's bus request/response, every refusal answered before the driver is called,
a released device refused, ds-pushevent and autoEvents stored in core-data, discovery through
a provision watcher, and the REST routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from edgemeta.sdk import DeviceServiceParticipant
from tests.sdk.kit import DEVICE, SERVICE, World, command, until, virtual_world
from tests.support import servers


@pytest.fixture(params=["sqlite", "postgres"])
async def world(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[World]:
    async with virtual_world(request.param, tmp_path) as w:
        yield w


@pytest.fixture(
    params=[
        "memory",
        pytest.param("mqtt", marks=pytest.mark.mqtt),
        pytest.param("nats", marks=pytest.mark.nats),
    ]
)
async def lite(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[World]:
    """SQLite, on the in-process bus, a real Mosquitto or NATS (the service on its own
    connection)."""
    options: dict[str, Any] = {"discoverable": ["sim-1", "sim-blocked", "x-9"]}
    if request.param != "memory":
        url = servers.MQTT_URL if request.param == "mqtt" else servers.NATS_URL
        servers.require(url, request.param)
        options.update(bus_url=url, prefix=servers.unique("sdk"))
    async with virtual_world("sqlite", tmp_path, **options) as w:
        yield w


async def test_get_and_set_through_the_bus(world: World) -> None:
    got = await command(world.api.service.bus, world.prefix, DEVICE, "values")
    assert got.error_code == 0, got.payload
    assert got.payload["statusCode"] == 200
    event = got.payload["event"]
    assert event["deviceName"] == DEVICE and event["sourceName"] == "values"
    readings = {r["resourceName"]: r for r in event["readings"]}
    assert sorted(readings) == ["counter", "random", "setpoint"]
    assert readings["counter"]["value"] == "1" and readings["counter"]["valueType"] == "Int64"
    assert 0 <= int(readings["random"]["value"]) <= 100
    assert readings["setpoint"]["value"] == "20.0" and readings["setpoint"]["units"] == "C"

    done = await command(
        world.api.service.bus, world.prefix, DEVICE, "setpoint", "set", {"setpoint": "22.5"}
    )
    assert done.error_code == 0 and done.payload["statusCode"] == 200, done.payload
    again = await command(world.api.service.bus, world.prefix, DEVICE, "setpoint")
    assert [r["value"] for r in again.payload["event"]["readings"]] == ["22.5"]


async def test_pushevent_stores_the_event_in_core_data_and_returnevent_false_omits_it(
    world: World,
) -> None:
    params = {"ds-pushevent": "true", "ds-returnevent": "false"}
    got = await command(world.api.service.bus, world.prefix, DEVICE, "counter", params=params)
    assert got.error_code == 0 and got.payload["statusCode"] == 200
    assert "event" not in got.payload
    stored = await until(lambda: world.events(source="counter"))
    assert len(stored) == 1
    assert stored[0]["readings"][0]["value"] == "1"
    assert stored[0]["profileName"] == "virtual-device"


@pytest.mark.parametrize(
    ("cmd", "method", "body", "status", "words"),
    [
        ("nope", "get", None, 404, "command 'nope' not found"),
        ("setpoint", "set", {"setpoint": "31"}, 400, "above its maximum 30"),
        ("setpoint", "set", {"setpoint": "4.9"}, 400, "below its minimum 5"),
        ("setpoint", "set", {"setpoint": "warm"}, 400, "is not a Float32"),
        ("random", "set", {"random": "7"}, 405, "'random' is not writable"),
        ("values", "set", {"setpoint": "21"}, 405, "command 'values' is not writable"),
        ("setpoint", "set", {"counter": "1"}, 400, "'counter' is not a resource"),
    ],
)
async def test_refusals_never_reach_the_driver(
    tmp_path: Any, cmd: str, method: str, body: Any, status: int, words: str
) -> None:
    async with virtual_world("sqlite", tmp_path) as w:
        before = w.virtual.runner.driver_calls
        got = await command(w.api.service.bus, w.prefix, DEVICE, cmd, method, body)
        assert got.error_code == 1
        assert got.envelope["contentType"] == "text/plain"
        assert got.payload.startswith(f"{status} ") and words in got.payload, got.payload
        assert w.virtual.runner.driver_calls == before
        assert w.driver.setpoints == {}


async def test_unknown_and_locked_devices_are_refused(lite: World) -> None:
    bus, prefix = lite.api.service.bus, lite.prefix
    before = lite.virtual.runner.driver_calls
    unknown = await command(bus, prefix, "nobody", "values")
    assert unknown.error_code == 1 and unknown.payload.startswith("404 "), unknown.payload
    r = await lite.api.patch(
        "/device", [{"apiVersion": "v3", "device": {"name": DEVICE, "adminState": "LOCKED"}}]
    )
    assert r.json()[0]["statusCode"] == 200
    await until(lambda: lite.virtual.serving[DEVICE]["adminState"] == "LOCKED")
    locked = await command(bus, prefix, DEVICE, "values")
    assert locked.error_code == 1 and locked.payload.startswith("423 "), locked.payload
    assert "locked" in locked.payload
    assert lite.virtual.runner.driver_calls == before


async def test_a_released_device_is_refused_without_a_driver_call(lite: World) -> None:
    other = DeviceServiceParticipant(
        "ds-other",
        api_url="http://edgemeta",
        bus=lite.api.service.bus,
        http=lite.api.client,
        prefix=lite.prefix,
    )
    await other.start()
    try:
        r = await lite.api.post(
            "/device/reassign",
            [{"apiVersion": "v3", "reassign": {"deviceName": DEVICE, "serviceName": "ds-other"}}],
        )
        assert r.json()[0]["statusCode"] == 200, r.text
        await until(lambda: DEVICE in other.serving)
        assert DEVICE not in lite.virtual.serving
        before = lite.virtual.runner.driver_calls
        got = await command(lite.api.service.bus, lite.prefix, DEVICE, "values")
        assert got.error_code == 1 and got.payload.startswith("423 "), got.payload
        assert "released by service 'device-virtual'" in got.payload
        refused = await command(
            lite.api.service.bus, lite.prefix, DEVICE, "setpoint", "set", {"setpoint": "21"}
        )
        assert refused.error_code == 1 and refused.payload.startswith("423 ")
        assert lite.virtual.runner.driver_calls == before
    finally:
        await other.stop()


async def test_autoevents_on_change_send_a_constant_once(lite: World) -> None:
    """Real 50 ms intervals: the setpoint does not change, so it is stored once however
    often it is read; the counter (no onChange) is stored at each read."""
    r = await lite.api.add_device(
        "fast",
        service=SERVICE,
        profile="virtual-device",
        autoEvents=[
            {"interval": "50ms", "sourceName": "setpoint", "onChange": True},
            {"interval": "50ms", "sourceName": "counter"},
        ],
    )
    assert r.json()[0]["statusCode"] == 201, r.text
    await until(lambda: lite.driver.counters.get("fast", 0) >= 4)
    await until(lambda: lite.virtual.autoevents.suppressed >= 3)
    assert len(await lite.events("fast", "setpoint")) == 1
    assert len(await until(lambda: lite.events("fast", "counter"))) >= 1
    set_ = await command(
        lite.api.service.bus, lite.prefix, "fast", "setpoint", "set", {"setpoint": "25"}
    )
    assert set_.error_code == 0
    second = await until(lambda: _at_least(lite.events("fast", "setpoint"), 2), within=5)
    assert sorted(e["readings"][0]["value"] for e in second) == ["20.0", "25.0"]


async def _at_least(events: Any, n: int) -> Any:
    got = await events
    return got if len(got) >= n else None


async def test_discovery_adds_what_a_watcher_takes(lite: World) -> None:
    watcher = {
        "name": "virtual-watcher",
        "serviceName": SERVICE,
        "adminState": "UNLOCKED",
        "identifiers": {"Address": "^simulated-(sim|x)-"},
        "blockingIdentifiers": {"Address": ["simulated-sim-blocked"]},
        "discoveredDevice": {
            "profileName": "virtual-device",
            "adminState": "UNLOCKED",
            "autoEvents": [{"interval": "1h", "sourceName": "counter"}],
            "properties": {"found": "by-watcher"},
        },
    }
    r = await lite.api.post(
        "/provisionwatcher", [{"apiVersion": "v3", "provisionWatcher": watcher}]
    )
    assert r.json()[0]["statusCode"] == 201, r.text
    result = await lite.virtual.discover()
    assert result.added == ["sim-1", "x-9"]
    assert result.unmatched == ["sim-blocked"]
    device = (await lite.api.get("/device/name/sim-1")).json()["device"]
    assert device["serviceName"] == SERVICE and device["profileName"] == "virtual-device"
    assert device["autoEvents"][0]["interval"] == "1h"
    assert device["properties"] == {"found": "by-watcher"}
    assert device["protocols"] == {"other": {"Address": "simulated-sim-1"}}
    assert (await lite.api.get("/device/name/sim-blocked")).status_code == 404
    await until(lambda: "sim-1" in lite.virtual.serving)
    again = await lite.virtual.discover()
    assert again.added == [] and again.existing == ["sim-1", "x-9"]
    got = await command(lite.api.service.bus, lite.prefix, "sim-1", "counter")
    assert got.error_code == 0 and got.payload["event"]["readings"][0]["value"] == "1"


async def test_rest_routes(lite: World) -> None:
    transport = httpx.ASGITransport(app=lite.virtual.rest_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://ds") as ds:
        ping = await ds.get("/api/v3/ping")
        assert ping.status_code == 200 and ping.json()["serviceName"] == SERVICE
        got = await ds.get(f"/api/v3/device/name/{DEVICE}/values")
        assert got.status_code == 200 and len(got.json()["event"]["readings"]) == 3
        quiet = await ds.get(
            f"/api/v3/device/name/{DEVICE}/counter", params={"ds-returnevent": "false"}
        )
        assert quiet.status_code == 200 and "event" not in quiet.json()
        put = await ds.put(f"/api/v3/device/name/{DEVICE}/setpoint", json={"setpoint": 6})
        assert put.status_code == 200, put.text
        assert lite.driver.setpoints[DEVICE] == 6.0
        bad = await ds.put(f"/api/v3/device/name/{DEVICE}/setpoint", json={"setpoint": "99"})
        assert bad.status_code == 400
        assert bad.json()["statusCode"] == 400 and "maximum" in bad.json()["message"]
        assert lite.driver.setpoints[DEVICE] == 6.0
        missing = await ds.get("/api/v3/device/name/nobody/values")
        assert missing.status_code == 404
        found = await ds.post("/api/v3/discovery")
        assert found.status_code == 202


async def test_a_profile_change_reaches_the_checks(lite: World) -> None:
    """The service reads a profile once, and again after its update event: a new maximum
    applies to the next set."""
    bus, prefix = lite.api.service.bus, lite.prefix
    refused = await command(bus, prefix, DEVICE, "setpoint", "set", {"setpoint": "35"})
    assert refused.error_code == 1 and "above its maximum 30" in refused.payload
    assert "virtual-device" in lite.virtual._profiles
    profile = (await lite.api.get("/deviceprofile/name/virtual-device")).json()["profile"]
    for resource in profile["deviceResources"]:
        if resource["name"] == "setpoint":
            resource["properties"]["maximum"] = 40
    r = await lite.api.client.put(
        "/api/v3/deviceprofile", json=[{"apiVersion": "v3", "profile": profile}]
    )
    assert r.json()[0]["statusCode"] == 200, r.text
    await until(lambda: "virtual-device" not in lite.virtual._profiles)
    done = await command(bus, prefix, DEVICE, "setpoint", "set", {"setpoint": "35"})
    assert done.error_code == 0, done.payload
    assert lite.driver.setpoints[DEVICE] == 35.0
