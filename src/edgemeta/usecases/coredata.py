"""core-data operations: ingest events (REST and bus), read, count, delete and purge them.

An event is validated against its device and profile inside the transaction that stores it,
with both rows share-locked (see :mod:`edgemeta.store.coredata`), so a concurrent profile
change is judged with the event counted or the event is judged by the changed profile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edgemeta.documents.common import fold_keys
from edgemeta.documents.coredata import check_event
from edgemeta.domain.errors import (
    ContractInvalid,
    DuplicateName,
    EdgeMetaError,
    NotFound,
    ServerError,
)
from edgemeta.domain.readings import CheckedEvent, EventAddress
from edgemeta.ports import DataQuery, ListQuery, Page, Tx
from edgemeta.usecases.deps import Deps

log = logging.getLogger("edgemeta.coredata")

PURGE_CHUNK = 5000
_DEVICE_NAME = {"devicename": "deviceName"}


async def _check(
    tx: Tx, raw: dict[str, Any], address: EventAddress | None, request_id: str
) -> CheckedEvent:
    # The bus has no path, so the body names the device (its keys are case-insensitive).
    device_name = (
        fold_keys(raw, _DEVICE_NAME).get("deviceName") if address is None else address.device_name
    )
    device = await tx.data.lock_device(device_name) if isinstance(device_name, str) else None
    profile = (
        await tx.data.lock_profile(device.profile_name)
        if device is not None and device.profile_name
        else None
    )
    return check_event(raw, address, device, profile, request_id=request_id)


async def add_event(
    deps: Deps, raw: dict[str, Any], address: EventAddress, request_id: str = ""
) -> str:
    """Store one event from the REST API; its id. 409 if an event with its id exists."""
    async with deps.store.write() as tx:
        event = await _check(tx, raw, address, request_id)
        if not await tx.data.add_event(event):
            raise DuplicateName(f"event id {event.id} already exists")
    return event.id


_Pending = tuple[dict[str, Any], EventAddress, str, "asyncio.Future[str]"]


class GroupWriter:
    """REST events with group commit: the events that arrive while one batch is stored go
    into the next, in one transaction with a savepoint each, so a burst of requests pays for
    one COMMIT rather than one each. Each request still gets its own answer (its id, 400,
    409), and is answered only once its event is committed."""

    def __init__(self, deps: Deps, max_batch: int = 256) -> None:
        self.deps = deps
        self.max_batch = max_batch
        self._queue: list[_Pending] = []
        self._task: asyncio.Task[None] | None = None

    async def add(self, raw: dict[str, Any], address: EventAddress, request_id: str = "") -> str:
        """Store one event; its id once committed."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queue.append((raw, address, request_id, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="edgemeta-core-data-writer")
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            outcomes: list[tuple[asyncio.Future[str], str | BaseException]] = []
            try:
                async with self.deps.store.batch():
                    for raw, address, rid, future in batch:
                        try:
                            async with self.deps.store.write() as tx:
                                event = await _check(tx, raw, address, rid)
                                if not await tx.data.add_event(event):
                                    raise DuplicateName(f"event id {event.id} already exists")
                            outcomes.append((future, event.id))
                        except EdgeMetaError as exc:
                            outcomes.append((future, exc))
            except Exception as exc:  # the commit failed: nothing of the batch is stored
                log.exception("storing %d events failed", len(batch))
                failure = exc if isinstance(exc, EdgeMetaError) else ServerError(str(exc))
                outcomes = [(f, failure) for _, _, _, f in batch]
            for future, outcome in outcomes:
                if future.done():  # the client went away
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one batch from the bus came to."""

    stored: int = 0
    duplicates: int = 0
    refused: int = 0


async def ingest(
    deps: Deps, items: Sequence[tuple[dict[str, Any] | None, EventAddress | None, str]]
) -> IngestResult:
    """Store a batch of events from the bus in one transaction, each in its own savepoint.

    ``items`` are (event or None when the message was not an event, address from the topic,
    what to log it as). A bad event is logged and skipped (a bus has nobody to answer); a
    duplicate (redelivery after a crash) is counted and skipped. Returns once committed.
    """
    stored = duplicates = refused = 0
    async with deps.store.batch():
        for raw, address, label in items:
            if raw is None:
                refused += 1
                continue
            try:
                async with deps.store.write() as tx:
                    event = await _check(tx, raw, address, "")
                    if await tx.data.add_event(event):
                        stored += 1
                    else:
                        duplicates += 1
            except EdgeMetaError as exc:
                refused += 1
                log.warning("event refused from %s: %s", label, exc.message)
            except Exception:
                # Its savepoint is rolled back; one event the store chokes on must not hold
                # up the stream behind it (a lost connection fails the commit below instead).
                refused += 1
                log.exception("storing an event from %s failed", label)
    return IngestResult(stored, duplicates, refused)


async def get_event(deps: Deps, id_: str) -> str:
    """One event document."""
    async with deps.store.read() as tx:
        found = await tx.data.event_document(id_)
    if found is None:
        raise NotFound(f"event with id {id_} not found")
    return found


async def list_events(deps: Deps, query: DataQuery, page: ListQuery) -> Page[str]:
    """Events, newest first."""
    async with deps.store.read() as tx:
        return await tx.data.event_documents(query, page)


async def list_readings(deps: Deps, query: DataQuery, page: ListQuery) -> Page[str]:
    """Readings, newest first."""
    async with deps.store.read() as tx:
        return await tx.data.reading_documents(query, page)


async def count(deps: Deps, what: str, device: str | None = None) -> int:
    """How many events or readings (``what``), of all devices or of one."""
    async with deps.store.read() as tx:
        if what == "event":
            return await tx.data.count_events(device)
        return await tx.data.count_readings(device)


async def delete_event(deps: Deps, id_: str) -> None:
    """Delete one event and its readings."""
    async with deps.store.write() as tx:
        events, _ = await tx.data.delete_events(id_=id_)
    if not events:
        raise NotFound(f"event with id {id_} not found")


async def _delete_all(deps: Deps, **where: Any) -> tuple[int, int]:
    """Delete in chunks (one transaction each) until nothing matches."""
    events = readings = 0
    while True:
        async with deps.store.write() as tx:
            e, r = await tx.data.delete_events(limit=PURGE_CHUNK, **where)
        events += e
        readings += r
        if e < PURGE_CHUNK:
            return events, readings


async def delete_device_events(deps: Deps, device: str) -> tuple[int, int]:
    """Delete every event and reading of a device; (events, readings) deleted."""
    return await _delete_all(deps, device=device)


async def purge_older_than(deps: Deps, cutoff_ns: int) -> tuple[int, int]:
    """Delete events (and their readings) whose origin is before ``cutoff_ns``."""
    if cutoff_ns <= 0:
        raise ContractInvalid("age reaches before the epoch: nothing to purge")
    return await _delete_all(deps, older_than=cutoff_ns)
