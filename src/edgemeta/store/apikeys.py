"""API keys in SQL shared by every database (table ``api_key``, migration 0006)."""

from __future__ import annotations

import orjson

from edgemeta.domain.errors import DuplicateName
from edgemeta.security.apikeys import ApiKey
from edgemeta.store.driver import Driver, IntegrityViolation, Row

_COLUMNS = "id, key_hash, name, roles, service, created, expires, revoked"


def _key(row: Row) -> ApiKey:
    return ApiKey(
        id=row[0],
        key_hash=row[1],
        name=row[2],
        roles=tuple(orjson.loads(row[3])),
        service=row[4],
        created=int(row[5]),
        expires=int(row[6]),
        revoked=int(row[7]),
    )


class SqlApiKeyRepo:
    """API keys, found by the hash of the key a request presents."""

    def __init__(self, db: Driver) -> None:
        self.db = db

    async def add(self, key: ApiKey) -> None:
        """Insert; DuplicateName if the id (or, impossibly, the hash) is taken."""
        try:
            await self.db.execute(
                f"INSERT INTO api_key ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                key.id,
                key.key_hash,
                key.name,
                orjson.dumps(list(key.roles)).decode(),
                key.service,
                key.created,
                key.expires,
                key.revoked,
            )
        except IntegrityViolation as exc:
            raise DuplicateName(f"API key {key.id} already exists") from exc

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or expired ones included."""
        row = await self.db.fetchone(f"SELECT {_COLUMNS} FROM api_key WHERE key_hash = ?", key_hash)
        return None if row is None else _key(row)

    async def all(self) -> list[ApiKey]:
        """Every key, oldest first."""
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM api_key ORDER BY created, id")
        return [_key(r) for r in rows]

    async def revoke(self, key_id: str, now_ms: int) -> bool:
        """Mark a key revoked; False if there is no such key or it was revoked already."""
        changed = await self.db.execute(
            "UPDATE api_key SET revoked = ? WHERE id = ? AND revoked = 0", now_ms, key_id
        )
        return changed > 0
