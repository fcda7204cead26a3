"""Key/value entries in SQL shared by every database (table ``kv``, migration 0008).

"Below ``key``" is matched with ``substr`` rather than ``LIKE``: keys may hold ``_`` (a LIKE
wildcard), SQLite's LIKE ignores case, and a range on ``name`` would follow PostgreSQL's
collation, not byte order. The table holds configuration, hundreds of rows, not millions.
Results are sorted here, for the same reason: one order on every database.
"""

from __future__ import annotations

from edgemeta.ports import KvEntry
from edgemeta.store.driver import Driver

_COLUMNS = "name, value, created, modified"


class SqlKvRepo:
    """The ``kv`` table."""

    def __init__(self, db: Driver) -> None:
        self.db = db

    async def tree(self, key: str) -> list[KvEntry]:
        """The entry ``key`` and every entry below it, ordered by key."""
        below = key + "/"
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM kv WHERE name = ? OR substr(name, 1, ?) = ?",
            key,
            len(below),
            below,
        )
        entries = [KvEntry(r[0], r[1], int(r[2]), int(r[3])) for r in rows]
        return sorted(entries, key=lambda e: e.key)

    async def put(self, key: str, value: str, now_ms: int) -> None:
        """Insert or replace (keeping ``created``)."""
        await self.db.execute(
            f"INSERT INTO kv ({_COLUMNS}) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value, modified = excluded.modified",
            key,
            value,
            now_ms,
            now_ms,
        )

    async def delete(self, key: str) -> bool:
        """Delete ``key`` only."""
        return await self.db.execute("DELETE FROM kv WHERE name = ?", key) > 0

    async def delete_below(self, key: str) -> list[str]:
        """Delete every entry below ``key``; returns their keys."""
        below = key + "/"
        rows = await self.db.fetchall(
            "SELECT name FROM kv WHERE substr(name, 1, ?) = ?", len(below), below
        )
        await self.db.execute("DELETE FROM kv WHERE substr(name, 1, ?) = ?", len(below), below)
        return sorted(r[0] for r in rows)
