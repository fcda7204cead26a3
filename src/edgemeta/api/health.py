"""Liveness and readiness: what a load balancer, an orchestrator or a container health check
asks before sending traffic (docs/operations.md#health).

EdgeX v3 has only ``/ping`` ("a simple 'ping' endpoint that can be used as a service
healthcheck") and nothing that says whether the database answers. edgemeta keeps ``/ping``
as EdgeX has it and adds two routes under ``/api/v3/health/`` on every port it serves:

- ``GET /health/live``: the process answers (its event loop runs). Touches nothing else, so
  a database outage never gets a healthy process restarted.
- ``GET /health/ready``: the database answers, its schema is at the newest migration this
  code has, and the bus is connected. ``200`` with ``status: ready``; ``200`` with ``status:
  degraded`` when only the bus is down (writes still land in the outbox and are delivered
  once it is back: taking the instance out of service would refuse writes that work); ``503``
  with ``status: not-ready`` when the database does not answer or its schema is behind.

A schema *ahead* of the code (a newer edgemeta migrated the shared PostgreSQL during a rolling
upgrade) is ``degraded``, not 503: migrations only add, so this instance keeps working until
it is replaced, and failing it would empty the pool before its successors are up.

Both answer in the EdgeX response envelope (``apiVersion``, ``statusCode``, ``message`` when
not ready), need no credential, and say nothing secret.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from edgemeta.api.responses import base
from edgemeta.ports import Bus, Store

log = logging.getLogger("edgemeta.api")

# A probe must answer before the prober gives up (Docker's and Kubernetes' default timeouts
# are 30 s and 1 s; ours in deploy/ are 5 s): a database that does not answer within this is
# "not answering", rather than a probe left hanging on a pool or a connect timeout.
CHECK_TIMEOUT_S = 2.0

READY = "ready"
DEGRADED = "degraded"
NOT_READY = "not-ready"


class Readiness:
    """The checks behind ``/health/ready``: a store, and the bus if there is one to watch."""

    def __init__(self, store: Store, bus: Bus | None = None) -> None:
        self.store = store
        self.bus = bus
        # The schema query in flight, shared by the probes that arrive while it runs: a
        # database that hangs then holds one connection attempt, not one per probe.
        self._query: asyncio.Task[tuple[int, int]] | None = None

    async def _schema_version(self) -> tuple[int, int]:
        """The store's schema version, or TimeoutError after ``CHECK_TIMEOUT_S``. The query
        is not cancelled on time-out: cancelling a hung PostgreSQL query makes asyncpg wait
        (up to a minute) to reset its connection, which would hold the probe's answer."""
        query = self._query
        if query is None or query.done():
            query = asyncio.create_task(self.store.schema_version(), name="edgemeta-readiness")
            # An abandoned query's failure is retrieved here (the next probe reports its own).
            query.add_done_callback(_retrieve)
            self._query = query
        done, _ = await asyncio.wait({query}, timeout=CHECK_TIMEOUT_S)
        if not done:
            raise TimeoutError
        return query.result()

    def bus_connected(self) -> bool | None:
        """Whether the bus is connected now; None when it has no such notion (the in-process
        bus, which cannot be disconnected)."""
        if self.bus is None:
            return None
        # The MQTT and NATS adapters expose ``connected``; the in-process bus has none.
        state = getattr(self.bus, "connected", None)
        return None if state is None else bool(state)

    async def check(self) -> tuple[int, dict[str, Any]]:
        """The status code and body of a readiness answer (without ``serviceName``)."""
        problems: list[str] = []
        notes: list[str] = []
        checks: dict[str, Any] = {}
        try:
            applied, known = await self._schema_version()
        except Exception as exc:  # any failure to answer is "unreachable", never a 500
            reason = str(exc) or type(exc).__name__
            if isinstance(exc, TimeoutError):
                reason = f"no answer within {CHECK_TIMEOUT_S:g}s"
            log.warning("readiness: the database does not answer: %s", reason)
            checks["database"] = {"status": "down"}
            checks["migrations"] = {"status": "unknown"}
            problems.append("the database does not answer")
        else:
            checks["database"] = {"status": "up"}
            migrations: dict[str, Any] = {"applied": applied, "expected": known}
            if applied < known:
                migrations["status"] = "behind"
                problems.append(
                    f"the database schema is at migration {applied}, this edgemeta needs "
                    f"{known} (restart edgemeta to apply them)"
                )
            elif applied > known:
                migrations["status"] = "ahead"
                notes.append(
                    f"the database schema is at migration {applied}, newer than this "
                    f"edgemeta's {known} (another instance was upgraded: upgrade this one)"
                )
            else:
                migrations["status"] = "up"
            checks["migrations"] = migrations
        connected = self.bus_connected()
        if connected is None or connected:
            checks["bus"] = {"status": "up", "outbox": "accepting"}
        else:
            # Writes still commit their events to the outbox; the relay delivers them once
            # the bus is back. Only the database being down stops the outbox accepting.
            accepting = checks["database"]["status"] == "up"
            checks["bus"] = {"status": "down", "outbox": "accepting" if accepting else "down"}
            notes.append("the bus is not connected: events wait in the outbox")
        if problems:
            body = base(503, message="; ".join(problems + notes))
            return 503, {**body, "status": NOT_READY, "checks": checks}
        if notes:
            body = base(200, message="; ".join(notes))
            return 200, {**body, "status": DEGRADED, "checks": checks}
        return 200, {**base(200), "status": READY, "checks": checks}


def _retrieve(task: asyncio.Task[tuple[int, int]]) -> None:
    """Mark a finished query's exception as seen (asyncio warns of unretrieved ones)."""
    if not task.cancelled():
        task.exception()


def liveness() -> dict[str, Any]:
    """The body of a liveness answer (without ``serviceName``)."""
    return {**base(200), "status": "alive"}
