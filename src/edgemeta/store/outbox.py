"""The transactional outbox, in SQL shared by every database.

``append`` runs inside the transaction of the change, so an event exists if and only if its
change committed. Each row gets ``seq`` (insertion order) and, once the relay has published
it, ``pos``: a gap-free delivery position taken from a one-row counter. ``pos`` rather than
``seq`` is what event streams resume from, because on PostgreSQL a transaction can commit
after another that took a later ``seq``; delivery order is the order consumers can rely on.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import orjson

from edgemeta import documents as docs
from edgemeta.domain.events import Change
from edgemeta.ports import OutboxEvent, OutboxStats
from edgemeta.security.principal import subject_tag
from edgemeta.store.driver import DocTexts, Driver, Row
from edgemeta.tracing import current_traceparent

_COLUMNS = (
    "seq, event_id, type, action, owner, profile_name, record_key, revision, "
    "correlation_id, timestamp_ns, details, pos, tags, traceparent"
)


def _event(row: Row) -> OutboxEvent:
    details = row[10]
    return OutboxEvent(
        seq=int(row[0]),
        event_id=str(row[1]),
        type=str(row[2]),
        action=str(row[3]),
        owner=str(row[4]),
        profile_name=str(row[5]),
        record_key=str(row[6]),
        revision=int(row[7]),
        correlation_id=str(row[8]),
        timestamp_ns=int(row[9]),
        details=details.encode() if isinstance(details, str) else bytes(details),
        pos=None if row[11] is None else int(row[11]),
        tags=tuple(orjson.loads(row[12]).items()) if row[12] else (),
        traceparent=row[13] or "",
    )


class SqlOutbox:
    """Write side: queue the events of a change in its transaction."""

    def __init__(self, db: Driver, texts: DocTexts | None = None) -> None:
        self.db = db
        self.texts = texts
        # Set once a row is queued; the store reads (and clears) it at COMMIT, so only a
        # commit with events in it wakes the relay (a command hold, a reading, does not).
        self.appended = False

    def _details(self, change: Change) -> str:
        shared = self.texts.get(change.record) if self.texts is not None else None
        return shared or orjson.dumps(docs.details_doc(change.record)).decode()

    async def append(self, changes: Sequence[Change], correlation_id: str) -> None:
        """Insert one row per change, stamped now (nanoseconds) with a fresh event id."""
        if not changes:
            return
        self.appended = True
        now = time.time_ns()
        # Who made the change, when authentication is on (the verified subject of the
        # request being served; see edgemeta.security.principal.acting).
        subject = subject_tag()
        traceparent = current_traceparent() or None  # the relay continues this trace
        rows = [
            (
                str(uuid.uuid4()),
                c.type.value,
                c.action.value,
                c.owner,
                c.profile_name,
                c.key,
                c.revision,
                correlation_id,
                now,
                self._details(c),
                orjson.dumps(dict(c.tags + subject)).decode() if c.tags or subject else None,
                traceparent,
            )
            for c in changes
        ]
        sql = (
            "INSERT INTO outbox (event_id, type, action, owner, profile_name, record_key,"
            " revision, correlation_id, timestamp_ns, details, tags, traceparent)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        if len(rows) == 1:
            await self.db.execute(sql, *rows[0])  # most changes have one event: skip the loop
        else:
            await self.db.executemany(sql, rows)


class SqlOutboxFeed:
    """Read side: pending events for the relay, delivered events for streams and replay."""

    def __init__(self, db: Driver) -> None:
        self.db = db

    async def pending(self, limit: int) -> list[OutboxEvent]:
        """Undelivered events, oldest first."""
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM outbox WHERE pos IS NULL ORDER BY seq LIMIT ?", limit
        )
        return [_event(r) for r in rows]

    async def mark_delivered(
        self, seqs: Sequence[int], delivered_ns: int, failure: str | None = None
    ) -> list[int]:
        """Give ``seqs`` consecutive delivery positions (must run in a write transaction);
        ``failure`` records why the bus refused them for good, if it did."""
        if not seqs:
            return []
        top = int(
            await self.db.fetchval(
                "UPDATE outbox_position SET pos = pos + ? WHERE id = 1 RETURNING pos", len(seqs)
            )
        )
        first = top - len(seqs) + 1
        positions = list(range(first, top + 1))
        await self.db.executemany(
            "UPDATE outbox SET pos = ?, delivered_ns = ?, failure = ?"
            " WHERE seq = ? AND pos IS NULL",
            [(p, delivered_ns, failure, s) for p, s in zip(positions, seqs, strict=True)],
        )
        return positions

    async def delivered_since(self, pos: int, limit: int) -> list[OutboxEvent]:
        """Delivered events after position ``pos``."""
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM outbox WHERE pos > ? ORDER BY pos LIMIT ?", pos, limit
        )
        return [_event(r) for r in rows]

    async def last_position(self) -> int:
        """The last delivery position handed out."""
        return int(await self.db.fetchval("SELECT pos FROM outbox_position WHERE id = 1"))

    async def purge_delivered(self, older_than_ns: int) -> int:
        """Drop delivered events older than ``older_than_ns``."""
        return await self.db.execute(
            "DELETE FROM outbox WHERE pos IS NOT NULL AND delivered_ns < ?", older_than_ns
        )

    async def stats(self) -> OutboxStats:
        """Count and oldest commit time of the unpublished events (the ``outbox_pending``
        partial index holds exactly those rows)."""
        row = await self.db.fetchone(
            "SELECT count(*), min(timestamp_ns) FROM outbox WHERE pos IS NULL"
        )
        if row is None or not row[0]:
            return OutboxStats(0, None)
        return OutboxStats(int(row[0]), int(row[1]))
