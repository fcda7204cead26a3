"""Proof of the sender on the bus (docs/security.md): a release confirmation or a validation
answer that the service did not sign is not believed.

The forger (``bench.hostile.Hostile``) hears every move id and validation request, as any bus
subscriber does, and answers for the services. With proofs on, its release confirmations are
refused and the move follows its release policy (rollback, or force) instead of committing on
the forgery; the genuine SDK participant's signed confirmation commits the move. With proofs
off (the control) the forgery is believed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from bench.hostile import MARK, Hostile

from edgemeta.bootstrap import Service
from edgemeta.bus.envelope import decode, envelope
from edgemeta.bus.topics import response_topic
from edgemeta.peers.releases import BusReleases
from edgemeta.sdk import DeviceServiceParticipant, Refused
from edgemeta.security.proofs import Kind, derive_key, effective_mode, sign, verify
from edgemeta.store import open_store
from edgemeta.usecases.release_keys import server_secret
from tests.api.world import World
from tests.support import servers
from tests.support.api import Api, make_service
from tests.support.auth import api_key, auth_app, bearer
from tests.support.schema import drop_schema


@contextlib.asynccontextmanager
async def world(tmp_path: Any, **settings: Any) -> AsyncIterator[World]:
    """edgemeta on SQLite and the in-process bus, with a profile."""
    settings.setdefault("move_ack_timeout", 0.5)
    settings.setdefault("validation_timeout", 0.5)
    settings.setdefault("device_validation", "auto")
    settings.setdefault("release_proof", "on")
    service, _ = await make_service("sqlite", tmp_path, **settings)
    await service.start()
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
        w = World(Api(client, service))
        await w.api.add_profile("wearable")
        try:
            yield w
        finally:
            for p in w.participants.values():
                await p.stop()
    await service.stop()


def releases(w: World) -> BusReleases:
    found = w.api.service.deps.releases
    assert isinstance(found, BusReleases)
    return found


def accepted_forgeries(service: Service) -> list[str]:
    """Record every reply the engine believed that the hostile participant sent."""
    believed: list[str] = []

    def observe(kind: Kind, svc: str, device: str, env: dict[str, Any]) -> None:
        if str(env.get("correlationID", "")).startswith(MARK):
            believed.append(f"{kind.value}:{svc}")

    releases_ = service.deps.releases
    assert isinstance(releases_, BusReleases)
    releases_.gate.observers.append(observe)
    return believed


async def dead_old_owner(w: World, device: str = "badge") -> None:
    """ds1 is registered as confirming releases and owns ``device``, but never confirms (its
    process is gone); ds2 is a genuine participant."""
    await w.api.add_service("ds1", properties={"edgemeta": {"acksRelease": True}})
    await w.participant("ds2")
    r = await w.api.add_device(device, service="ds1", profile="wearable")
    assert r.json()[0]["statusCode"] == 201, r.text


# -- the primitives --------------------------------------------------------------------------


def test_a_proof_verifies_only_for_its_service_move_device_and_answer() -> None:
    secret = b"s" * 32
    k1, k2 = derive_key(secret, "ds1"), derive_key(secret, "ds2")
    assert k1 != k2 and len(k1) == 32
    move = str(uuid.uuid4())
    proof = sign(k1, Kind.RELEASE, "ds1", move, device="badge")
    assert verify(k1, proof, Kind.RELEASE, "ds1", move, device="badge")
    assert not verify(k2, proof, Kind.RELEASE, "ds1", move, device="badge")  # other key
    assert not verify(k1, proof, Kind.RELEASE, "ds1", str(uuid.uuid4()), device="badge")
    assert not verify(k1, proof, Kind.RELEASE, "ds1", move, device="other")
    assert not verify(k1, proof, Kind.VALIDATE, "ds1", move, device="badge")  # other kind
    assert not verify(k1, "", Kind.RELEASE, "ds1", move, device="badge")
    assert not verify(k1, None, Kind.RELEASE, "ds1", move, device="badge")
    refusal = sign(k1, Kind.VALIDATE, "ds1", move, device="badge", error_code=1)
    assert verify(k1, refusal, Kind.VALIDATE, "ds1", move, device="badge", error_code=1)
    # a signed refusal cannot be turned into an acceptance
    assert not verify(k1, refusal, Kind.VALIDATE, "ds1", move, device="badge", error_code=0)


def test_auto_follows_authentication() -> None:
    assert effective_mode("auto", "on") == "on"
    assert effective_mode("auto", "off") == "off"
    assert effective_mode("strict", "off") == "strict"
    assert effective_mode("off", "on") == "off"


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_the_server_secret_is_made_once_and_two_first_starts_agree(
    backend: str, tmp_path: Any
) -> None:
    schema = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 's.db'}"
    else:
        servers.require(servers.POSTGRES_URL, "PostgreSQL")
        schema = servers.unique("secret")
        url = f"{servers.POSTGRES_URL}?schema={schema}"
    a = await open_store(url)
    b = await open_store(url)
    try:
        first = await asyncio.gather(*(server_secret(s) for s in (a, b, a, b)))
        assert len(set(first)) == 1 and len(first[0]) == 32
        assert await server_secret(b) == first[0]  # kept
    finally:
        await a.close()
        await b.close()
        if schema:
            await drop_schema(schema)


async def test_the_key_file_replaces_the_stored_secret(tmp_path: Any) -> None:
    path = tmp_path / "release.key"
    path.write_text("ab" * 32 + "\n")
    service, _ = await make_service("sqlite", tmp_path, release_key_file=path)
    try:
        assert service.deps.keyring is not None
        assert service.deps.keyring.key("ds1") == derive_key(bytes.fromhex("ab" * 32), "ds1")
    finally:
        await service.stop()
    path.write_text("too short")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        await make_service("sqlite", tmp_path, release_key_file=path)


# -- forged release confirmations ------------------------------------------------------------


async def _replayable_proof(w: World) -> str:
    """A genuine proof of ds1's, captured from an earlier move (ds1 → ds2 → ds1)."""
    ds1 = await w.participant("ds1")
    await w.participant("ds2")
    await w.api.add_device("badge", service="ds1", profile="wearable")
    await w.settle("badge", ["ds1"])
    seen: list[str] = []
    sub = await w.api.service.bus.subscribe("edgex/response/ds1/#")

    async def capture() -> None:
        async for m in sub:
            proof = decode(m.payload).get("proof")
            if proof:
                seen.append(str(proof))

    task = asyncio.create_task(capture())
    assert (await w.reassign("badge", "ds2"))["statusCode"] == 200
    assert (await w.reassign("badge", "ds1"))["statusCode"] == 200
    await w.settle("badge", ["ds1"])
    async with asyncio.timeout(2):
        while not seen:
            await asyncio.sleep(0.01)
    task.cancel()
    await sub.close()
    await ds1.stop()  # ds1's process is gone: it will not confirm the next move
    return seen[0]


