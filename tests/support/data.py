"""core-data under test: a wired service with core-data, and events to send it."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.api import Api


@dataclass
class Data:
    """The core-metadata client (``meta``) and a core-data client of one service."""

    meta: Api
    client: httpx.AsyncClient

    async def post_event(
        self,
        device: str = "dev",
        source: str = "temp",
        readings: list[dict[str, Any]] | None = None,
        *,
        profile: str = "prof",
        service: str = "ds",
        origin: int | None = None,
        **event: Any,
    ) -> httpx.Response:
        body = {
            "apiVersion": "v3",
            "event": make_event(device, source, readings, profile=profile, origin=origin, **event),
        }
        return await self.client.post(
            f"/api/v3/event/{service}/{profile}/{device}/{source}", json=body
        )

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(f"/api/v3{path}", params=params)

    async def delete(self, path: str) -> httpx.Response:
        return await self.client.delete(f"/api/v3{path}")

    async def counts(self) -> tuple[int, int]:
        events = (await self.get("/event/count")).json()["count"]
        readings = (await self.get("/reading/count")).json()["count"]
        return events, readings

    async def associations(
        self, *, profile: str | None = None, device: str | None = None
    ) -> list[Any]:
        async with self.meta.service.store.read() as tx:
            return await tx.data.associations(profile=profile, device=device)


def make_event(
    device: str = "dev",
    source: str = "temp",
    readings: list[dict[str, Any]] | None = None,
    *,
    profile: str = "prof",
    origin: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An EdgeX event; by default one Float32 reading of ``temp``."""
    origin = origin or time.time_ns()
    if readings is None:
        readings = [{"resourceName": "temp", "valueType": "Float32", "value": "21.5"}]
    full = []
    for r in readings:
        item = {"deviceName": device, "profileName": profile, "origin": origin}
        item.update(r)
        full.append(item)
    event: dict[str, Any] = {
        "apiVersion": "v3",
        "id": str(uuid.uuid4()),
        "deviceName": device,
        "profileName": profile,
        "sourceName": source,
        "origin": origin,
        "readings": full,
    }
    event.update(extra)
    return event
