"""Prometheus metrics: one :class:`Metrics` object per service, never the global registry.

Each :class:`~edgemeta.bootstrap.Service` builds its own ``CollectorRegistry``, so several
services in one process (the tests) never share a counter. When ``PROMETHEUS_MULTIPROC_DIR``
is set (``edgemeta serve --workers N``), the values live in that directory's memory-mapped
files and a scrape of any worker reads them all through ``MultiProcessCollector``.

Gauges that need the database (outbox backlog, oldest undelivered event, devices per service)
are computed at scrape time by :class:`_StoreCollector` with cheap indexed queries, so the
request path pays nothing for them. The HTTP middleware labels requests by the route
*template* the router matched (never the path), keeping the label sets bounded.
The metric names and what they tell an operator: docs/metrics.md.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgemeta.ports import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: At most this many services get their own ``edgemeta_devices`` series; the rest are summed
#: under ``service="_other"`` (a label value per service must not grow without bound).
MAX_SERVICE_LABELS = 50
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Every edgemeta metric, registered in one registry of its own."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess = bool(multiprocess_dir)
        # In multi-process mode, values go to files; the metric objects still need a registry
        # to be created in, but the one scraped is built on the files (see ``registry``).
        self._own = CollectorRegistry(auto_describe=False)
        r = self._own
        # ``app``: which of the ports answered (core-metadata, core-data, core-keeper,
        # core-command). Their routes overlap (/api/v3/ping is on each) and their latencies
        # differ in kind: core-command waits for a device, so alerts must tell them apart.
        self.http_requests = Counter(
            "edgemeta_http_requests",
            "HTTP requests answered, by application (port), route template, method and status.",
            ["app", "route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "edgemeta_http_request_duration_seconds",
            "Time to answer an HTTP request, by application (port), route template and method.",
            ["app", "route", "method"],
            buckets=_FAST,
            registry=r,
        )
        self.moves = Counter(
            "edgemeta_moves",
            "Finished moves by final state (assigned, rolledBack, failed) and reason.",
            ["state", "reason"],
            registry=r,
        )
        self.move_steps = Histogram(
            "edgemeta_move_step_duration_seconds",
            "Duration of a move's steps: accept (new service), release (old), assign.",
            ["step"],
            buckets=_SLOW,
            registry=r,
        )
        self.move_rollbacks = Counter(
            "edgemeta_move_rollbacks",
            "Moves rolled back, by the move's reason.",
            ["reason"],
            registry=r,
        )
        self.move_ack_timeouts = Counter(
            "edgemeta_move_ack_timeouts",
            "Old owners that did not confirm a release in time.",
            registry=r,
        )
        self.moves_in_flight = Gauge(
            "edgemeta_moves_in_flight",
            "Moves being run by this service now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.relay_lag = Histogram(
            "edgemeta_relay_lag_seconds",
            "Time from a system event's commit to its publication on the bus.",
            buckets=_SLOW,
            registry=r,
        )
        self.events_published = Counter(
            "edgemeta_events_published",
            "System events the broker confirmed.",
            registry=r,
        )
        self.bus_connected = Gauge(
            "edgemeta_bus_connected",
            "1 when the bus is connected (with several workers: the lowest of them).",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.bus_reconnects = Counter(
            "edgemeta_bus_reconnects", "Reconnections to the broker after a loss.", registry=r
        )
        self.registrations = Counter(
            "edgemeta_registrations",
            "Registrations by outcome (registered, refused) and reason (the attestation when "
            "registered; the error kind when refused, e.g. Unauthorized).",
            ["outcome", "reason"],
            registry=r,
        )
        self.ingest_events = Counter(
            "edgemeta_ingest_events", "Events from the bus stored by core-data.", registry=r
        )
        self.ingest_refused = Counter(
            "edgemeta_ingest_refused",
            "Events from the bus not stored: duplicate (already stored) or invalid.",
            ["reason"],
            registry=r,
        )
        self.db_transactions = Histogram(
            "edgemeta_db_transaction_duration_seconds",
            "Write transactions, from begin to commit (committed ones).",
            buckets=_FAST,
            registry=r,
        )
        self.db_connections = Gauge(
            "edgemeta_db_pool_connections",
            "Database connections by state (in_use, idle).",
            ["state"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self._bus_reconnects_seen = 0
        self.bus: Any = None  # sampled at every scrape (see sample_bus)
        self._store_collectors: list[_StoreCollector] = []
        self._pool: Store | None = None
        if multiprocess_dir:
            self.registry = CollectorRegistry(auto_describe=False)
            self._files = multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
                self.registry, path=multiprocess_dir
            )
        else:
            self.registry = r

    # -- the use cases' Meter port (edgemeta.ports.Meter) ------------------------------

    def move_started(self) -> None:
        """A move began."""
        self.moves_in_flight.inc()

    def move_ended(self, state: str, reason: str) -> None:
        """A move ended; counted by final state unless it had none (refused, taken over)."""
        self.moves_in_flight.dec()
        if state:
            self.moves.labels(state, reason).inc()
            if state == "rolledBack":
                self.move_rollbacks.labels(reason).inc()

    def move_step(self, step: str, seconds: float) -> None:
        """A step's duration."""
        self.move_steps.labels(step).observe(seconds)

    def move_ack_timeout(self) -> None:
        """No release confirmation in time."""
        self.move_ack_timeouts.inc()

    def registration(self, outcome: str, reason: str) -> None:
        """A registration ended."""
        self.registrations.labels(outcome, reason).inc()

    def ingested(self, stored: int, duplicates: int, refused: int) -> None:
        """A batch of bus events was ingested."""
        if stored:
            self.ingest_events.inc(stored)
        if duplicates:
            self.ingest_refused.labels("duplicate").inc(duplicates)
        if refused:
            self.ingest_refused.labels("invalid").inc(refused)

    def add_store(self, store: Store) -> None:
        """Compute the store's gauges at scrape time (any worker can: the data is shared)."""
        store.time_transactions(self.db_transactions.observe)
        self._pool = store
        collector = _StoreCollector(store)
        self._store_collectors.append(collector)
        self.registry.register(collector)

    def sample_bus(self, bus: Any) -> None:
        """Copy the bus adapter's connection state and reconnect count into the metrics.

        The adapters keep plain attributes (``connected``, ``reconnects``); sampling them
        keeps metrics out of the bus code. The memory bus is always connected."""
        connected = getattr(bus, "connected", True)
        self.bus_connected.set(1 if connected else 0)
        seen = int(getattr(bus, "reconnects", 0))
        if seen > self._bus_reconnects_seen:
            self.bus_reconnects.inc(seen - self._bus_reconnects_seen)
            self._bus_reconnects_seen = seen

    def published(self, commit_ns: list[int]) -> None:
        """The broker confirmed events committed at ``commit_ns``."""
        now = time.time_ns()
        self.events_published.inc(len(commit_ns))
        observe = self.relay_lag.observe
        for ns in commit_ns:
            observe(max(0.0, (now - ns) / 1e9))

    async def exposition(self) -> bytes:
        """The text format of everything, store gauges and the bus state refreshed first."""
        await self.refresh()
        return generate_latest(self.registry)

    async def refresh(self) -> None:
        """Read the bus state and the store's gauges now (before a scrape)."""
        if self._pool is not None:
            for state, n in self._pool.pool_stats().items():
                self.db_connections.labels(state).set(n)
        if self.bus is not None:
            self.sample_bus(self.bus)
        for c in self._store_collectors:
            # Bounded: a database that hangs must not hang the scrape too.
            async with asyncio.timeout(5.0):
                await c.refresh()


