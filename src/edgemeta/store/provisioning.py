"""Enrolments, registration records and token nonces, in SQL shared by every database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from edgemeta import documents as docs
from edgemeta.domain.enrollment import Enrollment, EnrollmentKind, Registration
from edgemeta.domain.errors import Conflict, DuplicateName, ServerError
from edgemeta.ports import ListQuery, Page, Sealer
from edgemeta.store.driver import Driver, IntegrityViolation

Doc = dict[str, Any]


def _dump(doc: Doc) -> str:
    return orjson.dumps(doc).decode()


class Unsealed:
    """The sealer of a store nobody gave a key-encryption key (tests, one-off CLI commands):
    writes plaintext, and refuses to pretend it can read sealed values."""

    def seal(self, plaintext: str, place: str) -> str:
        """``plaintext`` unchanged."""
        return plaintext

    def open(self, stored: str, place: str) -> str:
        """``stored`` if it is plaintext; a sealed value needs the KEK."""
        if stored.startswith("sealed:"):
            raise ServerError(
                f"{place} is sealed and this process has no key-encryption key"
                " (set EDGEMETA_KEK_FILE or EDGEMETA_KEK)"
            )
        return stored


# The secret fields of a stored enrolment document: (path to the holding object, field).
_SECRETS = (
    (("attestation",), "primaryKey"),
    (("attestation",), "secondaryKey"),
    (("allocation", "webhook"), "secret"),
)


def _transform(doc: Doc, enrollment_id: str, fn: Callable[[str, str], str]) -> Doc:
    """``doc`` with every secret field passed through ``fn(value, place)`` (in place)."""
    for path, name in _SECRETS:
        holder: Any = doc
        for step in path:
            holder = holder.get(step) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and isinstance(holder.get(name), str):
            holder[name] = fn(holder[name], f"enrollment/{enrollment_id}/{name}")
    return doc


class SqlEnrollmentRepo:
    """Enrolments, keyed by name; at most one individual enrolment per registration id."""

    # Group enrolments are read on every registration: parsed ones are kept by their stored
    # text (the same text is the same enrolment), so a hit skips the parse but never serves a
    # changed enrolment.
    _parsed: dict[str, Enrollment] = {}

    def __init__(self, db: Driver, sealer: Sealer | None = None) -> None:
        self.db = db
        self.sealer: Sealer = sealer or Unsealed()

    def _text(self, e: Enrollment) -> str:
        """The stored document of ``e``, its secrets sealed."""
        return _dump(_transform(docs.enrollment_doc(e), e.id, self.sealer.seal))

    def _read(self, text: str) -> Enrollment:
        doc = orjson.loads(text)
        return docs.enrollment_from(_transform(doc, str(doc.get("id", "")), self.sealer.open))

    def _load(self, text: str) -> Enrollment:
        found = self._parsed.get(text)
        if found is None:
            if len(self._parsed) > 1024:
                self._parsed.clear()
            found = self._parsed[text] = self._read(text)
        return found

    async def reseal(self) -> int:
        """Rewrite every enrolment's secrets under the current key; how many enrolments.

        Content only: the revision stays, as the enrolment itself did not change."""
        rows = await self.db.fetchall("SELECT id, content FROM enrollment")
        for enrollment_id, text in rows:
            fresh = self._text(self._read(text))
            await self.db.execute(
                "UPDATE enrollment SET content = ? WHERE id = ?", fresh, enrollment_id
            )
        return len(rows)

    async def add(self, e: Enrollment) -> None:
        """Insert; DuplicateName for a taken name or id, or a second individual enrolment."""
        try:
            await self.db.execute(
                "INSERT INTO enrollment (id, name, kind, registration_id, enabled, priority,"
                " created, revision, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                e.id,
                e.name,
                e.kind.value,
                e.registration_id if e.kind == EnrollmentKind.INDIVIDUAL else "",
                1 if e.enabled else 0,
                e.priority,
                e.created,
                e.revision,
                self._text(e),
            )
        except IntegrityViolation as exc:
            if exc.constraint.endswith("_id_key"):
                raise DuplicateName(f"enrollment id {e.id} already exists") from exc
            if exc.constraint.endswith("_name_key"):
                raise DuplicateName(f"enrollment name {e.name} already exists") from exc
            raise DuplicateName(
                f"registration id '{e.registration_id}' already has an individual enrollment"
            ) from exc

    async def update(self, e: Enrollment) -> None:
        """Replace if still at ``e.revision - 1``; Conflict otherwise."""
        n = await self.db.execute(
            "UPDATE enrollment SET enabled = ?, priority = ?, revision = ?, content = ?"
            " WHERE name = ? AND revision = ?",
            1 if e.enabled else 0,
            e.priority,
            e.revision,
            self._text(e),
            e.name,
            e.revision - 1,
        )
        if n != 1:
            raise Conflict(f"enrollment '{e.name}' was changed concurrently")

    async def get(self, name: str, *, for_update: bool = False) -> Enrollment | None:
        """The enrolment called ``name``."""
        lock = self.db.dialect.for_update if for_update else ""
        row = await self.db.fetchone(f"SELECT content FROM enrollment WHERE name = ?{lock}", name)
        return None if row is None else self._read(row[0])

    async def individual(self, registration_id: str) -> Enrollment | None:
        """The individual enrolment of ``registration_id``."""
        row = await self.db.fetchone(
            "SELECT content FROM enrollment WHERE kind = 'individual' AND registration_id = ?",
            registration_id,
        )
        return None if row is None else self._read(row[0])

    async def groups(self) -> list[Enrollment]:
        """Every group enrolment, highest priority first, then oldest."""
        rows = await self.db.fetchall(
            "SELECT content FROM enrollment WHERE kind = 'group'"
            " ORDER BY priority DESC, created, seq"
        )
        return [self._load(r[0]) for r in rows]

    async def delete(self, name: str) -> None:
        """Delete (registration records are kept, as DPS keeps them)."""
        await self.db.execute("DELETE FROM enrollment WHERE name = ?", name)

    async def page(self, query: ListQuery) -> Page[Enrollment]:
        """All enrolments, oldest first."""
        total = int(await self.db.fetchval("SELECT count(*) FROM enrollment"))
        if total == 0 or query.limit == 0 or query.offset >= total:
            return Page(total, [])
        rows = await self.db.fetchall(
            "SELECT content FROM enrollment ORDER BY created, seq LIMIT ? OFFSET ?",
            query.limit,
            query.offset,
        )
        return Page(total, [self._read(r[0]) for r in rows])


class SqlRegistrationRepo:
    """Registration records (one per device) and the nonces of used tokens."""

    def __init__(self, db: Driver) -> None:
        self.db = db

    async def get(self, registration_id: str, *, for_update: bool = False) -> Registration | None:
        """The record of ``registration_id``."""
        lock = self.db.dialect.for_update if for_update else ""
        row = await self.db.fetchone(
            f"SELECT content FROM registration WHERE registration_id = ?{lock}", registration_id
        )
        return None if row is None else docs.registration_from(orjson.loads(row[0]))

    async def save(self, r: Registration) -> None:
        """Insert the first revision, or replace revision ``r.revision - 1``; else Conflict."""
        content = _dump(docs.registration_doc(r))
        if r.revision == 1:
            try:
                await self.db.execute(
                    "INSERT INTO registration (registration_id, enrollment, status, created,"
                    " modified, revision, content) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    r.registration_id,
                    r.enrollment,
                    r.status.value,
                    r.created,
                    r.modified,
                    r.revision,
                    content,
                )
            except IntegrityViolation as exc:
                raise Conflict(
                    f"registration '{r.registration_id}' was recorded concurrently"
                ) from exc
            return
        n = await self.db.execute(
            "UPDATE registration SET enrollment = ?, status = ?, modified = ?, revision = ?,"
            " content = ? WHERE registration_id = ? AND revision = ?",
            r.enrollment,
            r.status.value,
            r.modified,
            r.revision,
            content,
            r.registration_id,
            r.revision - 1,
        )
        if n != 1:
            raise Conflict(f"registration '{r.registration_id}' was changed concurrently")

    async def page(self, query: ListQuery, *, enrollment: str | None = None) -> Page[Registration]:
        """Records, all or of one enrolment, oldest first."""
        cond, args = ("WHERE enrollment = ?", [enrollment]) if enrollment else ("", [])
        total = int(await self.db.fetchval(f"SELECT count(*) FROM registration {cond}", *args))
        if total == 0 or query.limit == 0 or query.offset >= total:
            return Page(total, [])
        rows = await self.db.fetchall(
            f"SELECT content FROM registration {cond} ORDER BY created, registration_id"
            " LIMIT ? OFFSET ?",
            *args,
            query.limit,
            query.offset,
        )
        return Page(total, [docs.registration_from(orjson.loads(r[0])) for r in rows])

    async def use_nonce(self, registration_id: str, nonce: str, expiry: int) -> bool:
        """Record a token's nonce; False if it was used before (a replay)."""
        try:
            await self.db.execute(
                "INSERT INTO registration_nonce (registration_id, nonce, expiry) VALUES (?, ?, ?)",
                registration_id,
                nonce,
                expiry,
            )
        except IntegrityViolation:
            return False
        return True

    # Server nonces (X.509 proof of possession) share the token nonces' table under a
    # registration id no device can have: ``Name`` is never empty. Issuing one inserts it;
    # spending it deletes it, and the delete's row count settles a race (two registrations
    # with one nonce: the database lets one delete the row).
    _CHALLENGE = ""

    async def add_challenge(self, nonce: str, expiry: int, now_s: int) -> None:
        """Keep a server nonce until ``expiry``; the expired ones go (so the table holds at most
        the nonces of one time-to-live)."""
        await self.db.execute(
            "DELETE FROM registration_nonce WHERE registration_id = ? AND expiry < ?",
            self._CHALLENGE,
            now_s,
        )
        await self.db.execute(
            "INSERT INTO registration_nonce (registration_id, nonce, expiry) VALUES (?, ?, ?)",
            self._CHALLENGE,
            nonce,
            expiry,
        )

    async def take_challenge(self, nonce: str, now_s: int) -> bool:
        """Spend a server nonce; False if it was never issued, was spent, or has expired."""
        n = await self.db.execute(
            "DELETE FROM registration_nonce WHERE registration_id = ? AND nonce = ?"
            " AND expiry >= ?",
            self._CHALLENGE,
            nonce,
            now_s,
        )
        return n == 1

    async def forget_nonces(self, expired_before: int) -> int:
        """Drop nonces of tokens that have expired (they cannot be replayed any more)."""
        return await self.db.execute(
            "DELETE FROM registration_nonce WHERE expiry < ?", expired_before
        )