@pytest.mark.parametrize("forgery", ["none", "garbage", "own-key", "other-move", "replay"])
async def test_a_forged_release_is_refused_and_the_move_rolls_back(
    forgery: str, tmp_path: Any
) -> None:
    async with world(tmp_path) as w:
        service = w.api.service
        believed = accepted_forgeries(service)
        if forgery == "replay":
            captured = await _replayable_proof(w)
            hostile = Hostile(service.bus, strategies=("replay",), validations=False)
            hostile._seen_proofs["ds1"] = captured
        else:
            await dead_old_owner(w)
            if forgery == "other-move":
                # a genuine key, a genuine proof: for another move of the same device
                assert service.deps.keyring is not None
                proof = sign(
                    service.deps.keyring.key("ds1"),
                    Kind.RELEASE,
                    "ds1",
                    str(uuid.uuid4()),
                    device="badge",
                )
                hostile = Hostile(service.bus, strategies=("replay",), validations=False)
                hostile._seen_proofs["ds1"] = proof
            elif forgery == "own-key":
                # a malicious but registered service signs with its own genuine key
                assert service.deps.keyring is not None
                own = service.deps.keyring.key("mallory")
                hostile = Hostile(service.bus, strategies=("own-key",), own_key=own)
                hostile.validations = False
            else:
                hostile = Hostile(service.bus, strategies=(forgery,), validations=False)
        await hostile.start()
        try:
            refused_before = releases(w).refused
            result = await w.reassign("badge", "ds2")
        finally:
            await hostile.stop()
        assert hostile.sent[Kind.RELEASE] >= 1
        assert result["statusCode"] == 503, result
        assert result["move"]["state"] == "rolledBack"
        assert await w.owner("badge") == "ds1"
        assert releases(w).refused > refused_before
        assert believed == []
        await asyncio.sleep(0.1)
        assert "badge" not in w.participants["ds2"].serving  # never told to serve


