"""Service identities touch only their own records; who is recorded is the verified subject;
enrolment keys are shown to provisioning-admin only."""

from __future__ import annotations

import base64
import os
from typing import Any

import httpx
import pytest

from tests.support.api import make_service
from tests.support.auth import api_key, auth_app, bearer
from tests.support.schema import drop_schema

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v3",
        "service": {"name": name, "baseAddress": "http://h:1", "adminState": "UNLOCKED"},
    }


def _device(name: str, service: str) -> dict[str, Any]:
    return {
        "apiVersion": "v3",
        "device": {
            "name": name,
            "serviceName": service,
            "profileName": "prof",
            "adminState": "UNLOCKED",
            "operatingState": "UP",
            "protocols": {"other": {"Address": name}},
        },
    }


PROFILE = {
    "apiVersion": "v3",
    "profile": {
        "name": "prof",
        "deviceResources": [
            {"name": "temp", "properties": {"valueType": "Float32", "readWrite": "R"}}
        ],
    },
}


async def _devices(meta: httpx.AsyncClient, admin: dict[str, str]) -> set[str]:
    r = await meta.get("/api/v3/device/all", headers=admin)
    return {d["name"] for d in r.json()["devices"]}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_service_identity_touches_only_its_own(backend: str, tmp_path: Any) -> None:
    async with auth_app(backend, tmp_path) as (service, meta, data):
        admin = bearer(await api_key(service, "admin"))
        ds1 = bearer(await api_key(service, "service", service_name="ds1"))
        r = await meta.post("/api/v3/deviceprofile", json=[PROFILE], headers=ds1)
        assert r.status_code == 207 and r.json()[0]["statusCode"] == 201  # ships its profile
        r = await meta.post("/api/v3/deviceservice", json=[_service("ds2")], headers=admin)
        assert r.json()[0]["statusCode"] == 201

        # Registers itself, not another.
        r = await meta.post("/api/v3/deviceservice", json=[_service("ds1")], headers=ds1)
        assert r.status_code == 207 and r.json()[0]["statusCode"] == 201
        r = await meta.post("/api/v3/deviceservice", json=[_service("ds3")], headers=ds1)
        assert r.status_code == 403
        patch = [{"apiVersion": "v3", "service": {"name": "ds2", "description": "mine now"}}]
        assert (
            await meta.patch("/api/v3/deviceservice", json=patch, headers=ds1)
        ).status_code == 403
        assert (await meta.delete("/api/v3/deviceservice/name/ds1", headers=ds1)).status_code == 403

        # Adds its own devices; a batch with one foreign item is refused whole.
        r = await meta.post("/api/v3/device", json=[_device("d1", "ds1")], headers=ds1)
        assert r.json()[0]["statusCode"] == 201
        r = await meta.post("/api/v3/device", json=[_device("d2", "ds2")], headers=admin)
        assert r.json()[0]["statusCode"] == 201
        mixed = [_device("d3", "ds1"), _device("d4", "ds2")]
        r = await meta.post("/api/v3/device", json=mixed, headers=ds1)
        assert r.status_code == 403 and "ds2" in r.json()["message"]
        assert await _devices(meta, admin) == {"d1", "d2"}

        # Updates only its own, and cannot hand one to (or take one from) another service.
        def upd(name: str, **fields: Any) -> list[dict[str, Any]]:
            return [{"apiVersion": "v3", "device": {"name": name, **fields}}]

        r = await meta.patch("/api/v3/device", json=upd("d1", description="ok"), headers=ds1)
        assert r.status_code == 207 and r.json()[0]["statusCode"] == 200
        r = await meta.patch("/api/v3/device", json=upd("d2", description="x"), headers=ds1)
        assert r.status_code == 403
        r = await meta.patch("/api/v3/device", json=upd("d2", serviceName="ds1"), headers=ds1)
        assert r.status_code == 403
        r = await meta.patch("/api/v3/device", json=upd("d1", serviceName="ds2"), headers=ds1)
        assert r.status_code == 403
        # Deletes only its own.
        assert (await meta.delete("/api/v3/device/name/d2", headers=ds1)).status_code == 403
        assert (await meta.delete("/api/v3/device/name/d1", headers=ds1)).status_code == 200
        assert await _devices(meta, admin) == {"d2"}

        # Sends events only as itself.
        event = {
            "apiVersion": "v3",
            "event": {
                "apiVersion": "v3",
                "id": "0b1c0cf4-8a1f-4b51-a5a6-60a3c7e5b0a1",
                "deviceName": "d2",
                "profileName": "prof",
                "sourceName": "temp",
                "origin": 1,
                "readings": [],
            },
        }
        r = await data.post("/api/v3/event/ds2/prof/d2/temp", json=event, headers=ds1)
        assert r.status_code == 403
        count = await data.get("/api/v3/event/count", headers=admin)
        assert count.json()["count"] == 0


