"""The server secret in SQL shared by every database (table ``server_secret``, migration 0007)."""

from __future__ import annotations

from edgemeta.store.driver import Driver


class SqlServerSecretRepo:
    """The one-row table that keeps the server secret (``edgemeta.security.proofs``)."""

    def __init__(self, db: Driver) -> None:
        self.db = db

    async def get(self) -> tuple[str, str] | None:
        """``(scheme, stored text)``, or None before the first start."""
        row = await self.db.fetchone("SELECT scheme, secret FROM server_secret WHERE id = 1")
        return None if row is None else (str(row[0]), str(row[1]))

    async def put_if_absent(self, scheme: str, stored: str, created_ms: int) -> None:
        """Keep this secret unless one is kept already (two first starts agree on the first)."""
        await self.db.execute(
            "INSERT INTO server_secret (id, scheme, secret, created) VALUES (1, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            scheme,
            stored,
            created_ms,
        )
