"""A move away while a driver call is in flight: the release (and so the new owner's first
moment of serving) waits for that call to end, and later commands are refused; a command
beyond ``max_commands`` is answered 503 at once; answers come in EdgeX 3's base64 payloads
when asked."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import orjson
import pytest

from edgemeta.sdk import CommandError, Device, DeviceService, DeviceServiceParticipant, Handlers
from tests.sdk.kit import command, until
from tests.support.api import Api, make_service
from tests.support.schema import drop_schema

PROFILE = {
    "name": "slow",
    "deviceResources": [{"name": "v", "properties": {"valueType": "Int32", "readWrite": "R"}}],
}


async def test_release_waits_for_the_driver_call_in_flight(tmp_path: Any) -> None:
    order: list[str] = []
    entered, leave = asyncio.Event(), asyncio.Event()
    driver = Handlers()

    @driver.reader("v")
    async def v(device: Device) -> int:
        entered.set()
        await leave.wait()
        order.append("driver call ended")
        return 1

    service, schema = await make_service(
        "sqlite", tmp_path, device_validation="auto", move_ack_timeout=5.0
    )
    await service.start()
    transport = httpx.ASGITransport(app=service.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
            api = Api(client, service)

            async def served(device: dict[str, Any]) -> None:
                order.append("new owner serves")

            ds = DeviceService(
                "ds-slow",
                driver,
                api_url="http://edgemeta",
                bus=service.bus,
                http=client,
                base64_payload=True,
                max_commands=1,
                profiles=[PROFILE],
                devices=[{"name": "s1", "profileName": "slow", "protocols": {"o": {"a": "1"}}}],
            )
            other = DeviceServiceParticipant(
                "ds-next", api_url="http://edgemeta", bus=service.bus, http=client, on_serve=served
            )
            async with ds:
                await other.start()
                await until(lambda: "s1" in ds.serving)
                pending = asyncio.create_task(
                    command(service.bus, "edgex", "s1", "v", service="ds-slow")
                )
                await asyncio.wait_for(entered.wait(), 5)
                busy = await command(service.bus, "edgex", "s1", "v", service="ds-slow")
                assert busy.error_code == 1  # one command at a time: the next is refused
                assert base64.b64decode(orjson.loads(busy.raw)["payload"]).startswith(b"503 ")
                body = [
                    {"apiVersion": "v3", "reassign": {"deviceName": "s1", "serviceName": "ds-next"}}
                ]
                move = asyncio.create_task(api.post("/device/reassign", body))
                await until(lambda: "s1" not in ds.serving)  # let go: no new driver call
                with pytest.raises(CommandError) as refused:
                    await ds.get("s1", "v")  # the bus takes one at a time: asked directly
                assert refused.value.status == 423
                # The move cannot finish while the call is in flight (without the drain it
                # does, in a few milliseconds): a bounded wait for what must not happen.
                finished, _ = await asyncio.wait([move], timeout=0.5)
                assert not finished and "s1" not in other.serving and order == []
                leave.set()
                answered = await pending
                assert (await move).json()[0]["statusCode"] == 200
                await until(lambda: "s1" in other.serving)
                assert order == ["driver call ended", "new owner serves"]
                # EdgeX 3's []byte payload: the EventResponse as base64 JSON text.
                wire = orjson.loads(answered.raw)["payload"]
                assert isinstance(wire, str)
                got = orjson.loads(base64.b64decode(wire))
                assert got["statusCode"] == 200 and got["event"]["readings"][0]["value"] == "1"
                await other.stop()
    finally:
        await service.stop()
        if schema:
            await drop_schema(schema)
