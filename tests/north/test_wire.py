"""The north's topics and envelopes, without a broker: which request a topic names and where
its answer goes (escaped names, shared subscriptions, overlapping request topics), what an
envelope carries, the answer's shape, and what /config tells of the north (no password)."""

from __future__ import annotations

import base64

import orjson
import pytest

from edgemeta.bootstrap import command_config_document
from edgemeta.domain.errors import ContractInvalid
from edgemeta.north import wire
from edgemeta.north.wire import Operation, Topics
from edgemeta.settings import Settings

T = Topics()


def test_command_topics_name_device_command_method_and_the_answer_topic() -> None:
    r = wire.route(T, "edgex/command/request/a%2Fb/temp/GET")
    assert r is not None and not r.problem
    assert (r.operation, r.device, r.command) == (Operation.GET, "a/b", "temp")
    # the answer topic keeps the levels as they came (the application matches on them)
    assert r.reply_topic == "edgex/command/response/a%2Fb/temp/GET"
    r = wire.route(T, "edgex/command/request/dev/setpoint/set")
    assert r is not None and r.operation is Operation.SET
    bad = wire.route(T, "edgex/command/request/dev/temp/delete")
    assert bad is not None and "get or set" in bad.problem
    assert bad.reply_topic == "edgex/command/response/dev/temp/delete"
    # no device/command/method: no answer topic can be derived
    assert wire.route(T, "edgex/command/request/dev/get") is None
    assert wire.route(T, "edgex/command/request/a/b/c/get") is None
    assert wire.route(T, "elsewhere/dev/temp/get") is None


def test_query_topics_name_a_device_or_all() -> None:
    r = wire.route(T, "edgex/commandquery/request/All")
    assert r is not None and r.device == wire.ALL and r.reply_topic == T.query_response
    r = wire.route(T, "edgex/commandquery/request/thermo%231")
    assert r is not None and r.device == "thermo#1" and not r.problem
    r = wire.route(T, "edgex/commandquery/request/a/b")
    assert r is not None and "one device name" in r.problem
    r = wire.route(T, "edgex/commandquery/request/%ff")
    assert r is not None and "UTF-8" in r.problem


def test_shared_subscriptions_and_overlapping_request_topics() -> None:
    shared = Topics(
        query_request="$share/edgemeta/edgex/commandquery/request/#",
        command_request="$share/edgemeta/edgex/command/request/#",
    )
    r = wire.route(shared, "edgex/command/request/dev/temp/get")  # the broker strips $share
    assert r is not None and r.device == "dev"
    nested = Topics(query_request="north/q/#", command_request="north/#")
    q = wire.route(nested, "north/q/dev")
    assert q is not None and q.operation is Operation.QUERY
    c = wire.route(nested, "north/dev/temp/get")
    assert c is not None and c.operation is Operation.GET


def test_request_envelopes() -> None:
    payload = base64.b64encode(b'{"setpoint": "21"}').decode()
    raw = orjson.dumps({"requestID": "r", "queryParams": {"a": "b"}, "payload": payload})
    req = wire.read_request(raw)
    assert (req.request_id, req.query, req.payload) == ("r", {"a": "b"}, {"setpoint": "21"})
    assert req.correlation_id  # made up when the request has none
    for bad in (b"[]", b"nope", orjson.dumps({"queryParams": ["x"]})):
        with pytest.raises(ContractInvalid):
            wire.read_request(bad)
    assert wire.request_id_of(b"nope") == "" and wire.request_id_of(raw) == "r"
    assert wire.credentials({"AUTHORIZATION": "Bearer x", "x-api-key": "k"}) == ("Bearer x", "k")


def test_answers_carry_the_body_as_base64_and_the_error_code() -> None:
    body = wire.error_body(404, "device 'x' does not exist", "r")
    env = orjson.loads(wire.answer("t/x", "r", "c", 404, body))
    assert (env["errorCode"], env["requestID"], env["correlationID"]) == (1, "r", "c")
    assert env["receivedTopic"] == "t/x" and env["contentType"] == "application/json"
    assert orjson.loads(base64.b64decode(env["payload"])) == {
        "apiVersion": "v3",
        "requestId": "r",
        "message": "device 'x' does not exist",
        "statusCode": 404,
    }
    assert orjson.loads(wire.answer("t", "r", "c", 200, b"{}"))["errorCode"] == 0


def test_config_shows_the_north_without_its_password() -> None:
    doc = command_config_document(Settings(north_mqtt_url="mqtt://u:secret@broker:1883"))
    north = doc["ExternalMQTT"]
    assert north["Enabled"] is True and north["Url"] == "mqtt://u:***@broker:1883"
    assert north["Topics"]["CommandRequestTopic"] == "edgex/command/request/#"
    assert command_config_document(Settings())["ExternalMQTT"]["Enabled"] is False
