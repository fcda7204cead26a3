"""The background thread: the outbox relay and the bus ingest off the API's event loop.

One process has one core's worth of Python per thread that holds the GIL, but the relay and
the ingest mostly wait on I/O (the broker's acknowledgements, the database) and encode
envelopes; on the API's loop that work shared one core with every request (issue 10). Here
they run on a thread of their own with **their own asyncio loop, their own store connection
(SQLite) or pool (PostgreSQL) and their own bus connection**, so nothing of theirs is ever
touched from two loops. What crosses between the threads is small and thread-safe:

- the API's store reports each commit; the nudge reaches the relay with
  ``loop.call_soon_threadsafe`` (and only when its wake-up is not already set: a wake-up that
  is set is one the relay has not consumed yet, so it will look after this commit anyway);
- the relay reports each delivery to the API's :class:`~edgemeta.api.stream.Notifier` the
  same way, on the API's loop;
- shutdown drains and stops through ``asyncio.run_coroutine_threadsafe``.

Guarantees are the relay's own (``workers/relay.py``): it still reads the oldest undelivered
events, publishes them in order and marks the confirmed prefix in one transaction; nothing
it did on the API's loop needed that loop. On SQLite its connection is a second writer of the
same WAL file: its marking transaction (one statement per batch) and the API's transactions
take turns through SQLite's file lock and busy timeout instead of the store's asyncio lock.

Used only where a second connection means the same data and a second bus connection the same
broker: a file database and a real broker. With ``sqlite:///:memory:`` or the in-process bus
the relay and ingest stay on the API's loop (``EDGEMETA_BACKGROUND_THREAD`` is then ignored).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit

from edgemeta.api.stream import Notifier
from edgemeta.bus.security import BrokerRefused
from edgemeta.domain.errors import ServiceUnavailable
from edgemeta.ports import Bus, Store
from edgemeta.usecases.deps import Deps
from edgemeta.workers.ingest import EventIngest
from edgemeta.workers.relay import Relay

log = logging.getLogger("edgemeta.background")

T = TypeVar("T")


def can_run_apart(database_url: str, bus_url: str) -> bool:
    """Whether a second connection sees the same database and the same broker."""
    scheme = urlsplit(bus_url).scheme.lower()
    if scheme in ("memory", "inproc", ""):
        return False  # the in-process bus lives on the API's loop
    if urlsplit(database_url).scheme.lower() == "sqlite":
        return ":memory:" not in database_url
    return True


@dataclasses.dataclass
class BackgroundParts:
    """What the thread builds on its own loop: its store, bus, relay and ingest."""

    store: Store
    bus: Bus
    relay: Relay
    ingest: EventIngest | None


Builder = Callable[[], Awaitable[BackgroundParts]]


class BackgroundThread:
    """Runs the relay (and the ingest) on a thread with its own event loop."""

    def __init__(self, build: Builder, notifier: Notifier | None) -> None:
        self._build = build
        self._notifier = notifier
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self.parts: BackgroundParts | None = None

    @property
    def relay(self) -> Relay:
        """The thread's relay (its counters may be read from any thread)."""
        assert self.parts is not None
        return self.parts.relay

    def start(self, api_loop: asyncio.AbstractEventLoop, timeout: float = 30.0) -> None:
        """Start the thread and wait until its relay runs (raises what building raised)."""
        self._thread = threading.Thread(
            target=self._main, args=(api_loop,), name="edgemeta-background", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            raise ServiceUnavailable("the background thread did not start in time")
        if self._failure is not None:
            raise self._failure

    def nudge(self) -> None:
        """A commit on the API's loop: wake the relay (safe from any thread)."""
        loop, parts = self._loop, self.parts
        if loop is None or parts is None or parts.relay.wakeup.is_set():
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing: stop() drains anyway
            loop.call_soon_threadsafe(parts.relay.nudge)

    def _main(self, api_loop: asyncio.AbstractEventLoop) -> None:
        try:
            import uvloop

            runner: Callable[[Coroutine[Any, Any, None]], None] = uvloop.run
        except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
            runner = asyncio.run
        runner(self._run(api_loop))

    async def _run(self, api_loop: asyncio.AbstractEventLoop) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        try:
            parts = await self._build()
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
            return
        self.parts = parts
        notifier = self._notifier
        if notifier is not None:

            def notify(pos: int) -> None:
                with contextlib.suppress(RuntimeError):  # the API's loop has closed
                    api_loop.call_soon_threadsafe(notifier.notify, pos)

            parts.relay.listeners.append(notify)
        connecting = asyncio.create_task(connect(parts.bus), name="edgemeta-bg-bus-connect")
        parts.relay.start()
        ingest = parts.ingest
        if ingest is not None:
            # The ingest subscribes through the thread's bus (NATS core, in-process): only once
            # that bus is connected, or its subscription fails and nothing is ever ingested.
            def after_connect(task: asyncio.Task[None]) -> None:
                if not task.cancelled() and task.exception() is None:
                    ingest.start()

            connecting.add_done_callback(after_connect)
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connecting
            if parts.ingest is not None:
                await parts.ingest.stop()
            await parts.relay.stop()  # a last attempt to deliver what is pending
            await parts.bus.close()
            await parts.store.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def drain(self, within: float) -> None:
        """Deliver what is pending, for at most ``within`` seconds (from the API's loop)."""
        if self._loop is None or self.parts is None or self._failure is not None:
            return
        relay = self.parts.relay

        async def bounded() -> None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(within):
                    await relay.drain()

        with contextlib.suppress(Exception):
            await asyncio.wrap_future(self._call(bounded()))

    async def stop(self) -> None:
        """Stop the ingest and the relay (after its last delivery), close, join the thread."""
        loop, thread, stopped = self._loop, self._thread, self._stopped
        if loop is not None and stopped is not None and self.parts is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopped.set)
        if thread is not None:
            await asyncio.to_thread(thread.join, 10.0)
        self._thread = None


async def connect(bus: Bus) -> None:
    """Connect the thread's bus, retrying until it is up (events wait in the outbox)."""
    delay = 1.0
    while True:
        try:
            await bus.start()
            return
        except (BrokerRefused, ServiceUnavailable) as exc:
            # The API's own connection reports a refusal at start; here it is only retried.
            log.warning("background bus connection: %s; retrying", exc.message)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def ingest_deps(deps: Deps, store: Store) -> Deps:
    """The use cases' dependencies with the thread's own store."""
    return dataclasses.replace(deps, store=store)
