"""A store whose write transactions are spans (``db.transaction``), when tracing is on.

Wraps the use cases' store only (bootstrap): the relay and the workers keep the plain one.
A transaction gets a span only inside a trace (a request's, a move's), so background work
does not start a trace of its own at every poll; reads are not traced (one per request
would double the spans of a get for little insight: the server span already times it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar

from edgemeta.ports import Lease, OutboxStats, Sealer, Store, Tx
from edgemeta.tracing import Tracing

# Inside a batch each write is a savepoint of the batch's one transaction: no span of its own
# (a 5,000-device batch would otherwise make 5,000).
_IN_BATCH: ContextVar[bool] = ContextVar("edgemeta_traced_batch", default=False)


class TracedStore:
    """``store`` with a span around each write transaction and batch."""

    def __init__(self, store: Store, tracing: Tracing, system: str) -> None:
        self.store = store
        self.tracing = tracing
        self.description = store.description
        self._attributes = {"db.system.name": system}

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        """The store's write transaction, in a ``db.transaction`` span."""
        if _IN_BATCH.get():
            async with self.store.write() as tx:
                yield tx
            return
        with self.tracing.span(
            "db.transaction", kind="client", attributes=self._attributes, in_trace_only=True
        ):
            async with self.store.write() as tx:
                yield tx

    def read(self) -> AbstractAsyncContextManager[Tx]:
        """The store's read view (not traced)."""
        return self.store.read()

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """The store's batch (one transaction), in a ``db.batch`` span."""
        with self.tracing.span(
            "db.batch", kind="client", attributes=self._attributes, in_trace_only=True
        ):
            token = _IN_BATCH.set(True)
            try:
                async with self.store.batch():
                    yield
            finally:
                _IN_BATCH.reset(token)

    def on_commit(self, listener: Callable[[], None]) -> None:
        """As the store's."""
        self.store.on_commit(listener)

    def lease(self, name: str) -> Lease:
        """As the store's."""
        return self.store.lease(name)

    def use_sealer(self, sealer: Sealer) -> None:
        """As the store's."""
        self.store.use_sealer(sealer)

    async def outbox_stats(self) -> OutboxStats:
        """As the store's."""
        return await self.store.outbox_stats()

    def time_transactions(self, listener: Callable[[float], None]) -> None:
        """As the store's."""
        self.store.time_transactions(listener)

    def pool_stats(self) -> dict[str, int]:
        """As the store's."""
        return self.store.pool_stats()

    async def schema_version(self) -> tuple[int, int]:
        """As the store's."""
        return await self.store.schema_version()

    async def close(self) -> None:
        """As the store's."""
        await self.store.close()