async def test_with_the_force_policy_a_forgery_does_not_count_as_a_confirmation(
    tmp_path: Any,
) -> None:
    async with world(tmp_path, move_release_policy="force") as w:
        await dead_old_owner(w)
        hostile = Hostile(w.api.service.bus, validations=False)
        await hostile.start()
        try:
            result = await w.reassign("badge", "ds2")
        finally:
            await hostile.stop()
        assert result["statusCode"] == 200
        release = [s for s in result["move"]["steps"] if s["step"] == "release"]
        assert [s["outcome"] for s in release] == ["forced"], result["move"]["steps"]
        assert releases(w).refused >= 1


async def test_with_proofs_off_the_forgery_is_believed(tmp_path: Any) -> None:
    """The control: today's behaviour, and what proofs protect against."""
    async with world(tmp_path, release_proof="off") as w:
        believed = accepted_forgeries(w.api.service)
        await dead_old_owner(w)
        hostile = Hostile(w.api.service.bus, strategies=("none",), validations=False)
        await hostile.start()
        try:
            result = await w.reassign("badge", "ds2")
        finally:
            await hostile.stop()
        # ds1 never confirmed (it is gone), yet the move committed on the forgery.
        assert result["statusCode"] == 200, result
        release = [s for s in result["move"]["steps"] if s["step"] == "release"]
        assert [s["outcome"] for s in release] == ["confirmed"]
        assert believed == ["release:ds1"]


async def test_the_genuine_participant_commits_the_move_despite_the_forger(
    tmp_path: Any,
) -> None:
    async with world(tmp_path) as w:
        service = w.api.service
        believed = accepted_forgeries(service)
        # Each service takes a moment to let go, so the forgery always comes first.
        ds1 = await w.participant("ds1", on_release=_slow_accept)
        await w.participant("ds2", on_release=_slow_accept)
        assert service.deps.keyring is not None
        assert ds1.release_key == service.deps.keyring.key("ds1")  # fetched at start
        await w.api.add_device("badge", service="ds1", profile="wearable")
        await w.settle("badge", ["ds1"])
        hostile = Hostile(service.bus, validations=False)
        await hostile.start()
        try:
            for to in ("ds2", "ds1", "ds2"):
                result = await w.reassign("badge", to)
                assert result["statusCode"] == 200, result
                release = [s for s in result["move"]["steps"] if s["step"] == "release"]
                assert [s["outcome"] for s in release] == ["confirmed"]
                await w.settle("badge", [to])
        finally:
            await hostile.stop()
        assert hostile.sent[Kind.RELEASE] >= 3
        assert believed == []
        assert releases(w).refused >= 3


# -- forged validation answers ---------------------------------------------------------------


async def _slow_accept(device: dict[str, Any]) -> None:
    await asyncio.sleep(0.2)  # the forger answers first


async def _slow_refuse(device: dict[str, Any]) -> None:
    await asyncio.sleep(0.1)
    raise Refused("not this one")


async def test_a_forged_acceptance_with_a_bad_proof_is_ignored(tmp_path: Any) -> None:
    async with world(tmp_path) as w:
        believed = accepted_forgeries(w.api.service)  # the gate checks validations too
        gate = releases(w).gate
        await w.participant("ds1")
        await w.participant("ds2", validate=_slow_refuse)
        await w.api.add_device("badge", service="ds1", profile="wearable")
        hostile = Hostile(w.api.service.bus, strategies=("garbage",))
        await hostile.start()
        try:
            result = await w.reassign("badge", "ds2")
        finally:
            await hostile.stop()
        assert hostile.sent[Kind.VALIDATE] >= 1
        assert result["statusCode"] == 500 and "not this one" in result["message"], result
        assert result["move"]["state"] == "failed"
        assert await w.owner("badge") == "ds1"
        assert believed == []
        assert gate.refused[Kind.VALIDATE] >= 1


async def test_a_forged_refusal_with_a_bad_proof_is_ignored(tmp_path: Any) -> None:
    async with world(tmp_path) as w:
        await w.participant("ds1")
        await w.participant("ds2", validate=_slow_accept)
        await w.api.add_device("badge", service="ds1", profile="wearable")
        hostile = Hostile(w.api.service.bus, strategies=("own-key",), refuse=True)
        await hostile.start()
        try:
            result = await w.reassign("badge", "ds2")
        finally:
            await hostile.stop()
        assert hostile.sent[Kind.VALIDATE] >= 1
        assert result["statusCode"] == 200, result
        assert await w.owner("badge") == "ds2"


