"""A store whose write transactions are spans (``db.transaction``), when tracing is on.

Wraps the use cases' store only (bootstrap): the relay and the workers keep the plain one.
A transaction gets a span only inside a step of a trace (a move's saga steps, or any other
internal span), so background work does not start a trace of its own at every poll. Not
spans: reads (one per request would double the spans of a get for little insight), and a
write made straight under a request's server span, such as an add, a patch or a batch (the
request is that transaction: the server span already times it, and a second span would
cost as much again to record and export; ``BENCHMARKS.md``, "Observability cost").
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from contextvars import ContextVar

from edgemeta.ports import Lease, OutboxStats, Sealer, Store, Tx
from edgemeta.tracing import Tracing

# Inside a batch each write is a savepoint of the batch's one transaction: no span of its own
# (a 5,000-device batch would otherwise make 5,000).
_IN_BATCH: ContextVar[bool] = ContextVar("edgemeta_traced_batch", default=False)


def _in_a_step() -> bool:
    """Whether the current span is a recorded step of a trace other than a request's server
    span (only then does a transaction get a span of its own)."""
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    span = trace.get_current_span()
    # A non-recording span (no trace, or one not sampled) has no kind: no span either.
    return span.is_recording() and getattr(span, "kind", None) is not SpanKind.SERVER


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
        if _IN_BATCH.get() or not _in_a_step():
            async with self.store.write() as tx:
                yield tx
            return
        with self.tracing.span("db.transaction", kind="client", attributes=self._attributes):
            async with self.store.write() as tx:
                yield tx

    def read(self) -> AbstractAsyncContextManager[Tx]:
        """The store's read view (not traced)."""
        return self.store.read()

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """The store's batch (one transaction), in a ``db.batch`` span."""
        span = (
            self.tracing.span("db.batch", kind="client", attributes=self._attributes)
            if _in_a_step()
            else nullcontext()
        )
        with span:
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
