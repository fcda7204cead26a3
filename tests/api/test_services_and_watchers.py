"""Device service and provision watcher endpoints."""

from __future__ import annotations

from tests.support.api import Api


async def test_device_service_crud(api: Api) -> None:
    await api.add_service("ds", labels=["a"], description="d")
    got = (await api.get("/deviceservice/name/ds")).json()["service"]
    assert got["baseAddress"] == "http://127.0.0.1:59999" and got["properties"] == {}
    assert got["labels"] == ["a"] and got["revision"] == 1
    r = await api.patch(
        "/deviceservice",
        [
            {"apiVersion": "v3", "service": {"name": "ds", "adminState": "LOCKED", "labels": []}},
            {"apiVersion": "v3", "service": {"id": got["id"], "name": "other"}},
            {"apiVersion": "v3", "service": {"name": "ghost", "description": "x"}},
            {"apiVersion": "v3", "service": {"name": "ds", "adminState": "LOCKED"}},
        ],
    )
    assert [i["statusCode"] for i in r.json()] == [200, 400, 404, 200]
    after = (await api.get("/deviceservice/name/ds")).json()["service"]
    assert after["adminState"] == "LOCKED" and "labels" not in after and after["revision"] == 2
    assert await api.events() == [
        ("deviceservice", "add", "ds", ""),
        ("deviceservice", "update", "ds", ""),
    ]
    assert (await api.get("/deviceservice/all", labels="a")).json()["totalCount"] == 0
    assert (await api.delete("/deviceservice/name/ds")).status_code == 200
    assert (await api.get("/deviceservice/name/ds")).status_code == 404
    assert (await api.delete("/deviceservice/name/ds")).status_code == 404


def watcher(name: str, service: str = "ds", profile: str = "prof", **extra: object) -> dict:
    body = {
        "name": name,
        "serviceName": service,
        "identifiers": {"Address": "10\\..*"},
        "adminState": "UNLOCKED",
        "discoveredDevice": {
            "profileName": profile,
            "adminState": "UNLOCKED",
            "autoEvents": [{"interval": "5s", "sourceName": "temp"}],
        },
    }
    body.update(extra)
    return {"apiVersion": "v3", "provisionWatcher": body}


async def test_provision_watcher_crud_and_events(api: Api) -> None:
    await api.add_profile("prof")
    await api.clear_events()
    r = await api.post(
        "/provisionwatcher",
        [
            watcher("w1", service="not-yet-registered", blockingIdentifiers={"Port": ["80"]}),
            watcher("w1"),
            watcher("w2", profile="ghost"),
        ],
    )
    assert [i["statusCode"] for i in r.json()] == [201, 409, 404]
    got = (await api.get("/provisionwatcher/name/w1")).json()["provisionWatcher"]
    assert got["blockingIdentifiers"] == {"Port": ["80"]}
    assert got["discoveredDevice"]["properties"] == {}
    r = await api.patch(
        "/provisionwatcher",
        [
            {
                "apiVersion": "v3",
                "provisionWatcher": {
                    "name": "w1",
                    "serviceName": "ds",
                    "discoveredDevice": {"profileName": ""},
                },
            }
        ],
    )
    assert r.json()[0]["statusCode"] == 200
    got = (await api.get("/provisionwatcher/name/w1")).json()["provisionWatcher"]
    assert "profileName" not in got["discoveredDevice"] and got["serviceName"] == "ds"
    assert got["discoveredDevice"]["autoEvents"][0]["sourceName"] == "temp"
    assert await api.events() == [
        ("provisionwatcher", "add", "not-yet-registered", "prof"),
        ("provisionwatcher", "update", "not-yet-registered", ""),
        ("provisionwatcher", "update", "ds", ""),
    ]
    assert (await api.get("/provisionwatcher/service/name/ds")).json()["totalCount"] == 1
    assert (await api.get("/provisionwatcher/profile/name/prof")).json()["totalCount"] == 0
    assert (await api.get("/provisionwatcher/all")).json()["totalCount"] == 1
    assert (await api.delete("/provisionwatcher/name/w1")).status_code == 200
    assert (await api.delete("/provisionwatcher/name/w1")).status_code == 404


async def test_provision_watcher_validation(api: Api) -> None:
    for bad in (
        watcher("w", identifiers={}),
        watcher("w", identifiers={"": "x"}),
        watcher("w", adminState="MAYBE"),
        {
            "apiVersion": "v3",
            "provisionWatcher": {
                "name": "w",
                "serviceName": "ds",
                "identifiers": {"a": "b"},
                "adminState": "LOCKED",
            },
        },
    ):
        r = await api.post("/provisionwatcher", [bad])
        assert r.status_code == 400, bad