async def _unsigned_responder(w: World, service: str) -> asyncio.Task[None]:
    """A device service that answers validations unsigned, as EdgeX's SDKs do."""
    sub = await w.api.service.bus.subscribe(f"edgex/{service}/validate/device")

    async def run() -> None:
        try:
            async for m in sub:
                request_id = decode(m.payload).get("requestID", "")
                await w.api.service.bus.publish(
                    response_topic("edgex", service, request_id),
                    envelope({"apiVersion": "v3"}, request_id=request_id),
                )
        finally:
            await sub.close()

    return asyncio.create_task(run())


@pytest.mark.parametrize(("mode", "accepted"), [("on", True), ("strict", False)])
async def test_strict_refuses_unsigned_answers_on_accepts_them(
    mode: str, accepted: bool, tmp_path: Any
) -> None:
    async with world(tmp_path, release_proof=mode) as w:
        await w.api.add_service("edgex-ds")  # an EdgeX device service: cannot sign
        await w.participant("ds1")
        await w.api.add_device("badge", service="ds1", profile="wearable")
        task = await _unsigned_responder(w, "edgex-ds")
        try:
            result = await w.reassign("badge", "edgex-ds")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if accepted:
            assert result["statusCode"] == 200, result
        else:
            assert result["statusCode"] == 503 and "did not answer" in result["message"]
            assert await w.owner("badge") == "ds1"


async def test_strict_accepts_the_sdk_participants_signed_answers(tmp_path: Any) -> None:
    async with world(tmp_path, release_proof="strict") as w:
        await w.participant("ds1")
        await w.participant("ds2", validate=_slow_refuse)
        await w.participant("ds3")
        await w.api.add_device("badge", service="ds1", profile="wearable")
        refused = await w.reassign("badge", "ds2")
        assert refused["statusCode"] == 500 and "not this one" in refused["message"]
        moved = await w.reassign("badge", "ds3")
        assert moved["statusCode"] == 200, moved
        await w.settle("badge", ["ds3"])


# -- the releasekey route --------------------------------------------------------------------


async def test_the_releasekey_route_serves_a_service_its_own_key_only(tmp_path: Any) -> None:
    async with auth_app("sqlite", tmp_path) as (service, meta, _):
        assert service.deps.releases.gate.mode == "on"  # type: ignore[attr-defined]
        assert service.deps.keyring is not None
        ds1 = await api_key(service, "service", service_name="ds1")
        ds2 = await api_key(service, "service", service_name="ds2")
        reader = await api_key(service, "read")
        admin = await api_key(service, "admin")
        for key, name in ((ds1, "ds1"), (ds2, "ds2")):
            body = {"name": name, "baseAddress": "http://127.0.0.1:1", "adminState": "UNLOCKED"}
            r = await meta.post(
                "/api/v3/deviceservice",
                json=[{"apiVersion": "v3", "service": body}],
                headers=bearer(key),
            )
            assert r.json()[0]["statusCode"] == 201, r.text
        url = "/api/v3/deviceservice/name/ds1/releasekey"
        r = await meta.get(url, headers=bearer(ds1))
        assert r.status_code == 200, r.text
        assert r.json() == {
            "apiVersion": "v3",
            "statusCode": 200,
            "releaseKey": service.deps.keyring.key("ds1").hex(),
        }
        r = await meta.get(url, headers=bearer(ds2))
        assert r.status_code == 403 and "ds1" in r.json()["message"]
        assert (await meta.get(url, headers=bearer(reader))).status_code == 403
        assert (await meta.get(url)).status_code == 401
        r = await meta.get(url, headers=bearer(admin))
        assert (
            r.status_code == 200 and r.json()["releaseKey"] == service.deps.keyring.key("ds1").hex()
        )
        r = await meta.get("/api/v3/deviceservice/name/nobody/releasekey", headers=bearer(admin))
        assert r.status_code == 404


