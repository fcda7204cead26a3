"""The in-process bus: the default, for one process and no broker.

Publishing hands each message to every matching subscription's queue; nothing crosses the
process. It knows its subscribers, so it can say whether anyone would answer a request (which
is how device validation avoids a pointless timeout when no device service is connected).
Queues are bounded; a subscriber that falls more than ``queue_size`` messages behind loses the
oldest ones and is told so by ``dropped`` (the durable copy of every system event is the
outbox, from which streams resume).
"""

from __future__ import annotations

from collections.abc import Sequence

from edgemeta.bus.shared import QueueSubscription
from edgemeta.bus.topics import matches, valid_filter
from edgemeta.domain.errors import ContractInvalid
from edgemeta.ports import Message


class MemorySubscription(QueueSubscription):
    """Messages matching one filter."""

    def __init__(self, bus: MemoryBus, topic_filter: str, queue_size: int) -> None:
        super().__init__(topic_filter, queue_size)
        self.bus = bus

    async def close(self) -> None:
        """Stop receiving."""
        self.bus.unsubscribe(self)
        self._end()


class MemoryBus:
    """Publish/subscribe inside this process."""

    description = "in-process bus"

    def __init__(self, queue_size: int = 10_000) -> None:
        self.queue_size = queue_size
        self.subscriptions: list[MemorySubscription] = []

    async def start(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """End every subscription."""
        for s in list(self.subscriptions):
            await s.close()

    async def publish(self, topic: str, payload: bytes) -> None:
        """Deliver to every matching subscription now."""
        message = Message(topic, payload)
        for s in self.subscriptions:
            if matches(s.filter, topic):
                s.offer(message)

    async def publish_batch(self, messages: Sequence[tuple[str, bytes]]) -> int:
        """Deliver all, in order."""
        for topic, payload in messages:
            await self.publish(topic, payload)
        return len(messages)

    async def subscribe(self, topic_filter: str) -> MemorySubscription:
        """Subscribe to an MQTT-style filter."""
        if not valid_filter(topic_filter):
            raise ContractInvalid(f"invalid topic filter {topic_filter!r}")
        sub = MemorySubscription(self, topic_filter, self.queue_size)
        self.subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: MemorySubscription) -> None:
        """Forget a subscription."""
        if sub in self.subscriptions:
            self.subscriptions.remove(sub)

    def has_subscribers(self, topic: str) -> bool | None:
        """Whether a subscription matches ``topic`` (this bus always knows)."""
        return any(matches(s.filter, topic) for s in self.subscriptions)
