"""The device profile change rules (seed 004), row by row, each in both states: with nothing
associated and with events and readings associated, on SQLite and PostgreSQL.

The profile under test is ``prof`` (resources ``temp`` Float32 and ``switch`` Bool, command
``all`` over both) used by device ``dev`` of service ``ds``. "Associated" means core-data
holds an event of source ``all`` with a reading of each resource.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from tests.support.api import Api, make_service
from tests.support.data import Data
from tests.support.schema import drop_schema

BASE: dict[str, Any] = {
    "name": "prof",
    "manufacturer": "Acme",
    "model": "M1",
    "description": "a profile",
    "labels": ["a"],
    "deviceResources": [
        {
            "name": "temp",
            "description": "t",
            "properties": {"valueType": "Float32", "readWrite": "RW"},
        },
        {"name": "switch", "properties": {"valueType": "Bool", "readWrite": "RW"}},
    ],
    "deviceCommands": [
        {
            "name": "all",
            "readWrite": "R",
            "resourceOperations": [{"deviceResource": "temp"}, {"deviceResource": "switch"}],
        }
    ],
}


def profile(**changes: Any) -> dict[str, Any]:
    p = copy.deepcopy(BASE)
    p.update(changes)
    return p


async def associate(d: Data) -> None:
    readings = [
        {"resourceName": "temp", "valueType": "Float32", "value": "20"},
        {"resourceName": "switch", "valueType": "Bool", "value": "true"},
    ]
    r = await d.post_event(source="all", readings=readings)
    assert r.status_code == 201, r.text


async def put(d: Data, body: dict[str, Any]) -> httpx.Response:
    return await d.meta.client.put(
        "/api/v3/deviceprofile", json=[{"apiVersion": "v3", "profile": body}]
    )


def item(r: httpx.Response) -> tuple[int, str]:
    assert r.status_code == 207, r.text
    [one] = r.json()
    return one["statusCode"], one.get("message", "")


async def stored(d: Data) -> dict[str, Any]:
    r = await d.meta.get("/deviceprofile/name/prof")
    return r.json()["profile"]


@pytest.fixture(params=["free", "associated"])
async def state(request: pytest.FixtureRequest, seeded: Data) -> tuple[Data, bool]:
    """The seeded service, with or without data associated with ``prof``."""
    r = await put(seeded, profile())
    assert item(r)[0] == 200
    if request.param == "associated":
        await associate(seeded)
    await seeded.meta.clear_events()
    return seeded, request.param == "associated"


# -- Never -------------------------------------------------------------------------------


async def test_id_never_changes(state: tuple[Data, bool]) -> None:
    d, _ = state
    before = await stored(d)
    status, message = item(await put(d, profile(id="5e4f6c3b-1111-4222-8333-944445555666")))
    assert status == 409 and "id cannot change" in message and "Never" in message
    assert (await stored(d))["id"] == before["id"]


async def test_name_never_changes(state: tuple[Data, bool]) -> None:
    d, _ = state
    # A PUT finds the profile by name: another name is another (absent) profile.
    status, _ = item(await put(d, profile(name="renamed")))
    assert status == 404
    assert (await d.meta.get("/deviceprofile/name/renamed")).status_code == 404


# -- Anytime -----------------------------------------------------------------------------


async def test_general_properties_anytime(state: tuple[Data, bool]) -> None:
    d, _ = state
    body = profile(manufacturer="", model="M2", description="", labels=["b", "c"])
    assert item(await put(d, body))[0] == 200
    got = await stored(d)
    assert (got.get("manufacturer", ""), got["model"], got["labels"]) == ("", "M2", ["b", "c"])
    r = await d.meta.patch(
        "/deviceprofile/basicinfo",
        [{"apiVersion": "v3", "basicinfo": {"name": "prof", "description": "new"}}],
    )
    assert item(r)[0] == 200
    assert (await stored(d))["description"] == "new"
    # each allowed change announced once to core-metadata and once to the owning service
    events = await d.meta.events()
    assert events.count(("deviceprofile", "update", "core-metadata", "prof")) == 2
    assert events.count(("deviceprofile", "update", "ds", "prof")) == 2


async def test_resource_anytime_fields(state: tuple[Data, bool]) -> None:
    d, _ = state
    body = profile()
    body["deviceResources"][0].update(
        description="", isHidden=True, tags={"k": "v"}, attributes={"register": 7}
    )
    assert item(await put(d, body))[0] == 200
    r = await d.meta.patch(
        "/deviceprofile/resource",
        [
            {
                "apiVersion": "v3",
                "profileName": "prof",
                "resource": {"name": "switch", "description": "s", "isHidden": True},
            }
        ],
    )
    assert item(r)[0] == 200
    got = {x["name"]: x for x in (await stored(d))["deviceResources"]}
    assert got["temp"]["attributes"] == {"register": 7} and got["temp"]["isHidden"] is True
    assert got["switch"]["description"] == "s"
    assert ("deviceprofile", "update", "ds", "prof") in await d.meta.events()


async def test_command_anytime_fields(state: tuple[Data, bool]) -> None:
    d, _ = state
    body = profile()
    body["deviceCommands"][0].update(isHidden=True, readWrite="RW", tags={"x": 1})
    assert item(await put(d, body))[0] == 200
    r = await d.meta.patch(
        "/deviceprofile/deviceCommand",
        [
            {
                "apiVersion": "v3",
                "profileName": "prof",
                "deviceCommand": {"name": "all", "isHidden": False},
            }
        ],
    )
    assert item(r)[0] == 200
    [cmd] = (await stored(d))["deviceCommands"]
    assert (cmd["readWrite"], cmd["isHidden"]) == ("RW", False)


async def test_additions_anytime(state: tuple[Data, bool]) -> None:
    d, _ = state
    body = profile()
    body["deviceResources"].append(
        {"name": "humidity", "properties": {"valueType": "Int8", "readWrite": "R"}}
    )
    assert item(await put(d, body))[0] == 200
    r = await d.meta.post(
        "/deviceprofile/resource",
        [
            {
                "apiVersion": "v3",
                "profileName": "prof",
                "resource": {
                    "name": "pressure",
                    "properties": {"valueType": "Int16", "readWrite": "R"},
                },
            }
        ],
    )
    assert item(r)[0] == 201
    r = await d.meta.post(
        "/deviceprofile/deviceCommand",
        [
            {
                "apiVersion": "v3",
                "profileName": "prof",
                "deviceCommand": {
                    "name": "air",
                    "readWrite": "R",
                    "resourceOperations": [{"deviceResource": "humidity"}],
                },
            }
        ],
    )
    assert item(r)[0] == 201
    got = await stored(d)
    assert [x["name"] for x in got["deviceResources"]] == ["temp", "switch", "humidity", "pressure"]
    assert [x["name"] for x in got["deviceCommands"]] == ["all", "air"]


# -- Situational -------------------------------------------------------------------------


def _without_resource(name: str) -> dict[str, Any]:
    body = profile(deviceCommands=[])
    body["deviceResources"] = [r for r in body["deviceResources"] if r["name"] != name]
    return body


async def test_resource_removed_by_put(state: tuple[Data, bool]) -> None:
    d, associated = state
    # The command goes too (it names both resources); resource and command both have data.
    status, message = item(await put(d, _without_resource("switch")))
    if associated:
        assert status == 409
        assert "device command 'all'" in message or "device resource 'switch'" in message
        assert "Situational" in message and "device 'dev'" in message
        assert len((await stored(d))["deviceResources"]) == 2
    else:
        assert status == 200
        assert [r["name"] for r in (await stored(d))["deviceResources"]] == ["temp"]


async def test_resource_renamed_by_put(state: tuple[Data, bool]) -> None:
    d, associated = state
    body = _without_resource("switch")
    body["deviceResources"].append(
        {"name": "switch2", "properties": {"valueType": "Bool", "readWrite": "RW"}}
    )
    body["deviceCommands"] = [
        {
            "name": "all",
            "readWrite": "R",
            "resourceOperations": [{"deviceResource": "temp"}, {"deviceResource": "switch2"}],
        }
    ]
    status, message = item(await put(d, body))
    if associated:
        assert status == 409
        assert "'switch' cannot be removed or renamed" in message and "1 readings" in message
    else:
        assert status == 200


async def test_resource_deleted(state: tuple[Data, bool]) -> None:
    d, associated = state
    # first free it from the command that names it (changing resourceOperations)
    body = profile()
    body["deviceCommands"][0]["resourceOperations"] = [{"deviceResource": "temp"}]
    status, message = item(await put(d, body))
    if associated:
        assert status == 409 and "resourceOperations cannot change" in message
        assert "events" in message
        r = await d.meta.delete("/deviceprofile/name/prof/resource/switch")
        assert r.status_code == 409, r.text
        assert "device command 'all'" in r.json()["message"] or "readings" in r.json()["message"]
        return
    assert status == 200
    r = await d.meta.delete("/deviceprofile/name/prof/resource/switch")
    assert r.status_code == 200, r.text
    assert [x["name"] for x in (await stored(d))["deviceResources"]] == ["temp"]
    assert ("deviceprofile", "update", "ds", "prof") in await d.meta.events()


async def test_resource_properties_changed(state: tuple[Data, bool]) -> None:
    d, associated = state
    body = profile()
    body["deviceResources"][0]["properties"] = {"valueType": "Float64", "readWrite": "R"}
    status, message = item(await put(d, body))
    if associated:
        assert status == 409
        assert "deviceResources[temp].properties cannot change" in message
        assert "Situational" in message and "device 'dev'" in message
        props = (await stored(d))["deviceResources"][0]["properties"]
        assert props["valueType"] == "Float32"
    else:
        assert status == 200
        assert (await stored(d))["deviceResources"][0]["properties"]["valueType"] == "Float64"


async def test_command_removed(state: tuple[Data, bool]) -> None:
    d, associated = state
    status, message = item(await put(d, profile(deviceCommands=[])))
    r = await d.meta.delete("/deviceprofile/name/prof/deviceCommand/all")
    if associated:
        assert status == 409 and "device command 'all' cannot be removed" in message
        assert "1 events" in message
        assert r.status_code == 409 and "device command 'all'" in r.json()["message"]
        assert len((await stored(d))["deviceCommands"]) == 1
    else:
        assert status == 200
        assert r.status_code == 404  # already gone with the PUT
        assert (await stored(d))["deviceCommands"] == []


async def test_command_deleted_endpoint(state: tuple[Data, bool]) -> None:
    d, associated = state
    r = await d.meta.delete("/deviceprofile/name/prof/deviceCommand/all")
    assert r.status_code == (409 if associated else 200), r.text


async def test_command_resource_operations_changed(state: tuple[Data, bool]) -> None:
    d, associated = state
    body = profile()
    body["deviceCommands"][0]["resourceOperations"] = [
        {"deviceResource": "switch"},
        {"deviceResource": "temp"},
    ]
    status, message = item(await put(d, body))
    if associated:
        assert status == 409
        assert "deviceCommands[all].resourceOperations cannot change" in message
    else:
        assert status == 200


# -- what the configuration itself holds --------------------------------------------------


async def test_resource_named_by_a_command_cannot_be_deleted(seeded: Data) -> None:
    r = await seeded.meta.delete("/deviceprofile/name/prof/resource/temp")
    # EdgeX's code: the profile would become invalid (400), not a conflict (409).
    assert r.status_code == 400 and r.json()["statusCode"] == 400
    assert "device command 'all' names it in its resourceOperations" in r.json()["message"]


async def test_source_named_by_an_auto_event_cannot_be_removed(seeded: Data) -> None:
    r = await seeded.meta.patch(
        "/device",
        [
            {
                "apiVersion": "v3",
                "device": {
                    "name": "dev",
                    "autoEvents": [{"interval": "10s", "sourceName": "switch"}],
                },
            }
        ],
    )
    assert r.json()[0]["statusCode"] == 200, r.text
    body = profile(deviceCommands=[])
    body["deviceResources"] = body["deviceResources"][:1]
    status, message = item(await put(seeded, body))
    assert status == 409 and "device 'dev' names it in its autoEvents" in message
    r = await seeded.meta.patch(
        "/device",
        [
            {
                "apiVersion": "v3",
                "device": {"name": "dev", "autoEvents": [{"interval": "10s", "sourceName": "all"}]},
            }
        ],
    )
    assert r.json()[0]["statusCode"] == 200, r.text
    r = await seeded.meta.delete("/deviceprofile/name/prof/deviceCommand/all")
    assert r.status_code == 409 and "autoEvents" in r.json()["message"]


# -- empty profiles, deletes, a device's profile -----------------------------------------------


async def test_empty_profile_grows_while_in_use(seeded: Data) -> None:
    await seeded.meta.add_profile("empty", deviceResources=[], deviceCommands=[])
    r = await seeded.meta.add_device("edev", profile="empty")
    assert r.json()[0]["statusCode"] == 201
    r = await seeded.meta.post(
        "/deviceprofile/resource",
        [
            {
                "apiVersion": "v3",
                "profileName": "empty",
                "resource": {"name": "x", "properties": {"valueType": "Int8", "readWrite": "R"}},
            }
        ],
    )
    assert item(r)[0] == 201
    readings = [{"resourceName": "x", "valueType": "Int8", "value": "1"}]
    r = await seeded.post_event("edev", "x", readings, profile="empty")
    assert r.status_code == 201, r.text
    r = await seeded.meta.delete("/deviceprofile/name/empty/resource/x")
    assert r.status_code == 409 and "readings" in r.json()["message"]


async def test_profile_delete_blocked_by_each_association(seeded: Data) -> None:
    # a device
    r = await seeded.meta.delete("/deviceprofile/name/prof")
    assert r.status_code == 409 and "devices" in r.json()["message"]
    # events and readings (checked first: they are what no later step can undo)
    await associate(seeded)
    r = await seeded.meta.delete("/deviceprofile/name/prof")
    assert r.status_code == 409 and "1 events and 2 readings" in r.json()["message"]
    # a provision watcher
    await seeded.meta.add_profile("pw-prof")
    r = await seeded.meta.post(
        "/provisionwatcher",
        [
            {
                "apiVersion": "v3",
                "provisionWatcher": {
                    "name": "pw",
                    "serviceName": "ds",
                    "identifiers": {"address": ".*"},
                    "adminState": "UNLOCKED",
                    "discoveredDevice": {"profileName": "pw-prof", "adminState": "UNLOCKED"},
                },
            }
        ],
    )
    assert r.json()[0]["statusCode"] == 201, r.text
    r = await seeded.meta.delete("/deviceprofile/name/pw-prof")
    assert r.status_code == 409 and "provision watchers" in r.json()["message"]
    # nothing: allowed
    await seeded.meta.add_profile("free")
    assert (await seeded.meta.delete("/deviceprofile/name/free")).status_code == 200


async def test_device_delete_blocked_while_it_has_data_then_unstuck(seeded: Data) -> None:
    await associate(seeded)
    r = await seeded.meta.delete("/device/name/dev")
    assert r.status_code == 409
    message = r.json()["message"]
    assert "1 events and 2 readings" in message and "/event/device/name/dev" in message
    assert (await seeded.delete("/event/device/name/dev")).status_code == 202
    assert (await seeded.meta.delete("/device/name/dev")).status_code == 200
    # and then the profile, as nothing holds it any more
    assert (await seeded.meta.delete("/deviceprofile/name/prof")).status_code == 200


async def test_device_profile_change_only_while_profile_has_no_data(seeded: Data) -> None:
    await seeded.meta.add_profile("prof2")
    await seeded.meta.add_device("dev2")
    await associate(seeded)  # data of dev, profile prof
    for name in ("dev", "dev2"):  # dev2 has no data, but its current profile does
        r = await seeded.meta.patch(
            "/device", [{"apiVersion": "v3", "device": {"name": name, "profileName": "prof2"}}]
        )
        [one] = r.json()
        assert one["statusCode"] == 409, one
        assert "cannot be replaced as the profile of device" in one["message"]
    await seeded.delete("/event/device/name/dev")
    r = await seeded.meta.patch(
        "/device", [{"apiVersion": "v3", "device": {"name": "dev2", "profileName": "prof2"}}]
    )
    assert r.json()[0]["statusCode"] == 200
    got = (await seeded.meta.get("/device/name/dev2")).json()["device"]
    assert got["profileName"] == "prof2"


async def test_forced_add_cannot_change_the_profile_of_a_device_with_data(seeded: Data) -> None:
    await seeded.meta.add_profile("prof2")
    await associate(seeded)
    body = {
        "name": "dev",
        "serviceName": "ds",
        "profileName": "prof2",
        "adminState": "UNLOCKED",
        "operatingState": "UP",
        "protocols": {"other": {"Address": "dev"}},
    }
    r = await seeded.meta.post("/device", [{"apiVersion": "v3", "device": body}], force="true")
    [one] = r.json()
    assert one["statusCode"] == 409 and "profile of device 'dev'" in one["message"]


async def test_events_are_immutable(seeded: Data) -> None:
    await associate(seeded)
    [event] = (await seeded.get("/event/all")).json()["events"]
    for method in ("PUT", "PATCH"):
        r = await seeded.client.request(
            method, f"/api/v3/event/id/{event['id']}", json={"apiVersion": "v3", "event": event}
        )
        assert r.status_code == 405
    r = await seeded.client.request("PATCH", "/api/v3/event/ds/prof/dev/all", json={})
    assert r.status_code == 405


async def test_yaml_put_is_judged_by_its_diff(seeded: Data) -> None:
    await associate(seeded)
    allowed = (
        "name: prof\nmanufacturer: Other\ndeviceResources:\n"
        "  - name: temp\n    description: changed\n"
        "    properties: {valueType: Float32, readWrite: R}\n"
        "  - name: switch\n    properties: {valueType: Bool, readWrite: RW}\n"
        "deviceCommands:\n  - name: all\n    readWrite: R\n"
        "    resourceOperations: [{deviceResource: temp}, {deviceResource: switch}]\n"
    )
    files = {"file": ("p.yaml", allowed.encode(), "application/x-yaml")}
    r = await seeded.meta.client.put("/api/v3/deviceprofile/uploadfile", files=files)
    assert r.status_code == 200, r.text
    forbidden = allowed.replace("valueType: Float32", "valueType: Float64")
    files = {"file": ("p.yaml", forbidden.encode(), "application/x-yaml")}
    r = await seeded.meta.client.put("/api/v3/deviceprofile/uploadfile", files=files)
    assert r.status_code == 409
    assert "deviceResources[temp].properties" in r.json()["message"]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_strict_switches_are_423(backend: str, tmp_path: Any) -> None:
    service, schema = await make_service(
        backend, tmp_path, strict_profile_changes=True, strict_profile_deletes=True
    )
    transport = httpx.ASGITransport(app=service.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://e") as client:
            api = Api(client, service)
            await api.add_profile()
            r = await client.put(
                "/api/v3/deviceprofile", json=[{"apiVersion": "v3", "profile": profile()}]
            )
            assert r.status_code == 423
            r = await api.delete("/deviceprofile/name/prof/resource/switch")
            assert r.status_code == 423
            assert (await api.delete("/deviceprofile/name/prof")).status_code == 423
    finally:
        await service.store.close()
        if schema:
            await drop_schema(schema)
