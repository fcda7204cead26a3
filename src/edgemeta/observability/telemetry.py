"""EdgeX service metrics on the bus: the key figures of ``/metrics`` as EdgeX's Metric DTO.

Every ``EDGEMETA_TELEMETRY_INTERVAL`` seconds (EdgeX's default 30 s; 0 = off) each figure is
published on ``<prefix>/telemetry/core-metadata/<Name>`` in the usual MessageEnvelope, with
the payload ``{"apiVersion", "name", "fields": [{"name", "value"}], "tags": [{"name",
"value"}], "timestamp"}`` (nanoseconds), as EdgeX's go-mod-core-contracts ``dtos.Metric``.
Best effort, like EdgeX's: straight to the bus, not through the outbox; a figure the broker
does not take is simply sent again at the next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from edgemeta.bus.envelope import envelope
from edgemeta.domain.errors import EdgeMetaError
from edgemeta.observability.metrics import Metrics
from edgemeta.ports import Bus

log = logging.getLogger("edgemeta.telemetry")

SERVICE = "core-metadata"

# The field names EdgeX's own services report (go-mod-bootstrap's message-bus reporter):
# a counter is one "counter-count" field, an integer gauge "gauge-value", a float gauge
# "gaugeFloat64-value". A consumer written for EdgeX's metrics reads these names.
COUNTER = "counter-count"
GAUGE = "gauge-value"
GAUGE_FLOAT = "gaugeFloat64-value"

#: EdgeX metric name -> (Prometheus sample name, EdgeX field name).
FIGURES: dict[str, tuple[str, str]] = {
    "OutboxBacklog": ("edgemeta_outbox_backlog", GAUGE),
    "OutboxOldestAgeSeconds": ("edgemeta_outbox_oldest_age_seconds", GAUGE_FLOAT),
    "EventsPublished": ("edgemeta_events_published_total", COUNTER),
    "BusConnected": ("edgemeta_bus_connected", GAUGE),
    "BusReconnects": ("edgemeta_bus_reconnects_total", COUNTER),
    "MovesInFlight": ("edgemeta_moves_in_flight", GAUGE),
    "Moves": ("edgemeta_moves_total", COUNTER),
    "MoveRollbacks": ("edgemeta_move_rollbacks_total", COUNTER),
    "MoveAckTimeouts": ("edgemeta_move_ack_timeouts_total", COUNTER),
    "Devices": ("edgemeta_devices", GAUGE),
    "HttpRequests": ("edgemeta_http_requests_total", COUNTER),
}


def metric_dto(name: str, field: str, value: float, now_ns: int) -> dict[str, Any]:
    """EdgeX's Metric DTO for one figure."""
    # Counters and integer gauges are integers on EdgeX's side (Go int64); only a float gauge
    # carries a fraction, and it stays a float even when whole so its JSON type is stable.
    number: float = float(value) if field == GAUGE_FLOAT else int(value)
    return {
        "apiVersion": "v3",
        "name": name,
        "fields": [{"name": field, "value": number}],
        "tags": [{"name": "service", "value": SERVICE}],
        "timestamp": now_ns,
    }


class Telemetry:
    """Publishes the figures every ``interval`` seconds until stopped."""

    def __init__(self, metrics: Metrics, bus: Bus, *, prefix: str, interval: float) -> None:
        self.metrics = metrics
        self.bus = bus
        self.prefix = prefix
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def figures(self) -> dict[str, float]:
        """The current value of each figure (labelled series summed)."""
        await self.metrics.refresh()
        totals = dict.fromkeys(FIGURES, 0.0)
        by_sample = {sample: name for name, (sample, _) in FIGURES.items()}
        for family in self.metrics.registry.collect():
            for s in family.samples:
                name = by_sample.get(s.name)
                # Tagged service=core-metadata: the other ports' requests (app="core-data",
                # ...) are not core-metadata's, as EdgeX's services each report their own.
                if name is not None and s.labels.get("app", SERVICE) == SERVICE:
                    totals[name] += s.value
        return totals

    async def publish_once(self) -> int:
        """Publish every figure now; returns how many the broker took."""
        now = time.time_ns()
        messages = [
            (
                f"{self.prefix}/telemetry/{SERVICE}/{name}",
                envelope(
                    metric_dto(name, FIGURES[name][1], value, now),
                    correlation_id=str(uuid.uuid4()),
                ),
            )
            for name, value in (await self.figures()).items()
        ]
        return await self.bus.publish_batch(messages)

    async def run(self) -> None:
        """Publish every interval until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.publish_once()
            except (EdgeMetaError, TimeoutError) as exc:
                log.debug("telemetry not published: %s", exc)

    def start(self) -> None:
        """Run in the background (nothing when the interval is 0)."""
        if self.interval > 0:
            self._task = asyncio.create_task(self.run(), name="edgemeta-telemetry")

    async def stop(self) -> None:
        """Stop publishing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
