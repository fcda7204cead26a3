"""Device profile endpoints: JSON and YAML, basic info, tags, resources, commands, deletes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api

YAML = b"""
name: "yaml-profile"
manufacturer: "EdgeX"
model: "SIM"
labels: ["simple"]
deviceResources:
  - name: "random-number"
    description: "A randomly generated integer reading"
    properties:
      valueType: "int32"
      readWrite: "R"
      defaultValue: "0"
      units: "count"
      minimum: 0
      maximum: 100
  - name: "switch"
    properties: {valueType: "Bool", readWrite: "W"}
deviceCommands:
  - name: "Get"
    readWrite: "R"
    resourceOperations: [{deviceResource: "random-number"}]
"""


async def upload(api: Api, body: bytes, method: str = "POST") -> Any:
    return await api.client.request(
        method, "/api/v3/deviceprofile/uploadfile", files={"file": ("p.yaml", body)}
    )


async def test_json_profile_is_normalized_and_always_has_arrays(api: Api) -> None:
    r = await api.post(
        "/deviceprofile",
        [{"apiVersion": "v3", "profile": {"name": "empty", "deviceResources": None}}],
    )
    assert r.json()[0]["statusCode"] == 201
    p = (await api.get("/deviceprofile/name/empty")).json()["profile"]
    assert p["deviceResources"] == [] and p["deviceCommands"] == []
    assert p["linkedDeviceCount"] == 0 and p["apiVersion"] == "v3"
    await api.add_profile(
        "t",
        deviceResources=[
            {
                "name": "a",
                "properties": {
                    "valueType": "int16",
                    "readWrite": "rw".upper(),
                    "minimum": -40,
                    "scale": 0.1,
                    "mask": 65535,
                },
            }
        ],
        deviceCommands=[],
    )
    res = (await api.get("/deviceresource/profile/t/resource/a")).json()["resource"]
    assert res["properties"] == {
        "valueType": "Int16",
        "readWrite": "RW",
        "minimum": -40.0,
        "mask": 65535,
        "scale": 0.1,
    }


async def test_whole_profile_rules(api: Api) -> None:
    def profile(resources: list[dict[str, Any]], commands: list[dict[str, Any]]) -> Any:
        return [
            {
                "apiVersion": "v3",
                "profile": {"name": "p", "deviceResources": resources, "deviceCommands": commands},
            }
        ]

    r1 = {"name": "r", "properties": {"valueType": "Int8", "readWrite": "R"}}
    binary_w = {"name": "b", "properties": {"valueType": "Binary", "readWrite": "RW"}}
    cases = [
        profile([r1, r1], []),
        profile([binary_w], []),
        profile(
            [r1],
            [{"name": "c", "readWrite": "R", "resourceOperations": [{"deviceResource": "ghost"}]}],
        ),
        profile(
            [r1], [{"name": "c", "readWrite": "W", "resourceOperations": [{"deviceResource": "r"}]}]
        ),
        profile(
            [r1],
            [
                {"name": "c", "readWrite": "R", "resourceOperations": [{"deviceResource": "r"}]},
                {"name": "c", "readWrite": "R", "resourceOperations": [{"deviceResource": "r"}]},
            ],
        ),
    ]
    for body in cases:
        # EdgeX checks a profile as it decodes the request: the whole batch is one 400.
        r = await api.post("/deviceprofile", body)
        assert r.status_code == 400, body
        assert r.json()["statusCode"] == 400
    r = await api.post(
        "/deviceprofile", profile([r1], [{"name": "c", "readWrite": "R", "resourceOperations": []}])
    )
    assert r.status_code == 400  # at least one resource operation
    r = await api.post(
        "/deviceprofile",
        profile([{"name": "r", "properties": {"valueType": "Int99", "readWrite": "R"}}], []),
    )
    assert r.status_code == 400 and "valueType" in r.json()["message"]
    assert (await api.get("/deviceprofile/all")).json()["totalCount"] == 0


async def test_yaml_upload_add_and_update(api: Api) -> None:
    r = await upload(api, YAML)
    assert r.status_code == 201 and r.json()["statusCode"] == 201 and r.json()["id"]
    p = (await api.get("/deviceprofile/name/yaml-profile")).json()["profile"]
    assert p["deviceResources"][0]["properties"]["valueType"] == "Int32"
    assert (await upload(api, YAML)).status_code == 409
    await api.clear_events()
    r = await upload(api, YAML.replace(b'model: "SIM"', b'model: "SIM2"'), "PUT")
    assert r.status_code == 200, r.text
    q = (await api.get("/deviceprofile/name/yaml-profile")).json()["profile"]
    assert q["model"] == "SIM2" and q["id"] == p["id"] and q["created"] == p["created"]
    assert q["revision"] == 2
    assert await api.events() == [("deviceprofile", "update", "core-metadata", "yaml-profile")]


async def test_yaml_upload_errors(api: Api) -> None:
    for body in (
        b"name: [unclosed",
        b"- just a list",
        b"a: &x [1]\nb: *x\nname: p",
        b"description: no name",
        b"\xff\xfe",
    ):
        r = await upload(api, body)
        assert r.status_code == 400 and r.json()["message"], body
    no_file = await api.client.post(
        "/api/v3/deviceprofile/uploadfile", files={"other": ("x", b"a")}
    )
    assert no_file.status_code == 400 and "file" in no_file.json()["message"]
    not_multipart = await api.client.post("/api/v3/deviceprofile/uploadfile", content=YAML)
    assert not_multipart.status_code == 400
    assert (await upload(api, YAML, "PUT")).status_code == 404


async def test_put_updates_fan_out_to_owning_services(api: Api) -> None:
    await api.add_service("ds")
    await api.add_service("ds2")
    await api.add_profile("prof")
    await api.add_device("a", service="ds")
    await api.add_device("b", service="ds2")
    await api.add_device("c", service="ds2")
    await api.clear_events()
    r = await api.client.put(
        "/api/v3/deviceprofile",
        json=[
            {
                "apiVersion": "v3",
                "profile": {
                    "name": "prof",
                    "description": "new",
                    "deviceResources": [
                        {"name": "temp", "properties": {"valueType": "Float32", "readWrite": "R"}},
                        {"name": "switch", "properties": {"valueType": "Bool", "readWrite": "RW"}},
                    ],
                    "deviceCommands": [
                        {
                            "name": "all",
                            "readWrite": "R",
                            "resourceOperations": [
                                {"deviceResource": "temp"},
                                {"deviceResource": "switch"},
                            ],
                        }
                    ],
                },
            }
        ],
    )
    assert r.json()[0]["statusCode"] == 200
    assert await api.events() == [
        ("deviceprofile", "update", "core-metadata", "prof"),
        ("deviceprofile", "update", "ds", "prof"),
        ("deviceprofile", "update", "ds2", "prof"),
    ]
    r = await api.client.put(
        "/api/v3/deviceprofile", json=[{"apiVersion": "v3", "profile": {"name": "ghost"}}]
    )
    assert r.json()[0]["statusCode"] == 404


async def test_basic_info_tags_and_linked_count(api: Api) -> None:
    await api.add_service("ds")
    await api.add_profile("prof", manufacturer="Acme", model="M1", labels=["x"])
    await api.add_device("a")
    r = await api.patch(
        "/deviceprofile/basicinfo",
        [
            {"apiVersion": "v3", "basicinfo": {"name": "prof", "description": "d", "model": "M2"}},
            {"apiVersion": "v3", "basicInfo": {"name": "ghost", "model": "M2"}},
        ],
    )
    assert [i["statusCode"] for i in r.json()] == [200, 404]
    info = (await api.get("/deviceprofile/basicinfo/all")).json()["profiles"][0]
    assert info == {
        **{k: info[k] for k in ("created", "modified", "id")},
        "name": "prof",
        "manufacturer": "Acme",
        "description": "d",
        "model": "M2",
        "labels": ["x"],
        "linkedDeviceCount": 1,
    }
    assert (await api.get("/deviceprofile/all")).json()["profiles"][0]["linkedDeviceCount"] == 1
    by_model = (await api.get("/deviceprofile/model/M2")).json()
    assert by_model["totalCount"] == 1 and by_model["profiles"][0]["linkedDeviceCount"] == 0
    assert (await api.get("/deviceprofile/manufacturer/Acme/model/M2")).json()["totalCount"] == 1
    assert (await api.get("/deviceprofile/manufacturer/Nobody")).json()["totalCount"] == 0
    r = await api.client.patch(
        "/api/v3/deviceprofile/name/prof/tags",
        json={
            "apiVersion": "v3",
            "requestId": "6b1a6c3e-2f5e-4c1c-9a55-2a0c7a1c0b11",
            "deviceResources": [
                {"name": "temp", "tags": {"unit": {"si": "C"}}},
                {"name": "ghost", "tags": {"k": 1}},
            ],
            "deviceCommands": [{"name": "all", "tags": {"group": "g"}}],
        },
    )
    assert r.status_code == 200 and r.json()["requestId"].startswith("6b1a")
    await api.client.patch(
        "/api/v3/deviceprofile/name/prof/tags",
        json={
            "apiVersion": "v3",
            "deviceResources": [{"name": "temp", "tags": {"unit": {"x": 1}}}],
        },
    )
    p = (await api.get("/deviceprofile/name/prof")).json()["profile"]
    assert p["deviceResources"][0]["tags"] == {"unit": {"si": "C", "x": 1}}
    assert p["deviceCommands"][0]["tags"] == {"group": "g"}
    empty = await api.client.patch(
        "/api/v3/deviceprofile/name/prof/tags",
        json={"apiVersion": "v3", "deviceResources": [{"name": "temp", "tags": {}}]},
    )
    assert empty.status_code == 400


async def test_resources_and_commands(api: Api) -> None:
    await api.add_service("ds")
    await api.add_profile("prof")
    r = await api.post(
        "/deviceprofile/resource",
        [
            {
                "apiVersion": "v3",
                "profileName": "prof",
                "resource": {
                    "name": "humidity",
                    "properties": {"valueType": "uint8", "readWrite": "R"},
                },
            },
            {
                "apiVersion": "v3",
                "profileName": "prof",
                "resource": {"name": "temp", "properties": {"valueType": "Int8", "readWrite": "R"}},
            },
            {
                "apiVersion": "v3",
                "profileName": "ghost",
                "resource": {"name": "x", "properties": {"valueType": "Int8", "readWrite": "R"}},
            },
        ],
    )
    assert [i["statusCode"] for i in r.json()] == [201, 400, 404]
    assert "id" not in r.json()[0]
    r = await api.patch(
        "/deviceprofile/resource",
        [
            {
                "apiVersion": "v3",
                "profileName": "prof",
                "resource": {"name": "humidity", "description": "rh", "isHidden": True},
            },
            {"apiVersion": "v3", "profileName": "prof", "resource": {"name": "ghost"}},
        ],
    )
    assert [i["statusCode"] for i in r.json()] == [200, 404]
    res = (await api.get("/deviceresource/profile/prof/resource/humidity")).json()["resource"]
    assert res["description"] == "rh" and res["isHidden"] is True
    r = await api.post(
        "/deviceprofile/deviceCommand",
        [
            {
                "apiVersion": "v3",
                "profileName": "prof",
                "deviceCommand": {
                    "name": "rh",
                    "readWrite": "R",
                    "resourceOperations": [{"deviceResource": "humidity"}],
                },
            },
            {
                "apiVersion": "v3",
                "profileName": "prof",
                "deviceCommand": {
                    "name": "bad",
                    "readWrite": "R",
                    "resourceOperations": [{"deviceResource": "ghost"}],
                },
            },
        ],
    )
    assert [i["statusCode"] for i in r.json()] == [201, 400]
    r = await api.patch(
        "/deviceprofile/deviceCommand",
        [
            {
                "apiVersion": "v3",
                "profileName": "prof",
                "deviceCommand": {"name": "rh", "isHidden": True},
            }
        ],
    )
    assert r.json()[0]["statusCode"] == 200
    # A command still uses the resource: refused as EdgeX does (400), naming the command.
    r = await api.delete("/deviceprofile/name/prof/resource/humidity")
    assert r.status_code == 400 and "device command 'rh'" in r.json()["message"]
    assert (await api.delete("/deviceprofile/name/prof/deviceCommand/rh")).status_code == 200
    assert (await api.delete("/deviceprofile/name/prof/resource/humidity")).status_code == 200
    assert (await api.delete("/deviceprofile/name/prof/resource/humidity")).status_code == 404
    assert (await api.delete("/deviceprofile/name/ghost/deviceCommand/rh")).status_code == 404
    assert (await api.get("/deviceresource/profile/prof/resource/humidity")).status_code == 404


async def test_deletes_blocked_while_devices_use_the_profile(api: Api) -> None:
    await api.add_service("ds")
    await api.add_profile("prof")
    await api.add_device("a")
    # Devices alone do not hold a command (the seed's rules; EdgeX answers 409 here): only
    # events, readings or a device's autoEvents do (tests/data/test_profile_rules.py).
    assert (await api.delete("/deviceprofile/name/prof/deviceCommand/all")).status_code == 200
    assert (await api.delete("/deviceprofile/name/prof")).status_code == 409
    assert (await api.delete("/deviceservice/name/ds")).status_code == 409
    assert (await api.delete("/device/name/a")).status_code == 200
    await api.post(
        "/provisionwatcher",
        [
            {
                "apiVersion": "v3",
                "provisionWatcher": {
                    "name": "w",
                    "serviceName": "ds",
                    "identifiers": {"a": "b"},
                    "adminState": "UNLOCKED",
                    "discoveredDevice": {"profileName": "prof", "adminState": "UNLOCKED"},
                },
            }
        ],
    )
    r = await api.delete("/deviceprofile/name/prof")
    assert r.status_code == 409 and "provision watcher" in r.json()["message"]
    assert (await api.delete("/deviceservice/name/ds")).status_code == 409
    assert (await api.delete("/provisionwatcher/name/w")).status_code == 200
    assert (await api.delete("/deviceprofile/name/prof")).status_code == 200
    assert (await api.delete("/deviceprofile/name/prof")).status_code == 404


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_strict_switches_answer_423(tmp_path: Any, backend: str) -> None:
    import httpx

    from tests.support.api import make_service

    service, _ = await make_service(
        backend, tmp_path, strict_profile_changes=True, strict_profile_deletes=True
    )
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as c:
        api = Api(c, service)
        await api.add_profile("prof")
        r = await c.put(
            "/api/v3/deviceprofile", json=[{"apiVersion": "v3", "profile": {"name": "prof"}}]
        )
        assert r.status_code == 423 and r.json()["statusCode"] == 423
        assert (await upload(api, YAML, "PUT")).status_code == 423
        assert (await api.delete("/deviceprofile/name/prof/resource/temp")).status_code == 423
        assert (await api.delete("/deviceprofile/name/prof")).status_code == 423
        # Additions and description changes stay allowed, as in EdgeX.
        r = await api.patch(
            "/deviceprofile/basicinfo",
            [{"apiVersion": "v3", "basicinfo": {"name": "prof", "description": "ok"}}],
        )
        assert r.json()[0]["statusCode"] == 200
    await service.store.close()


async def test_yaml_scalars_fill_text_fields_as_go_does(api: Api) -> None:
    body = b"""
name: 1234
model: 1.50
labels: [7, true]
deviceResources:
  - name: level
    properties: {valueType: Int16, readWrite: R, defaultValue: 0, minimum: 10, units: 2}
    attributes: {register: 100}
deviceCommands:
  - name: read
    readWrite: R
    resourceOperations: [{deviceResource: level, mappings: {0: off, 1: on}}]
"""
    r = await upload(api, body)
    assert r.status_code == 201, r.text
    p = (await api.get("/deviceprofile/name/1234")).json()["profile"]
    assert p["model"] == "1.50" and p["labels"] == ["7", "true"]
    res = p["deviceResources"][0]
    assert res["properties"]["defaultValue"] == "0" and res["properties"]["units"] == "2"
    assert res["properties"]["minimum"] == 10.0 and res["attributes"] == {"register": 100}
    assert p["deviceCommands"][0]["resourceOperations"][0]["mappings"] == {"0": "off", "1": "on"}
