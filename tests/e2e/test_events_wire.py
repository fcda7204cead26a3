"""System events on a real broker, exactly as EdgeX consumers see them: topic (subject on NATS),
MessageEnvelope and SystemEvent fields, for every type and action, published by ``edgemeta
serve`` in its own process and read by plain MQTT and NATS clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.wire import (
    Api,
    LiveMqtt,
    LiveNats,
    Received,
    Subscriber,
    device_doc,
    jetstream_stream,
    profile_doc,
    running,
    service_doc,
    serving,
    subject,
)
from tests.support import servers

pytestmark = pytest.mark.slow

KINDS = [pytest.param("mqtt", marks=pytest.mark.mqtt), pytest.param("nats", marks=pytest.mark.nats)]


@dataclass(frozen=True)
class Expected:
    """One event a request must cause."""

    topic: str  # after the prefix
    type: str
    action: str
    owner: str
    name: str
    revision: int
    cid: str  # the request's X-Correlation-ID
    after_ns: int  # the request was sent after this ...
    before_ns: int  # ... and answered before this


class Scenario:
    """Runs requests and notes the events each must cause."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.expected: list[Expected] = []

    async def do(
        self,
        method: str,
        path: str,
        key: str | None,
        item: Mapping[str, object] | None,
        events: list[tuple[str, str, str, str, int]],
        status: int,
    ) -> None:
        """One request; ``events``: (type, action, owner, name, revision), profile level
        derived from the record."""
        t0 = time.time_ns()
        if key is None:
            r = await self.api.call(method, path)
            assert r.status_code == status, r.text
        else:
            assert item is not None
            result = await self.api.one(method, path, key, item)
            assert result["statusCode"] == status, result
        t1 = time.time_ns()
        for type_, action, owner, name, revision in events:
            profile = "" if type_ == "deviceservice" else "prof"
            topic = f"system-events/core-metadata/{type_}/{action}/{owner}"
            topic += f"/{profile}" if profile else ""
            self.expected.append(
                Expected(topic, type_, action, owner, name, revision, self.api.last_cid, t0, t1)
            )


async def _scenario(api: Api) -> list[Expected]:
    s = Scenario(api)
    watcher = {
        "name": "w",
        "serviceName": "ds",
        "identifiers": {"address": "10.0.0.*"},
        "adminState": "UNLOCKED",
        "discoveredDevice": {"profileName": "prof", "adminState": "UNLOCKED"},
    }
    ds, dp, dv, pw = "deviceservice", "deviceprofile", "device", "provisionwatcher"
    await s.do(
        "POST", "/deviceservice", "service", service_doc("ds"), [(ds, "add", "ds", "ds", 1)], 201
    )
    await s.do(
        "POST", "/deviceservice", "service", service_doc("ds2"), [(ds, "add", "ds2", "ds2", 1)], 201
    )
    await s.do(
        "POST",
        "/deviceprofile",
        "profile",
        profile_doc("prof"),
        [(dp, "add", "core-metadata", "prof", 1)],
        201,
    )
    await s.do(
        "POST",
        "/device",
        "device",
        device_doc("d1", "ds", "prof"),
        [(dv, "add", "ds", "d1", 1)],
        201,
    )
    await s.do(
        "POST",
        "/device",
        "device",
        device_doc("d2", "ds2", "prof"),
        [(dv, "add", "ds2", "d2", 1)],
        201,
    )
    await s.do(
        "PATCH",
        "/device",
        "device",
        {"name": "d1", "description": "x"},
        [(dv, "update", "ds", "d1", 2)],
        200,
    )
    # A profile update: the general event, then one per service owning a device of it.
    await s.do(
        "PATCH",
        "/deviceprofile/basicinfo",
        "basicinfo",
        {"name": "prof", "model": "M2"},
        [
            (dp, "update", "core-metadata", "prof", 2),
            (dp, "update", "ds", "prof", 2),
            (dp, "update", "ds2", "prof", 2),
        ],
        200,
    )
    # A device moving to another service: the old owner is told, then the new one.
    await s.do(
        "PATCH",
        "/device",
        "device",
        {"name": "d1", "serviceName": "ds2"},
        [(dv, "update", "ds", "d1", 3), (dv, "update", "ds2", "d1", 3)],
        200,
    )
    await s.do(
        "PATCH",
        "/deviceservice",
        "service",
        {"name": "ds2", "adminState": "LOCKED"},
        [(ds, "update", "ds2", "ds2", 2)],
        200,
    )
    await s.do(
        "POST", "/provisionwatcher", "provisionWatcher", watcher, [(pw, "add", "ds", "w", 1)], 201
    )
    await s.do(
        "PATCH",
        "/provisionwatcher",
        "provisionWatcher",
        {"name": "w", "adminState": "LOCKED"},
        [(pw, "update", "ds", "w", 2)],
        200,
    )
    await s.do(
        "DELETE", "/provisionwatcher/name/w", None, None, [(pw, "delete", "ds", "w", 3)], 200
    )
    await s.do("DELETE", "/device/name/d1", None, None, [(dv, "delete", "ds2", "d1", 4)], 200)
    await s.do("DELETE", "/device/name/d2", None, None, [(dv, "delete", "ds2", "d2", 2)], 200)
    await s.do(
        "DELETE",
        "/deviceprofile/name/prof",
        None,
        None,
        [(dp, "delete", "core-metadata", "prof", 3)],
        200,
    )
    await s.do(
        "DELETE", "/deviceservice/name/ds2", None, None, [(ds, "delete", "ds2", "ds2", 3)], 200
    )
    return s.expected


