"""Commands from the north over a real Mosquitto: queries (all, one device), get and set end to
end through the owning (fake) device service, every refusal answered with errorCode 1 and its
status while nothing reaches the internal bus, malformed requests answered or dropped without
harming the bridge, and with authentication on 401 / 403 / 200 as the REST routes answer."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.north.kit import north
from tests.support.api import BACKENDS, stuck_move
from tests.support.auth import api_key

pytestmark = pytest.mark.mqtt

BUSES = [pytest.param("memory"), pytest.param("mqtt")]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_query_all_and_by_device(backend: str, tmp_path: Any) -> None:
    async with north(backend, tmp_path) as n:
        await n.meta.add_device("dev2", "ds1", "thermo")
        every = await n.cloud.ask("commandquery/request/all", query={"limit": "1"})
        assert every.topic == f"{n.cloud.root}/commandquery/response"
        assert every.error_code == 0, every.body
        body = every.body
        assert body["statusCode"] == 200 and body["totalCount"] == 2
        assert body["requestId"] == every.envelope["requestID"]
        assert [d["deviceName"] for d in body["deviceCoreCommands"]] == ["dev"]
        second = await n.cloud.ask("commandquery/request/ALL", query={"offset": "1"})
        assert [d["deviceName"] for d in second.body["deviceCoreCommands"]] == ["dev2"]

        one = await n.cloud.ask("commandquery/request/dev")
        assert one.error_code == 0, one.body
        doc = one.body["deviceCoreCommand"]
        assert doc["deviceName"] == "dev" and doc["profileName"] == "thermo"
        commands = {c["name"]: c for c in doc["coreCommands"]}
        # the same offer as the REST route: hidden ones left out, resources are commands too
        assert set(commands) == {"climate", "temp", "setpoint", "mode", "count"}
        assert commands["climate"]["path"] == "/api/v3/device/name/dev/climate"

        missing = await n.cloud.ask("commandquery/request/nodev")
        assert missing.error_code == 1 and missing.status == 404, missing.body
        assert "device 'nodev'" in missing.body["message"]
        bad = await n.cloud.ask("commandquery/request/all", query={"limit": "many"})
        assert bad.error_code == 1 and bad.status == 400, bad.body
        assert n.ds1.received == [] and n.on_bus == []  # a query asks no device service


@pytest.mark.parametrize("bus", BUSES)
@pytest.mark.parametrize("backend", BACKENDS)
async def test_get_and_set_end_to_end(backend: str, bus: str, tmp_path: Any) -> None:
    async with north(backend, tmp_path, bus=bus) as n:
        s = await n.cloud.ask(
            "command/request/dev/climate/set", payload={"setpoint": 21.5, "mode": "auto"}
        )
        assert s.topic == f"{n.cloud.root}/command/response/dev/climate/set"
        assert s.error_code == 0 and s.status == 200, s.body
        assert n.ds1.received[-1].settings == {"setpoint": "21.5", "mode": "auto"}
        # EdgeX 4 embeds the payload as an object: taken too
        s = await n.cloud.ask(
            "command/request/dev/setpoint/set", payload={"setpoint": "22"}, embedded=True
        )
        assert s.error_code == 0 and s.status == 200, s.body
        g = await n.cloud.ask("command/request/dev/setpoint/get", query={"ds-pushevent": "true"})
        assert g.topic == f"{n.cloud.root}/command/response/dev/setpoint/get"
        assert g.error_code == 0 and g.status == 200, g.body
        assert g.body["event"]["readings"][0]["value"] == "22"
        # only the ds-* parameters reach the device service, checked as the REST route does
        assert n.ds1.received[-1].query == {"ds-pushevent": "true", "ds-returnevent": "true"}
        assert g.envelope["correlationID"]  # echoed (the device service saw the same)


REFUSALS = [
    ("command/request/nodev/temp/get", None, {}, 404, "device 'nodev'"),
    ("command/request/dev/nocommand/get", None, {}, 404, "command 'nocommand'"),
    ("command/request/dev/secret/get", None, {}, 404, "command 'secret'"),  # hidden
    ("command/request/dev/temp/set", {"temp": "3"}, {}, 400, "read-only"),
    ("command/request/dev/setpoint/set", {"setpoint": 9.5}, {}, 400, "below the minimum 10"),
    ("command/request/dev/mode/set", {"mode": "turbo"}, {}, 400, "allowed values"),
    ("command/request/dev/temp/get", None, {"ds-pushevent": "maybe"}, 400, "ds-pushevent"),
    ("command/request/dev/setpoint/set", None, {}, 400, "JSON object of resource names"),
]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_every_refusal_answers_its_status_and_sends_nothing(
    backend: str, tmp_path: Any
) -> None:
    async with north(backend, tmp_path) as n:
        for topic, payload, query, status, words in REFUSALS:
            a = await n.cloud.ask(topic, payload=payload, query=query)
            assert a.error_code == 1 and a.status == status, (topic, a.body)
            assert words in a.body["message"], (topic, a.body)
            assert a.body["requestId"] == a.envelope["requestID"]
        p = await n.meta.patch(
            "/device", [{"apiVersion": "v3", "device": {"name": "dev", "adminState": "LOCKED"}}]
        )
        assert p.json()[0]["statusCode"] == 200, p.text
        a = await n.cloud.ask("command/request/dev/setpoint/set", payload={"setpoint": 20})
        assert a.error_code == 1 and a.status == 423 and "locked" in a.body["message"]
        await n.nothing_more_sent(0)
        assert n.ds1.received == []


async def test_no_answer_from_the_device_service_is_504(tmp_path: Any) -> None:
    async with north("sqlite", tmp_path, command_timeout=0.2) as n:
        n.ds1.silent = True
        a = await n.cloud.ask("command/request/dev/temp/get")
        assert a.error_code == 1 and a.status == 504, a.body
        assert "did not answer" in a.body["message"]


async def test_malformed_requests_are_answered_or_dropped_and_the_bridge_serves_on(
    tmp_path: Any,
) -> None:
    async with north("sqlite", tmp_path, max_request_bytes=2048) as n:
        cloud = n.cloud
        # larger than EDGEMETA_MAX_REQUEST_BYTES: 413, as on the REST port
        a = await cloud.ask("command/request/dev/setpoint/set", payload={"setpoint": "1" * 3000})
        assert a.error_code == 1 and a.status == 413, a.body
        # not JSON: the topic names the answer topic, so it is answered (no requestID to echo)
        await cloud.send("command/request/dev/temp/get", b"\x00not json")
        a = await cloud.wait_for("")
        assert a.topic.endswith("/command/response/dev/temp/get")
        assert a.error_code == 1 and a.status == 400 and "MessageEnvelope" in a.body["message"]
        cloud.answers.clear()
        # queryParams of the wrong shape: answered, with the requestID
        await cloud.send(
            "command/request/dev/temp/get",
            orjson.dumps({"requestID": "r-1", "queryParams": {"ds-pushevent": True}}),
        )
        a = await cloud.wait_for("r-1")
        assert a.status == 400 and "queryParams" in a.body["message"], a.body
        # a method that is neither get nor set: answered on the topic it names
        a = await cloud.ask("command/request/dev/temp/delete")
        assert a.topic.endswith("/command/response/dev/temp/delete")
        assert a.status == 400 and "get or set" in a.body["message"]
        # a query topic with more levels than a device name: answered 400
        a = await cloud.ask("commandquery/request/dev/extra")
        assert a.status == 400 and "one device name" in a.body["message"]
        # a command topic without device/command/method names no answer topic: dropped
        before = n.service.north.dropped if n.service.north else -1
        await cloud.send("command/request/dev/get", orjson.dumps({"requestID": "r-2"}))
        # and the bridge still serves the next request
        ok = await cloud.ask("command/request/dev/temp/get")
        assert ok.error_code == 0 and ok.status == 200, ok.body
        assert n.service.north is not None and n.service.north.dropped == before + 1
        assert not [x for x in cloud.answers if x.envelope.get("requestID") == "r-2"]
        assert [x.command for x in n.ds1.received] == ["temp"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_with_security_on_a_credential_and_the_role_are_needed(
    backend: str, tmp_path: Any
) -> None:
    async with north(backend, tmp_path, auth="on") as n:
        reader = await api_key(n.service, "read")
        commander = await api_key(n.service, "command")
        cloud = n.cloud
        # no credential, a bad one: 401, nothing reaches the device
        a = await cloud.ask("command/request/dev/temp/get")
        assert a.error_code == 1 and a.status == 401, a.body
        assert "authentication required" in a.body["message"]
        a = await cloud.ask("command/request/dev/setpoint/set", payload={"setpoint": 20},
                            credential="emk_nope_nope")  # fmt: skip
        assert a.status == 401 and "unknown API key" in a.body["message"], a.body
        a = await cloud.ask("commandquery/request/all")
        assert a.status == 401, a.body
        # the wrong role: 403 naming the roles needed
        a = await cloud.ask("command/request/dev/temp/get", credential=reader)
        assert a.error_code == 1 and a.status == 403, a.body
        assert "needs one of the roles command" in a.body["message"]
        a = await cloud.ask(
            "command/request/dev/setpoint/set", payload={"setpoint": 20}, credential=reader
        )
        assert a.status == 403, a.body
        await n.nothing_more_sent(0)
        assert n.ds1.received == []
        # the right roles: a read may query, the command role may query, read and set
        a = await cloud.ask("commandquery/request/dev", credential=reader)
        assert a.error_code == 0 and a.status == 200, a.body
        a = await cloud.ask("commandquery/request/all", credential=commander)
        assert a.error_code == 0 and a.body["totalCount"] == 1, a.body
        a = await cloud.ask("command/request/dev/temp/get", credential=commander)
        assert a.error_code == 0 and a.status == 200, a.body
        a = await cloud.ask(
            "command/request/dev/setpoint/set", payload={"setpoint": 20}, credential=commander
        )
        assert a.error_code == 0 and a.status == 200, a.body
        # the credential is edgemeta's, not the device service's: it is not passed on
        assert [x.query for x in n.ds1.received] == [
            {"ds-pushevent": "false", "ds-returnevent": "true"}
        ] * 2
        # X-API-Key works as the REST header of that name does
        a = await cloud.ask("command/request/dev/temp/get", query={"X-API-Key": commander})
        assert a.status == 200, a.body


async def test_a_move_that_does_not_end_in_time_is_409_and_sends_nothing(tmp_path: Any) -> None:
    # The same move fence as the REST route: the command waits for the move, then gives up.
    async with north("sqlite", tmp_path, command_move_wait=0.1) as n:
        await stuck_move(n.service, "move-stuck-north")
        a = await n.cloud.ask("command/request/dev/temp/get")
        assert a.error_code == 1 and a.status == 409, a.body
        assert "move-stuck-north" in a.body["message"]
        await n.nothing_more_sent(0)
        assert n.ds1.received == []
