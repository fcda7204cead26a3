"""The server secret in SQL shared by every database (table ``server_secret``, migration 0007).

Sealed at rest like enrolment keys (:mod:`edgemeta.security.sealing`): the stored scheme is
then ``sealed+<scheme>`` and the text the sealed form of what the scheme describes, so a copy
of the database cannot forge release proofs without the key-encryption key.
"""

from __future__ import annotations

from edgemeta.ports import Sealer
from edgemeta.store.driver import Driver
from edgemeta.store.provisioning import Unsealed

_PLACE = "server_secret"
_SEALED = "sealed+"


class SqlServerSecretRepo:
    """The one-row table that keeps the server secret (``edgemeta.security.proofs``)."""

    def __init__(self, db: Driver, sealer: Sealer | None = None) -> None:
        self.db = db
        self.sealer: Sealer = sealer or Unsealed()

    def _kept(self, scheme: str, text: str) -> tuple[str, str]:
        """What to store for ``(scheme, text)``: sealed when the sealer seals."""
        sealed = self.sealer.seal(text, _PLACE)
        return (_SEALED + scheme, sealed) if sealed != text else (scheme, text)

    async def get(self) -> tuple[str, str] | None:
        """``(scheme, text)`` opened, or None before the first start."""
        row = await self.db.fetchone("SELECT scheme, secret FROM server_secret WHERE id = 1")
        if row is None:
            return None
        scheme, text = str(row[0]), str(row[1])
        if scheme.startswith(_SEALED):
            return scheme[len(_SEALED) :], self.sealer.open(text, _PLACE)
        return scheme, text

    async def put_if_absent(self, scheme: str, stored: str, created_ms: int) -> None:
        """Keep this secret unless one is kept already (two first starts agree on the first)."""
        await self.db.execute(
            "INSERT INTO server_secret (id, scheme, secret, created) VALUES (1, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            *self._kept(scheme, stored),
            created_ms,
        )

    async def reseal(self) -> int:
        """Rewrite the kept secret under the sealer's current key; 1 if there is one, else 0."""
        kept = await self.get()
        if kept is None:
            return 0
        await self.db.execute(
            "UPDATE server_secret SET scheme = ?, secret = ? WHERE id = 1", *self._kept(*kept)
        )
        return 1
