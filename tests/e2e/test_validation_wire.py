"""EdgeX's device-validation round trip over real brokers: ``edgemeta serve`` asks the owning
device service on ``<prefix>/<svc>/validate/device``; a plain aiomqtt or nats-py client plays
the device service and answers on ``<prefix>/response/<svc>/<requestID>`` the way the C device
SDK does (no ``requestID`` in the reply), refuses with ``errorCode: 1``, or stays silent."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import nats
import orjson
import pytest

from tests.e2e.wire import (
    Api,
    device_doc,
    host_port,
    jetstream_stream,
    profile_doc,
    service_doc,
    serving,
)
from tests.support import servers

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "edgex-clients"
C_SDK_REPLY = (FIXTURES / "validate-device-reply-device-sdk-c.json").read_bytes()
REASON = "protocol 'other' is missing Address"
TIMEOUT = 1.0  # EDGEMETA_VALIDATION_TIMEOUT


def _refusal() -> bytes:
    """A device service's refusal, built by hand as go-mod-messaging would send it."""
    return json.dumps(
        {
            "apiVersion": "v3",
            "receivedTopic": "",
            "correlationID": "corr-refused",
            "requestID": "",
            "errorCode": 1,
            "payload": REASON,
            "contentType": "text/plain",
        }
    ).encode()


def _reply(mode: str) -> bytes | None:
    return {"ok": C_SDK_REPLY, "refuse": _refusal(), "silent": None}[mode]


@contextlib.asynccontextmanager
async def mqtt_device_service(
    url: str, prefix: str, service: str, mode: str
) -> AsyncIterator[list[tuple[str, dict[str, Any]]]]:
    """A device service on MQTT; yields the (topic, envelope) of every request it got."""
    host, port = host_port(url, 1883)
    seen: list[tuple[str, dict[str, Any]]] = []
    async with aiomqtt.Client(host, port, identifier=f"{service}-{prefix}") as client:
        await client.subscribe(f"{prefix}/{service}/validate/device", qos=1)

        async def answer() -> None:
            async for msg in client.messages:
                assert isinstance(msg.payload, bytes)
                request = orjson.loads(msg.payload)
                seen.append((msg.topic.value, request))
                reply = _reply(mode)
                if reply is not None:
                    topic = f"{prefix}/response/{service}/{request['requestID']}"
                    await client.publish(topic, reply, qos=1)

        task = asyncio.create_task(answer())
        try:
            yield seen
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def nats_device_service(
    url: str, prefix: str, service: str, mode: str
) -> AsyncIterator[list[tuple[str, dict[str, Any]]]]:
    """A device service on NATS (subjects: EdgeX's mapping of the topics)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    nc = await nats.connect(url)

    async def on_request(msg: Any) -> None:
        request = orjson.loads(msg.data)
        seen.append((msg.subject.replace(".", "/"), request))
        reply = _reply(mode)
        if reply is not None:
            await nc.publish(f"{prefix}.response.{service}.{request['requestID']}", reply)

    await nc.subscribe(f"{prefix}.{service}.validate.device", cb=on_request)
    await nc.flush()
    try:
        yield seen
    finally:
        await nc.close()


@pytest.mark.parametrize(
    "kind",
    [pytest.param("mqtt", marks=pytest.mark.mqtt), pytest.param("nats", marks=pytest.mark.nats)],
)
async def test_validation_round_trip(kind: str, tmp_path: Path) -> None:
    url = servers.MQTT_URL if kind == "mqtt" else servers.NATS_URL
    servers.require(url, f"{kind} broker")
    prefix = servers.unique("e2e")
    device_service = mqtt_device_service if kind == "mqtt" else nats_device_service
    env = {"EDGEMETA_VALIDATION_TIMEOUT": str(TIMEOUT)}
    # The default validation mode ("auto") asks the device service on a real broker.
    args = ("--bus-url", url, "--bus-prefix", prefix)
    async with contextlib.AsyncExitStack() as stack:
        if kind == "nats":
            await stack.enter_async_context(jetstream_stream(url, prefix))
        p = stack.enter_context(serving(tmp_path, *args, env=env))
        api = Api(p.url)
        stack.push_async_callback(api.close)
        services = ["ds-ok", "ds-refuse", "ds-silent"]
        assert (
            await api.batch("POST", "/deviceservice", "service", [service_doc(s) for s in services])
            == [201] * 3
        )
        assert (await api.one("POST", "/deviceprofile", "profile", profile_doc("prof")))[
            "statusCode"
        ] == 201
        ok = await stack.enter_async_context(device_service(url, prefix, "ds-ok", "ok"))
        refuse = await stack.enter_async_context(device_service(url, prefix, "ds-refuse", "refuse"))
        silent = await stack.enter_async_context(device_service(url, prefix, "ds-silent", "silent"))

        # Accepted: 201, stored; the request is EdgeX's.
        result = await api.one("POST", "/device", "device", device_doc("d-ok", "ds-ok", "prof"))
        assert result["statusCode"] == 201, result
        http_cid = api.last_cid
        assert (await api.call("GET", "/device/name/d-ok")).status_code == 200
        assert len(ok) == 1
        topic, request = ok[0]
        assert topic == f"{prefix}/ds-ok/validate/device"
        assert request["apiVersion"] == "v3" and request["errorCode"] == 0
        assert request["contentType"] == "application/json"
        assert request["requestID"] and request["requestID"] == request["payload"]["requestId"]
        # A fresh correlation id, not the HTTP request's (as EdgeX does).
        assert request["correlationID"] and request["correlationID"] != http_cid
        assert request["payload"]["apiVersion"] == "v3"
        device = request["payload"]["device"]
        assert (device["name"], device["serviceName"], device["profileName"]) == (
            "d-ok",
            "ds-ok",
            "prof",
        )
        assert device["protocols"] == {"other": {"Address": "d-ok"}}

        # Refused: 500 with the device service's reason; nothing stored.
        result = await api.one("POST", "/device", "device", device_doc("d-no", "ds-refuse", "prof"))
        assert result["statusCode"] == 500, result
        assert "Device d-no validation failed" in result["message"]
        assert REASON in result["message"]
        assert len(refuse) == 1
        assert (await api.call("GET", "/device/name/d-no")).status_code == 404

        # Silent: 503 once the validation timeout is over; nothing stored.
        t0 = time.monotonic()
        result = await api.one(
            "POST", "/device", "device", device_doc("d-mute", "ds-silent", "prof")
        )
        waited = time.monotonic() - t0
        assert result["statusCode"] == 503, result
        assert "did not answer" in result["message"]
        assert TIMEOUT <= waited < TIMEOUT + 3
        assert len(silent) == 1
        assert (await api.call("GET", "/device/name/d-mute")).status_code == 404

        # A move asks the new owner, which refuses: the device stays where it was.
        result = await api.one(
            "PATCH", "/device", "device", {"name": "d-ok", "serviceName": "ds-refuse"}
        )
        assert result["statusCode"] == 500, result
        assert len(refuse) == 2 and refuse[1][1]["payload"]["device"]["serviceName"] == "ds-refuse"
        r = await api.call("GET", "/device/name/d-ok")
        assert r.json()["device"]["serviceName"] == "ds-ok"
