"""The relay wakes for a commit reported while it is still reading the outbox.

On PostgreSQL the relay's read is a round trip: a write can commit (and nudge the relay) after
the read's snapshot was taken but before its answer is back. That nudge must not be lost, or
the event waits for the next poll instead of going out at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from edgemeta.bus.memory import MemoryBus
from edgemeta.domain.events import Action, service_changed
from edgemeta.domain.records import AdminState, DeviceService
from edgemeta.store import open_store
from edgemeta.workers.relay import Relay


async def test_a_commit_during_the_read_is_not_left_for_the_next_poll(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    bus = MemoryBus()
    sub = await bus.subscribe("edgex/#")
    relay = Relay(store, bus, poll_interval=5.0)
    store.on_commit(relay.nudge)
    real_read = store.read
    reading = asyncio.Event()

    @contextlib.asynccontextmanager
    async def read_then_travel() -> AsyncIterator[Any]:
        async with real_read() as tx:
            yield tx
        # The snapshot is taken; the answer is still on its way back, as over a network.
        reading.set()
        await asyncio.sleep(0.2)

    store.read = read_then_travel  # type: ignore[method-assign]
    relay.start()
    try:
        await asyncio.wait_for(reading.wait(), 2)  # the first look: nothing pending yet
        service = DeviceService(
            id=str(uuid.uuid4()),
            name="ds",
            base_address="http://x:1",
            admin_state=AdminState.UNLOCKED,
        )
        async with store.write() as tx:  # commits (and nudges) while the relay reads
            await tx.outbox.append(service_changed(Action.ADD, service), "c")
        t0 = time.monotonic()
        message = await asyncio.wait_for(sub.get(), 10)
        waited = time.monotonic() - t0
        assert message.topic == "edgex/system-events/core-metadata/deviceservice/add/ds"
        assert waited < 1.0  # not the 5 s poll
    finally:
        await relay.stop()
        await store.close()
