"""Enrolments, registration and reprovisioning, end to end with edgemeta device services."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edgemeta.domain.attestation import derive_device_key, make_token
from tests.api.world import World
from tests.support.api import Api, make_service, serve_http
from tests.support.schema import drop_schema

GROUP_KEY = "ZWRnZW1ldGEtdGVzdC1ncm91cC1rZXktMDEyMzQ1Njc4OWFiY2RlZg=="


def token(rid: str, key: str = GROUP_KEY, *, group: bool = True, ttl: int = 300) -> str:
    device_key = derive_device_key(key, rid) if group else key
    return make_token(device_key, rid, int(time.time()) + ttl)


@pytest.fixture(params=["sqlite", "postgres"])
async def world(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[World]:
    service, schema = await make_service(
        request.param,
        tmp_path,
        move_ack_timeout=1.0,
        move_release_deadline=0.05,
        device_validation="auto",
    )
    await service.start()
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
        w = World(Api(client, service))
        await w.api.add_profile("wearable")
        yield w
        for p in w.participants.values():
            await p.stop()
    await service.stop()
    if schema:
        await drop_schema(schema)


async def enroll(
    w: World,
    name: str = "badges",
    *,
    policy: str = "hashed",
    services: list[dict[str, Any]] | None = None,
    reprovision: str = "migrate",
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "kind": "group",
        "match": {"namePattern": "badge-.*"},
        "allocation": {
            "policy": policy,
            "services": services or [{"name": "ds1"}, {"name": "ds2"}],
        },
        "reprovisionPolicy": reprovision,
        "initialState": {
            "profileName": "wearable",
            "description": "factory",
            "labels": ["badge"],
            "properties": {"firmware": "1.0"},
        },
        "attestation": {"primaryKey": GROUP_KEY},
        "holdDownSeconds": 0,
    }
    body.update(extra)
    r = await w.api.post("/enrollment", [{"apiVersion": "v3", "enrollment": body}])
    assert r.status_code == 207, r.text
    item: dict[str, Any] = r.json()[0]
    return item


async def register(w: World, rid: str, *, tok: str | None = None, **report: Any) -> httpx.Response:
    body = {"registrationId": rid, "token": tok or token(rid), **report}
    return await w.api.client.post(
        "/api/v3/registration", json={"apiVersion": "v3", "registration": body}
    )


async def change(w: World, name: str, **fields: Any) -> dict[str, Any]:
    current = (await w.api.get(f"/enrollment/name/{name}")).json()["enrollment"]
    current.pop("attestation")
    current.update(fields)
    r = await w.api.patch("/enrollment", [{"apiVersion": "v3", "enrollment": current}])
    item: dict[str, Any] = r.json()[0]
    return item


async def test_enrollment_crud_keys_and_revisions(world: World) -> None:
    item = await enroll(world, attestation={})
    assert item["statusCode"] == 201 and item["enrollment"]["attestation"]["primaryKey"]
    got = (await world.api.get("/enrollment/name/badges")).json()["enrollment"]
    assert "primaryKey" not in got["attestation"] and got["revision"] == 1
    shown = (await world.api.get("/enrollment/name/badges", showKeys="true")).json()["enrollment"]
    assert shown["attestation"]["primaryKey"] == item["enrollment"]["attestation"]["primaryKey"]
    stale = await world.api.patch(
        "/enrollment",
        [{"apiVersion": "v3", "expectedRevision": 5, "enrollment": {**got, "priority": 3}}],
    )
    assert stale.json()[0]["statusCode"] == 409
    ok = await world.api.patch(
        "/enrollment",
        [{"apiVersion": "v3", "expectedRevision": 1, "enrollment": {**got, "priority": 3}}],
    )
    assert ok.json()[0]["statusCode"] == 200
    assert (await world.api.get("/enrollment/name/badges")).json()["enrollment"]["revision"] == 2
    dup = await enroll(world)
    assert dup["statusCode"] == 409
    for bad in (
        {"kind": "individual"},
        {"allocation": {"policy": "custom", "services": [{"name": "ds1"}]}},
        {"match": {"namePattern": "("}},
        {"attestation": {"primaryKey": "not base64!"}},
    ):
        r = await world.api.post(
            "/enrollment",
            [
                {
                    "apiVersion": "v3",
                    "enrollment": {
                        "name": "bad",
                        "kind": "group",
                        "allocation": {"policy": "hashed", "services": [{"name": "ds1"}]},
                        **bad,
                    },
                }
            ],
        )
        assert r.status_code == 400, bad
    assert (await world.api.get("/enrollment/all")).json()["totalCount"] == 1
    assert (await world.api.delete("/enrollment/name/badges")).status_code == 200
    assert (await world.api.delete("/enrollment/name/badges")).status_code == 404


async def test_first_registration_creates_the_device_from_the_initial_state(world: World) -> None:
    await world.participant("ds1")
    await world.participant("ds2")
    await enroll(world, policy="static", services=[{"name": "ds2"}])
    r = await register(world, "badge-1", protocols={"ble": {"MAC": "aa:01"}}, labels=["blue"])
    assert r.status_code == 200, r.text
    body = r.json()
    reg = body["registration"]
    assert (reg["status"], reg["substatus"], reg["assignedService"]) == (
        "assigned",
        "initialAssignment",
        "ds2",
    )
    device = body["device"]
    assert device["serviceName"] == "ds2" and device["profileName"] == "wearable"
    assert device["protocols"] == {"ble": {"MAC": "aa:01"}}
    assert device["labels"] == ["badge", "blue"] and device["properties"]["firmware"] == "1.0"
    await world.settle("badge-1", ["ds2"])
    state = (await world.api.get("/device/name/badge-1/state")).json()
    assert state["initial"]["description"] == "factory"
    assert state["current"]["serviceName"] == "ds2"


async def test_reported_protocol_properties_merge_into_the_initial_ones(world: World) -> None:
    # docs/provisioning.md's badge: the enrolment gives ble.Interval, the badge reports
    # ble.MAC; the device keeps both, and a key in both takes the reported value.
    await world.participant("ds1")
    initial = {
        "profileName": "wearable",
        "protocols": {"ble": {"Interval": "1s", "Power": "low"}, "other": {"A": "1"}},
    }
    await enroll(world, policy="static", services=[{"name": "ds1"}], initialState=initial)
    r = await register(world, "badge-1", protocols={"ble": {"MAC": "aa:07", "Power": "high"}})
    assert r.status_code == 200, r.text
    assert r.json()["device"]["protocols"] == {
        "ble": {"Interval": "1s", "Power": "high", "MAC": "aa:07"},
        "other": {"A": "1"},
    }


async def test_attestation_failures_are_401_and_change_nothing(world: World) -> None:
    await world.participant("ds1")
    await enroll(world, policy="static", services=[{"name": "ds1"}])
    wrong_key = token("badge-1", "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXk=")
    expired = token("badge-1", ttl=-10)
    other_id = token("badge-2")
    for bad in (wrong_key, expired, other_id, "garbage"):
        r = await register(world, "badge-1", tok=bad)
        assert r.status_code == 401 and r.json()["message"] == "registration refused", bad
    nobody = await register(world, "not-a-badge", tok=token("not-a-badge"))
    assert nobody.status_code == 401
    assert (await world.api.get("/device/check/name/badge-1")).status_code == 404
    good = token("badge-1")
    assert (await register(world, "badge-1", tok=good)).status_code == 200
    replay = await register(world, "badge-1", tok=good)
    assert replay.status_code == 401


async def test_disabled_enrollment_is_403_with_a_disabled_record(world: World) -> None:
    await enroll(world, policy="static", services=[{"name": "ds1"}], enabled=False)
    r = await register(world, "badge-1")
    assert r.status_code == 403 and "disabled" in r.json()["message"]
    rec = (await world.api.get("/registration/name/badge-1")).json()["registration"]
    assert rec["status"] == "disabled"
    assert (await world.api.get("/device/check/name/badge-1")).status_code == 404


@pytest.mark.parametrize("policy", ["migrate", "reset", "never"])
@pytest.mark.parametrize("allocation", ["static", "hashed", "nearest", "custom"])
async def test_every_reprovisioning_policy_with_every_allocation(
    world: World, policy: str, allocation: str
) -> None:
    await world.participant("ds1")
    await world.participant("ds2")
    services = [{"name": "ds1", "site": "A"}]
    hook_state = {"answer": "ds1"}

    async def hook(request: Request) -> Response:
        return JSONResponse({"serviceName": hook_state["answer"]})

    app = Starlette(routes=[Route("/allocate", hook, methods=["POST"])])
    async with serve_http(app) as hook_url:
        extra: dict[str, Any] = {}
        if allocation == "custom":
            extra = {
                "allocation": {
                    "policy": "custom",
                    "services": [{"name": "ds1"}, {"name": "ds2"}],
                    "webhook": {"url": f"{hook_url}/allocate"},
                }
            }
        await enroll(world, policy=allocation, services=services, reprovision=policy, **extra)
        first = await register(world, "badge-1", site="A")
        assert first.json()["registration"]["assignedService"] == "ds1", first.text
        await world.api.patch(
            "/device", [{"apiVersion": "v3", "device": {"name": "badge-1", "description": "worn"}}]
        )
        # Now the allocation points to ds2 (each policy in its own way).
        if allocation == "custom":
            hook_state["answer"] = "ds2"
        else:
            new = [{"name": "ds2", "site": "B"}]
            if allocation == "nearest":
                new = [{"name": "ds1", "site": "A"}, {"name": "ds2", "site": "B"}]
            assert (
                await change(world, "badges", allocation={"policy": allocation, "services": new})
            )["statusCode"] == 200
        again = await register(world, "badge-1", site="B")
    assert again.status_code == 200, again.text
    reg = again.json()["registration"]
    device = (await world.api.get("/device/name/badge-1")).json()["device"]
    if policy == "never":
        assert reg["assignedService"] == "ds1" and device["serviceName"] == "ds1"
        assert device["description"] == "worn"
        await world.settle("badge-1", ["ds1"])
    else:
        assert reg["assignedService"] == "ds2" and device["serviceName"] == "ds2"
        expected = {
            "migrate": ("deviceDataMigrated", "worn"),
            "reset": ("deviceDataReset", "factory"),
        }[policy]
        assert (reg["substatus"], device["description"]) == expected
        await world.settle("badge-1", ["ds2"])


async def test_webhook_failure_or_timeout_falls_back(world: World) -> None:
    await world.participant("ds1")
    await world.participant("ds2")

    async def broken(request: Request) -> Response:
        return JSONResponse({"error": "down"}, status_code=500)

    async def slow(request: Request) -> Response:
        await asyncio.sleep(2)
        return JSONResponse({"serviceName": "ds1"})

    app = Starlette(
        routes=[Route("/broken", broken, methods=["POST"]), Route("/slow", slow, methods=["POST"])]
    )
    async with serve_http(app) as url:
        for i, route in enumerate(("broken", "slow", "nowhere")):
            name = f"hook-{i}"
            hook_url = f"{url}/{route}" if route != "nowhere" else "http://127.0.0.1:9/x"
            await enroll(
                world,
                name,
                match={"namePattern": f"badge-{i}"},
                allocation={
                    "policy": "custom",
                    "services": [{"name": "ds1"}, {"name": "ds2", "weight": 0}],
                    "webhook": {"url": hook_url, "timeout": 0.3, "fallback": "static"},
                },
            )
            started = time.monotonic()
            r = await register(world, f"badge-{i}")
            assert r.status_code == 200, r.text
            assert r.json()["registration"]["assignedService"] == "ds1"
            assert time.monotonic() - started < 1.5  # the timeout held


async def test_concurrent_registrations_of_one_device(world: World) -> None:
    await world.participant("ds1")
    await enroll(world, policy="static", services=[{"name": "ds1"}])
    results = await asyncio.gather(*(register(world, "badge-1") for _ in range(6)))
    codes = [r.status_code for r in results]
    assert codes.count(200) >= 1 and set(codes) <= {200, 409}, [r.text for r in results]
    listing = (await world.api.get("/device/service/name/ds1")).json()
    assert listing["totalCount"] == 1
    rec = (await world.api.get("/registration/name/badge-1")).json()["registration"]
    assert rec["status"] == "assigned" and rec["substatus"] == "initialAssignment"


async def test_scenario_geolocation(world: World) -> None:
    """A wearable walks from building A to building B; the nearest service takes it."""
    await world.participant("building-a")
    await world.participant("building-b")
    await enroll(
        world,
        policy="nearest",
        services=[{"name": "building-a", "site": "A"}, {"name": "building-b", "site": "B"}],
    )
    r = await register(world, "badge-7", site="A")
    assert r.json()["registration"]["assignedService"] == "building-a"
    await world.settle("badge-7", ["building-a"])
    r = await register(world, "badge-7", site="B")
    assert r.json()["registration"]["substatus"] == "deviceDataMigrated"
    await world.settle("badge-7", ["building-b"])
    r = await register(world, "badge-7", latencies={"building-a": 3, "building-b": 40})
    assert r.json()["registration"]["substatus"] == "reprovisionedToInitialAssignment"
    await world.settle("badge-7", ["building-a"])


async def test_scenario_multi_tenancy_with_operator_reprovisioning(world: World) -> None:
    """Devices change hands: the enrolment now points to the new tenant's service, and the
    operator reprovisions from the server (DPS cannot); a device that is down moves later."""
    await world.participant("tenant-a")
    await world.participant("tenant-b")
    await enroll(world, policy="static", services=[{"name": "tenant-a"}])
    for i in range(3):
        await register(world, f"badge-{i}")
    await world.api.patch(
        "/device", [{"apiVersion": "v3", "device": {"name": "badge-2", "operatingState": "DOWN"}}]
    )
    await change(
        world, "badges", allocation={"policy": "static", "services": [{"name": "tenant-b"}]}
    )
    r = await world.api.client.post("/api/v3/enrollment/name/badges/reprovision")
    assert r.status_code == 200
    results = {x["registrationId"]: x for x in r.json()["results"]}
    assert results["badge-0"]["registration"]["assignedService"] == "tenant-b"
    assert results["badge-2"]["registration"]["pendingService"] == "tenant-b"
    await world.settle("badge-0", ["tenant-b"])
    await world.settle("badge-2", ["tenant-a"])  # still away
    r = await register(world, "badge-2")  # next seen
    assert r.json()["registration"]["assignedService"] == "tenant-b"
    assert "pendingService" not in r.json()["registration"]
    await world.settle("badge-2", ["tenant-b"])


async def test_scenario_solution_change_resets_to_initial(world: World) -> None:
    await world.participant("solution-1")
    await world.participant("solution-2")
    await enroll(world, policy="static", services=[{"name": "solution-1"}], reprovision="reset")
    await register(world, "badge-1")
    await world.api.patch(
        "/device",
        [
            {
                "apiVersion": "v3",
                "device": {
                    "name": "badge-1",
                    "description": "tuned for solution 1",
                    "labels": ["s1"],
                },
            }
        ],
    )
    await change(
        world, "badges", allocation={"policy": "static", "services": [{"name": "solution-2"}]}
    )
    r = await world.api.client.post("/api/v3/registration/name/badge-1/reprovision")
    assert r.status_code == 200, r.text
    assert r.json()["registration"]["substatus"] == "deviceDataReset"
    device = (await world.api.get("/device/name/badge-1")).json()["device"]
    assert device["description"] == "factory" and device["labels"] == ["badge"]
    await world.settle("badge-1", ["solution-2"])


async def test_scenario_quarantine_and_back(world: World) -> None:
    await world.participant("main")
    await world.participant("quarantine")
    await enroll(world, policy="static", services=[{"name": "main"}])
    await register(world, "badge-1")
    await world.api.patch(
        "/device",
        [{"apiVersion": "v3", "device": {"name": "badge-1", "description": "compromised?"}}],
    )
    r = await world.api.client.post(
        "/api/v3/registration/name/badge-1/quarantine",
        json={
            "apiVersion": "v3",
            "quarantine": {"serviceName": "quarantine", "note": "odd traffic"},
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["registration"]["quarantinedFrom"] == "main"
    await world.settle("badge-1", ["quarantine"])
    device = (await world.api.get("/device/name/badge-1")).json()["device"]
    assert device["description"] == "factory"  # reset on the way in
    stays = await register(world, "badge-1")  # registering does not get it out
    assert stays.json()["registration"]["assignedService"] == "quarantine"
    out = await world.api.client.post("/api/v3/registration/name/badge-1/release")
    assert out.status_code == 200
    assert out.json()["registration"]["substatus"] == "reprovisionedToInitialAssignment"
    await world.settle("badge-1", ["main"])
    again = await world.api.client.post("/api/v3/registration/name/badge-1/release")
    assert again.status_code == 409


async def test_flapping_is_held_down(world: World) -> None:
    await world.participant("a")
    await world.participant("b")
    await enroll(
        world,
        policy="nearest",
        services=[{"name": "a", "site": "A"}, {"name": "b", "site": "B"}],
        holdDownSeconds=60,
    )
    await register(world, "badge-1", site="A")
    moved = await register(world, "badge-1", site="B")
    assert moved.json()["registration"]["assignedService"] == "b"
    flap = await register(world, "badge-1", site="A")
    rec = flap.json()["registration"]
    assert rec["assignedService"] == "b" and "held down" in rec["error"]
    await world.settle("badge-1", ["b"])
