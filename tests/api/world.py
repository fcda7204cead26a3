"""A running edgemeta with edgemeta device services (participants) around it, for tests of
moves and provisioning."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from edgemeta.sdk import DeviceServiceParticipant
from tests.support.api import Api, make_service
from tests.support.schema import drop_schema


class World:
    """A running edgemeta, a client, and the participants it knows."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.participants: dict[str, DeviceServiceParticipant] = {}

    async def participant(self, name: str, **kw: Any) -> DeviceServiceParticipant:
        p = DeviceServiceParticipant(
            name,
            api_url="http://edgemeta",
            bus=self.api.service.bus,
            http=self.api.client,
            **kw,
        )
        await p.start()
        self.participants[name] = p
        return p

    def servers_of(self, device: str) -> list[str]:
        return sorted(n for n, p in self.participants.items() if device in p.serving)

    async def owner(self, device: str) -> str:
        r = await self.api.get(f"/device/name/{device}")
        owner: str = r.json()["device"]["serviceName"]
        return owner

    async def settle(self, device: str, expected: list[str], within: float = 5.0) -> None:
        try:
            async with asyncio.timeout(within):
                while self.servers_of(device) != expected:
                    await asyncio.sleep(0.01)
        except TimeoutError:
            raise AssertionError(
                f"{device} served by {self.servers_of(device)}, expected {expected}; "
                f"owner {await self.owner(device)}"
            ) from None

    async def reassign(self, device: str, to: str, **extra: Any) -> dict[str, Any]:
        body = {"deviceName": device, "serviceName": to, **extra}
        params = {"dryRun": "true"} if extra.pop("_dry", False) else {}
        r = await self.api.post(
            "/device/reassign", [{"apiVersion": "v3", "reassign": body}], **params
        )
        assert r.status_code == 207, r.text
        item: dict[str, Any] = r.json()[0]
        return item


@contextlib.asynccontextmanager
async def moves_world(backend: str, tmp_path: Any) -> AsyncIterator[World]:
    """A started service on ``backend`` with short move timeouts, a ``wearable`` profile, and
    its participants stopped at the end."""
    service, schema = await make_service(
        backend,
        tmp_path,
        move_ack_timeout=1.0,
        move_release_deadline=0.1,
        validation_timeout=1.0,
        device_validation="auto",
    )
    await service.start()
    transport = httpx.ASGITransport(app=service.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
            w = World(Api(client, service))
            await w.api.add_profile("wearable")
            yield w
            for p in w.participants.values():
                await p.stop()
    finally:
        await service.stop()
        if schema:
            await drop_schema(schema)
