"""Local subscribers without a broker: follow delivered system events from the outbox.

A stream starts after a delivery position (``since``; by default the current end) and yields
every delivered event whose topic matches one of its MQTT-style filters, in delivery order.
Because it reads the outbox, not a bus, it works on every bus and every instance, and a client
that reconnects with the last position it saw (SSE's ``Last-Event-ID``) misses nothing that is
still within the retention. If the events it asks for were already purged, the stream says so
with a gap notice instead of pretending.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from edgemeta.bus.envelope import envelope, system_event
from edgemeta.bus.topics import matches, system_event_topic
from edgemeta.ports import OutboxEvent, Store


@dataclass(frozen=True, slots=True)
class StreamItem:
    """One event for a stream: its position, topic and envelope; or a gap notice."""

    pos: int
    topic: str
    data: bytes
    gap_from: int = 0  # > 0: positions gap_from..pos-1 are no longer retained


class Notifier:
    """Wakes waiting streams when the local relay delivers, and ends them at shutdown."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.closed = False

    def notify(self, pos: int) -> None:
        """Called by the relay with the last position it delivered."""
        self._event.set()
        self._event = asyncio.Event()

    def close(self) -> None:
        """The service is stopping: every stream sends what is delivered so far, then ends
        (an open stream would otherwise keep the HTTP server from ever finishing its stop)."""
        self.closed = True
        self.notify(0)

    async def wait(self) -> None:
        """Until the next delivery by this process's relay."""
        await self._event.wait()


async def follow(
    store: Store,
    notifier: Notifier,
    filters: list[str],
    *,
    prefix: str = "edgex",
    name_escape: bool = False,
    since: int | None = None,
    poll: float = 1.0,
    batch: int = 500,
) -> AsyncIterator[StreamItem]:
    """Yield matching delivered events after ``since`` (None: from now on), until the
    notifier closes; then the events delivered up to that moment, and return."""
    async with store.read() as tx:
        last = await tx.feed.last_position() if since is None else since
        first = await tx.feed.delivered_since(last, 1)
    if first and first[0].pos is not None and first[0].pos > last + 1 and since is not None:
        yield StreamItem(first[0].pos - 1, "", b"", gap_from=last + 1)
    while True:
        async with store.read() as tx:
            rows = await tx.feed.delivered_since(last, batch)
        for ev in rows:
            assert ev.pos is not None
            last = ev.pos
            topic = system_event_topic(
                prefix, ev.type, ev.action, ev.owner, ev.profile_name, name_escape=name_escape
            )
            if any(matches(f, topic) for f in filters):
                yield StreamItem(ev.pos, topic, _envelope(ev, topic))
        if len(rows) < batch:
            if notifier.closed:
                return  # everything delivered before the close has been read
            # Wake on our relay's next delivery; poll for other instances' deliveries.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await notifier.wait()


def _envelope(ev: OutboxEvent, topic: str) -> bytes:
    return envelope(system_event(ev), correlation_id=ev.correlation_id, received_topic=topic)
