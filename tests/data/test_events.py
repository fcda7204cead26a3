"""core-data's events and readings API, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from edgemeta import EDGEX_VERSION, __version__
from tests.support.data import Data, make_event


async def test_add_event_and_read_it_back(seeded: Data) -> None:
    r = await seeded.post_event()
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["statusCode"] == 201 and body["apiVersion"] == "v3"
    event_id = body["id"]
    got = (await seeded.get(f"/event/id/{event_id}")).json()
    event = got["event"]
    assert event["id"] == event_id
    assert (event["deviceName"], event["profileName"], event["sourceName"]) == (
        "dev",
        "prof",
        "temp",
    )
    [reading] = event["readings"]
    assert reading["value"] == "21.5" and reading["valueType"] == "Float32"
    assert reading["resourceName"] == "temp"
    assert await seeded.counts() == (1, 1)


async def test_request_id_is_echoed(seeded: Data) -> None:
    rid = "e6e8a2f4-eb14-4649-9e2b-175247911369"
    body = {"apiVersion": "v3", "requestId": rid, "event": make_event()}
    r = await seeded.client.post("/api/v3/event/ds/prof/dev/temp", json=body)
    assert r.status_code == 201 and r.json()["requestId"] == rid


async def test_keys_are_case_insensitive(seeded: Data) -> None:
    ev = make_event()
    ev = {k.upper(): v for k, v in ev.items()}
    r = await seeded.client.post(
        "/api/v3/event/ds/prof/dev/temp", json={"APIVERSION": "v3", "Event": ev}
    )
    assert r.status_code == 201, r.text


async def test_lists_queries_counts_and_paging(seeded: Data) -> None:
    base_ns = 1_700_000_000_000_000_000
    for i in range(5):
        readings = [
            {"resourceName": "temp", "valueType": "Float32", "value": f"{i}.5"},
            {"resourceName": "switch", "valueType": "Bool", "value": "true"},
        ]
        r = await seeded.post_event(source="all", readings=readings, origin=base_ns + i)
        assert r.status_code == 201, r.text
    events = (await seeded.get("/event/all")).json()
    assert events["totalCount"] == 5
    # newest first
    assert [e["origin"] for e in events["events"]] == [base_ns + i for i in range(4, -1, -1)]
    assert all(len(e["readings"]) == 2 for e in events["events"])
    page = (await seeded.get("/event/device/name/dev", offset=1, limit=2)).json()
    assert page["totalCount"] == 5 and [e["origin"] for e in page["events"]] == [
        base_ns + 3,
        base_ns + 2,
    ]
    assert (await seeded.get("/event/count/device/name/dev")).json()["count"] == 5
    assert (await seeded.get("/event/count/device/name/other")).json()["count"] == 0
    assert (await seeded.get("/reading/count/device/name/dev")).json()["count"] == 10
    temp = (await seeded.get("/reading/resourceName/temp")).json()
    assert temp["totalCount"] == 5 and {x["resourceName"] for x in temp["readings"]} == {"temp"}
    both = (await seeded.get("/reading/device/name/dev/resourceName/switch")).json()
    assert both["totalCount"] == 5
    ranged = (await seeded.get(f"/event/start/{base_ns + 1}/end/{base_ns + 3}")).json()
    assert ranged["totalCount"] == 3
    rr = (await seeded.get(f"/reading/start/{base_ns}/end/{base_ns + 1}")).json()
    assert rr["totalCount"] == 4
    rres = (await seeded.get(f"/reading/resourceName/temp/start/{base_ns}/end/{base_ns}")).json()
    assert rres["totalCount"] == 1 and rres["readings"][0]["value"] == "0.5"
    rdr = await seeded.get(
        f"/reading/device/name/dev/resourceName/temp/start/{base_ns}/end/{base_ns + 9}"
    )
    assert rdr.json()["totalCount"] == 5
    rd = await seeded.get(f"/reading/device/name/dev/start/{base_ns}/end/{base_ns + 1}")
    assert rd.json()["totalCount"] == 4
    numeric = (await seeded.get("/reading/resourceName/temp", numeric="true", limit=1)).json()
    assert numeric["readings"][0]["value"] == 4.5
    nev = (await seeded.get("/event/all", numeric="true", limit=1)).json()
    assert {r["value"] for r in nev["events"][0]["readings"]} == {4.5, "true"}
    # offset -1: no total count (EdgeX)
    assert (await seeded.get("/event/all", offset=-1)).json()["totalCount"] == 0
    # past the end: 416; above the maximum: 400; end before start: 400
    assert (await seeded.get("/event/all", offset=6)).status_code == 416
    assert (await seeded.get("/reading/all", limit=100000)).status_code == 400
    assert (await seeded.get(f"/event/start/{base_ns + 3}/end/{base_ns}")).status_code == 400
    assert (await seeded.get("/event/start/abc/end/1")).status_code == 400
    assert (await seeded.get("/reading/all", aggregateFunc="AVG")).status_code == 501


VALID = [
    ("Bool", "temp", "T"),
    ("Int8", "i8", "-128"),
    ("Uint8", "u8", "255"),
    ("Uint64", "u64", "18446744073709551615"),
    ("Int64", "i64", "-9223372036854775808"),
    ("Float32", "f32", "3.4e38"),
    ("Float64", "f64", "NaN"),
    ("Float64", "f64", "-1.5e-300"),
    ("String", "s", "anything at all"),
    ("Int16Array", "i16a", "[1,-2,3]"),
    ("BoolArray", "ba", "[true,false]"),
    ("StringArray", "sa", '["a","b"]'),
    ("Float32Array", "fa", "[1.5,2]"),
]
INVALID = [
    ("Int8", "i8", "128"),
    ("Uint8", "u8", "-1"),
    ("Uint64", "u64", "18446744073709551616"),
    ("Int64", "i64", "1.0"),
    ("Float32", "f32", "3.5e38"),
    ("Float64", "f64", "1_000"),
    ("Float64", "f64", "abc"),
    ("Int16Array", "i16a", "[1,40000]"),
    ("Int16Array", "i16a", "1,2"),
    ("BoolArray", "ba", "[1,0]"),
    ("StringArray", "sa", "[1]"),
    ("Float32Array", "fa", '["1.5"]'),
]


async def _typed(data: Data) -> None:
    """A profile ``typed`` with one resource per value type, and device ``tdev``."""
    types = {
        "temp": "Bool",
        "i8": "Int8",
        "u8": "Uint8",
        "u64": "Uint64",
        "i64": "Int64",
        "f32": "Float32",
        "f64": "Float64",
        "s": "String",
        "i16a": "Int16Array",
        "ba": "BoolArray",
        "sa": "StringArray",
        "fa": "Float32Array",
        "bin": "Binary",
        "obj": "Object",
    }
    resources = [
        {"name": n, "properties": {"valueType": t, "readWrite": "R"}} for n, t in types.items()
    ]
    await data.meta.add_service()
    await data.meta.add_profile("typed", deviceResources=resources, deviceCommands=[])
    r = await data.meta.add_device("tdev", profile="typed")
    assert r.json()[0]["statusCode"] == 201


async def test_values_are_typed_per_value_type(data: Data) -> None:
    await _typed(data)
    for value_type, resource, value in VALID:
        readings = [{"resourceName": resource, "valueType": value_type, "value": value}]
        r = await data.post_event("tdev", resource, readings, profile="typed")
        assert r.status_code == 201, (value_type, value, r.text)
    for value_type, resource, value in INVALID:
        readings = [{"resourceName": resource, "valueType": value_type, "value": value}]
        r = await data.post_event("tdev", resource, readings, profile="typed")
        assert r.status_code == 400, (value_type, value, r.text)
        assert "value" in r.json()["message"]
    assert await data.counts() == (len(VALID), len(VALID))


async def test_binary_object_and_null_readings(data: Data) -> None:
    await _typed(data)
    blob = base64.b64encode(b"\x00\x01png").decode()
    ok: list[dict[str, Any]] = [
        {
            "resourceName": "bin",
            "valueType": "Binary",
            "binaryValue": blob,
            "mediaType": "image/png",
        },
        {"resourceName": "obj", "valueType": "Object", "objectValue": {"a": [1, {"b": None}]}},
        {"resourceName": "i8", "valueType": "Int8", "value": None},
    ]
    for reading in ok:
        r = await data.post_event("tdev", reading["resourceName"], [reading], profile="typed")
        assert r.status_code == 201, r.text
    stored = (await data.get("/reading/resourceName/bin")).json()["readings"][0]
    assert stored["binaryValue"] == blob and stored["mediaType"] == "image/png"
    obj = (await data.get("/reading/resourceName/obj")).json()["readings"][0]
    assert obj["objectValue"] == {"a": [1, {"b": None}]}
    bad: list[dict[str, Any]] = [
        {"resourceName": "bin", "valueType": "Binary", "binaryValue": blob},  # no mediaType
        {"resourceName": "bin", "valueType": "Binary", "binaryValue": "%%%", "mediaType": "x/y"},
        {"resourceName": "obj", "valueType": "Object", "value": "{}"},
        {"resourceName": "i8", "valueType": "Int8", "value": 5},  # a number, not text
    ]
    for reading in bad:
        r = await data.post_event("tdev", reading["resourceName"], [reading], profile="typed")
        assert r.status_code == 400, (reading, r.text)
    assert await data.counts() == (3, 3)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"id": "not-a-uuid"}, "event.id"),
        ({"id": None}, "event.id"),
        ({"apiVersion": None}, "apiVersion"),
        ({"origin": "1"}, "event.origin"),
        ({"origin": 0}, "event.origin"),
        ({"readings": []}, "event.readings"),
        ({"readings": [{"resourceName": "nope", "valueType": "Float32", "value": "1"}]}, "nope"),
        ({"readings": [{"resourceName": "temp", "valueType": "Int8", "value": "1"}]}, "valueType"),
        ({"readings": [{"resourceName": "temp", "valueType": "Float", "value": "1"}]}, "valueType"),
        ({"readings": [{"resourceName": "temp", "value": "1"}]}, "valueType"),
        ({"readings": [{"valueType": "Float32", "value": "1"}]}, "resourceName"),
        ({"readings": ["x"]}, "readings[0]"),
        ({"deviceName": "other"}, "deviceName"),
        ({"profileName": "other"}, "profileName"),
        ({"sourceName": "switch"}, "sourceName"),
        ({"tags": [1]}, "tags"),
    ],
)
async def test_bad_events_are_400_and_store_nothing(
    seeded: Data, change: dict[str, Any], needle: str
) -> None:
    event = make_event()
    event.update(change)
    if isinstance(change.get("readings"), list):
        for r in event["readings"]:
            if isinstance(r, dict):
                r.setdefault("origin", 1)
                r.setdefault("deviceName", "dev")
    event = {k: v for k, v in event.items() if v is not None}
    r = await seeded.client.post(
        "/api/v3/event/ds/prof/dev/temp", json={"apiVersion": "v3", "event": event}
    )
    assert r.status_code == 400, r.text
    assert needle in r.json()["message"]
    assert await seeded.counts() == (0, 0)
    assert await seeded.associations(profile="prof") == []


async def test_unknown_device_profile_or_source_is_400(seeded: Data) -> None:
    r = await seeded.post_event(device="ghost")
    assert r.status_code == 400 and "ghost" in r.json()["message"]
    r = await seeded.post_event(source="nosuch")
    assert r.status_code == 400 and "nosuch" in r.json()["message"]
    await seeded.meta.add_profile("prof2")
    r = await seeded.post_event(profile="prof2")
    assert r.status_code == 400 and "uses profile 'prof'" in r.json()["message"]
    for body in (b"", b"{", b"[]", b'{"apiVersion":"v3"}', b'{"apiVersion":"v3","event":1}'):
        r = await seeded.client.post("/api/v3/event/ds/prof/dev/temp", content=body)
        assert r.status_code == 400, body
    assert await seeded.counts() == (0, 0)


async def test_duplicate_event_id_is_409(seeded: Data) -> None:
    event = make_event()
    url = "/api/v3/event/ds/prof/dev/temp"
    assert (
        await seeded.client.post(url, json={"apiVersion": "v3", "event": event})
    ).status_code == 201
    r = await seeded.client.post(url, json={"apiVersion": "v3", "event": event})
    assert r.status_code == 409
    assert await seeded.counts() == (1, 1)


async def test_delete_by_id_by_device_and_purge_by_age(seeded: Data) -> None:
    old = time.time_ns() - 3_600 * 10**9
    ids = []
    for i in range(3):
        r = await seeded.post_event(origin=old + i)
        ids.append(r.json()["id"])
    for _ in range(2):
        assert (await seeded.post_event()).status_code == 201
    assert await seeded.counts() == (5, 5)
    assert (await seeded.delete(f"/event/id/{ids[0]}")).status_code == 200
    assert (await seeded.delete(f"/event/id/{ids[0]}")).status_code == 404
    assert (await seeded.get(f"/event/id/{ids[0]}")).status_code == 404
    assert (await seeded.delete("/event/id/nope")).status_code == 400
    assert await seeded.counts() == (4, 4)
    # purge events older than 30 minutes: the two old ones left go
    r = await seeded.delete(f"/event/age/{1_800 * 10**9}")
    assert r.status_code == 202
    assert await seeded.counts() == (2, 2)
    assert (await seeded.delete("/event/age/-5")).status_code == 400
    [row_res, row_src] = sorted(await seeded.associations(device="dev"), key=lambda a: a.kind)
    assert (row_res.kind, row_res.name, row_res.count) == ("resource", "temp", 2)
    assert (row_src.kind, row_src.name, row_src.count) == ("source", "temp", 2)
    r = await seeded.delete("/event/device/name/dev")
    assert r.status_code == 202
    assert await seeded.counts() == (0, 0)
    assert await seeded.associations(device="dev") == []


async def test_association_index_counts_per_resource_and_source(seeded: Data) -> None:
    readings = [
        {"resourceName": "temp", "valueType": "Float32", "value": "1"},
        {"resourceName": "switch", "valueType": "Bool", "value": "false"},
        {"resourceName": "temp", "valueType": "Float32", "value": "2"},
    ]
    for _ in range(2):
        assert (await seeded.post_event(source="all", readings=readings)).status_code == 201
    rows = {(a.kind, a.name): a.count for a in await seeded.associations(profile="prof")}
    assert rows == {("source", "all"): 2, ("resource", "temp"): 4, ("resource", "switch"): 2}


async def test_ping_version_config(data: Data) -> None:
    ping = (await data.get("/ping")).json()
    assert ping["serviceName"] == "core-data"
    version = (await data.get("/version")).json()
    assert version["serviceName"] == "core-data"
    assert version["version"] == EDGEX_VERSION and version["edgemetaVersion"] == __version__
    config = (await data.get("/config")).json()["config"]
    assert config["MessageBus"]["SubscribeTopic"] == "edgex/events/device/#"
    r = await data.get("/nope")
    assert r.status_code == 404 and r.json()["statusCode"] == 404
