"""Device endpoints: EdgeX's order of checks, force, patch semantics, lists, tree, events."""

from __future__ import annotations

import uuid

import pytest

from tests.support.api import Api


@pytest.fixture
async def ready(api: Api) -> Api:
    await api.add_service("ds")
    await api.add_service("ds2")
    await api.add_profile("prof")
    await api.add_profile("other")
    await api.clear_events()
    return api


async def test_add_then_read_back_by_name_and_id(ready: Api) -> None:
    r = await ready.add_device(
        "d1",
        labels=["x"],
        autoEvents=[
            {"interval": "10s", "sourceName": "temp"},
            {"interval": "15000ms", "onChange": True, "sourceName": "all"},
        ],
    )
    item = r.json()[0]
    assert item["statusCode"] == 201, item
    got = (await ready.get("/device/name/d1")).json()["device"]
    assert got["id"] == item["id"] and got["serviceName"] == "ds" and got["revision"] == 1
    assert got["created"] == got["modified"] and got["created"] > 1_600_000_000_000
    assert got["autoEvents"][0] == {
        "interval": "10s",
        "onChange": False,
        "onChangeThreshold": 0.0,
        "sourceName": "temp",
        "retention": {"maxCap": 0, "minCap": 0, "duration": ""},
    }
    assert got["properties"] == {} and got["protocols"] == {"other": {"Address": "d1"}}
    by_id = (await ready.get(f"/device/id/{item['id']}")).json()["device"]
    assert by_id == got
    assert await ready.events() == [("device", "add", "ds", "prof")]


async def test_add_errors_follow_edgex(ready: Api) -> None:
    cases = [
        ({"serviceName": "nope"}, 400, "device service 'nope' does not exist"),
        ({"profileName": "nope"}, 400, "device profile 'nope' not found"),
        ({"autoEvents": [{"interval": "1s", "sourceName": "ghost"}]}, 400, "ghost"),
        ({"parent": "d9"}, 400, "own parent"),
    ]
    for extra, status, text in cases:
        r = await ready.add_device("d9", **extra)
        item = r.json()[0]
        assert item["statusCode"] == status and text in item["message"], (extra, item)
    assert (await ready.get("/device/all")).json()["totalCount"] == 0
    assert await ready.events() == []


async def test_auto_event_source_is_a_regex_over_resource_names(ready: Api) -> None:
    r = await ready.add_device("d1", autoEvents=[{"interval": "1s", "sourceName": "te.*"}])
    assert r.json()[0]["statusCode"] == 201
    r = await ready.add_device("d2", autoEvents=[{"interval": "1s", "sourceName": "te"}])
    assert r.json()[0]["statusCode"] == 400  # must match a whole name


async def test_invalid_interval_is_a_whole_request_400(ready: Api) -> None:
    for interval in ("soon", "0.5ms", "", "-1s"):
        r = await ready.add_device("d1", autoEvents=[{"interval": interval, "sourceName": "temp"}])
        assert r.status_code == 400 and "interval" in r.json()["message"], interval


async def test_duplicate_name_is_409_naming_the_owner(ready: Api) -> None:
    await ready.add_device("d1")
    r = await ready.add_device("d1", service="ds2")
    item = r.json()[0]
    assert item["statusCode"] == 409 and "'ds'" in item["message"]


async def test_force_replaces_keeping_id_and_created_and_tells_both_owners(ready: Api) -> None:
    first = (await ready.add_device("d1", description="one")).json()[0]
    before = (await ready.get("/device/name/d1")).json()["device"]
    await ready.clear_events()
    r = await ready.post(
        "/device",
        [
            {
                "apiVersion": "v3",
                "device": {
                    "name": "d1",
                    "serviceName": "ds2",
                    "profileName": "other",
                    "adminState": "LOCKED",
                    "operatingState": "DOWN",
                    "protocols": {"p": {"a": 1}},
                },
            }
        ],
        force="true",
    )
    item = r.json()[0]
    assert item["statusCode"] == 201 and item["id"] == first["id"]
    after = (await ready.get("/device/name/d1")).json()["device"]
    assert after["created"] == before["created"] and after["revision"] == 2
    assert after["serviceName"] == "ds2" and "description" not in after
    assert await ready.events() == [
        ("device", "update", "ds", "other"),
        ("device", "update", "ds2", "other"),
    ]