GROUP_KEY = base64.b64encode(os.urandom(32)).decode()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_show_keys_needs_provisioning_admin(backend: str, tmp_path: Any) -> None:
    async with auth_app(backend, tmp_path) as (service, meta, _d):
        prov = bearer(await api_key(service, "provisioning-admin"))
        reader = bearer(await api_key(service, "read"))
        body = {
            "name": "badges",
            "kind": "group",
            "match": {"namePattern": "badge-.*"},
            "allocation": {"policy": "hashed", "services": [{"name": "ds1"}]},
            "attestation": {"primaryKey": GROUP_KEY},
        }
        r = await meta.post(
            "/api/v3/enrollment", json=[{"apiVersion": "v3", "enrollment": body}], headers=prov
        )
        assert r.status_code == 207 and r.json()[0]["statusCode"] == 201, r.text
        url = "/api/v3/enrollment/name/badges"
        plain = await meta.get(url, headers=reader)
        assert plain.status_code == 200 and GROUP_KEY not in plain.text
        refused = await meta.get(url, params={"showKeys": "true"}, headers=reader)
        assert refused.status_code == 403 and GROUP_KEY not in refused.text
        shown = await meta.get(url, params={"showKeys": "true"}, headers=prov)
        assert shown.status_code == 200 and GROUP_KEY in shown.text


async def _move_history(meta: httpx.AsyncClient, headers: dict[str, str]) -> list[Any]:
    r = await meta.get("/api/v3/device/name/badge/moves", headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["moves"])


MOVES = {
    "move_release_policy": "force",
    "move_release_deadline": 0.05,
    "move_ack_timeout": 0.2,
}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_requested_by_and_subject_are_the_verified_caller(
    backend: str, tmp_path: Any
) -> None:
    async with auth_app(backend, tmp_path, **MOVES) as (service, meta, _d):
        key = await api_key(service, "admin")
        subject = f"apikey:{key.split('_')[1]}"
        admin = bearer(key)
        await meta.post("/api/v3/deviceprofile", json=[PROFILE], headers=admin)
        for name in ("ds1", "ds2"):
            await meta.post("/api/v3/deviceservice", json=[_service(name)], headers=admin)
        await meta.post("/api/v3/device", json=[_device("badge", "ds1")], headers=admin)
        move = [
            {
                "apiVersion": "v3",
                "reassign": {"deviceName": "badge", "serviceName": "ds2", "requestedBy": "mallory"},
            }
        ]
        r = await meta.post("/api/v3/device/reassign", json=move, headers=admin)
        assert r.status_code == 207, r.text
        history = await _move_history(meta, admin)
        assert [m["requestedBy"] for m in history] == [subject]
        async with service.store.read() as tx:
            events = await tx.feed.pending(1000)
        assert events and all(dict(e.tags).get("subject") == subject for e in events)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_with_auth_off_the_body_value_is_kept(backend: str, tmp_path: Any) -> None:
    service, schema = await make_service(backend, tmp_path, **MOVES)
    try:
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as meta:
            await meta.post("/api/v3/deviceprofile", json=[PROFILE])
            for name in ("ds1", "ds2"):
                await meta.post("/api/v3/deviceservice", json=[_service(name)])
            await meta.post("/api/v3/device", json=[_device("badge", "ds1")])
            move = [
                {
                    "apiVersion": "v3",
                    "reassign": {"deviceName": "badge", "serviceName": "ds2", "requestedBy": "ops"},
                }
            ]
            assert (await meta.post("/api/v3/device/reassign", json=move)).status_code == 207
            assert [m["requestedBy"] for m in await _move_history(meta, {})] == ["ops"]
        async with service.store.read() as tx:
            events = await tx.feed.pending(1000)
        assert events and all("subject" not in dict(e.tags) for e in events)
    finally:
        await service.stop()
        if schema:
            await drop_schema(schema)
