"""PATCH with empty strings for optional fields, answered as EdgeX's DTO validation does.

What EdgeX does (go-mod-core-contracts v4 ``dtos``, ``common/validator.go`` and
go-playground/validator v10): the PATCH DTOs hold pointers, and ``omitempty`` only skips a
*nil* pointer, so a field given as ``""`` is validated like any other value.

- ``id: ""`` next to a non-empty ``name`` passes (``edgex-dto-uuid`` exempts it), and the
  record is found by name.
- ``adminState``, ``operatingState`` (``oneof``), ``baseAddress`` (``uri``) and
  ``serviceName`` (``edgex-dto-none-empty-string``) given as ``""`` fail: 400.
- Fields with no validation (``description``, a profile's ``manufacturer``/``model``) given as
  ``""`` are applied: the value becomes empty.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api


def _one(r: Any) -> tuple[int, str]:
    """The status of the one element: a body that fails validation is one 400 for the whole
    request (as EdgeX answers it), anything else a 207 with one item."""
    if r.status_code == 400:
        return 400, r.json()["message"]
    assert r.status_code == 207, r.text
    [item] = r.json()
    return item["statusCode"], item.get("message", "")


async def _inventory(api: Api) -> None:
    await api.add_service("ds", description="kept")
    await api.add_profile("prof", manufacturer="Acme", model="T1", description="kept")
    r = await api.add_device("dev", description="kept")
    assert r.json()[0]["statusCode"] == 201, r.text
    r = await api.post(
        "/provisionwatcher",
        [
            {
                "apiVersion": "v3",
                "provisionWatcher": {
                    "name": "pw",
                    "serviceName": "ds",
                    "identifiers": {"Address": ".*"},
                    "adminState": "UNLOCKED",
                    "discoveredDevice": {"profileName": "prof", "adminState": "UNLOCKED"},
                },
            }
        ],
    )
    assert r.json()[0]["statusCode"] == 201, r.text


# (PATCH path, element key, GET path of the record, record key in the GET answer)
_KINDS = {
    "deviceservice": ("/deviceservice", "service", "/deviceservice/name/ds", "service", "ds"),
    "device": ("/device", "device", "/device/name/dev", "device", "dev"),
    "basicinfo": (
        "/deviceprofile/basicinfo",
        "basicinfo",
        "/deviceprofile/name/prof",
        "profile",
        "prof",
    ),
    "provisionwatcher": (
        "/provisionwatcher",
        "provisionWatcher",
        "/provisionwatcher/name/pw",
        "provisionWatcher",
        "pw",
    ),
}

# Accepted by EdgeX: (kind, field) whose "" is applied (or ignored, for id).
_ACCEPTED = [
    ("deviceservice", "id"),
    ("deviceservice", "description"),
    ("device", "id"),
    ("device", "description"),
    ("basicinfo", "id"),
    ("basicinfo", "description"),
    ("basicinfo", "manufacturer"),
    ("basicinfo", "model"),
    ("provisionwatcher", "id"),
]

# Refused by EdgeX with 400 (ContractInvalid).
_REFUSED = [
    ("deviceservice", "baseAddress"),
    ("deviceservice", "adminState"),
    ("device", "adminState"),
    ("device", "operatingState"),
    ("device", "serviceName"),
    ("provisionwatcher", "adminState"),
    ("provisionwatcher", "serviceName"),
]


async def _patch(api: Api, kind: str, fields: dict[str, Any]) -> tuple[int, str]:
    path, key, _, _, name = _KINDS[kind]
    return _one(await api.patch(path, [{"apiVersion": "v3", key: {"name": name, **fields}}]))


async def _record(api: Api, kind: str) -> dict[str, Any]:
    _, _, get_path, record_key, _ = _KINDS[kind]
    r = await api.get(get_path)
    assert r.status_code == 200, r.text
    record: dict[str, Any] = r.json()[record_key]
    return record


@pytest.mark.parametrize(("kind", "field"), _ACCEPTED)
async def test_an_empty_optional_string_edgex_accepts(api: Api, kind: str, field: str) -> None:
    await _inventory(api)
    before = await _record(api, kind)
    status, message = await _patch(api, kind, {field: ""})
    assert status == 200, message
    after = await _record(api, kind)
    if field == "id":
        # Ignored: the record is found by name and keeps its id.
        assert after["id"] == before["id"] and after["id"]
    else:
        assert before.get(field) and not after.get(field)


@pytest.mark.parametrize(("kind", "field"), _REFUSED)
async def test_an_empty_string_edgex_refuses(api: Api, kind: str, field: str) -> None:
    await _inventory(api)
    before = await _record(api, kind)
    status, message = await _patch(api, kind, {field: ""})
    assert status == 400, message
    assert field in message
    after = await _record(api, kind)
    assert after == before


async def test_an_empty_id_without_a_name_is_refused(api: Api) -> None:
    await _inventory(api)
    r = await api.patch("/deviceservice", [{"apiVersion": "v3", "service": {"id": ""}}])
    status, _ = _one(r)
    assert status == 400


async def test_the_python_sdk_default_body_edgex_refuses_for_its_empty_admin_state(
    api: Api,
) -> None:
    # What the app-functions SDK's client sends when only the name and labels are set: EdgeX
    # answers 400 to it too (baseAddress and adminState fail their `uri` and `oneof`).
    await _inventory(api)
    before = await _record(api, "deviceservice")
    status, message = await _patch(
        api,
        "deviceservice",
        {"id": "", "description": "", "baseAddress": "", "adminState": "", "labels": ["x"]},
    )
    assert status == 400
    assert "baseAddress" in message or "adminState" in message
    assert await _record(api, "deviceservice") == before
    # The same body without the two invalid empties is applied.
    status, message = await _patch(
        api, "deviceservice", {"id": "", "description": "", "labels": ["x"]}
    )
    assert status == 200, message
    after = await _record(api, "deviceservice")
    assert after["labels"] == ["x"] and not after.get("description")
