"""Two ``edgemeta serve`` instances on one PostgreSQL schema, both connected to the same broker.

Both take writes, but only the holder of the relay lease publishes, so a subscriber gets every
committed event, in per-record revision order. When the relaying instance is killed with
SIGKILL right after writes, the other takes the lease over and publishes what was left, so
every event is still published at least once (repeats are dropped by ``tags.eventId``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import psutil
import pytest

from tests.e2e.procs import ServeProcess, start
from tests.e2e.wire import (
    Api,
    LiveMqtt,
    LiveNats,
    Subscriber,
    jetstream_stream,
    out_of_order,
    postgres_outbox,
    service_doc,
    subject,
)
from tests.support import servers
from tests.support.schema import drop_schema

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

KINDS = [pytest.param("mqtt", marks=pytest.mark.mqtt), pytest.param("nats", marks=pytest.mark.nats)]


async def lease_holders(procs: list[ServeProcess]) -> list[ServeProcess]:
    """The processes whose PostgreSQL connection holds an advisory lock (the relay lease).

    PostgreSQL knows the client port of each backend; the process that owns the socket with
    that local port is the holder.
    """
    conn = await asyncpg.connect(servers.POSTGRES_URL)
    try:
        rows = await conn.fetch(
            "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND a.client_addr IS NOT NULL"
        )
    finally:
        await conn.close()
    ports = {r["client_port"] for r in rows}
    holders = []
    for p in procs:
        if p.proc.poll() is not None:
            continue
        mine = {c.laddr.port for c in psutil.Process(p.proc.pid).net_connections(kind="tcp")}
        if mine & ports:
            holders.append(p)
    return holders


async def _updates(api: Api, names: list[str], count: int, tag: str, answered: list[str]) -> None:
    for i in range(count):
        name = names[i % len(names)]
        result = await api.one(
            "PATCH", "/deviceservice", "service", {"name": name, "description": f"{tag}{i}"}
        )
        assert result["statusCode"] == 200, result
        answered.append(f"{tag}{i}")


async def _adds(api: Api, names: list[str], answered: list[str]) -> None:
    for name in names:
        result = await api.one("POST", "/deviceservice", "service", service_doc(name))
        assert result["statusCode"] == 201, result
        answered.append(name)


@contextlib.asynccontextmanager
async def _subscriber(kind: str, prefix: str) -> AsyncIterator[Subscriber]:
    url = servers.MQTT_URL if kind == "mqtt" else servers.NATS_URL
    servers.require(url, f"{kind} broker")
    sub: Subscriber
    if kind == "mqtt":
        sub = LiveMqtt(url, [f"{prefix}/system-events/#"])
    else:
        sub = LiveNats(url, [subject(f"{prefix}/system-events/#")])
    async with contextlib.AsyncExitStack() as stack:
        if kind == "nats":
            await stack.enter_async_context(jetstream_stream(url, prefix))
        await sub.start()
        stack.push_async_callback(sub.stop)
        yield sub


async def _all_on_the_broker(sub: Subscriber, schema: str, within: float = 30) -> int:
    """Wait until every event in the outbox arrived; returns how many there are."""
    async with asyncio.timeout(within):
        while True:
            stored = {e.event_id for e in await postgres_outbox(servers.POSTGRES_URL, schema)}
            if stored <= {m.event_id for m in sub.snapshot()}:
                return len(stored)
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("kind", KINDS)
async def test_two_instances_one_relay_and_a_takeover(kind: str, tmp_path: Path) -> None:
    servers.require(servers.POSTGRES_URL, "PostgreSQL")
    schema = servers.unique("e2e")
    prefix = servers.unique("e2e")
    url = servers.MQTT_URL if kind == "mqtt" else servers.NATS_URL
    args = (
        "--database-url",
        f"{servers.POSTGRES_URL}?schema={schema}",
        "--bus-url",
        url,
        "--bus-prefix",
        prefix,
        "--device-validation",
        "never",
    )
    procs: list[ServeProcess] = []
    apis: list[Api] = []
    try:
        async with _subscriber(kind, prefix) as sub:
            for _ in range(2):
                p = start(tmp_path, *args)
                procs.append(p)
                p.wait_ready(30)
                apis.append(Api(p.url))
            a, b = apis
            shared = [f"shared-{i}" for i in range(8)]
            assert (
                await a.batch("POST", "/deviceservice", "service", [service_doc(n) for n in shared])
                == [201] * 8
            )
            answered: list[str] = []
            # Both instances change the same records at once, and add their own.
            await asyncio.gather(
                _updates(a, shared, 60, "a", answered),
                _updates(b, shared, 60, "b", answered),
                _adds(a, [f"a-{i}" for i in range(20)], answered),
                _adds(b, [f"b-{i}" for i in range(20)], answered),
            )
            total = await _all_on_the_broker(sub, schema)
            assert total == 8 + len(answered) == 168
            await sub.quiet(0.3)
            before = sub.snapshot()
            assert len(before) == total  # one publisher: every event exactly once
            assert out_of_order(before) == []
            holders = await lease_holders(procs)
            assert len(holders) == 1  # only the lease holder relays
            leader = holders[0]
            survivor_api = apis[1 - procs.index(leader)]
            leader_api = apis[procs.index(leader)]

            # Writes on both, then SIGKILL of the relaying instance right after its writes
            # (with the other's writes still going on), then more writes on the survivor:
            # only a relay that took the lease over can publish those.
            late: list[str] = []
            survivor_writes = asyncio.create_task(_updates(survivor_api, shared, 40, "s", late))
            await _updates(leader_api, shared, 30, "l", late)
            leader.proc.send_signal(signal.SIGKILL)
            leader.proc.wait(10)
            await survivor_writes
            await _adds(survivor_api, [f"after-{i}" for i in range(10)], late)
            total = await _all_on_the_broker(sub, schema)
            assert total == 168 + len(late) == 168 + 80
            await sub.quiet(0.3)
            got = sub.snapshot()
            unique = sub.unique()
            assert len(unique) == total  # nothing lost, nothing foreign
            assert out_of_order(unique) == []
            assert await lease_holders(procs) == [p for p in procs if p is not leader]
    finally:
        for api in apis:
            await api.close()
        for p in procs:
            p.stop()
        await drop_schema(schema)
    print(f"{len(got) - len(unique)} repeats dropped by eventId after the takeover")
