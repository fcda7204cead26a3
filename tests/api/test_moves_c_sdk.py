"""Moves between device services built on EdgeX's C SDK, which ignores ``device/update``
events (it keeps serving whatever serviceName says) but obeys ``device/delete`` and
``device/add``. edgemeta knows such a service by its registration (the C SDK spells the key
``baseaddress``) and tells it by delete and add: after a move exactly one serves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from edgemeta.bus.topics import level
from edgemeta.ports import Subscription
from tests.api.world import World, moves_world


class CSdkService:
    """What a C-SDK device service does with metadata's system events, nothing more."""

    def __init__(self, name: str, world: World) -> None:
        self.name = name
        self.world = world
        self.serving: set[str] = set()
        self.seen: list[str] = []  # actions received, in order
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # The C SDK's registration: "Service" and the lowercased "baseaddress".
        body = [
            {
                "apiVersion": "v3",
                "Service": {
                    "name": self.name,
                    "baseaddress": "http://127.0.0.1:59999",
                    "adminState": "UNLOCKED",
                },
            }
        ]
        r = await self.world.api.client.post("/api/v3/deviceservice", json=body)
        assert r.json()[0]["statusCode"] == 201, r.text
        bus = self.world.api.service.bus
        topic = f"edgex/system-events/core-metadata/device/+/{level(self.name)}/#"
        self._sub = await bus.subscribe(topic)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._sub is not None
        async for message in self._sub:
            envelope = orjson.loads(message.payload)
            event = envelope["payload"]
            if isinstance(event, str):  # base64 in some envelopes
                import base64

                event = orjson.loads(base64.b64decode(event))
            action, name = event["action"], event["details"]["name"]
            self.seen.append(action)
            if action == "add":
                self.serving.add(name)
            elif action == "delete":
                self.serving.discard(name)
            # "update": the C SDK refreshes its copy and keeps serving, whatever serviceName

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sub is not None:
            await self._sub.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def world(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[World]:
    async with moves_world(request.param, tmp_path) as w:
        yield w


async def _until(check: Any, seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.02)


async def test_a_c_sdk_registration_is_marked_to_release_by_delete(world: World) -> None:
    c = CSdkService("ds-c", world)
    await c.start()
    try:
        stored = (await world.api.get("/deviceservice/name/ds-c")).json()["service"]
        assert stored["properties"]["edgemeta"]["releaseBy"] == "delete"
        await world.api.add_service("ds-go")  # baseAddress as the Go SDK spells it
        go = (await world.api.get("/deviceservice/name/ds-go")).json()["service"]
        assert "edgemeta" not in (go.get("properties") or {})
    finally:
        await c.stop()


async def test_a_move_between_two_c_sdk_services_leaves_exactly_one_serving(
    world: World,
) -> None:
    c1, c2 = CSdkService("ds-c1", world), CSdkService("ds-c2", world)
    await c1.start()
    await c2.start()
    try:
        r = await world.api.add_device("badge", service="ds-c1", profile="wearable")
        assert r.json()[0]["statusCode"] == 201, r.text
        await _until(lambda: "badge" in c1.serving)
        result = await world.reassign("badge", "ds-c2")
        assert result["statusCode"] == 200, result
        assert result["move"]["state"] == "assigned"
        await _until(lambda: "badge" in c2.serving and "badge" not in c1.serving)
        assert await world.owner("badge") == "ds-c2"
        # The old owner was told to delete it, the new one to add it; no update reached them.
        assert c1.seen == ["add", "delete"] and c2.seen == ["add"]
        # And back again: still one.
        assert (await world.reassign("badge", "ds-c1"))["statusCode"] == 200
        await _until(lambda: "badge" in c1.serving and "badge" not in c2.serving)
    finally:
        await c1.stop()
        await c2.stop()


async def test_between_a_c_sdk_service_and_an_edgemeta_one(world: World) -> None:
    c = CSdkService("ds-c", world)
    await c.start()
    sdk = await world.participant("ds-sdk")
    try:
        await world.api.add_device("badge", service="ds-c", profile="wearable")
        await _until(lambda: "badge" in c.serving)
        assert (await world.reassign("badge", "ds-sdk"))["statusCode"] == 200
        await _until(lambda: "badge" in sdk.serving and "badge" not in c.serving)
        assert (await world.reassign("badge", "ds-c"))["statusCode"] == 200
        await _until(lambda: "badge" in c.serving and "badge" not in sdk.serving)
    finally:
        await c.stop()