async def test_force_with_identical_content_changes_nothing(ready: Api) -> None:
    await ready.add_device("d1")
    await ready.clear_events()
    r = await ready.post(
        "/device",
        [
            {
                "apiVersion": "v3",
                "device": {
                    "name": "d1",
                    "serviceName": "ds",
                    "profileName": "prof",
                    "adminState": "UNLOCKED",
                    "operatingState": "UP",
                    "protocols": {"other": {"Address": "d1"}},
                },
            }
        ],
        force="true",
    )
    assert r.json()[0]["statusCode"] == 201
    assert (await ready.get("/device/name/d1")).json()["device"]["revision"] == 1
    assert await ready.events() == []


async def test_patch_semantics(ready: Api) -> None:
    await ready.add_device(
        "d1", labels=["a"], description="x", autoEvents=[{"interval": "1s", "sourceName": "temp"}]
    )
    await ready.clear_events()
    r = await ready.patch(
        "/device",
        [
            {
                "apiVersion": "v3",
                "device": {
                    "name": "d1",
                    "labels": [],
                    "operatingState": "DOWN",
                    "description": None,
                },
            }
        ],
    )
    assert r.json()[0]["statusCode"] == 200
    d = (await ready.get("/device/name/d1")).json()["device"]
    assert "labels" not in d and d["operatingState"] == "DOWN" and d["description"] == "x"
    assert d["revision"] == 2 and d["modified"] >= d["created"]
    assert await ready.events() == [("device", "update", "ds", "prof")]


async def test_patch_with_no_change_writes_nothing(ready: Api) -> None:
    await ready.add_device("d1")
    await ready.clear_events()
    r = await ready.patch(
        "/device", [{"apiVersion": "v3", "device": {"name": "d1", "adminState": "UNLOCKED"}}]
    )
    assert r.json()[0]["statusCode"] == 200
    assert (await ready.get("/device/name/d1")).json()["device"]["revision"] == 1
    assert await ready.events() == []


async def test_patch_service_change_tells_old_and_new_owner(ready: Api) -> None:
    await ready.add_device("d1")
    await ready.clear_events()
    r = await ready.patch(
        "/device", [{"apiVersion": "v3", "device": {"name": "d1", "serviceName": "ds2"}}]
    )
    assert r.json()[0]["statusCode"] == 200
    assert await ready.events() == [
        ("device", "update", "ds", "prof"),
        ("device", "update", "ds2", "prof"),
    ]
    r = await ready.patch(
        "/device", [{"apiVersion": "v3", "device": {"name": "d1", "serviceName": "nope"}}]
    )
    assert r.json()[0]["statusCode"] == 400


async def test_patch_by_id_and_name_mismatch(ready: Api) -> None:
    id_ = (await ready.add_device("d1")).json()[0]["id"]
    r = await ready.patch(
        "/device",
        [
            {"apiVersion": "v3", "device": {"id": id_, "description": "by id"}},
            {"apiVersion": "v3", "device": {"id": id_, "name": "d2", "description": "x"}},
            {"apiVersion": "v3", "device": {"id": str(uuid.uuid4()), "description": "x"}},
            {"apiVersion": "v3", "device": {"name": "ghost", "description": "x"}},
        ],
    )
    assert [i["statusCode"] for i in r.json()] == [200, 400, 404, 404]
    r = await ready.patch("/device", [{"apiVersion": "v3", "device": {"description": "x"}}])
    assert r.status_code == 400 and "id or name" in r.json()["message"]


async def test_profile_change_drops_auto_events_the_new_profile_cannot_serve(ready: Api) -> None:
    await ready.add_profile(
        "p3",
        deviceResources=[
            {"name": "humidity", "properties": {"valueType": "Int16", "readWrite": "R"}}
        ],
        deviceCommands=[],
    )
    await ready.add_device("d1", autoEvents=[{"interval": "1s", "sourceName": "temp"}])
    r = await ready.patch(
        "/device", [{"apiVersion": "v3", "device": {"name": "d1", "profileName": "p3"}}]
    )
    assert r.json()[0]["statusCode"] == 200
    assert "autoEvents" not in (await ready.get("/device/name/d1")).json()["device"]
    r = await ready.patch(
        "/device",
        [
            {
                "apiVersion": "v3",
                "device": {"name": "d1", "autoEvents": [{"interval": "1s", "sourceName": "temp"}]},
            }
        ],
    )
    assert r.json()[0]["statusCode"] == 400


