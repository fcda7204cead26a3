"""API keys: for machines without an OIDC issuer.

A key is ``emk_<id>_<secret>``: the ``emk_`` prefix tells it apart from a JWT (which always
starts with ``ey``, its base64url header), the id names it in lists and logs, and the secret
is 32 random bytes (``secrets.token_urlsafe``). Only SHA-256 of the whole key is stored.

Why a fast hash and not a slow KDF (bcrypt, Argon2): slow KDFs exist to make guessing *low*
entropy secrets (passwords) from a stolen hash expensive. A 256-bit random secret cannot be
guessed whatever the hash costs, so SHA-256 is as strong here, and it lets every request be
checked with one indexed lookup instead of a deliberately slow computation per request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

PREFIX = "emk_"
_ID_BYTES = 6  # 12 hex digits: unique enough to name a key; the secret carries the strength
_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key (without the key itself)."""

    id: str
    key_hash: str
    name: str
    roles: tuple[str, ...]
    service: str
    created: int  # Unix ms
    expires: int  # Unix ms
    revoked: int = 0  # Unix ms, 0: not revoked

    def usable(self, now_ms: int) -> bool:
        """Neither revoked nor expired at ``now_ms``."""
        return not self.revoked and now_ms < self.expires

    @property
    def subject(self) -> str:
        """Who this key is, as recorded in ``requestedBy`` and the events' ``subject`` tag."""
        return f"apikey:{self.id}"


def is_api_key(credential: str) -> bool:
    """Whether ``credential`` is shaped like one of our API keys (not a JWT)."""
    return credential.startswith(PREFIX)


def hash_key(key: str) -> str:
    """The stored form of a key: hex SHA-256 of its text."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh key and its id: ``(key, id)``. The key is shown once and never stored."""
    key_id = secrets.token_hex(_ID_BYTES)
    return f"{PREFIX}{key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}", key_id
