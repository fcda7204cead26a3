"""The outbox relay on a real broker, through a connection that gets cut.

What the relay promises (``edgemeta.workers.relay``): every committed system event is published,
in commit order, at least once, whatever the broker does in between. Here the relay runs on an
MQTT or NATS bus behind a TCP proxy; the proxy is cut while a backlog is being published and
while more events are committed, then restored. An observer connected straight to the broker
must end up with every event, in commit order once repeats are dropped by ``eventId`` (as
consumers do), and the outbox must have nothing left pending.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from edgemeta.bus.envelope import decode
from edgemeta.domain.events import device_added
from edgemeta.domain.records import AdminState, Device, OperatingState
from edgemeta.ports import Store
from edgemeta.store import open_store
from edgemeta.workers.relay import Relay
from tests.support.buses import BROKERS
from tests.support.bushelp import BusFactory, Collector
from tests.support.tcpproxy import TcpProxy


def _device(i: int) -> Device:
    return Device(
        id=str(uuid.uuid4()),
        name=f"dev-{i}",
        service_name="device-virtual",
        admin_state=AdminState.UNLOCKED,
        operating_state=OperatingState.UP,
        protocols={"other": {"Address": str(i)}},
        profile_name="Simple-Thermostat",
    )


async def _commit(store: Store, first: int, count: int, per_tx: int = 250) -> None:
    for start in range(first, first + count, per_tx):
        async with store.write() as tx:
            for i in range(start, min(start + per_tx, first + count)):
                await tx.outbox.append(device_added(_device(i)), f"corr-{i}")


async def _pending(store: Store) -> int:
    async with store.read() as tx:
        return len(await tx.feed.pending(1))


@pytest.mark.slow
@pytest.mark.parametrize("bus_factory", BROKERS, indirect=True)
async def test_relay_survives_a_broker_outage(
    bus_factory: BusFactory, proxy: TcpProxy, prefix: str, tmp_path: Path
) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    bus = await bus_factory.through(proxy)
    observer = await bus_factory(**({"qos": 0} if bus_factory.kind == "mqtt" else {}))
    seen = Collector(await observer.subscribe(f"{prefix}/system-events/#"))
    relay = Relay(store, bus, prefix=prefix, poll_interval=0.05, backoff_max=0.2)
    store.on_commit(relay.nudge)
    delivered = asyncio.Event()
    relay.listeners.append(lambda _pos: delivered.set())
    try:
        await _commit(store, 0, 3000)
        relay.start()
        await seen.wait_for(300)
        await proxy.stop()  # in the middle of the backlog
        await _commit(store, 3000, 500)  # committed while the broker is unreachable
        await asyncio.sleep(0.5)
        await proxy.start()
        await _commit(store, 3500, 500)
        async with asyncio.timeout(20):
            while True:
                delivered.clear()
                if not await _pending(store):
                    break
                await delivered.wait()
        await seen.wait_for(4000)
        await asyncio.sleep(0.2)  # anything still on its way
    finally:
        await relay.stop()
        await seen.stop()
        await store.close()

    names: list[str] = []
    ids: set[str] = set()
    for m in seen.messages:
        event = decode(m.payload)["payload"]
        if event["tags"]["eventId"] not in ids:  # a repeat of an unconfirmed publish
            ids.add(event["tags"]["eventId"])
            names.append(event["details"]["name"])
    assert names == [f"dev-{i}" for i in range(4000)]
    assert relay.delivered_total == 4000
    assert relay.failures > 0, "the outage was not noticed: the test proved nothing"
