"""``EDGEMETA_EVENT_RETENTION_HOURS``: delivered system events are kept that long for replay
through the stream, then the relay purges them (undelivered ones never)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.support.api import Api, make_service
from tests.support.schema import drop_schema


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize(("hours", "kept"), [(168.0, True), (0.0001, False)])
async def test_retention_setting_decides_what_the_relay_purges(
    backend: str, hours: float, kept: bool, tmp_path: Any
) -> None:
    service, schema = await make_service(backend, tmp_path, event_retention_hours=hours)
    transport = httpx.ASGITransport(app=service.app)
    try:
        assert service.relay.retention_ns == int(hours * 3600 * 1e9)
        async with httpx.AsyncClient(transport=transport, base_url="http://e") as client:
            api = Api(client, service)
            await api.add_service("a")
            await api.add_service("b")
            assert await asyncio.wait_for(service.relay.drain(), 10) == 2
            await asyncio.sleep(0.5)  # now older than 0.36 s
            await api.add_service("c")  # not delivered: never purged
        service.relay._last_purge = 0.0  # the relay purges at most once a minute
        await asyncio.wait_for(service.relay._purge(), 10)
        async with service.store.read() as tx:
            delivered = await tx.feed.delivered_since(0, 100)
            pending = await tx.feed.pending(100)
        assert len(pending) == 1
        assert len(delivered) == (2 if kept else 0)
    finally:
        await service.stop()  # also gives up the relay's lease (a pooled connection)
        if schema:
            await drop_schema(schema)