def _check(got: list[Received], expected: list[Expected], prefix: str) -> None:
    assert [m.topic for m in got] == [f"{prefix}/{e.topic}" for e in expected]
    for m, e in zip(got, expected, strict=True):
        env = m.envelope
        assert list(env) == [
            "apiVersion",
            "receivedTopic",
            "correlationID",
            "requestID",
            "errorCode",
            "payload",
            "contentType",
        ]
        assert env["apiVersion"] == "v3"
        assert env["receivedTopic"] == ""  # the receiver fills it in, as in EdgeX
        assert env["correlationID"] == e.cid
        assert env["requestID"] == ""
        assert env["errorCode"] == 0
        assert env["contentType"] == "application/json"
        ev = env["payload"]
        assert isinstance(ev, dict)  # a JSON object, EdgeX 4's default, not base64
        assert list(ev) == [
            "apiVersion",
            "type",
            "action",
            "source",
            "owner",
            "tags",
            "details",
            "timestamp",
        ]
        assert (ev["apiVersion"], ev["source"]) == ("v3", "core-metadata")
        assert (ev["type"], ev["action"], ev["owner"]) == (e.type, e.action, e.owner)
        assert ev["details"]["name"] == e.name
        assert ev["tags"]["revision"] == str(e.revision)
        # Nanoseconds, taken while the request was being served (in its transaction).
        assert e.after_ns <= ev["timestamp"] <= e.before_ns
    ids = [m.event_id for m in got]
    assert len(set(ids)) == len(ids)
    by_topic = {m.topic: m for m in got}
    moved = [m for m in got if m.record == ("device", "d1") and m.revision == 3]
    # The old and the new owner get the same device, the one now owned by the new service.
    assert {m.event["details"]["serviceName"] for m in moved} == {"ds2"}
    assert by_topic[f"{prefix}/system-events/core-metadata/device/add/ds/prof"].event["details"][
        "id"
    ]


@pytest.fixture
def prefix() -> str:
    return servers.unique("e2e")


@pytest.fixture(params=KINDS)
async def broker(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[tuple[str, str]]:
    """(kind, url) of the machine's broker; on NATS with a stream of the test's own."""
    kind: str = request.param
    url = servers.MQTT_URL if kind == "mqtt" else servers.NATS_URL
    servers.require(url, f"{kind} broker")
    if kind == "mqtt":
        yield kind, url
        return
    async with jetstream_stream(url, prefix):
        yield kind, url


def _subscribers(kind: str, url: str, prefix: str) -> tuple[Subscriber, Subscriber]:
    """Everything, and what a device service called ``ds`` subscribes to (EdgeX's filter)."""
    everything = f"{prefix}/system-events/#"
    mine = f"{prefix}/system-events/core-metadata/+/+/ds/#"
    if kind == "mqtt":
        return LiveMqtt(url, [everything]), LiveMqtt(url, [mine])
    # "#" becomes ">", which does not match the parent level: EdgeX services on NATS
    # subscribe to a service's own deviceservice topic (no profile level) separately.
    return (
        LiveNats(url, [subject(everything), subject(everything)[:-2]]),
        LiveNats(url, [subject(mine), subject(mine)[:-2]]),
    )


async def test_every_type_and_action_on_the_wire(
    broker: tuple[str, str], prefix: str, tmp_path: Path
) -> None:
    kind, url = broker
    args = ("--bus-url", url, "--bus-prefix", prefix, "--device-validation", "never")
    everything, mine = _subscribers(kind, url, prefix)
    with serving(tmp_path, *args) as p:
        async with running(everything), running(mine):
            api = Api(p.url)
            try:
                expected = await _scenario(api)
            finally:
                await api.close()
            got = await everything.wait_unique(len(expected), within=15)
            await asyncio.sleep(0.3)  # anything extra would show now
            _check(everything.snapshot(), expected, prefix)
            owned = [e for e in expected if e.owner == "ds"]
            await mine.wait_unique(len(owned), within=5)
            _check(mine.snapshot(), owned, prefix)
    assert len(got) == len(expected) == 19
    kinds = {(m.event["type"], m.event["action"]) for m in got}
    assert kinds == {
        (t, a)
        for t in ("device", "deviceprofile", "deviceservice", "provisionwatcher")
        for a in ("add", "update", "delete")
    }
