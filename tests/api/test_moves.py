"""The move engine end to end on each backend and the in-process bus, with edgemeta device
services (participants): the seed's options 1, 2 and 2a, policies, failures, history."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from edgemeta.sdk import Refused
from edgemeta.usecases.moves import resume_stale
from tests.api.world import World, moves_world
from tests.support.api import Api, make_service


@pytest.fixture(params=["sqlite", "postgres"])
async def world(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[World]:
    async with moves_world(request.param, tmp_path) as w:
        yield w


async def add(w: World, name: str, service: str, **extra: Any) -> dict[str, Any]:
    r = await w.api.add_device(name, service=service, profile="wearable", **extra)
    item: dict[str, Any] = r.json()[0]
    return item


async def test_option_2_explicit_reassign_after_409(world: World) -> None:
    await world.participant("ds1")
    await world.participant("ds2")
    assert (await add(world, "badge", "ds1"))["statusCode"] == 201
    await world.settle("badge", ["ds1"])
    conflict = await add(world, "badge", "ds2")
    assert conflict["statusCode"] == 409 and "'ds1'" in conflict["message"]
    result = await world.reassign("badge", "ds2", requestedBy="ops", note="walked to B")
    assert result["statusCode"] == 200, result
    move = result["move"]
    assert move["state"] == "assigned" and move["fromService"] == "ds1"
    assert [s["step"] for s in move["steps"]] == [
        "request",
        "accept",
        "commit",
        "release",
        "assign",
    ]
    assert move["steps"][3]["outcome"] == "confirmed"
    assert await world.owner("badge") == "ds2"
    await world.settle("badge", ["ds2"])
    history = (await world.api.get("/device/name/badge/moves")).json()
    assert history["totalCount"] == 1
    assert history["moves"][0]["requestedBy"] == "ops"
    assert history["moves"][0]["note"] == "walked to B"
    assert (await world.api.get("/deviceservice/name/ds1/moves")).json()["totalCount"] == 1
    by_id = (await world.api.get(f"/device/move/id/{move['id']}")).json()["move"]
    assert by_id["state"] == "assigned"


async def test_option_2a_old_service_releases_before_the_new_one_serves(world: World) -> None:
    order: list[str] = []

    async def note(event: str) -> Any:
        async def hook(device: dict[str, Any]) -> None:
            order.append(event)

        return hook

    await world.participant("ds1", on_release=await note("ds1 released"))
    await world.participant("ds2", on_serve=await note("ds2 serves"))
    await add(world, "badge", "ds1")
    await world.settle("badge", ["ds1"])
    assert (await world.reassign("badge", "ds2"))["statusCode"] == 200
    await world.settle("badge", ["ds2"])
    assert order == ["ds1 released", "ds2 serves"]


async def test_patch_service_name_goes_through_the_engine(world: World) -> None:
    await world.participant("ds1")
    await world.participant("ds2")
    await add(world, "badge", "ds1")
    await world.settle("badge", ["ds1"])
    r = await world.api.patch(
        "/device",
        [
            {
                "apiVersion": "v3",
                "device": {"name": "badge", "serviceName": "ds2", "description": "moved"},
            }
        ],
    )
    assert r.json()[0]["statusCode"] == 200
    await world.settle("badge", ["ds2"])
    got = (await world.api.get("/device/name/badge")).json()["device"]
    assert got["description"] == "moved" and got["serviceName"] == "ds2"
    reasons = [
        m["reason"] for m in (await world.api.get("/device/name/badge/moves")).json()["moves"]
    ]
    assert reasons == ["patch"]


async def test_forced_add_by_another_service_is_a_move(world: World) -> None:
    await world.participant("ds1")
    await world.participant("ds2")
    first = await add(world, "badge", "ds1")
    await world.settle("badge", ["ds1"])
    r = await world.api.post(
        "/device",
        [
            {
                "apiVersion": "v3",
                "device": {
                    "name": "badge",
                    "serviceName": "ds2",
                    "profileName": "wearable",
                    "adminState": "UNLOCKED",
                    "operatingState": "UP",
                    "protocols": {"ble": {"mac": "x"}},
                },
            }
        ],
        force="true",
    )
    item = r.json()[0]
    assert item["statusCode"] == 201 and item["id"] == first["id"]
    await world.settle("badge", ["ds2"])
    moves = (await world.api.get("/device/name/badge/moves")).json()["moves"]
    assert [m["reason"] for m in moves] == ["forcedAdd"]


async def test_new_service_refusing_leaves_the_device_where_it_was(world: World) -> None:
    async def refuse(device: dict[str, Any]) -> None:
        raise Refused("this gateway has no BLE radio")

    await world.participant("ds1")
    await world.participant("ds2", validate=refuse)
    await add(world, "badge", "ds1")
    await world.settle("badge", ["ds1"])
    result = await world.reassign("badge", "ds2")
    assert result["statusCode"] == 500 and "BLE radio" in result["message"]
    assert result["move"]["state"] == "failed"
    assert await world.owner("badge") == "ds1"
    await asyncio.sleep(0.2)
    assert world.servers_of("badge") == ["ds1"]


async def test_silent_new_service_fails_the_move_with_503(world: World) -> None:
    await world.participant("ds1")
    await world.api.add_service("ghost")  # registered, but nobody answers for it
    from edgemeta.bus.memory import MemoryBus

    bus = world.api.service.bus
    assert isinstance(bus, MemoryBus)
    silent = await bus.subscribe("edgex/ghost/validate/device")  # listens, never answers
    await add(world, "badge", "ds1")
    result = await world.reassign("badge", "ghost")
    await silent.close()
    assert result["statusCode"] == 503 and result["move"]["state"] == "failed"
    assert await world.owner("badge") == "ds1"


async def test_dead_old_service_rolls_back_by_default(world: World) -> None:
    ds1 = await world.participant("ds1")
    await world.participant("ds2")
    await add(world, "badge", "ds1")
    await world.settle("badge", ["ds1"])
    await ds1.stop()  # registered as confirming releases, but gone
    result = await world.reassign("badge", "ds2")
    assert result["statusCode"] == 503 and "did not confirm" in result["message"]
    assert result["move"]["state"] == "rolledBack"
    assert await world.owner("badge") == "ds1"
    assert world.servers_of("badge") == ["ds1"]  # ds1 (stopped) still holds it; ds2 never did
    # ds1 comes back and reconciles: it still owns the device, so it keeps serving it.
    await ds1.start()
    await world.settle("badge", ["ds1"])


async def test_dead_old_service_with_force_policy_moves_and_converges(tmp_path: Any) -> None:
    service, _ = await make_service(
        "sqlite", tmp_path, move_ack_timeout=0.3, move_release_policy="force"
    )
    await service.start()
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
        w = World(Api(client, service))
        await w.api.add_profile("wearable")
        ds1 = await w.participant("ds1")
        await w.participant("ds2")
        await add(w, "badge", "ds1")
        await w.settle("badge", ["ds1"])
        await ds1.stop()
        result = await w.reassign("badge", "ds2")
        assert result["statusCode"] == 200
        assert result["move"]["steps"][3]["outcome"] == "forced"
        await w.participants["ds2"].stop()
        await w.participants["ds2"].start()
        await w.settle("badge", ["ds1", "ds2"])  # ds1 is down and stale
        await ds1.start()  # restarts, reconciles against the store: lets go
        await w.settle("badge", ["ds2"])
        for p in w.participants.values():
            await p.stop()
    await service.stop()


async def test_concurrent_moves_of_one_device_one_wins(world: World) -> None:
    for name in ("ds1", "ds2", "ds3", "ds4"):
        await world.participant(name)
    await add(world, "badge", "ds1")
    await world.settle("badge", ["ds1"])
    results = await asyncio.gather(*(world.reassign("badge", t) for t in ("ds2", "ds3", "ds4")))
    codes = sorted(r["statusCode"] for r in results)
    assert codes == [200, 409, 409], results
    winner = next(r for r in results if r["statusCode"] == 200)["move"]["toService"]
    assert await world.owner("badge") == winner
    await world.settle("badge", [winner])


async def test_expected_revision_is_checked(world: World) -> None:
    await world.participant("ds1")
    await world.participant("ds2")
    await add(world, "badge", "ds1")
    stale = await world.reassign("badge", "ds2", expectedRevision=7)
    assert stale["statusCode"] == 409 and "revision 1" in stale["message"]
    ok = await world.reassign("badge", "ds2", expectedRevision=1)
    assert ok["statusCode"] == 200


async def test_dry_run_checks_everything_and_changes_nothing(world: World) -> None:
    await world.participant("ds1")
    await world.participant("ds2", capacity=1)
    await world.participant("full", capacity=1)
    await add(world, "occupant", "full")
    await world.api.add_service("locked", adminState="LOCKED")
    await add(world, "badge", "ds1")
    ok = await world.reassign("badge", "ds2", _dry=True)
    assert ok["statusCode"] == 200 and ok["checks"] == []
    for target, text in (
        ("nope", "does not exist"),
        ("locked", "locked"),
        ("full", "capacity"),
        ("ds1", "already owned"),
    ):
        r = await world.reassign("badge", target, _dry=True)
        assert r["statusCode"] in (400, 409) and text in r["message"], (target, r)
    assert await world.owner("badge") == "ds1"
    assert (await world.api.get("/device/name/badge/moves")).json()["totalCount"] == 0


async def test_reset_policy_restores_the_initial_configuration(world: World) -> None:
    await world.participant("ds1")
    await world.participant("ds2")
    await add(world, "badge", "ds1", description="factory", labels=["new"])
    await world.api.patch(
        "/device",
        [
            {
                "apiVersion": "v3",
                "device": {"name": "badge", "description": "worn in", "labels": ["used"]},
            }
        ],
    )
    result = await world.reassign("badge", "ds2", statePolicy="reset")
    assert result["statusCode"] == 200
    got = (await world.api.get("/device/name/badge")).json()["device"]
    assert got["description"] == "factory" and got["labels"] == ["new"]
    assert got["serviceName"] == "ds2" and got["revision"] == 3
    migrated = await world.reassign("badge", "ds1")
    assert migrated["statusCode"] == 200
    assert (await world.api.get("/device/name/badge")).json()["device"]["description"] == "factory"


async def test_changes_are_refused_while_a_device_moves(world: World) -> None:
    await world.participant("ds2")
    await world.api.add_service("edgex-ds")  # an EdgeX device service: cannot confirm
    from edgemeta.bus.memory import MemoryBus

    bus = world.api.service.bus
    assert isinstance(bus, MemoryBus)
    listener = await bus.subscribe("edgex/system-events/core-metadata/+/+/edgex-ds/#")
    await add(world, "badge", "edgex-ds")
    # The move waits out the EdgeX deadline (0.1 s here); meanwhile changes are refused.
    moving = asyncio.create_task(world.reassign("badge", "ds2"))
    await asyncio.sleep(0.03)
    r = await world.api.patch(
        "/device", [{"apiVersion": "v3", "device": {"name": "badge", "description": "x"}}]
    )
    deleted = await world.api.delete("/device/name/badge")
    result = await moving
    await listener.close()
    assert result["statusCode"] == 200 and result["move"]["steps"][3]["outcome"] == "deadline"
    assert r.json()[0]["statusCode"] == 409
    assert "being moved" in r.json()[0]["message"]
    assert deleted.status_code == 409
    assert (await world.api.get("/device/name/badge")).json()["device"]["serviceName"] == "ds2"


async def test_an_interrupted_move_is_finished_by_resume(world: World) -> None:
    from dataclasses import replace

    from edgemeta.usecases import moves as engine

    await world.participant("ds1")
    await world.participant("ds2")
    await add(world, "badge", "ds1")
    await world.settle("badge", ["ds1"])
    deps = world.api.service.deps

    async def crash(*args: Any, **kwargs: Any) -> Any:
        raise asyncio.CancelledError  # the process dies right after commit A

    original = engine._release_and_assign
    engine._release_and_assign = crash  # type: ignore[assignment]
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await engine.move_device(
                deps, engine.MoveRequest(device_name="badge", to_service="ds2"), "cid"
            )
    finally:
        engine._release_and_assign = original  # type: ignore[assignment]
    assert await world.owner("badge") == "ds2"  # commit A happened: one owner, the new one
    moves = (await world.api.get("/device/name/badge/moves")).json()["moves"]
    assert moves[0]["state"] == "releasing"
    fast = replace(deps, move_settings=replace(deps.move_settings, stale_after=0.0))
    assert await resume_stale(fast) == 1
    moves = (await world.api.get("/device/name/badge/moves")).json()["moves"]
    assert moves[0]["state"] == "assigned"
    await world.settle("badge", ["ds2"])


async def test_implicit_mode_turns_an_add_into_a_move(tmp_path: Any) -> None:
    service, _ = await make_service(
        "sqlite", tmp_path, implicit_moves=True, device_validation="auto"
    )
    await service.start()
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
        w = World(Api(client, service))
        await w.api.add_profile("wearable")
        await w.participant("ds1")
        await w.participant("ds2")
        first = await add(w, "badge", "ds1")
        again = await add(w, "badge", "ds2")
        assert again["statusCode"] == 201 and again["id"] == first["id"]
        await w.settle("badge", ["ds2"])
        moves = (await w.api.get("/device/name/badge/moves")).json()["moves"]
        assert [m["reason"] for m in moves] == ["implicitAdd"]
        for p in w.participants.values():
            await p.stop()
    await service.stop()
