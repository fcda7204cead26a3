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
from tests.api.conftest import Api, make_service
from tests.api.world import World


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
