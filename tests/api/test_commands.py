"""core-command end to end: commands listed, read and set through the owning device service
(a wire-level fake, tests/support/fakeds.py) on SQLite and PostgreSQL, over the in-process bus
and a real Mosquitto; every refusal answers its status and puts nothing on the bus; a pushed
event lands in core-data; a command during a move reaches the new owner only."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from edgemeta.bootstrap import Service
from edgemeta.ports import Message
from tests.support import servers
from tests.support.api import BACKENDS, Api, make_service, stuck_move
from tests.support.fakeds import FakeDeviceService
from tests.support.schema import drop_schema

PROFILE: dict[str, Any] = {
    "name": "thermo",
    "deviceResources": [
        {"name": "temp", "properties": {"valueType": "Float32", "readWrite": "R"}},
        {
            "name": "setpoint",
            "properties": {
                "valueType": "Float32",
                "readWrite": "RW",
                "minimum": 10,
                "maximum": 30,
            },
        },
        {
            "name": "mode",
            "properties": {
                "valueType": "String",
                "readWrite": "RW",
                "optional": {"allowedValues": ["auto", "manual"]},
            },
        },
        {"name": "count", "properties": {"valueType": "Int16", "readWrite": "RW"}},
        {
            "name": "secret",
            "isHidden": True,
            "properties": {"valueType": "String", "readWrite": "RW"},
        },
    ],
    "deviceCommands": [
        {
            "name": "climate",
            "readWrite": "RW",
            "resourceOperations": [{"deviceResource": "setpoint"}, {"deviceResource": "mode"}],
        },
        {
            "name": "internal",
            "readWrite": "R",
            "isHidden": True,
            "resourceOperations": [{"deviceResource": "temp"}],
        },
    ],
}
TYPES = {"temp": "Float32", "setpoint": "Float32", "mode": "String", "count": "Int16"}


@dataclass
class Rig:
    """A started edgemeta, clients of its core-metadata and core-command ports, two fake
    device services (``ds1`` owns ``dev``) and every command request seen on the bus."""

    service: Service
    meta: Api
    command: httpx.AsyncClient
    data: httpx.AsyncClient
    ds1: FakeDeviceService
    ds2: FakeDeviceService
    on_bus: list[Message]
    prefix: str
    watcher: asyncio.Task[None]

    async def stop_watching(self) -> None:
        """Stop the bus spy (it is a listener too: the bus would not say nobody listens)."""
        self.watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.watcher

    async def nothing_more_sent(self, before: int) -> None:
        """Give a stray request time to cross the broker, then show none did."""
        await asyncio.sleep(0.05)
        assert len(self.on_bus) == before, [m.topic for m in self.on_bus[before:]]


@contextlib.asynccontextmanager
async def rig(backend: str, bus: str, tmp_path: Any, **settings: Any) -> AsyncIterator[Rig]:
    prefix = servers.unique("cmd")
    client_id = servers.unique("edgemeta-cd")
    if bus == "mqtt":
        servers.require(servers.MQTT_URL, "Mosquitto")
        settings.update(bus_url=servers.MQTT_URL, data_client_id=client_id)
    settings.setdefault("command_timeout", 1.0)
    settings.setdefault("move_release_deadline", 0.1)
    service, schema = await make_service(backend, tmp_path, bus_prefix=prefix, **settings)
    await service.start()
    assert service.command_app is not None and service.data_app is not None
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
    ds2 = FakeDeviceService(service.bus, "ds2", "thermo", TYPES, prefix=prefix)
    await ds1.start()
    await ds2.start()
    meta_t = httpx.ASGITransport(app=service.app)
    cmd_t = httpx.ASGITransport(app=service.command_app)
    data_t = httpx.ASGITransport(app=service.data_app)
    try:
        async with (
            httpx.AsyncClient(transport=meta_t, base_url="http://meta") as mc,
            httpx.AsyncClient(transport=cmd_t, base_url="http://cmd") as cc,
            httpx.AsyncClient(transport=data_t, base_url="http://data") as dc,
        ):
            meta = Api(mc, service)
            await meta.add_service("ds1")
            await meta.add_service("ds2")
            r = await meta.post("/deviceprofile", [{"apiVersion": "v3", "profile": PROFILE}])
            assert r.json()[0]["statusCode"] == 201, r.text
            r = await meta.add_device("dev", "ds1", "thermo")
            assert r.json()[0]["statusCode"] == 201, r.text
            yield Rig(service, meta, cc, dc, ds1, ds2, seen, prefix, watcher)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await ds1.stop()
        await ds2.stop()
        await service.stop()
        if schema:
            await drop_schema(schema)
        if bus == "mqtt":
            await servers.forget_mqtt_session(client_id)  # core-data's, on the shared broker


BUSES = [pytest.param("memory"), pytest.param("mqtt", marks=pytest.mark.mqtt)]


@pytest.mark.parametrize("bus", BUSES)
@pytest.mark.parametrize("backend", BACKENDS)
async def test_read_and_set_end_to_end(backend: str, bus: str, tmp_path: Any) -> None:
    async with rig(backend, bus, tmp_path) as r:
        listed = await r.command.get("/api/v3/device/name/dev")
        assert listed.status_code == 200, listed.text
        commands = {c["name"]: c for c in listed.json()["deviceCoreCommand"]["coreCommands"]}
        # hidden command and hidden resource not offered; resources are commands too
        assert set(commands) == {"climate", "temp", "setpoint", "mode", "count"}
        assert commands["temp"]["get"] and not commands["temp"]["set"]
        assert commands["climate"]["parameters"] == [
            {"resourceName": "setpoint", "valueType": "Float32"},
            {"resourceName": "mode", "valueType": "String"},
        ]
        assert commands["climate"]["path"] == "/api/v3/device/name/dev/climate"
        every = (await r.command.get("/api/v3/device/all", params={"limit": 5})).json()
        assert every["totalCount"] == 1 and every["deviceCoreCommands"][0]["deviceName"] == "dev"

        s = await r.command.put(
            "/api/v3/device/name/dev/climate", json={"setpoint": 21.5, "mode": "auto"}
        )
        assert s.status_code == 200, s.text
        assert r.ds1.received[-1].settings == {"setpoint": "21.5", "mode": "auto"}
        g = await r.command.get("/api/v3/device/name/dev/setpoint")
        assert g.status_code == 200, g.text
        event = g.json()["event"]
        assert event["deviceName"] == "dev" and event["readings"][0]["value"] == "21.5"
        assert r.ds1.received[-1].query == {"ds-pushevent": "false", "ds-returnevent": "true"}
        assert [x.device for x in r.ds2.received] == []
        # ds-returnevent=false: answered, no event
        g = await r.command.get("/api/v3/device/name/dev/temp", params={"ds-returnevent": "false"})
        assert g.status_code == 200 and "event" not in g.json()


REFUSALS = [
    ("get", "nodev", "temp", None, 404, "device 'nodev'"),
    ("get", "dev", "nocommand", None, 404, "command 'nocommand'"),
    ("get", "dev", "secret", None, 404, "command 'secret'"),  # hidden
    ("get", "dev", "internal", None, 404, "command 'internal'"),  # hidden
    ("put", "dev", "temp", {"temp": "3"}, 400, "read-only"),
    ("put", "dev", "count", {"count": "12.5"}, 400, "resource 'count', value '12.5': not a"),
    ("put", "dev", "count", {"count": 40000}, 400, "not a Int16"),
    ("put", "dev", "setpoint", {"setpoint": 9.5}, 400, "below the minimum 10"),
    ("put", "dev", "setpoint", {"setpoint": "30.01"}, 400, "above the maximum 30"),
    ("put", "dev", "mode", {"mode": "turbo"}, 400, "allowed values"),
    ("put", "dev", "climate", {"setpoint": 20, "count": 1}, 400, "not a resource of command"),
    ("put", "dev", "climate", {}, 400, "at least one value"),
    ("get", "dev", "temp?ds-pushevent=maybe", None, 400, "ds-pushevent"),
]


@pytest.mark.parametrize("bus", BUSES)
@pytest.mark.parametrize("backend", BACKENDS)
async def test_every_refusal_answers_its_status_and_sends_nothing(
    backend: str, bus: str, tmp_path: Any
) -> None:
    async with rig(backend, bus, tmp_path) as r:
        before = len(r.on_bus)
        for method, device, command, body, status, words in REFUSALS:
            url = f"/api/v3/device/name/{device}/{command}"
            if method == "get":
                a = await r.command.get(url)
            else:
                a = await r.command.put(url, json=body)
            assert a.status_code == status, (command, body, a.text)
            assert a.json()["statusCode"] == status and words in a.json()["message"], a.text
        # locked device, then locked service: 423
        p = await r.meta.patch(
            "/device", [{"apiVersion": "v3", "device": {"name": "dev", "adminState": "LOCKED"}}]
        )
        assert p.json()[0]["statusCode"] == 200, p.text
        a = await r.command.put("/api/v3/device/name/dev/setpoint", json={"setpoint": 20})
        assert a.status_code == 423 and "locked" in a.json()["message"]
        p = await r.meta.patch(
            "/device", [{"apiVersion": "v3", "device": {"name": "dev", "adminState": "UNLOCKED"}}]
        )
        p = await r.meta.patch(
            "/deviceservice",
            [{"apiVersion": "v3", "service": {"name": "ds1", "adminState": "LOCKED"}}],
        )
        assert p.json()[0]["statusCode"] == 200, p.text
        a = await r.command.get("/api/v3/device/name/dev/temp")
        assert a.status_code == 423 and "'ds1'" in a.json()["message"]
        await r.nothing_more_sent(before)
        assert r.ds1.received == [] and r.ds2.received == []


@pytest.mark.parametrize("backend", BACKENDS)
async def test_push_event_is_stored_in_core_data(backend: str, tmp_path: Any) -> None:
    async with rig(backend, "memory", tmp_path) as r:
        g = await r.command.get(
            "/api/v3/device/name/dev/temp",
            params={"ds-pushevent": "true", "ds-returnevent": "false"},
        )
        assert g.status_code == 200, g.text
        deadline = time.monotonic() + 5
        while True:
            c = (await r.data.get("/api/v3/event/count/device/name/dev")).json()["count"]
            if c == 1 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        assert c == 1
        readings = (await r.data.get("/api/v3/reading/device/name/dev")).json()["readings"]
        assert [x["resourceName"] for x in readings] == ["temp"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_no_answer_is_504_and_nobody_listening_is_503(backend: str, tmp_path: Any) -> None:
    async with rig(backend, "memory", tmp_path, command_timeout=0.2) as r:
        r.ds1.silent = True
        a = await r.command.get("/api/v3/device/name/dev/temp")
        assert a.status_code == 504 and "did not answer" in a.json()["message"], a.text
        # unanswered, the request may still be queued at ds1: its hold fences moves until it
        # expires (the timeout plus a margin), not just until the 504
        async with r.service.store.write() as tx:
            until = await tx.moves.commands_in_flight("dev", int(time.time() * 1000))
        assert until is not None and until > int(time.time() * 1000) + 1000, until
        await r.ds1.stop()
        await r.stop_watching()
        a = await r.command.get("/api/v3/device/name/dev/temp")
        assert a.status_code == 503 and "does not listen" in a.json()["message"], a.text


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_command_during_a_move_goes_to_the_new_owner(backend: str, tmp_path: Any) -> None:
    # ds1 cannot confirm releases: the move waits out its release deadline, holding the command
    async with rig(backend, "memory", tmp_path, move_release_deadline=0.5) as r:
        body = {"deviceName": "dev", "serviceName": "ds2"}
        move = asyncio.create_task(
            r.meta.post("/device/reassign", [{"apiVersion": "v3", "reassign": body}])
        )
        # wait until the move is under way, then command
        async with asyncio.timeout(5):
            while True:
                async with r.service.store.read() as tx:
                    if await tx.moves.active("dev") is not None:
                        break
                await asyncio.sleep(0.005)
        a = await r.command.put("/api/v3/device/name/dev/setpoint", json={"setpoint": 25})
        moved = await move
        move_doc = moved.json()[0]["move"]
        assert move_doc["state"] == "assigned", moved.text
        assert move_doc["steps"][3]["outcome"] != "nobody serving", moved.text
        assert a.status_code == 200, a.text
        assert [x.settings for x in r.ds2.received] == [{"setpoint": "25"}]
        assert r.ds1.received == []


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_move_waits_for_a_command_on_its_way_to_the_old_owner(
    backend: str, tmp_path: Any
) -> None:
    # The race of issue 11: core-command found ds1 the owner and sent the command; a move
    # starting now must not tell ds1 to release the device before ds1 has answered.
    async with rig(backend, "memory", tmp_path, move_release_deadline=0.1) as r:
        r.ds1.answer_delay = 0.4
        command = asyncio.create_task(r.command.get("/api/v3/device/name/dev/temp"))
        async with asyncio.timeout(5):
            while not r.ds1.received:
                await asyncio.sleep(0.005)
        async with r.service.store.write() as tx:
            assert await tx.moves.commands_in_flight("dev", 0) is not None  # the hold
        body = {"deviceName": "dev", "serviceName": "ds2"}
        moved = await r.meta.post("/device/reassign", [{"apiVersion": "v3", "reassign": body}])
        answer = await command
        assert answer.status_code == 200, answer.text
        move_doc = moved.json()[0]["move"]
        assert move_doc["state"] == "assigned", moved.text
        commit = next(s for s in move_doc["steps"] if s["step"] == "commit")
        assert commit["at"] >= r.ds1.answered_at[0], (commit, r.ds1.answered_at)
        async with r.service.store.write() as tx:
            assert await tx.moves.commands_in_flight("dev", 0) is None  # dropped on the answer
        # the next command goes to the new owner
        again = await r.command.get("/api/v3/device/name/dev/temp")
        assert again.status_code == 200 and len(r.ds2.received) == 1, again.text


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_move_that_does_not_end_in_time_is_409_naming_it(
    backend: str, tmp_path: Any
) -> None:
    async with rig(backend, "memory", tmp_path, command_move_wait=0.1) as r:
        await stuck_move(r.service, "move-stuck-1")
        before = len(r.on_bus)
        a = await r.command.get("/api/v3/device/name/dev/temp")
        assert a.status_code == 409 and "move-stuck-1" in a.json()["message"], a.text
        await r.nothing_more_sent(before)
