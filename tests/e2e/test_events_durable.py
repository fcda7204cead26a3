"""Nothing lost over a real broker: ``edgemeta serve`` publishing to a private Mosquitto or
nats-server that is stopped and restarted mid-stream, or itself killed with SIGKILL right after
a write. A durable subscriber (an MQTT persistent session with QoS 1 on a broker with
persistence; a durable JetStream consumer) must end with every committed event, each exactly
once after dropping repeats by ``tags.eventId``, in per-record revision order.

The truth to compare with is the outbox the service committed (read from its SQLite file).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.procs import start
from tests.e2e.wire import (
    Api,
    DurableMqtt,
    DurableNats,
    Subscriber,
    out_of_order,
    running,
    service_doc,
    sqlite_outbox,
    system_event_subjects,
)
from tests.support.brokers import PrivateBroker, private_broker

pytestmark = pytest.mark.slow

KINDS = [pytest.param("mqtt", marks=pytest.mark.mqtt), pytest.param("nats", marks=pytest.mark.nats)]
PREFIX = "edgex"  # a private broker: the default prefix, as a real deployment has it


@pytest.fixture(params=KINDS)
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PrivateBroker]:
    """A private broker that the test may stop and restart (Mosquitto with persistence)."""
    (tmp_path / "broker").mkdir()
    with private_broker(request.param, tmp_path / "broker", persistent=True) as b:
        yield b


def durable_subscriber(broker: PrivateBroker) -> Subscriber:
    if broker.kind == "mqtt":
        return DurableMqtt(broker.url, [f"{PREFIX}/system-events/#"], client_id="probe-durable")
    return DurableNats(broker.url, "EVENTS", system_event_subjects(PREFIX))


def serve_args(broker: PrivateBroker) -> tuple[str, ...]:
    return ("--bus-url", broker.url, "--bus-prefix", PREFIX, "--device-validation", "never")


def check_exactly_the_outbox(sub: Subscriber, db: Path) -> tuple[int, int]:
    """Every committed event arrived, nothing else did, in per-record revision order;
    returns (distinct events, repeats dropped)."""
    stored = sqlite_outbox(db)
    received = sub.snapshot()
    unique = sub.unique()
    assert len({e.event_id for e in stored}) == len(stored)
    assert [m.event_id for m in unique] != []
    assert {m.event_id for m in unique} == {e.event_id for e in stored}
    assert len(unique) == len(stored)
    assert out_of_order(unique) == []
    return len(unique), len(received) - len(unique)


async def _steady_writer(
    api: Api, names: list[str], count: int, accepted: list[int], interval: float = 0.005
) -> None:
    """``count`` updates, round robin over ``names``, each one write and one event; every
    one must succeed, whatever the broker is doing."""
    for i in range(count):
        result = await api.one(
            "PATCH",
            "/deviceservice",
            "service",
            {"name": names[i % len(names)], "description": f"v{i}"},
        )
        assert result["statusCode"] == 200, result
        accepted.append(i)
        await asyncio.sleep(interval)


async def test_broker_restart_mid_stream_loses_nothing(
    broker: PrivateBroker, tmp_path: Path
) -> None:
    names = [f"svc-{i:02d}" for i in range(20)]
    per_phase = 80  # updates before the stop, while down, after the restart
    sub = durable_subscriber(broker)
    async with running(sub):
        p = start(tmp_path, *serve_args(broker))
        try:
            p.wait_ready(30)
            api = Api(p.url)
            try:
                assert (
                    await api.batch(
                        "POST", "/deviceservice", "service", [service_doc(n) for n in names]
                    )
                    == [201] * 20
                )
                accepted: list[int] = []
                writer = asyncio.create_task(_steady_writer(api, names, 3 * per_phase, accepted))
                while len(accepted) < per_phase:
                    await asyncio.sleep(0.005)
                broker.stop()  # mid-stream; the writer goes on
                stopped_at = len(accepted)
                while len(accepted) < 2 * per_phase:
                    await asyncio.sleep(0.005)
                    assert not writer.done() or writer.exception() is None
                # Everything written meanwhile waits in the outbox, not on the broker.
                seen_while_down = len(sub.unique())
                written_while_down = len(accepted) - stopped_at
                broker.start()
                await writer
            finally:
                await api.close()
            total = 20 + 3 * per_phase
            await sub.wait_unique(total, within=40)
            await sub.quiet(0.5)
            assert p.proc.poll() is None
        finally:
            assert p.stop() == 0
        # Nothing written during the outage reached the broker then (one write may have
        # been in flight at the stop): those events waited in the outbox.
        assert written_while_down >= 20
        assert seen_while_down <= 20 + stopped_at + 1
        distinct, repeats = check_exactly_the_outbox(sub, tmp_path / "data" / "edgemeta.db")
        assert distinct == total
        assert repeats <= 40  # only what was in flight at the stop may come twice
    if isinstance(sub, DurableMqtt):
        # The broker kept the persistent session across its restart (the rig works).
        assert sub.sessions[0] is False and True in sub.sessions[1:]
    assert "lost connection" in p.log() or "not connected" in p.log()


async def _writers_until_killed(url: str, kill: object, total: int) -> list[str]:
    """Four concurrent writers of one-service adds; SIGKILL once half were answered."""
    accepted: list[str] = []
    names = [f"svc-{i:04d}" for i in range(total)]

    async def writer(mine: list[str]) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            for name in mine:
                r = await client.post(
                    f"{url}/deviceservice",
                    json=[{"apiVersion": "v3", "service": service_doc(name)}],
                )
                if r.json()[0]["statusCode"] == 201:
                    accepted.append(name)

    tasks = [asyncio.create_task(writer(names[i::4])) for i in range(4)]
    while len(accepted) < total // 2:
        await asyncio.sleep(0.002)
    kill()  # type: ignore[operator]
    await asyncio.gather(*tasks, return_exceptions=True)
    return accepted


async def test_sigkill_after_writes_loses_no_event_on_the_broker(
    broker: PrivateBroker, tmp_path: Path
) -> None:
    sub = durable_subscriber(broker)
    async with running(sub):
        p = start(tmp_path, *serve_args(broker))
        p.wait_ready(30)
        accepted = await _writers_until_killed(p.url, p.proc.kill, 300)
        p.proc.wait(10)
        assert p.proc.returncode == -signal.SIGKILL
        assert len(accepted) >= 150
        db = tmp_path / "data" / "edgemeta.db"
        committed = sqlite_outbox(db)
        before_restart = len(sub.unique())

        q = start(tmp_path, *serve_args(broker))  # the same data directory
        try:
            q.wait_ready(30)
            async with httpx.AsyncClient(timeout=10) as client:
                r = await client.get(f"{q.url}/deviceservice/all", params={"limit": -1})
                stored = {s["name"] for s in r.json()["services"]}
                # Every answered write survived (one in flight at the kill may have too).
                assert set(accepted) <= stored
                assert len(committed) == len(stored)
                # After the restart the service works on as before.
                r = await client.post(
                    f"{q.url}/deviceservice",
                    json=[{"apiVersion": "v3", "service": service_doc("after-restart")}],
                )
                assert r.json()[0]["statusCode"] == 201
            got = await sub.wait_unique(len(stored) + 1, within=30)
            await sub.quiet(0.3)
        finally:
            assert q.stop() == 0
    assert {m.event["details"]["name"] for m in got} == stored | {"after-restart"}
    distinct, _ = check_exactly_the_outbox(sub, db)
    assert distinct == len(stored) + 1
    # The kill came right after writes, so some events were committed but not yet on the
    # broker: the restarted service is what published them (when the relay was quicker than
    # the kill every time, there is nothing left to prove here, and the run says so).
    print(f"on the broker before the restart: {before_restart} of {len(committed)}")
