"""Helpers for bus tests: a factory of started buses of one kind, and waiting for messages."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any
from urllib.parse import urlsplit

from edgemeta.bus.memory import MemoryBus
from edgemeta.bus.mqtt import MqttBus
from edgemeta.bus.nats import NatsBus
from edgemeta.domain.errors import ServiceUnavailable
from edgemeta.ports import Bus, Message, Subscription
from tests.support import servers
from tests.support.tcpproxy import TcpProxy

# Short timeouts and quick reconnects, for fault tests through a proxy.
FAST: dict[str, dict[str, Any]] = {
    "mqtt": {"timeout": 1.0, "reconnect_min": 0.05, "reconnect_max": 0.2, "connect_timeout": 3},
    "nats": {"timeout": 1.0, "reconnect_time_wait": 0.1, "connect_timeout": 3},
}


class BusFactory:
    """Makes started buses of one kind; closes them (and cleans the server up) at the end.

    On the in-process bus every call returns the same bus, as every part of one process
    would share it. NATS buses capture ``<prefix>/system-events/#`` in a JetStream stream of
    their own, deleted at the end.
    """

    def __init__(self, kind: str, prefix: str) -> None:
        self.kind = kind
        self.prefix = prefix
        self.stream = servers.unique("EDGEMETA_TEST")
        self.memory = MemoryBus()
        self.made: list[Bus] = []

    def server_url(self) -> str:
        """The URL of the real server for this kind."""
        return servers.MQTT_URL if self.kind == "mqtt" else servers.NATS_URL

    def proxy(self) -> TcpProxy:
        """A (not yet started) TCP proxy in front of this kind's server."""
        parts = urlsplit(self.server_url())
        default = 1883 if self.kind == "mqtt" else 4222
        return TcpProxy(parts.hostname or "127.0.0.1", parts.port or default)

    async def __call__(self, url: str | None = None, **options: Any) -> Bus:
        bus: Bus
        if self.kind == "memory":
            return self.memory
        if self.kind == "mqtt":
            bus = MqttBus(url or servers.MQTT_URL, **options)
        else:
            options.setdefault("jetstream_subjects", [f"{self.prefix}/system-events/#"])
            bus = NatsBus(url or servers.NATS_URL, stream=self.stream, **options)
        self.made.append(bus)
        await bus.start()
        return bus

    async def through(self, proxy: TcpProxy, **options: Any) -> Bus:
        """A bus connected through ``proxy``, with the fast fault-test settings."""
        return await self(f"{self.kind}://127.0.0.1:{proxy.port}", **{**FAST[self.kind], **options})

    async def close(self) -> None:
        """Close every bus made, and drop the test's JetStream stream."""
        for bus in self.made:
            await bus.close()
        await self.memory.close()
        if self.kind == "nats":
            import nats  # the raw client, to clean up what the test created on the server

            nc = await nats.connect(servers.NATS_URL)
            try:
                with contextlib.suppress(Exception):
                    await nc.jetstream().delete_stream(self.stream)
            finally:
                await nc.close()


async def recv(sub: Subscription, within: float = 5.0) -> Message:
    """The next message, failing the test after ``within`` seconds."""
    async with asyncio.timeout(within):
        return await sub.get()


async def recv_until(sub: Subscription, marker: bytes, within: float = 5.0) -> list[Message]:
    """Everything received up to and including the message whose payload is ``marker``."""
    got: list[Message] = []
    async with asyncio.timeout(within):
        while not got or got[-1].payload != marker:
            got.append(await sub.get())
    return got


async def eventually_publish(bus: Bus, topic: str, payload: bytes, within: float = 10) -> None:
    """Publish, retrying while the bus reports the broker unavailable (it is reconnecting)."""
    deadline = time.monotonic() + within
    while True:
        try:
            await bus.publish(topic, payload)
            return
        except ServiceUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


class Collector:
    """Reads a subscription in the background (so no queue on the way overflows)."""

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.messages: list[Message] = []
        self._more = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for m in self.sub:
            self.messages.append(m)
            self._more.set()

    async def wait_for(self, n: int, within: float = 10) -> None:
        """Until at least ``n`` messages arrived."""
        async with asyncio.timeout(within):
            while len(self.messages) < n:
                self._more.clear()
                await self._more.wait()

    async def stop(self) -> None:
        """Stop reading."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
