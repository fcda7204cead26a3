"""The SQL repositories, written once for every database (see :mod:`edgemeta.store.driver`).

Every table keeps a record as its canonical document (``content``) next to the columns the
database must see: ``name`` and ``id`` (unique), references by name (foreign keys), the list
order (``created``, then insertion ``seq``), ``revision`` (for conditional updates) and
``labels`` (for filtering). Names never change, so references by name are stable.

Concurrency is left to the database: inserts rely on unique constraints, deletes on foreign
keys, updates are conditional on the revision they replace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import orjson

from edgemeta import documents as docs
from edgemeta.domain.errors import Conflict, DuplicateName
from edgemeta.domain.records import Device, DeviceProfile, DeviceService, ProvisionWatcher
from edgemeta.ports import ListQuery, Page
from edgemeta.store.cursors import STRIDE, Key, ListCursors
from edgemeta.store.driver import Dialect, DocTexts, Driver, IntegrityViolation

R = TypeVar("R", DeviceService, DeviceProfile, Device, ProvisionWatcher)

_NOUNS = {
    "device_service": "device service",
    "device_profile": "device profile",
    "device": "device",
    "provision_watcher": "provision watcher",
}


def dumps(doc: dict[str, Any]) -> str:
    """Serialize a document for a TEXT column."""
    return orjson.dumps(doc).decode()


class _Repo(Generic[R]):
    """Columns and queries every record table shares."""

    table: str
    extra_columns: tuple[str, ...] = ()

    _select: str
    _insert: str
    _update: str

    # Records read by name on every device write (its service and its profile) are kept by
    # their stored document: the same text is the same record, and records are immutable, so
    # a hit skips parsing and rebuilding (a profile's rebuild costs more than its query).
    # Keyed by the whole document, never by name, so an update is never served stale.
    _memo_size = 0
    _memo: dict[str, Any]

    def __init_subclass__(cls) -> None:
        # The statements depend only on the class: build them once, not per transaction.
        super().__init_subclass__()
        cls._memo = {}
        cls._select = f"SELECT content FROM {cls.table}"
        cols = ("id", "name", "created", "revision", "labels", "content", *cls.extra_columns)
        marks = ", ".join("?" for _ in cols)
        cls._insert = f"INSERT INTO {cls.table} ({', '.join(cols)}) VALUES ({marks})"
        sets = ", ".join(f"{c} = ?" for c in ("revision", "labels", "content", *cls.extra_columns))
        cls._update = f"UPDATE {cls.table} SET {sets} WHERE name = ? AND revision = ?"

    # Whether the stored document is also the system-event ``details`` (not for profiles,
    # whose events carry linkedDeviceCount): then its text is shared with the outbox.
    _share_text = True

    def __init__(
        self, db: Driver, texts: DocTexts | None = None, cursors: ListCursors | None = None
    ) -> None:
        self.db = db
        self.texts = texts
        # Shared by the store's transactions; a repo made without one keeps its own.
        self.cursors = cursors if cursors is not None else ListCursors()

    def _serialize(self, record: R) -> str:
        text = dumps(self._doc(record))
        if self.texts is not None and self._share_text:
            self.texts.put(record, text)
        return text

    # -- what each record type supplies ---------------------------------------------------
    def _doc(self, record: R) -> dict[str, Any]:
        raise NotImplementedError

    def _from(self, doc: dict[str, Any]) -> R:
        raise NotImplementedError

    def _extra(self, record: R) -> tuple[object, ...]:
        return ()

    def _on_violation(self, exc: IntegrityViolation, record: R) -> Exception:
        noun = _NOUNS[self.table]
        if exc.constraint.endswith("_id_key"):
            return DuplicateName(f"{noun} id {record.id} already exists")
        if exc.kind == "unique":
            return DuplicateName(f"{noun} name {record.name} already exists")
        return Conflict(f"{noun} '{record.name}' references an entity that no longer exists")

    # -- shared operations -----------------------------------------------------------------
    def _load(self, row: Sequence[Any] | None) -> R | None:
        if row is None:
            return None
        if not self._memo_size:
            return self._from(orjson.loads(row[0]))
        text = row[0]
        found: R | None = self._memo.get(text)
        if found is None:
            found = self._from(orjson.loads(text))
            if len(self._memo) >= self._memo_size:
                self._memo.clear()
            self._memo[text] = found
        return found

    async def add(self, record: R) -> None:
        """Insert ``record``; the database enforces unique names and ids and references."""
        d = self.db.dialect
        try:
            await self.db.execute(
                self._insert,
                record.id,
                record.name,
                record.created,
                record.revision,
                d.labels_value(record.labels),
                self._serialize(record),
                *self._extra(record),
            )
        except IntegrityViolation as exc:
            raise self._on_violation(exc, record) from exc

    async def add_many(self, records: Sequence[R]) -> None:
        """Insert ``records`` in order with one prepared statement (``executemany``), each
        document serialized once. On a violation, Conflict without saying which row broke
        it: the caller undoes the whole set (its savepoint) and adds the records one by one
        to find out (:meth:`add` names the violation)."""
        d = self.db.dialect
        rows: list[tuple[object, ...]] = []
        for rec in records:
            text = self._serialize(rec)
            extra: tuple[object, ...] = self._extra(rec)
            labels = d.labels_value(rec.labels)
            rows.append((rec.id, rec.name, rec.created, rec.revision, labels, text, *extra))
        if not rows:
            return
        try:
            if len(rows) == 1:  # a single add: one plain statement, as add() runs it
                await self.db.execute(self._insert, *rows[0])
            else:
                await self.db.executemany(self._insert, rows)
        except IntegrityViolation as exc:
            raise Conflict(f"a set of {_NOUNS[self.table]}s broke {exc.constraint}") from exc

    async def update(self, record: R) -> None:
        """Replace the stored record, if it is still the revision this one was made from."""
        d = self.db.dialect
        try:
            n = await self.db.execute(
                self._update,
                record.revision,
                d.labels_value(record.labels),
                self._serialize(record),
                *self._extra(record),
                record.name,
                record.revision - 1,
            )
        except IntegrityViolation as exc:
            raise self._on_violation(exc, record) from exc
        if n != 1:
            raise Conflict(
                f"{_NOUNS[self.table]} '{record.name}' was changed concurrently "
                f"(expected revision {record.revision - 1})"
            )

    async def get(
        self, name: str, *, for_update: bool = False, for_share: bool = False
    ) -> R | None:
        """The record called ``name`` (row-locked until commit with ``for_update``; with
        ``for_share`` locked against ``for_update`` only, not against other sharers)."""
        lock = (
            self.db.dialect.for_update
            if for_update
            else self.db.dialect.for_share
            if for_share
            else ""
        )
        return self._load(await self.db.fetchone(f"{self._select} WHERE name = ?{lock}", name))

    async def get_by_id(self, id_: str, *, for_update: bool = False) -> R | None:
        """The record with id ``id_``."""
        lock = self.db.dialect.for_update if for_update else ""
        return self._load(await self.db.fetchone(f"{self._select} WHERE id = ?{lock}", id_))

    async def exists(self, name: str) -> bool:
        """Whether a record called ``name`` exists."""
        row = await self.db.fetchone(f"SELECT 1 FROM {self.table} WHERE name = ?", name)
        return row is not None

    async def _delete(self, name: str) -> None:
        try:
            await self.db.execute(f"DELETE FROM {self.table} WHERE name = ?", name)
        except IntegrityViolation as exc:
            raise Conflict(
                f"{_NOUNS[self.table]} '{name}' is still referenced and cannot be deleted"
            ) from exc

    async def get_document(self, name: str) -> str | None:
        """The stored document of ``name``, as JSON text: exactly what the API serves."""
        row = await self.db.fetchone(f"{self._select} WHERE name = ?", name)
        return None if row is None else str(row[0])

    async def _page(
        self,
        query: ListQuery,
        where: list[str],
        args: list[object],
        counted: tuple[str, str] | None = None,
    ) -> Page[R]:
        page = await self._page_documents(query, where, args, counted)
        return Page(page.total, [self._from(orjson.loads(text)) for text in page.items])

    async def kept_count(self, dim: str, key: str) -> tuple[int, int]:
        """The kept count of ``dim``/``key`` and its ``changes`` (migration 0009's list_count)."""
        row = await self.db.fetchone(
            "SELECT CAST(coalesce(sum(n), 0) AS BIGINT), CAST(coalesce(sum(changes), 0) AS BIGINT)"
            " FROM list_count WHERE kind = ? AND dim = ? AND key = ?",
            self.table,
            dim,
            key,
        )
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    async def _page_documents(
        self,
        query: ListQuery,
        where: list[str],
        args: list[object],
        counted: tuple[str, str] | None = None,
    ) -> Page[str]:
        # The stored ``content`` is the wire document (documents.py writes both), so a list
        # can be served without parsing and rebuilding each record.
        dialect: Dialect = self.db.dialect
        if query.labels:
            where = [*where, dialect.labels_match("labels", len(query.labels))]
            args = [*args, *dialect.labels_args(query.labels)]
        cond = f" WHERE {' AND '.join(where)}" if where else ""
        if counted is not None:
            # A filter whose size the triggers keep: neither the total nor (thanks to the
            # cursors) the page's position costs a walk over the filter's rows.
            total, version = await self.kept_count(*counted)
        else:
            total = int(await self.db.fetchval(f"SELECT count(*) FROM {self.table}{cond}", *args))
        if total == 0 or query.limit == 0 or query.offset >= total:
            return Page(total, [])
        if counted is None:
            # A deferred join: the page's rows are found in the (covering) index first, and
            # only those rows are read. A plain OFFSET would read every skipped row, which
            # makes deep pages of a large collection slow.
            rows = await self.db.fetchall(
                f"{self._select} WHERE seq IN (SELECT seq FROM {self.table}{cond}"
                " ORDER BY created, seq LIMIT ? OFFSET ?) ORDER BY created, seq",
                *args,
                query.limit,
                query.offset,
            )
            return Page(total, [str(r[0]) for r in rows])
        scope = (self.table, counted[0], counted[1])
        return await self._keyset_page(query, where, args, scope, version, total)

    async def _keyset_page(
        self,
        query: ListQuery,
        where: list[str],
        args: list[object],
        scope: tuple[str, str, str],
        version: int,
        total: int,
    ) -> Page[str]:
        """The page at ``query.offset``, read from the nearest remembered cursor before it."""
        start, after = 0, None
        if query.offset > 0:
            hit = self.cursors.nearest(scope, version, query.offset)
            if hit is not None:
                start, after = hit
        skip = query.offset - start
        if skip > STRIDE:
            # Walk to the offset once, noting every STRIDE-th key on the way: a later page
            # anywhere before it then walks fewer than STRIDE rows.
            cond = self._where(where, after)
            marks = await self.db.fetchall(
                "SELECT rn, created, seq FROM (SELECT created, seq, row_number() OVER"
                f" (ORDER BY created, seq) AS rn FROM (SELECT created, seq FROM {self.table}"
                f"{cond} ORDER BY created, seq LIMIT ?) AS walk) AS numbered"
                " WHERE rn % ? = 0 OR rn = ?",
                *args,
                *self._after_args(after),
                skip,
                STRIDE,
                skip,
            )
            for rn, created, seq in marks:
                self.cursors.remember(scope, version, start + int(rn), (int(created), int(seq)))
                if int(rn) == skip:
                    start, after = query.offset, (int(created), int(seq))
            skip = query.offset - start
        cond = self._where(where, after)
        rows = await self.db.fetchall(
            f"SELECT created, seq, content FROM {self.table} WHERE seq IN"
            f" (SELECT seq FROM {self.table}{cond} ORDER BY created, seq LIMIT ? OFFSET ?)"
            " ORDER BY created, seq",
            *args,
            *self._after_args(after),
            query.limit,
            skip,
        )
        if rows:
            last = rows[-1]
            self.cursors.remember(
                scope, version, query.offset + len(rows), (int(last[0]), int(last[1]))
            )
        return Page(total, [str(r[2]) for r in rows])

    @staticmethod
    def _where(where: list[str], after: Key | None) -> str:
        if after is not None:
            where = [*where, "(created, seq) > (?, ?)"]
        return f" WHERE {' AND '.join(where)}" if where else ""

    @staticmethod
    def _after_args(after: Key | None) -> tuple[object, ...]:
        return () if after is None else after


def _device_count_key(
    query: ListQuery, service: str | None, profile: str | None
) -> tuple[str, str] | None:
    """The kept count (dim, key) that is exactly this filter's size, if there is one.

    The triggers keep one count per service, profile and label and one for every device; a
    filter combining two of them (or several labels) is counted by a scan.
    """
    if service is not None and profile is None and not query.labels:
        return ("service", service)
    if profile is not None and service is None and not query.labels:
        return ("profile", profile)
    if service is None and profile is None:
        if not query.labels:
            return ("", "")
        if len(set(query.labels)) == 1:
            return ("label", query.labels[0])
    return None


def _owner_filter(service: str | None, profile: str | None) -> tuple[list[str], list[object]]:
    where: list[str] = []
    args: list[object] = []
    if service is not None:
        where.append("service_name = ?")
        args.append(service)
    if profile is not None:
        where.append("profile_name = ?")
        args.append(profile)
    return where, args


class SqlDeviceServiceRepo(_Repo[DeviceService]):
    """Device services."""

    table = "device_service"
    _memo_size = 256

    def _doc(self, record: DeviceService) -> dict[str, Any]:
        return docs.service_doc(record)

    def _from(self, doc: dict[str, Any]) -> DeviceService:
        return docs.service_from(doc)

    async def delete(self, name: str) -> None:
        """Delete; the devices' foreign key refuses while any device references it."""
        await self._delete(name)

    async def page(self, query: ListQuery) -> Page[DeviceService]:
        """All services, oldest first."""
        return await self._page(query, [], [])

    async def documents(self, query: ListQuery) -> Page[str]:
        """All services' documents (JSON text), oldest first."""
        return await self._page_documents(query, [], [])


class SqlDeviceProfileRepo(_Repo[DeviceProfile]):
    """Device profiles."""

    table = "device_profile"
    _share_text = False
    extra_columns = ("manufacturer", "model")
    _memo_size = 256

    def _doc(self, record: DeviceProfile) -> dict[str, Any]:
        return docs.profile_doc(record)

    def _from(self, doc: dict[str, Any]) -> DeviceProfile:
        return docs.profile_from(doc)

    def _extra(self, record: DeviceProfile) -> tuple[object, ...]:
        return (record.manufacturer, record.model)

    async def delete(self, name: str) -> None:
        """Delete; devices' and watchers' foreign keys refuse while they reference it."""
        await self._delete(name)

    async def page(
        self, query: ListQuery, *, manufacturer: str | None = None, model: str | None = None
    ) -> Page[DeviceProfile]:
        """Profiles, optionally of one manufacturer and/or model."""
        where: list[str] = []
        args: list[object] = []
        if manufacturer is not None:
            where.append("manufacturer = ?")
            args.append(manufacturer)
        if model is not None:
            where.append("model = ?")
            args.append(model)
        return await self._page(query, where, args)


class SqlDeviceRepo(_Repo[Device]):
    """Devices."""

    table = "device"
    extra_columns = ("service_name", "profile_name", "parent")

    def _doc(self, record: Device) -> dict[str, Any]:
        return docs.device_doc(record)

    def _from(self, doc: dict[str, Any]) -> Device:
        return docs.device_from(doc)

    def _extra(self, record: Device) -> tuple[object, ...]:
        # NULL, not '', when there is no profile or parent: the foreign key skips NULLs.
        return (record.service_name, record.profile_name or None, record.parent or None)

    def _on_violation(self, exc: IntegrityViolation, record: Device) -> Exception:
        if exc.kind == "foreign_key":
            return Conflict(
                f"device service '{record.service_name}' or device profile "
                f"'{record.profile_name}' of device '{record.name}' no longer exists"
            )
        return super()._on_violation(exc, record)

    async def delete(self, name: str) -> None:
        """Delete the device."""
        await self._delete(name)

    async def page(
        self, query: ListQuery, *, service: str | None = None, profile: str | None = None
    ) -> Page[Device]:
        """Devices, optionally of one service and/or profile."""
        counted = _device_count_key(query, service, profile)
        return await self._page(query, *_owner_filter(service, profile), counted)

    async def documents(
        self, query: ListQuery, *, service: str | None = None, profile: str | None = None
    ) -> Page[str]:
        """The documents (JSON text) of :meth:`page`'s devices."""
        counted = _device_count_key(query, service, profile)
        return await self._page_documents(query, *_owner_filter(service, profile), counted)

    async def descendants(self, name: str, max_levels: int, query: ListQuery) -> Page[Device]:
        """Devices below ``name``; cycles in parent links are tolerated (each device once)."""
        page = await self.descendant_documents(name, max_levels, query)
        return Page(page.total, [self._from(orjson.loads(text)) for text in page.items])

    async def descendant_documents(self, name: str, max_levels: int, query: ListQuery) -> Page[str]:
        """The documents (JSON text) of :meth:`descendants`."""
        if max_levels > 0 and max_levels >= await self.count():
            # No tree is deeper than the number of devices: a larger bound is "all levels",
            # which ends on a cycle, where the bounded query would go round it max_levels times.
            max_levels = 0
        if max_levels > 0:
            tree = (
                "WITH RECURSIVE tree(name, lvl) AS ("
                " SELECT name, 1 FROM device WHERE parent = ?"
                " UNION ALL SELECT d.name, t.lvl + 1 FROM device d"
                " JOIN tree t ON d.parent = t.name WHERE t.lvl < ?)"
            )
            targs: list[object] = [name, max_levels]
        else:
            # UNION (not ALL) removes repeats, so a cycle of parents ends.
            tree = (
                "WITH RECURSIVE tree(name) AS ("
                " SELECT name FROM device WHERE parent = ?"
                " UNION SELECT d.name FROM device d JOIN tree t ON d.parent = t.name)"
            )
            targs = [name]
        cond = "name IN (SELECT name FROM tree) AND name <> ?"
        targs.append(name)
        d = self.db.dialect
        largs: list[object] = []
        if query.labels:
            cond += " AND " + d.labels_match("labels", len(query.labels))
            largs = d.labels_args(query.labels)
        total = int(
            await self.db.fetchval(
                f"{tree} SELECT count(*) FROM device WHERE {cond}", *targs, *largs
            )
        )
        if total == 0 or query.limit == 0 or query.offset >= total:
            return Page(total, [])
        rows = await self.db.fetchall(
            f"{tree} SELECT content FROM device WHERE {cond}"
            " ORDER BY created, seq LIMIT ? OFFSET ?",
            *targs,
            *largs,
            query.limit,
            query.offset,
        )
        return Page(total, [str(r[0]) for r in rows])

    async def owners(self, names: Sequence[str]) -> dict[str, str]:
        """The owning service of each of ``names`` that exists (one statement, whatever the
        number of names)."""
        if not names:
            return {}
        d = self.db.dialect
        rows = await self.db.fetchall(
            f"SELECT name, service_name FROM device WHERE {d.any_of('name')}",
            d.list_value(names),
        )
        return {str(r[0]): str(r[1]) for r in rows}

    async def has_children(self, name: str) -> bool:
        """Whether a device names ``name`` as parent."""
        return (
            await self.db.fetchone("SELECT 1 FROM device WHERE parent = ? LIMIT 1", name)
            is not None
        )

    async def count(self) -> int:
        """All devices (the kept count)."""
        return (await self.kept_count("", ""))[0]

    async def count_by_service(self, service: str) -> int:
        """Devices owned by ``service`` (the kept count)."""
        return (await self.kept_count("service", service))[0]

    async def count_per_service(self, limit: int) -> list[tuple[str, int]]:
        """Devices per service, largest first; past ``limit`` services, one ``_other`` sum.
        One pass over the ``device_by_service`` index."""
        rows = await self.db.fetchall(
            "SELECT service_name, count(*) AS n FROM device GROUP BY service_name"
            " ORDER BY n DESC, service_name"
        )
        out = [(str(r[0]), int(r[1])) for r in rows[:limit]]
        rest = sum(int(r[1]) for r in rows[limit:])
        if rest:
            out.append(("_other", rest))
        return out

    async def count_by_profiles(self, profiles: Sequence[str]) -> dict[str, int]:
        """Devices per profile name, for the names given (the kept counts; none for 0)."""
        if not profiles:
            return {}
        marks = ", ".join("?" for _ in profiles)
        rows = await self.db.fetchall(
            "SELECT key, CAST(sum(n) AS BIGINT) FROM list_count"
            f" WHERE kind = 'device' AND dim = 'profile' AND key IN ({marks})"
            " GROUP BY key HAVING sum(n) <> 0",
            *profiles,
        )
        return {str(r[0]): int(r[1]) for r in rows}

    async def services_using_profile(self, profile: str) -> list[str]:
        """Services owning a device of ``profile``."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT service_name FROM device WHERE profile_name = ? ORDER BY service_name",
            profile,
        )
        return [str(r[0]) for r in rows]


class SqlProvisionWatcherRepo(_Repo[ProvisionWatcher]):
    """Provision watchers."""

    table = "provision_watcher"
    extra_columns = ("service_name", "profile_name")

    def _doc(self, record: ProvisionWatcher) -> dict[str, Any]:
        return docs.watcher_doc(record)

    def _from(self, doc: dict[str, Any]) -> ProvisionWatcher:
        return docs.watcher_from(doc)

    def _extra(self, record: ProvisionWatcher) -> tuple[object, ...]:
        return (record.service_name, record.discovered_device.profile_name or None)

    def _on_violation(self, exc: IntegrityViolation, record: ProvisionWatcher) -> Exception:
        if exc.kind == "foreign_key":
            return Conflict(
                f"device profile '{record.discovered_device.profile_name}' of provision watcher "
                f"'{record.name}' no longer exists"
            )
        return super()._on_violation(exc, record)

    async def delete(self, name: str) -> None:
        """Delete the watcher."""
        await self._delete(name)

    async def page(
        self, query: ListQuery, *, service: str | None = None, profile: str | None = None
    ) -> Page[ProvisionWatcher]:
        """Watchers, optionally of one service and/or profile."""
        return await self._page(query, *_owner_filter(service, profile))

    async def documents(
        self, query: ListQuery, *, service: str | None = None, profile: str | None = None
    ) -> Page[str]:
        """The documents (JSON text) of :meth:`page`'s watchers."""
        return await self._page_documents(query, *_owner_filter(service, profile))

    async def count_by_service(self, service: str) -> int:
        """Watchers of ``service``."""
        return int(
            await self.db.fetchval(
                "SELECT count(*) FROM provision_watcher WHERE service_name = ?", service
            )
        )

    async def count_by_profile(self, profile: str) -> int:
        """Watchers using ``profile``."""
        return int(
            await self.db.fetchval(
                "SELECT count(*) FROM provision_watcher WHERE profile_name = ?", profile
            )
        )