class _StoreCollector(Collector):
    """The store's gauges, read by ``refresh`` (async) and served by ``collect``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.backlog = 0
        self.oldest_age = 0.0
        self.devices: list[tuple[str, int]] = []

    async def refresh(self) -> None:
        """Query the store: two indexed queries."""
        stats = await self.store.outbox_stats()
        async with self.store.read() as tx:
            counts = await tx.devices.count_per_service(MAX_SERVICE_LABELS)
        self.backlog = stats.backlog
        self.oldest_age = stats.oldest_age_seconds()
        self.devices = counts

    def collect(self) -> Iterator[Metric]:
        """The last values read."""
        yield GaugeMetricFamily(
            "edgemeta_outbox_backlog", "System events not yet published.", value=self.backlog
        )
        yield GaugeMetricFamily(
            "edgemeta_outbox_oldest_age_seconds",
            "Age of the oldest unpublished system event (0 when none).",
            value=self.oldest_age,
        )
        g = GaugeMetricFamily("edgemeta_devices", "Devices per owning service.", labels=["service"])
        for name, n in self.devices:
            g.add_metric([name], n)
        yield g


def multiprocess_dir() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR`` if set (prometheus_client's own variable)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class MetricsMiddleware:
    """Count and time every HTTP request of one application (``name``: core-metadata,
    core-data, core-keeper or core-command, the ``app`` label) by the route template the
    router matched.

    Pure ASGI (no per-request objects besides a closure): Starlette puts the matched
    ``Route`` in ``scope["route"]``, read after the app answered. Unmatched paths share the
    label ``route="unmatched"`` so a scan of random URLs cannot create series."""

    def __init__(self, app: ASGIApp, metrics: Metrics, name: str) -> None:
        self.app = app
        self.name = name
        self.requests = metrics.http_requests
        self.duration = metrics.http_duration
        # The labelled children by (route, method, status): ``labels()`` takes the metric's
        # lock and validates the labels on every call, a few µs of a ~100 µs get. Holds no
        # more entries than the series prometheus_client already keeps.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            key = (template, method, status)
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = (
                    self.requests.labels(self.name, template, method, str(status)),
                    self.duration.labels(self.name, template, method),
                )
            children[0].inc()
            children[1].observe(time.perf_counter() - start)