async def test_the_sdk_fetches_its_key_with_its_credential_and_signs(tmp_path: Any) -> None:
    async with auth_app("sqlite", tmp_path, move_ack_timeout=1.0, device_validation="auto") as (
        service,
        meta,
        _,
    ):
        await service.start()
        admin = await api_key(service, "admin")
        meta.headers.update(bearer(admin))
        w = World(Api(meta, service))
        await w.api.add_profile("wearable")
        keys = {n: await api_key(service, "service", service_name=n) for n in ("ds1", "ds2")}
        for n in ("ds1", "ds2"):
            own = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=service.app), base_url="http://edgemeta"
            )
            p = DeviceServiceParticipant(
                n, api_url="http://edgemeta", bus=service.bus, http=own, api_key=keys[n]
            )
            await p.start()
            w.participants[n] = p
        assert service.deps.keyring is not None
        assert w.participants["ds1"].release_key == service.deps.keyring.key("ds1")
        await w.api.add_device("badge", service="ds1", profile="wearable")
        await w.settle("badge", ["ds1"])
        result = await w.reassign("badge", "ds2")
        assert result["statusCode"] == 200, result
        await w.settle("badge", ["ds2"])
        for p in w.participants.values():
            await p.stop()
            await p.http.aclose()


# -- one real broker -------------------------------------------------------------------------


@pytest.mark.mqtt
async def test_on_mosquitto_the_forgery_is_refused_and_the_genuine_release_commits(
    tmp_path: Any,
) -> None:
    from edgemeta.bus.mqtt import MqttBus

    servers.require(servers.MQTT_URL, "Mosquitto")
    prefix = servers.unique("proofs")
    service, _ = await make_service(
        "sqlite",
        tmp_path,
        bus_url=servers.MQTT_URL,
        bus_prefix=prefix,
        move_ack_timeout=1.0,
        validation_timeout=2.0,
        device_validation="auto",
        release_proof="strict",  # every participant signs: unsigned validations are refused too
    )
    await service.start()
    believed = accepted_forgeries(service)
    buses = [MqttBus(servers.MQTT_URL) for _ in range(3)]
    for bus in buses:
        await bus.start()
    hostile = Hostile(buses[2], prefix)
    transport = httpx.ASGITransport(app=service.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
            api = Api(client, service)
            await api.add_profile("wearable")
            url = "http://edgemeta"
            # ds1 takes a moment to let go, so the forgery comes first
            ds1, ds2 = (
                DeviceServiceParticipant(
                    n, api_url=url, bus=b, prefix=prefix, http=client, on_release=_slow_accept
                )
                for n, b in zip(("ds1", "ds2"), buses[:2], strict=True)
            )
            await ds1.start()
            await ds2.start()
            await hostile.start()
            await api.add_device("badge", service="ds1", profile="wearable")
            async with asyncio.timeout(5):
                while "badge" not in ds1.serving:
                    await asyncio.sleep(0.01)
            body = {"deviceName": "badge", "serviceName": "ds2"}
            reassign = [{"apiVersion": "v3", "reassign": body}]
            # the genuine release (signed) commits, whatever the forger sends meanwhile
            r = await api.post("/device/reassign", reassign)
            assert r.json()[0]["statusCode"] == 200, r.text
            async with asyncio.timeout(5):
                while "badge" not in ds2.serving:
                    await asyncio.sleep(0.01)
            # ds2's process dies: only the forger confirms now, and is not believed
            await ds2.stop()
            body["serviceName"] = "ds1"
            r = await api.post("/device/reassign", reassign)
            item = r.json()[0]
            assert item["statusCode"] == 503 and item["move"]["state"] == "rolledBack", item
            await ds1.stop()
    finally:
        await hostile.stop()
        for bus in buses:
            await bus.close()
        await service.stop()
    assert hostile.sent[Kind.RELEASE] >= 2
    assert believed == []
    assert isinstance(service.deps.releases, BusReleases)
    assert service.deps.releases.refused >= 2


# -- the CLI ---------------------------------------------------------------------------------


def test_the_cli_prints_the_key_the_running_service_uses(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from edgemeta.cli import app

    async def key_of_a_running_service() -> str:
        service, _ = await make_service("sqlite", tmp_path)
        try:
            assert service.deps.keyring is not None
            return service.deps.keyring.key("ds1").hex()
        finally:
            await service.stop()

    expected = asyncio.run(key_of_a_running_service())
    url = f"sqlite:///{tmp_path / 'api.db'}"
    done = CliRunner().invoke(app, ["releasekey", "ds1", "--database-url", url])
    assert done.exit_code == 0, done.output
    assert done.stdout.strip().splitlines()[0] == expected
