"""core-data in SQL: events, readings, and the association index kept exact beside them.

Every insert adds to the index, in the same transaction, the events per (profile, source,
device) and the readings per (profile, resource, device) it stored; every delete subtracts
what it actually deleted (``DELETE ... RETURNING``), so concurrent ingest, purges and deletes
never leave the index above or below the data. The rules of ``docs/profile-rules.md`` read
the index only: a check costs the same at ten readings and at ten million.

Lock order against core-metadata (PostgreSQL; SQLite runs one writer at a time): an ingest
reads its device and profile ``FOR SHARE``; a profile change, a profile delete, a device
delete and a device's profile change lock the same rows ``FOR UPDATE``. So a rules check
either sees an event that is being stored, or that event is validated against the changed
profile after the change commits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson

from edgemeta import documents as docs
from edgemeta.domain.readings import CheckedEvent
from edgemeta.domain.records import Device, DeviceProfile
from edgemeta.ports import DataAssociation, DataQuery, ListQuery, Page
from edgemeta.store.driver import Driver
from edgemeta.store.repos import SqlDeviceProfileRepo

_UPSERT = (
    "INSERT INTO core_data_association (profile_name, kind, name, device_name, count)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (profile_name, kind, name, device_name)"
    " DO UPDATE SET count = core_data_association.count + excluded.count"
)
_INSERT_EVENT = (
    "INSERT INTO core_event (id, device_name, profile_name, source_name, origin, content)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING seq"
)
_INSERT_READING = (
    "INSERT INTO core_reading (event_seq, device_name, resource_name, origin, content)"
    " VALUES (?, ?, ?, ?, ?)"
)
# Devices parsed for ingest, by stored document (the same text is the same record).
_DEVICE_MEMO: dict[str, Device] = {}
_DEVICE_MEMO_SIZE = 4096


def _where(q: DataQuery, prefix: str = "") -> tuple[str, list[object]]:
    parts: list[str] = []
    args: list[object] = []
    if q.device is not None:
        parts.append(f"{prefix}device_name = ?")
        args.append(q.device)
    if q.resource is not None:
        parts.append(f"{prefix}resource_name = ?")
        args.append(q.resource)
    if q.start is not None:
        parts.append(f"{prefix}origin >= ?")
        args.append(q.start)
    if q.end is not None:
        parts.append(f"{prefix}origin <= ?")
        args.append(q.end)
    return (" WHERE " + " AND ".join(parts)) if parts else "", args


class SqlCoreDataRepo:
    """Events, readings and the association index on one driver."""

    __slots__ = ("_share", "db")

    def __init__(self, db: Driver) -> None:
        self.db = db
        self._share = " FOR SHARE" if db.dialect.name == "postgres" else ""

    async def add_event(self, event: CheckedEvent) -> bool:
        """Insert the event, its readings and their counts; False if the id is taken."""
        seq = await self.db.fetchval(
            _INSERT_EVENT,
            event.id,
            event.device_name,
            event.profile_name,
            event.source_name,
            event.origin,
            event.document,
        )
        if seq is None:
            return False
        await self.db.executemany(
            _INSERT_READING,
            [
                (seq, event.device_name, r.resource_name, r.origin, r.document)
                for r in event.readings
            ],
        )
        per_resource = Counter(r.resource_name for r in event.readings)
        rows: list[Sequence[object]] = [
            (event.profile_name, "source", event.source_name, event.device_name, 1)
        ]
        rows.extend(
            (event.profile_name, "resource", name, event.device_name, n)
            for name, n in per_resource.items()
        )
        await self.db.executemany(_UPSERT, rows)
        return True

    async def _with_readings(self, rows: Sequence[Sequence[Any]]) -> list[str]:
        """Event documents (seq, content rows) with their readings spliced in, in order."""
        if not rows:
            return []
        seqs = [r[0] for r in rows]
        marks = ", ".join("?" for _ in seqs)
        found = await self.db.fetchall(
            f"SELECT event_seq, content FROM core_reading WHERE event_seq IN ({marks})"
            " ORDER BY seq",
            *seqs,
        )
        by_event: dict[int, list[str]] = {}
        for event_seq, content in found:
            by_event.setdefault(event_seq, []).append(content)
        out = []
        for seq, content in rows:
            readings = ",".join(by_event.get(seq, ()))
            out.append(f'{content[:-1]},"readings":[{readings}]}}')
        return out

    async def event_document(self, id_: str) -> str | None:
        """One event with its readings."""
        row = await self.db.fetchone("SELECT seq, content FROM core_event WHERE id = ?", id_)
        if row is None:
            return None
        return (await self._with_readings([row]))[0]

    async def event_documents(self, query: DataQuery, page: ListQuery) -> Page[str]:
        """Events, newest first."""
        cond, args = _where(query)
        total = int(await self.db.fetchval(f"SELECT count(*) FROM core_event{cond}", *args))
        if total == 0 or page.limit == 0 or page.offset >= total:
            return Page(total, [])
        rows = await self.db.fetchall(
            f"SELECT seq, content FROM core_event{cond} ORDER BY origin DESC, seq DESC"
            " LIMIT ? OFFSET ?",
            *args,
            page.limit,
            page.offset,
        )
        return Page(total, await self._with_readings(rows))

    async def reading_documents(self, query: DataQuery, page: ListQuery) -> Page[str]:
        """Readings, newest first."""
        cond, args = _where(query)
        total = int(await self.db.fetchval(f"SELECT count(*) FROM core_reading{cond}", *args))
        if total == 0 or page.limit == 0 or page.offset >= total:
            return Page(total, [])
        rows = await self.db.fetchall(
            f"SELECT content FROM core_reading{cond} ORDER BY origin DESC, seq DESC"
            " LIMIT ? OFFSET ?",
            *args,
            page.limit,
            page.offset,
        )
        return Page(total, [r[0] for r in rows])

    async def count_events(self, device: str | None = None) -> int:
        """Events (of one device)."""
        cond, args = _where(DataQuery(device=device))
        return int(await self.db.fetchval(f"SELECT count(*) FROM core_event{cond}", *args))

    async def count_readings(self, device: str | None = None) -> int:
        """Readings (of one device)."""
        cond, args = _where(DataQuery(device=device))
        return int(await self.db.fetchval(f"SELECT count(*) FROM core_reading{cond}", *args))

    async def delete_events(
        self,
        *,
        id_: str | None = None,
        device: str | None = None,
        older_than: int | None = None,
        limit: int = 5000,
    ) -> tuple[int, int]:
        """Delete a chunk of events and their readings; subtract exactly what went."""
        arg: object
        if id_ is not None:
            cond, arg = "id = ?", id_
        elif device is not None:
            cond, arg = "device_name = ?", device
        elif older_than is not None:
            cond, arg = "origin < ?", older_than
        else:
            raise ValueError("delete_events needs one filter")
        lock = " FOR UPDATE" if self._share else ""
        seqs = [
            r[0]
            for r in await self.db.fetchall(
                f"SELECT seq FROM core_event WHERE {cond} ORDER BY seq LIMIT ?{lock}", arg, limit
            )
        ]
        if not seqs:
            return 0, 0
        marks = ", ".join("?" for _ in seqs)
        gone_readings = await self.db.fetchall(
            f"DELETE FROM core_reading WHERE event_seq IN ({marks})"
            " RETURNING event_seq, resource_name",
            *seqs,
        )
        gone_events = await self.db.fetchall(
            f"DELETE FROM core_event WHERE seq IN ({marks})"
            " RETURNING seq, profile_name, device_name, source_name",
            *seqs,
        )
        counts: Counter[tuple[str, str, str, str]] = Counter()
        owner: dict[int, tuple[str, str]] = {}
        for seq, profile, dev, source in gone_events:
            counts[(profile, "source", source, dev)] += 1
            owner[seq] = (profile, dev)
        for event_seq, resource in gone_readings:
            profile, dev = owner[event_seq]
            counts[(profile, "resource", resource, dev)] += 1
        await self._subtract(counts)
        return len(gone_events), len(gone_readings)

    async def _subtract(self, counts: Counter[tuple[str, str, str, str]]) -> None:
        key = "profile_name = ? AND kind = ? AND name = ? AND device_name = ?"
        await self.db.executemany(
            f"UPDATE core_data_association SET count = count - ? WHERE {key}",
            [(n, *k) for k, n in counts.items()],
        )
        # Rows that reached zero go, so the index stays as small as the data it describes.
        await self.db.executemany(
            f"DELETE FROM core_data_association WHERE {key} AND count <= 0", list(counts)
        )

    async def associations(
        self, *, profile: str | None = None, device: str | None = None
    ) -> list[DataAssociation]:
        """Index rows above zero, of a profile or of a device."""
        if profile is not None:
            cond, arg = "profile_name = ?", profile
        elif device is not None:
            cond, arg = "device_name = ?", device
        else:
            raise ValueError("associations needs a profile or a device")
        rows = await self.db.fetchall(
            "SELECT profile_name, kind, name, device_name, count FROM core_data_association"
            f" WHERE {cond} AND count > 0 ORDER BY profile_name, kind, name, device_name",
            arg,
        )
        return [DataAssociation(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]

    async def auto_event_users(self, profile: str, sources: Sequence[str]) -> dict[str, str]:
        """One device per source name among the autoEvents of ``profile``'s devices."""
        wanted = set(sources)
        if not wanted:
            return {}
        found: dict[str, str] = {}
        rows = await self.db.fetchall(
            "SELECT name, content FROM device WHERE profile_name = ? ORDER BY name", profile
        )
        for name, content in rows:
            if "autoEvents" not in content:
                continue
            for ae in orjson.loads(content).get("autoEvents") or ():
                source = ae.get("sourceName")
                if source in wanted and source not in found:
                    found[source] = name
            if len(found) == len(wanted):
                break
        return found

    async def lock_device(self, name: str) -> Device | None:
        """The device, shared-locked until commit (PostgreSQL)."""
        row = await self.db.fetchone(
            f"SELECT content FROM device WHERE name = ?{self._share}", name
        )
        if row is None:
            return None
        text = row[0]
        device = _DEVICE_MEMO.get(text)
        if device is None:
            device = docs.device_from(orjson.loads(text))
            if len(_DEVICE_MEMO) >= _DEVICE_MEMO_SIZE:
                _DEVICE_MEMO.clear()
            _DEVICE_MEMO[text] = device
        return device

    async def lock_profile(self, name: str) -> DeviceProfile | None:
        """The profile, shared-locked until commit (PostgreSQL)."""
        repo = SqlDeviceProfileRepo(self.db)
        row = await self.db.fetchone(
            f"SELECT content FROM device_profile WHERE name = ?{self._share}", name
        )
        return repo._load(row)
