"""The small interface the SQL repositories run on, so one implementation serves every database.

A :class:`Driver` executes SQL written with ``?`` placeholders (each driver translates them
to its own style) and turns the database's integrity errors into :class:`IntegrityViolation`,
naming the constraint in one portable form: ``<table>_<column>_key`` for a unique constraint,
``<table>_<column>_fkey`` for a reference (``<table>_fkey`` where the database cannot say
which column, as SQLite cannot).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

Row = Sequence[Any]


class IntegrityViolation(Exception):
    """The database refused a write because of a constraint."""

    def __init__(self, kind: str, constraint: str) -> None:
        super().__init__(f"{kind} violation on {constraint}")
        self.kind = kind  # "unique" or "foreign_key"
        self.constraint = constraint


class DocTexts:
    """The JSON text of records written through one transaction view, so that the outbox and
    the initial-configuration copy do not serialize the same record again. Entries hold the
    record itself and match by identity, so an entry can only ever serve that very record."""

    __slots__ = ("_by_id",)

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[object, str]] = {}

    def put(self, record: object, text: str) -> None:
        """Remember ``record``'s serialized document."""
        if len(self._by_id) >= 512:
            self._by_id.clear()
        self._by_id[id(record)] = (record, text)

    def get(self, record: object) -> str | None:
        """The text remembered for this very record, if any."""
        entry = self._by_id.get(id(record))
        return entry[1] if entry is not None and entry[0] is record else None


class Dialect(Protocol):
    """The few SQL fragments that differ between databases."""

    name: str
    for_update: str  # the row-locking suffix of a SELECT in a write transaction ('' if none)
    for_share: str  # the shared row-locking suffix (conflicts with for_update only)

    def labels_match(self, column: str, count: int) -> str:
        """A condition true when ``column`` holds all of ``count`` labels (bound in order)."""

    def labels_value(self, labels: Sequence[str]) -> object:
        """The bind value of a labels column."""

    def labels_args(self, labels: Sequence[str]) -> list[object]:
        """The bind values for :meth:`labels_match`."""

    def any_of(self, column: str) -> str:
        """A condition true when ``column`` is one of a list bound as ONE value
        (:meth:`list_value`): the statement text is the same for any list length, so a
        prepared statement is reused (a varying ``IN (?, ?, ...)`` would be a new one)."""

    def list_value(self, values: Sequence[str]) -> object:
        """The bind value of :meth:`any_of`'s list."""


class Driver(Protocol):
    """Executes SQL inside the current transaction (or on its own, outside one)."""

    @property
    def dialect(self) -> Dialect:
        """The database's SQL fragments."""

    async def execute(self, sql: str, *args: object) -> int:
        """Run a statement; returns the number of rows it changed."""

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run one statement for each row of arguments."""

    async def fetchone(self, sql: str, *args: object) -> Row | None:
        """The first row of a query, or None."""

    async def fetchall(self, sql: str, *args: object) -> list[Row]:
        """All rows of a query."""

    async def fetchval(self, sql: str, *args: object) -> Any:
        """The first column of the first row, or None."""
