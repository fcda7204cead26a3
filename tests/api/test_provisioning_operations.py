"""Provisioning beyond the basics: If-Match on enrolment updates, a registration that answers
202 with a record to poll while it is still assigning, individual enrolments end to end, and
a webhook that names a service that is not a candidate."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.api.test_provisioning import enroll, register, token, world
from tests.api.world import World
from tests.support.api import serve_http

__all__ = ["world"]  # the fixture, shared with test_provisioning

DEVICE_KEY = "ZGV2aWNlLWtleS1vZi1iYWRnZS05OS0wMTIzNDU2Nzg5YWJj"


async def _patch(w: World, body: dict[str, Any], if_match: str | None) -> httpx.Response:
    headers = {"If-Match": if_match} if if_match is not None else {}
    return await w.api.client.patch(
        "/api/v3/enrollment", json=[{"apiVersion": "v3", "enrollment": body}], headers=headers
    )


async def test_if_match_header_on_enrollment_updates(world: World) -> None:
    await enroll(world)
    current = (await world.api.get("/enrollment/name/badges")).json()["enrollment"]
    current.pop("attestation")
    stale = await _patch(world, {**current, "priority": 2}, '"7"')
    assert stale.status_code == 207 and stale.json()[0]["statusCode"] == 409
    assert "revision" in stale.json()[0]["message"]
    for bad in ("seven", '"1", "2"', "-1", ""):
        r = await _patch(world, {**current, "priority": 2}, bad)
        assert r.status_code == 400, (bad, r.text)
    r = await world.api.client.patch(
        "/api/v3/enrollment",
        json=[{"apiVersion": "v3", "expectedRevision": 2, "enrollment": current}],
        headers={"If-Match": "1"},
    )
    assert r.status_code == 400 and "disagree" in r.json()["message"]
    ok = await _patch(world, {**current, "priority": 2}, '"1"')
    assert ok.json()[0]["statusCode"] == 200, ok.text
    again = await _patch(world, {**current, "priority": 3}, 'W/"2"')
    assert again.json()[0]["statusCode"] == 200
    got = (await world.api.get("/enrollment/name/badges")).json()["enrollment"]
    assert (got["priority"], got["revision"]) == (3, 3)


async def _poll(w: World, rid: str, status: str, within: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            r = await w.api.get(f"/registration/name/{rid}")
            if r.status_code == 200 and r.json()["registration"]["status"] == status:
                record: dict[str, Any] = r.json()["registration"]
                return record
            await asyncio.sleep(0.02)


async def test_registration_answers_202_to_poll_while_assigning(world: World) -> None:
    await world.participant("ds1")
    await world.participant("ds2")
    await enroll(world, policy="static", services=[{"name": "ds1"}])
    # wait=0: answer as soon as the device is attested, with whatever is decided by then (a
    # first assignment, which waits on nobody, may already be done: 200; else 202 to poll)
    body = {"registrationId": "badge-1", "token": token("badge-1")}
    r = await world.api.client.post(
        "/api/v3/registration",
        params={"wait": "0"},
        json={"apiVersion": "v3", "registration": body},
    )
    assert r.status_code in (200, 202), r.text
    if r.status_code == 202:
        answer = r.json()
        assert answer["statusCode"] == 202 and answer["operation"]["status"] == "assigning"
        assert answer["operation"]["poll"] == "/api/v3/registration/name/badge-1"
    record = await _poll(world, "badge-1", "assigned")
    assert record["assignedService"] == "ds1"
    await world.settle("badge-1", ["ds1"])
    # a repeat registration that moves the device: the move runs on after the 202
    current = (await world.api.get("/enrollment/name/badges")).json()["enrollment"]
    current.pop("attestation")
    current["allocation"] = {"policy": "static", "services": [{"name": "ds2"}]}
    assert (await _patch(world, current, None)).json()[0]["statusCode"] == 200
    body = {"registrationId": "badge-1", "token": token("badge-1")}
    r = await world.api.client.post(
        "/api/v3/registration",
        params={"wait": "0"},
        json={"apiVersion": "v3", "registration": body},
    )
    assert r.status_code == 202, r.text  # the move waits on the device services
    assert r.json()["operation"]["poll"] == "/api/v3/registration/name/badge-1"
    async with asyncio.timeout(5):
        while True:
            rec = (await world.api.get("/registration/name/badge-1")).json()["registration"]
            if rec.get("assignedService") == "ds2" and rec["status"] == "assigned":
                break
            await asyncio.sleep(0.02)
    assert rec["substatus"] == "deviceDataMigrated"
    await world.settle("badge-1", ["ds2"])
    # a refusal is known before any 202: a bad token, or a replayed one, is a 401 at wait=0
    for tok in ("not-a-token", body["token"]):
        r = await world.api.client.post(
            "/api/v3/registration",
            params={"wait": "0"},
            json={"apiVersion": "v3", "registration": {**body, "token": tok}},
        )
        assert r.status_code == 401, (tok, r.text)
    for bad in ("x", "-1", "301", "nan"):
        r = await world.api.client.post(
            "/api/v3/registration",
            params={"wait": bad},
            json={"apiVersion": "v3", "registration": body},
        )
        assert r.status_code == 400, bad


async def test_individual_enrollment_end_to_end(world: World) -> None:
    await world.participant("ds1")
    body = {
        "name": "badge-99-only",
        "kind": "individual",
        "registrationId": "badge-99",
        "allocation": {"policy": "static", "services": [{"name": "ds1"}]},
        "initialState": {
            "profileName": "wearable",
            "tags": {"owner": "ana"},
            "autoEvents": [{"interval": "1m", "sourceName": "temp"}],
        },
        "attestation": {"primaryKey": DEVICE_KEY},
    }
    r = await world.api.post("/enrollment", [{"apiVersion": "v3", "enrollment": body}])
    assert r.json()[0]["statusCode"] == 201, r.text
    # the individual enrolment's key itself signs (no derivation); a derived one is refused
    refused = await register(world, "badge-99", tok=token("badge-99", DEVICE_KEY, group=True))
    assert refused.status_code == 401
    assert (await world.api.get("/device/name/badge-99")).status_code == 404
    r = await register(world, "badge-99", tok=token("badge-99", DEVICE_KEY, group=False))
    assert r.status_code == 200, r.text
    device = r.json()["device"]
    assert device["serviceName"] == "ds1" and device["tags"] == {"owner": "ana"}
    assert device["autoEvents"][0]["sourceName"] == "temp"
    assert r.json()["registration"]["enrollment"] == "badge-99-only"


async def test_webhook_naming_a_non_candidate_falls_back(world: World) -> None:
    await world.participant("ds1")
    await world.participant("ds2")

    async def rogue(request: Request) -> Response:
        return JSONResponse({"serviceName": "somewhere-else"})

    app = Starlette(routes=[Route("/rogue", rogue, methods=["POST"])])
    async with serve_http(app) as url:
        await enroll(
            world,
            allocation={
                "policy": "custom",
                "services": [{"name": "ds1"}, {"name": "ds2", "weight": 0}],
                "webhook": {"url": f"{url}/rogue", "timeout": 1, "fallback": "static"},
            },
        )
        r = await register(world, "badge-5")
        assert r.status_code == 200, r.text
        assert r.json()["registration"]["assignedService"] == "ds1"


async def test_device_service_registers_a_discovered_device_on_its_behalf(world: World) -> None:
    """The participant that finds a device registers it; the enrolment sends it elsewhere."""
    finder = await world.participant("ds1")
    await world.participant("ds2")
    await enroll(world, policy="static", services=[{"name": "ds2"}])
    status, answer = await finder.register_device(
        "badge-3", token("badge-3"), labels=["found"], protocols={"ble": {"MAC": "aa:03"}}
    )
    assert status == 200, answer
    assert answer["registration"]["assignedService"] == "ds2"
    assert answer["device"]["labels"] == ["badge", "found"]
    await world.settle("badge-3", ["ds2"])
    status, answer = await finder.register_device("badge-4", "SharedAccessSignature sr=x")
    assert status == 401 and answer["message"] == "registration refused"
