"""An edgemeta with the example virtual device service around it, and a core-command's side
of the bus (a request sent, its answer awaited), for the SDK's tests."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from examples.virtual_device_service import VirtualDriver, build

from edgemeta.bus.envelope import decode, envelope
from edgemeta.bus.topics import response_topic
from edgemeta.ports import Bus
from edgemeta.sdk import DeviceService
from edgemeta.sdk.bus_commands import request_topic
from tests.support.api import Api, make_service
from tests.support.schema import drop_schema

SERVICE = "device-virtual"
DEVICE = "virtual-thermostat"


@dataclass
class Answer:
    """A command's answer from the bus: the envelope's errorCode and its decoded payload."""

    error_code: int
    payload: Any
    envelope: dict[str, Any]
    raw: bytes  # the message as received


async def command(
    bus: Bus,
    prefix: str,
    device: str,
    command: str,
    method: str = "get",
    body: dict[str, Any] | None = None,
    *,
    service: str = SERVICE,
    params: dict[str, str] | None = None,
    within: float = 10.0,
) -> Answer:
    """Send a command request as EdgeX's core-command does (payload base64 JSON) and wait for
    its answer on ``<prefix>/response/<service>/<requestId>``."""
    request_id = str(uuid.uuid4())
    sub = await bus.subscribe(response_topic(prefix, service, request_id))
    try:
        raw = base64.b64encode(orjson.dumps(body)).decode() if body is not None else None
        env = orjson.loads(envelope(raw, request_id=request_id, correlation_id=request_id))
        env["queryParams"] = params or {}
        await bus.publish(
            request_topic(prefix, service, device, command, method), orjson.dumps(env)
        )
        async with asyncio.timeout(within):
            message = await sub.get()
    finally:
        await sub.close()
    got = decode(message.payload)
    return Answer(int(got.get("errorCode", 0)), got.get("payload"), got, message.payload)


async def until(check: Callable[[], Any], within: float = 10.0, every: float = 0.01) -> Any:
    """Wait until ``check()`` (sync or async) is truthy; returns it."""
    async with asyncio.timeout(within):
        while True:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(every)


@dataclass
class World:
    """A started edgemeta, its API and core-data clients, and the virtual service."""

    api: Api
    data: httpx.AsyncClient
    virtual: DeviceService
    prefix: str

    @property
    def driver(self) -> VirtualDriver:
        driver = self.virtual.driver
        assert isinstance(driver, VirtualDriver)
        return driver

    async def events(self, device: str = DEVICE, source: str | None = None) -> list[Any]:
        """core-data's events of ``device`` (of ``source`` only, if given), from its API."""
        r = await self.data.get(f"/api/v3/event/device/name/{device}", params={"limit": -1})
        assert r.status_code == 200, r.text
        events: list[Any] = r.json()["events"]
        return [e for e in events if source is None or e["sourceName"] == source]


@contextlib.asynccontextmanager
async def virtual_world(
    backend: str, tmp_path: Any, *, bus_url: str = "memory://", prefix: str = "edgex", **opts: Any
) -> AsyncIterator[World]:
    """edgemeta on ``backend`` and ``bus_url`` (started: relay and core-data ingest), and the
    example virtual service started against it (its own bus connection unless in-process)."""
    settings: dict[str, Any] = {
        "device_validation": "auto",
        "validation_timeout": 2.0,
        "move_ack_timeout": 2.0,
        "move_release_deadline": 0.1,
        "bus_url": bus_url,
        "bus_prefix": prefix,
    }
    if bus_url != "memory://":
        settings["data_client_id"] = f"edgemeta-data-{uuid.uuid4().hex[:8]}"
    service, schema = await make_service(backend, tmp_path, **settings)
    await service.start()
    assert service.data_app is not None
    transport = httpx.ASGITransport(app=service.app)
    data_transport = httpx.ASGITransport(app=service.data_app)
    try:
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client,
            httpx.AsyncClient(transport=data_transport, base_url="http://core-data") as data,
        ):
            await service.ingest_ready()
            virtual = build(
                api_url="http://edgemeta",
                bus=service.bus if bus_url == "memory://" else bus_url,
                prefix=prefix,
                http_port=None,
                http=client,
                **opts,
            )
            await virtual.start()
            try:
                world = World(Api(client, service), data, virtual, prefix)
                await until(lambda: DEVICE in virtual.serving)
                yield world
            finally:
                await virtual.stop()
    finally:
        await service.stop()
        if schema:
            await drop_schema(schema)
