"""What the move soak and the move benchmark share: an edgemeta started in this process, an
HTTP client bound to it, and the reassign call."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx

from edgemeta.bootstrap import Service, build
from edgemeta.settings import Settings

PG = "postgresql://postgres@127.0.0.1:5432/postgres"
PROFILE = {
    "name": "wearable",
    "deviceResources": [
        {"name": "heartRate", "properties": {"valueType": "Int32", "readWrite": "R"}},
        {"name": "battery", "properties": {"valueType": "Float32", "readWrite": "R"}},
        # writable and bounded: the command soak sets it through core-command's checks
        {
            "name": "setpoint",
            "properties": {
                "valueType": "Float32",
                "readWrite": "RW",
                "minimum": 0,
                "maximum": 100,
            },
        },
    ],
}


@contextlib.asynccontextmanager
async def edgemeta(
    database: str, bus_url: str = "memory://", **settings: Any
) -> AsyncIterator[tuple[Service, httpx.AsyncClient]]:
    """edgemeta in this process on ``database`` ("sqlite" for a temporary file, "postgres"
    for a fresh schema dropped afterwards, or a URL) and ``bus_url``; a client bound to its
    ASGI app (no sockets)."""
    schema = None
    with tempfile.TemporaryDirectory(prefix="edgemeta-moves-") as tmp:
        if database == "sqlite":
            url = f"sqlite:///{tmp}/edgemeta.db"
        elif database == "postgres":
            schema = f"bench_moves_{uuid.uuid4().hex[:10]}"
            url = f"{PG}?schema={schema}"
        else:
            url = database
        settings.setdefault("device_validation", "auto")
        service = await build(Settings(database_url=url, bus_url=bus_url, **settings))
        await service.start()
        transport = httpx.ASGITransport(app=service.app)
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://edgemeta", timeout=60
            ) as client:
                r = await client.post(
                    "/api/v3/deviceprofile", json=[{"apiVersion": "v3", "profile": PROFILE}]
                )
                r.raise_for_status()
                yield service, client
        finally:
            await service.stop()
            if schema:
                conn = await asyncpg.connect(PG)
                try:
                    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                finally:
                    await conn.close()


async def add_devices(client: httpx.AsyncClient, names: list[str], owners: list[str]) -> None:
    """Add the devices (``names[i]`` owned by ``owners[i]``), 100 per request."""
    for start in range(0, len(names), 100):
        items = [
            {
                "apiVersion": "v3",
                "device": {
                    "name": name,
                    "serviceName": owner,
                    "profileName": "wearable",
                    "adminState": "UNLOCKED",
                    "operatingState": "UP",
                    "protocols": {"ble": {"mac": name}},
                },
            }
            for name, owner in zip(
                names[start : start + 100], owners[start : start + 100], strict=True
            )
        ]
        r = await client.post("/api/v3/device", json=items, params={"bypassValidation": "true"})
        r.raise_for_status()
        bad = [i for i in r.json() if i["statusCode"] != 201]
        if bad:
            raise RuntimeError(f"adding devices failed: {bad[:3]}")


async def reassign(client: httpx.AsyncClient, device: str, to: str) -> dict[str, Any]:
    """One ``POST /device/reassign``; the item of the answer."""
    r = await client.post(
        "/api/v3/device/reassign",
        json=[{"apiVersion": "v3", "reassign": {"deviceName": device, "serviceName": to}}],
    )
    r.raise_for_status()
    item: dict[str, Any] = r.json()[0]
    return item