async def test_profile_can_be_detached(ready: Api) -> None:
    await ready.add_device("d1")
    r = await ready.patch(
        "/device", [{"apiVersion": "v3", "device": {"name": "d1", "profileName": ""}}]
    )
    assert r.json()[0]["statusCode"] == 200
    assert "profileName" not in (await ready.get("/device/name/d1")).json()["device"]
    assert (await ready.delete("/deviceprofile/name/prof")).status_code == 200


async def test_check_name(ready: Api) -> None:
    await ready.add_device("d1")
    ok = await ready.get("/device/check/name/d1")
    assert ok.status_code == 200 and ok.json() == {"apiVersion": "v3", "statusCode": 200}
    missing = await ready.get("/device/check/name/d2")
    assert missing.status_code == 404 and missing.json() == {"apiVersion": "v3", "statusCode": 404}


async def test_get_errors(ready: Api) -> None:
    assert (await ready.get("/device/name/ghost")).status_code == 404
    assert (await ready.get("/device/id/not-a-uuid")).status_code == 400
    assert (await ready.get(f"/device/id/{uuid.uuid4()}")).status_code == 404


async def test_delete(ready: Api) -> None:
    await ready.add_device("parent")
    await ready.add_device("child", parent="parent")
    await ready.clear_events()
    r = await ready.delete("/device/name/parent")
    assert r.status_code == 409 and "child" in r.json()["message"]
    assert (await ready.delete("/device/name/child")).status_code == 200
    assert (await ready.delete("/device/name/parent")).status_code == 200
    assert (await ready.delete("/device/name/parent")).status_code == 404
    assert await ready.events() == [("device", "delete", "ds", "prof")] * 2


async def test_lists_by_service_profile_and_tree(ready: Api) -> None:
    await ready.add_device("root", labels=["a"])
    await ready.add_device("c1", service="ds2", parent="root", labels=["a", "b"])
    await ready.add_device("g1", profile="other", parent="c1")
    by_service = (await ready.get("/device/service/name/ds")).json()
    assert by_service["totalCount"] == 2
    assert [d["name"] for d in by_service["devices"]] == ["root", "g1"]
    assert (await ready.get("/device/service/name/unknown")).json()["totalCount"] == 0
    assert (await ready.get("/device/profile/name/other")).json()["totalCount"] == 1
    labelled = (await ready.get("/device/all", labels="a,b")).json()
    assert [d["name"] for d in labelled["devices"]] == ["c1"]
    tree = (await ready.get("/device/all", descendantsOf="root")).json()
    assert tree["totalCount"] == 2
    one = (await ready.get("/device/all", descendantsOf="root", maxLevels=1)).json()
    assert [d["name"] for d in one["devices"]] == ["c1"]


async def test_paging_limits_and_range(ready: Api) -> None:
    for i in range(5):
        await ready.add_device(f"d{i}")
    page = (await ready.get("/device/all", offset=1, limit=2)).json()
    assert page["totalCount"] == 5 and [d["name"] for d in page["devices"]] == ["d1", "d2"]
    assert len((await ready.get("/device/all", limit=-1)).json()["devices"]) == 5
    assert (await ready.get("/device/all", limit=0)).json() == {
        "apiVersion": "v3",
        "statusCode": 200,
        "totalCount": 5,
        "devices": [],
    }
    assert (await ready.get("/device/all", offset=5)).json()["devices"] == []
    assert (await ready.get("/device/all", offset=6)).status_code == 416
    for bad in (
        {"limit": 1025},
        {"limit": -2},
        {"offset": -1},
        {"offset": "x"},
        {"limit": "1.5"},
        {"offset": 2**31},
    ):
        r = await ready.get("/device/all", **bad)
        assert r.status_code == 400 and r.json()["message"], bad
    default = (await ready.get("/device/all")).json()
    assert len(default["devices"]) == 5


async def test_names_with_reserved_characters_round_trip(ready: Api) -> None:
    name = "room 1/sensor#2+x"
    r = await ready.add_device(name)
    assert r.json()[0]["statusCode"] == 201
    from urllib.parse import quote

    got = await ready.client.get(f"/api/v3/device/name/{quote(name, safe='')}")
    assert got.status_code == 200 and got.json()["device"]["name"] == name
    gone = await ready.client.delete(f"/api/v3/device/name/{quote(name, safe='')}")
    assert gone.status_code == 200
