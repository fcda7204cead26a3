"""The device-validation round trip (EdgeX ``validate/device``) on the in-process bus, with a
responder that answers, refuses, or stays silent."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from edgemeta.bus.envelope import envelope
from edgemeta.ports import Bus
from tests.support.api import Api, make_service

REPLY = Path(__file__).resolve().parents[1] / "fixtures" / "edgex-clients"
C_SDK_REPLY = json.loads((REPLY / "validate-device-reply-device-sdk-c.json").read_text())


@contextlib.asynccontextmanager
async def responder(bus: Bus, service: str, mode: str) -> AsyncIterator[list[dict[str, Any]]]:
    """A device service answering validation requests: ``ok``, ``refuse`` or ``silent``."""
    seen: list[dict[str, Any]] = []
    sub = await bus.subscribe(f"edgex/{service}/validate/device")

    async def run() -> None:
        async for msg in sub:
            request = orjson.loads(msg.payload)
            seen.append(request)
            reply_topic = f"edgex/response/{service}/{request['requestID']}"
            if mode == "ok":
                # Exactly what the C device SDK sends: no requestID in the reply.
                await bus.publish(reply_topic, json.dumps(C_SDK_REPLY).encode())
            elif mode == "refuse":
                await bus.publish(
                    reply_topic,
                    envelope(
                        "protocol 'other' is missing Address",
                        error_code=1,
                        content_type="text/plain",
                    ),
                )

    task = asyncio.create_task(run())
    try:
        yield seen
    finally:
        await sub.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def validating(tmp_path: Any) -> AsyncIterator[Api]:
    service, _ = await make_service(
        "sqlite", tmp_path, device_validation="auto", validation_timeout=0.3
    )
    await service.start()
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as c:
        api = Api(c, service)
        await api.add_service("ds")
        await api.add_service("ds2")
        await api.add_profile("prof")
        yield api
    await service.stop()


async def test_accepted_by_the_owning_service(validating: Api) -> None:
    async with responder(validating.service.bus, "ds", "ok") as seen:
        r = await validating.add_device("d1")
    assert r.json()[0]["statusCode"] == 201
    assert len(seen) == 1
    request = seen[0]
    assert request["requestID"] and request["correlationID"]
    assert request["payload"]["device"]["name"] == "d1"
    assert request["payload"]["apiVersion"] == "v3"


async def test_refused_by_the_owning_service_stores_nothing(validating: Api) -> None:
    async with responder(validating.service.bus, "ds", "refuse"):
        r = await validating.add_device("d1")
    item = r.json()[0]
    assert item["statusCode"] == 500
    assert "Device d1 validation failed" in item["message"] and "Address" in item["message"]
    assert (await validating.get("/device/check/name/d1")).status_code == 404


async def test_silent_service_is_503_and_stores_nothing(validating: Api) -> None:
    async with responder(validating.service.bus, "ds", "silent"):
        r = await validating.add_device("d1")
    item = r.json()[0]
    assert item["statusCode"] == 503 and "did not answer" in item["message"]
    assert (await validating.get("/device/check/name/d1")).status_code == 404


async def test_bypass_and_force_skip_validation(validating: Api) -> None:
    async with responder(validating.service.bus, "ds", "silent") as seen:
        r = await validating.post(
            "/device",
            [
                {
                    "apiVersion": "v3",
                    "device": {
                        "name": "d1",
                        "serviceName": "ds",
                        "adminState": "UNLOCKED",
                        "operatingState": "UP",
                        "protocols": {},
                    },
                }
            ],
            bypassValidation="true",
        )
        assert r.json()[0]["statusCode"] == 201
        r = await validating.post(
            "/device",
            [
                {
                    "apiVersion": "v3",
                    "device": {
                        "name": "d2",
                        "serviceName": "ds",
                        "adminState": "UNLOCKED",
                        "operatingState": "UP",
                        "protocols": {},
                    },
                }
            ],
            force="true",
        )
        assert r.json()[0]["statusCode"] == 201
    assert seen == []


async def test_patch_asks_the_new_owner(validating: Api) -> None:
    r = await validating.add_device("d1")  # nobody listens on ds: accepted (auto mode)
    assert r.json()[0]["statusCode"] == 201
    async with (
        responder(validating.service.bus, "ds2", "refuse"),
        responder(validating.service.bus, "ds", "ok") as old,
    ):
        r = await validating.patch(
            "/device", [{"apiVersion": "v3", "device": {"name": "d1", "serviceName": "ds2"}}]
        )
    assert r.json()[0]["statusCode"] == 500
    assert old == []  # EdgeX asks the new owner only
    assert (await validating.get("/device/name/d1")).json()["device"]["serviceName"] == "ds"


async def test_auto_mode_accepts_when_no_device_service_listens(validating: Api) -> None:
    r = await validating.add_device("d1")
    assert r.json()[0]["statusCode"] == 201


async def test_always_mode_is_503_when_nobody_answers(tmp_path: Any) -> None:
    service, _ = await make_service(
        "sqlite", tmp_path, device_validation="always", validation_timeout=0.2
    )
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as c:
        api = Api(c, service)
        await api.add_service("ds")
        r = await api.post(
            "/device",
            [
                {
                    "apiVersion": "v3",
                    "device": {
                        "name": "d1",
                        "serviceName": "ds",
                        "adminState": "UNLOCKED",
                        "operatingState": "UP",
                        "protocols": {},
                    },
                }
            ],
        )
        assert r.json()[0]["statusCode"] == 503
    await service.store.close()
