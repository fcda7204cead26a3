"""What the bus adapters share: the queue-backed subscription and batch publishing.

Every adapter hands a subscriber its messages through a bounded queue (a slow subscriber
loses the oldest and is told so by ``dropped``: the durable copy of every system event is the
outbox), and every broker adapter publishes a batch as "the confirmed prefix, and why the
rest was not", so the relay knows exactly what to retry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence

from edgemeta.domain.errors import ContractInvalid, EdgeMetaError
from edgemeta.ports import Message


class QueueSubscription:
    """Messages matching one filter, queued until read (bounded; the oldest are dropped).

    An adapter feeds it with :meth:`offer` and ends it with :meth:`_end`; its own ``close``
    also tells the broker (or the in-process bus) to stop routing here.
    """

    def __init__(self, topic_filter: str, queue_size: int) -> None:
        self.filter = topic_filter
        self.queue: asyncio.Queue[Message | None] = asyncio.Queue(queue_size)
        self.dropped = 0
        self.closed = False

    def offer(self, message: Message) -> None:
        """Queue a message, dropping the oldest when full; nothing once closed."""
        if self.closed:
            return
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(message)

    async def __aiter__(self) -> AsyncIterator[Message]:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            yield item

    async def get(self) -> Message:
        """The next message."""
        while True:
            item = await self.queue.get()
            if item is not None:
                return item

    def _end(self) -> None:
        """Mark closed and wake the reader (``None`` ends iteration; room is made for it)."""
        self.closed = True
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


def valid_prefix(
    messages: Sequence[tuple[str, bytes]], prepare: Callable[[str], str]
) -> tuple[list[tuple[str, bytes]], ContractInvalid | None]:
    """The messages up to the first topic ``prepare`` refuses, prepared, and that refusal.

    A topic the broker cannot carry ends the batch there: what comes before still goes. The
    first one refused alone is an error, raised.
    """
    prepared: list[tuple[str, bytes]] = []
    for topic, payload in messages:
        try:
            prepared.append((prepare(topic), payload))
        except ContractInvalid as exc:
            if not prepared:
                raise
            return prepared, exc
    return prepared, None


class BatchPublisher:
    """``publish`` and ``publish_batch`` of a broker adapter, on top of its ``_publish``."""

    peer = "broker"  # how logs name the other end ("mqtt broker", "nats server")
    _log = logging.getLogger("edgemeta.bus")

    @property
    def address(self) -> str:
        """Where the broker is (for logs)."""
        raise NotImplementedError

    async def _publish(
        self, messages: Sequence[tuple[str, bytes]]
    ) -> tuple[int, EdgeMetaError | None]:
        """Publish in order; the confirmed prefix and why the rest was not (or None)."""
        raise NotImplementedError

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish one message and wait for the broker to confirm it."""
        _, error = await self._publish([(topic, payload)])
        if error is not None:
            raise error

    async def publish_batch(self, messages: Sequence[tuple[str, bytes]]) -> int:
        """Publish in order, pipelined; return how many, from the first, were confirmed.

        Raises ServiceUnavailable when none was confirmed (disconnected, timed out).
        """
        confirmed, error = await self._publish(messages)
        if error is not None:
            if confirmed == 0:
                raise error
            self._log.warning(
                "%s %s confirmed %d of %d messages: %s",
                self.peer,
                self.address,
                confirmed,
                len(messages),
                error.message,
            )
        return confirmed
