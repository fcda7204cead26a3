"""core-command over REST (``EDGEMETA_COMMAND_TRANSPORT=rest``) end to end: edgemeta's
core-command calls the example virtual device service at the ``baseAddress`` it registered,
over a real HTTP connection to the service's own uvicorn endpoint, on SQLite and PostgreSQL.

The same contract as the bus transport: reads and sets reach the driver, core-command's own
checks refuse a bad value before anything is sent, ``ds-pushevent`` stores the event in
core-data, the device service's own refusals keep their status, and a service that cannot
be reached is 503."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from examples.virtual_device_service import build

from edgemeta.sdk import DeviceService
from tests.sdk.kit import DEVICE, SERVICE, until
from tests.support.api import Api, make_service
from tests.support.schema import drop_schema


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RestWorld:
    """edgemeta with core-command on REST, and the virtual service on its own HTTP port."""

    api: Api
    command: httpx.AsyncClient
    data: httpx.AsyncClient
    virtual: DeviceService
    port: int


@pytest.fixture(params=["sqlite", "postgres"])
async def world(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[RestWorld]:
    service, schema = await make_service(
        request.param,
        tmp_path,
        command_transport="rest",
        command_timeout=5.0,
        move_release_deadline=0.1,
    )
    await service.start()
    assert service.command_app is not None and service.data_app is not None
    port = _free_port()
    try:
        async with (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=service.app), base_url="http://edgemeta"
            ) as meta,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=service.command_app), base_url="http://cmd"
            ) as cmd,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=service.data_app), base_url="http://data"
            ) as data,
        ):
            await service.ingest_ready()
            virtual = build(api_url="http://edgemeta", bus=service.bus, http_port=port, http=meta)
            await virtual.start()
            try:
                await until(lambda: DEVICE in virtual.serving)
                yield RestWorld(Api(meta, service), cmd, data, virtual, port)
            finally:
                await virtual.stop()
    finally:
        await service.stop()
        if schema:
            await drop_schema(schema)


async def test_reads_and_sets_reach_the_driver_over_http(world: RestWorld) -> None:
    registered = (await world.api.get(f"/deviceservice/name/{SERVICE}")).json()["service"]
    assert registered["baseAddress"] == f"http://127.0.0.1:{world.port}"

    got = await world.command.get(f"/api/v3/device/name/{DEVICE}/values")
    assert got.status_code == 200, got.text
    readings = {r["resourceName"]: r["value"] for r in got.json()["event"]["readings"]}
    assert sorted(readings) == ["counter", "random", "setpoint"]

    put = await world.command.put(
        f"/api/v3/device/name/{DEVICE}/setpoint", json={"setpoint": "22.5"}
    )
    assert put.status_code == 200, put.text
    assert world.virtual.driver.setpoints[DEVICE] == 22.5  # type: ignore[attr-defined]
    again = await world.command.get(f"/api/v3/device/name/{DEVICE}/setpoint")
    assert [r["value"] for r in again.json()["event"]["readings"]] == ["22.5"]


async def test_a_bad_value_is_refused_before_anything_is_sent(world: RestWorld) -> None:
    before = world.virtual.runner.driver_calls
    bad = await world.command.put(f"/api/v3/device/name/{DEVICE}/setpoint", json={"setpoint": "99"})
    assert bad.status_code == 400, bad.text
    assert "maximum" in bad.json()["message"] and "setpoint" in bad.json()["message"]
    assert world.virtual.runner.driver_calls == before  # the device service saw nothing


async def test_pushevent_over_rest_stores_the_event(world: RestWorld) -> None:
    got = await world.command.get(
        f"/api/v3/device/name/{DEVICE}/counter",
        params={"ds-pushevent": "true", "ds-returnevent": "false"},
    )
    assert got.status_code == 200, got.text
    assert "event" not in got.json()

    async def stored() -> list[Any]:
        r = await world.data.get(f"/api/v3/event/device/name/{DEVICE}", params={"limit": -1})
        return [e for e in r.json()["events"] if e["sourceName"] == "counter"]

    events = await until(stored)
    assert events[0]["readings"][0]["value"] == "1"


async def test_the_device_services_refusal_keeps_its_status(world: RestWorld) -> None:
    # The driver refuses, the device service answers 500 with its message, and core-command
    # passes on the status and the text as EdgeX's does for REST.
    async def broken(*_: Any) -> Any:
        raise RuntimeError("sensor bus fault")

    world.virtual.driver.read = broken  # type: ignore[method-assign]
    got = await world.command.get(f"/api/v3/device/name/{DEVICE}/counter")
    assert got.status_code == 500, got.text
    assert "sensor bus fault" in got.json()["message"]


async def test_an_unreachable_service_is_503(world: RestWorld) -> None:
    await world.virtual.stop()  # nothing listens at the baseAddress any more
    try:
        got = await world.command.get(f"/api/v3/device/name/{DEVICE}/counter")
        assert got.status_code == 503, got.text
        assert f"127.0.0.1:{world.port}" in got.json()["message"]
    finally:
        await world.virtual.start()  # the fixture stops it again
