"""A rig for commands from the north: edgemeta with its north bridge on a real Mosquitto (its
own topics, so tests share the broker), the wire-level fake device services of
tests/api/test_commands.py on the internal bus, a spy on the internal command topics, and a
cloud-side MQTT client that sends requests and waits for the answer with their requestID."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import httpx
import orjson

from edgemeta.bootstrap import Service
from edgemeta.ports import Message
from tests.api.test_commands import PROFILE, TYPES
from tests.support import servers
from tests.support.api import Api, make_service
from tests.support.auth import api_key, bearer
from tests.support.fakeds import FakeDeviceService
from tests.support.schema import drop_schema


@dataclass
class Answer:
    """A north answer, decoded."""

    topic: str
    envelope: dict[str, Any]

    @property
    def error_code(self) -> int:
        return int(self.envelope["errorCode"])

    @property
    def body(self) -> dict[str, Any]:
        payload = self.envelope["payload"]
        decoded: dict[str, Any] = orjson.loads(base64.b64decode(payload))
        return decoded

    @property
    def status(self) -> int:
        return int(self.body["statusCode"])


@dataclass
class Cloud:
    """The cloud application: publishes requests on the external broker, collects answers."""

    client: aiomqtt.Client
    root: str  # the test's own first topic level, in place of "edgex"
    answers: list[Answer] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def collect(self) -> None:
        async for m in self.client.messages:
            raw = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
            self.answers.append(Answer(m.topic.value, orjson.loads(raw)))
            self.arrived.set()

    async def send(self, topic: str, raw: bytes) -> None:
        await self.client.publish(f"{self.root}/{topic}", raw, qos=1)

    async def wait_for(self, request_id: str, timeout: float = 5.0) -> Answer:
        async with asyncio.timeout(timeout):
            while True:
                for a in self.answers:
                    if a.envelope.get("requestID") == request_id:
                        return a
                self.arrived.clear()
                await self.arrived.wait()

    async def ask(
        self,
        topic: str,
        *,
        query: dict[str, str] | None = None,
        payload: Any = None,
        embedded: bool = False,
        credential: str = "",
    ) -> Answer:
        """One request (``topic`` below the root) and its answer."""
        rid = str(uuid.uuid4())
        params = dict(query or {})
        if credential:
            params["Authorization"] = bearer(credential)["Authorization"]
        encoded = payload
        if payload is not None and not embedded:
            encoded = base64.b64encode(orjson.dumps(payload)).decode()
        env = {
            "apiVersion": "v3",
            "requestID": rid,
            "correlationID": str(uuid.uuid4()),
            "contentType": "application/json",
            "queryParams": params,
            "payload": encoded,
        }
        await self.send(topic, orjson.dumps(env))
        return await self.wait_for(rid)


@dataclass
class North:
    """A started edgemeta with its north bridge, a cloud client, and what reached the bus."""

    service: Service
    meta: Api
    cloud: Cloud
    ds1: FakeDeviceService
    on_bus: list[Message]
    admin_key: str

    async def nothing_more_sent(self, before: int) -> None:
        """Give a stray request time to cross the internal bus, then show none did."""
        await asyncio.sleep(0.05)
        assert len(self.on_bus) == before, [m.topic for m in self.on_bus[before:]]


def north_settings(root: str, url: str) -> dict[str, Any]:
    """The settings that turn the bridge on, with the test's own topics."""
    return {
        "north_mqtt_url": url,
        "north_query_request_topic": f"{root}/commandquery/request/#",
        "north_query_response_topic": f"{root}/commandquery/response",
        "north_command_request_topic": f"{root}/command/request/#",
        "north_command_response_topic_prefix": f"{root}/command/response",
    }


@contextlib.asynccontextmanager
async def north(
    backend: str,
    tmp_path: Any,
    *,
    bus: str = "memory",
    url: str = "",
    cloud: dict[str, Any] | None = None,
    **settings: Any,
) -> AsyncIterator[North]:
    """edgemeta with the north bridge on ``url`` (the shared Mosquitto by default), device
    ``dev`` of profile ``thermo`` owned by the fake ``ds1``; ``cloud``: how the cloud client
    connects (``aiomqtt.Client`` arguments; by default to ``url``)."""
    servers.require(servers.MQTT_URL, "Mosquitto")
    url = url or servers.MQTT_URL
    root = servers.unique("north")
    prefix = servers.unique("cmd")
    client_id = servers.unique("edgemeta-cd")
    if bus == "mqtt":
        settings.update(bus_url=servers.MQTT_URL, data_client_id=client_id)
    settings.setdefault("command_timeout", 1.0)
    service, schema = await make_service(
        backend, tmp_path, bus_prefix=prefix, **north_settings(root, url), **settings
    )
    headers: dict[str, str] = {}
    admin = ""
    if service.authenticator is not None:
        admin = await api_key(service, "admin")
        headers = bearer(admin)
    await service.start()
    assert service.north is not None
    spy = await service.bus.subscribe(f"{prefix}/device/command/request/#")
    seen: list[Message] = []

    async def watch() -> None:
        try:
            while True:
                seen.append(await spy.get())
        finally:
            await spy.close()

    watcher = asyncio.create_task(watch())
    ds1 = FakeDeviceService(service.bus, "ds1", "thermo", TYPES, prefix=prefix)
    await ds1.start()
    if cloud is None:
        host, port = url.removeprefix("mqtt://").split(":")
        cloud = {"hostname": host, "port": int(port)}
    try:
        async with (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=service.app),
                base_url="http://meta",
                headers=headers,
            ) as mc,
            aiomqtt.Client(**cloud, identifier=servers.unique("cloud")) as client,
        ):
            await client.subscribe(f"{root}/commandquery/response", qos=1)
            await client.subscribe(f"{root}/command/response/#", qos=1)
            app = Cloud(client, root)
            collector = asyncio.create_task(app.collect())
            meta = Api(mc, service)
            await meta.add_service("ds1")
            r = await meta.post("/deviceprofile", [{"apiVersion": "v3", "profile": PROFILE}])
            assert r.json()[0]["statusCode"] == 201, r.text
            r = await meta.add_device("dev", "ds1", "thermo")
            assert r.json()[0]["statusCode"] == 201, r.text
            await asyncio.wait_for(service.north.ready.wait(), 10)
            try:
                yield North(service, meta, app, ds1, seen, admin)
            finally:
                collector.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await collector
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await ds1.stop()
        await service.stop()
        if schema:
            await drop_schema(schema)
        if bus == "mqtt":
            await servers.forget_mqtt_session(client_id)  # core-data's, on the shared broker
