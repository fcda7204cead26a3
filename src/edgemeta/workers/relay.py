"""The outbox relay: publishes committed system events in order and marks them delivered.

Loop: take the oldest undelivered events, publish them in order, record delivery for the
prefix the broker confirmed. A broker that refuses or is unreachable leaves the events where
they are; the relay retries with exponential backoff (capped) and loses nothing. After a crash
the undelivered rows are simply still there. Delivery is therefore **at least once**: an event
published just before a crash, but not yet marked, is published again after the restart;
consumers drop the repeat by its ``eventId`` tag.

The relay wakes when the store reports a commit, and otherwise polls (other instances on the
same PostgreSQL write too). Delivered events are kept for ``retention`` and then purged.

Only one relay publishes at a time: the holder of the store's ``outbox-relay`` lease (on
SQLite an ``flock`` on a file beside the database, shared by ``--workers N`` processes and
released by the kernel if its holder dies; a PostgreSQL advisory lock otherwise, released by
the database if its holder dies). The relay usually runs on the background thread
(``workers/background.py``), on its own loop and store connection. One publisher keeps the
delivery order the commit order, per record and overall.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from edgemeta.bus.envelope import system_event_envelope
from edgemeta.bus.topics import system_event_topic
from edgemeta.domain.errors import ContractInvalid, EdgeMetaError, LimitExceeded
from edgemeta.ports import Bus, OutboxEvent, Store
from edgemeta.tracing import Tracing, context_of, sampled, traceparent_of

if TYPE_CHECKING:
    from opentelemetry.trace import Span

log = logging.getLogger("edgemeta.relay")

Listener = Callable[[int], None]


class Relay:
    """Moves events from the outbox to the bus."""

    def __init__(
        self,
        store: Store,
        bus: Bus,
        *,
        prefix: str = "edgex",
        name_escape: bool = False,
        batch_size: int = 500,
        poll_interval: float = 0.5,
        retention_s: float = 7 * 24 * 3600,
        backoff_max: float = 2.0,  # a broker back is noticed within 2 s; retrying costs little
        tracing: Tracing | None = None,
    ) -> None:
        self.tracing = tracing or Tracing.off()
        self.store = store
        self.bus = bus
        self.prefix = prefix
        self.name_escape = name_escape
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retention_ns = int(retention_s * 1e9)
        self.backoff_max = backoff_max
        self.wakeup = asyncio.Event()
        self.listeners: list[Listener] = []
        # Told the commit times of the events the broker confirmed (the relay-lag metric).
        self.on_published: Callable[[list[int]], None] | None = None
        self.delivered_total = 0
        self.set_aside = 0
        self.failures = 0
        self._task: asyncio.Task[None] | None = None
        self._last_purge = 0.0
        self.lease = store.lease("outbox-relay")
        self.leader = False
        self._stepping = asyncio.Lock()  # one step at a time, even with drain() called alongside

    def topic(self, ev: OutboxEvent) -> str:
        """The topic an outbox event is published on."""
        return system_event_topic(
            self.prefix,
            ev.type,
            ev.action,
            ev.owner,
            ev.profile_name,
            name_escape=self.name_escape,
        )

    def nudge(self) -> None:
        """Something was committed: look now rather than at the next poll."""
        self.wakeup.set()

    async def step(self) -> int:
        """Publish one batch (if this process holds the relay lease); returns how many."""
        async with self._stepping:
            return await self._step()

    async def _step(self) -> int:
        self.leader = await self.lease.acquire()
        if not self.leader:
            return 0
        async with self.store.read() as tx:
            batch = await tx.feed.pending(self.batch_size)
        if not batch:
            return 0
        # Reading and encoding a full batch take ~20 ms each on SQLite, where neither waits:
        # yield between them so that requests are answered in between (issue 15). Not between
        # publishing and marking delivered: that would widen the window for a duplicate.
        await asyncio.sleep(0)
        spans: list[tuple[int, Span]] = []
        if self.tracing.enabled:
            messages = self._traced_messages(batch, spans)
        else:
            messages = [(self.topic(ev), system_event_envelope(ev)) for ev in batch]
        await asyncio.sleep(0)
        try:
            try:
                confirmed = await self.bus.publish_batch(messages)
            except BaseException:
                confirmed = 0
                raise
            finally:
                _end(spans, confirmed)
        except (ContractInvalid, LimitExceeded) as exc:
            # The bus refuses the first event for good (adapters publish what precedes a bad
            # message and report the count): set it aside instead of retrying it forever.
            await self._set_aside(batch[0], messages[0][0], exc.message)
            return 1
        except EdgeMetaError as exc:
            log.warning("publishing system events failed: %s", exc.message)
            confirmed = 0
        if confirmed:
            seqs = [ev.seq for ev in batch[:confirmed]]
            async with self.store.write() as tx:
                last = await tx.feed.mark_delivered(seqs, time.time_ns())
            self.delivered_total += confirmed
            if self.on_published is not None:
                self.on_published([ev.timestamp_ns for ev in batch[:confirmed]])
            for listener in self.listeners:
                listener(last[-1])
        if confirmed == 0:
            raise _Stalled()  # nothing went: back off (a partial batch is retried at once)
        return confirmed

    def _traced_messages(
        self, batch: list[OutboxEvent], spans: list[tuple[int, Span]]
    ) -> list[tuple[str, bytes]]:
        """The batch's messages, each event written in a trace published in a producer span
        of that trace (the envelope names the span, for the consumer to continue it)."""
        messages: list[tuple[str, bytes]] = []
        for i, ev in enumerate(batch):
            topic = self.topic(ev)
            traceparent = ""
            if ev.traceparent and not sampled(ev.traceparent):
                # An unrecorded trace: the parent-based sampler would drop a publish span,
                # so none is made; the consumer is handed the same "not sampled" decision.
                traceparent = ev.traceparent
            elif ev.traceparent:
                span = self.tracing.start(
                    f"publish {ev.type} {ev.action}",
                    kind="producer",
                    parent=context_of(ev.traceparent),
                    attributes={
                        "messaging.system": "edgex",
                        "messaging.destination.name": topic,
                        "messaging.message.id": ev.event_id,
                        "edgemeta.correlation_id": ev.correlation_id,
                    },
                )
                if span is not None:
                    spans.append((i, span))
                    traceparent = traceparent_of(span)
            messages.append((topic, system_event_envelope(ev, traceparent)))
        return messages

    async def _set_aside(self, ev: OutboxEvent, topic: str, reason: str) -> None:
        log.error(
            "the bus refuses system event %s (%s %s of %s) on %s for good: %s; it stays in "
            "the outbox, readable from the event stream, but no broker has it",
            ev.event_id,
            ev.type,
            ev.action,
            ev.record_key,
            topic,
            reason,
        )
        async with self.store.write() as tx:
            last = await tx.feed.mark_delivered([ev.seq], time.time_ns(), failure=reason)
        self.set_aside += 1
        for listener in self.listeners:
            listener(last[-1])

    async def drain(self) -> int:
        """Publish until nothing is pending (for tests and shutdown)."""
        total = 0
        while n := await self.step():
            total += n
        return total

    async def _purge(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < 60:
            return
        self._last_purge = now
        async with self.store.write() as tx:
            n = await tx.feed.purge_delivered(time.time_ns() - self.retention_ns)
        if n:
            log.info("purged %d delivered system events past retention", n)

    async def run(self) -> None:
        """Relay until cancelled."""
        backoff = 0.05
        while True:
            # Cleared before looking, not after: a commit reported while a step reads (on
            # PostgreSQL, after the read's snapshot but before its answer) must wake the wait
            # below at once instead of being forgotten until the next poll.
            self.wakeup.clear()
            try:
                n = await self.step()
                backoff = 0.05
                if n:
                    continue  # there may be more: look again before sleeping
                await self._purge()
            except _Stalled:
                self.failures += 1
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.backoff_max)
                continue
            except EdgeMetaError as exc:
                log.warning("relay step failed: %s", exc.message)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.backoff_max)
                continue
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            # that races with the event being set, and the relay would then never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self.wakeup.wait()

    def start(self) -> None:
        """Run in the background."""
        self._task = asyncio.create_task(self.run(), name="edgemeta-relay")

    async def stop(self) -> None:
        """Stop after a last attempt to deliver what is pending."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(EdgeMetaError, _Stalled, TimeoutError):
            async with asyncio.timeout(2.0):
                await self.drain()
        await self.lease.release()


def _end(spans: list[tuple[int, Span]], confirmed: int) -> None:
    """End the publish spans; those of events the broker did not take are errors (they are
    published again later, in a span of their own)."""
    if not spans:
        return
    from opentelemetry.trace import Status, StatusCode

    for i, span in spans:
        if i >= confirmed:
            span.set_status(Status(StatusCode.ERROR, "not delivered; retried later"))
        span.end()


class _Stalled(Exception):
    """The broker did not take the whole batch."""
