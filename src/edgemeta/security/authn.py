"""Authentication: from a request's credential to a :class:`Principal`, or a refusal.

A credential comes as ``Authorization: Bearer <credential>`` or ``X-API-Key: <credential>``.
One that starts with ``emk_`` is an API key (looked up by its hash in the store); anything
else is a JWT (verified by :class:`~edgemeta.security.tokens.TokenVerifier`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from edgemeta.ports import Store
from edgemeta.security.apikeys import hash_key, is_api_key
from edgemeta.security.principal import Principal
from edgemeta.security.tokens import TokenRefused, TokenVerifier


class NotAuthenticated(Exception):
    """No credential, or one that is not accepted; ``presented`` says whether there was one."""

    def __init__(self, message: str, *, presented: bool) -> None:
        super().__init__(message)
        self.message = message
        self.presented = presented


@dataclass
class _KeyHit:
    principal: Principal
    until: float  # monotonic
    expires_ms: int


class Authenticator:
    """Turns credentials into principals (JWTs if a verifier is configured; API keys always)."""

    def __init__(
        self,
        store: Store,
        verifier: TokenVerifier | None = None,
        *,
        apikey_cache_seconds: float = 5.0,
        cache_size: int = 10_000,
    ) -> None:
        self.store = store
        self.verifier = verifier
        self.apikey_ttl = apikey_cache_seconds
        self.cache_size = cache_size
        self._keys: dict[str, _KeyHit] = {}
        # Principals of verified JWTs, by the full "Bearer ..." header value, until the
        # token's exp: the per-request cost of a known token is this one lookup.
        self._tokens: dict[str, tuple[Principal, float]] = {}

    def cached(self, authorization: str | None) -> Principal | None:
        """The principal of an ``Authorization`` header verified before (no I/O, no await)."""
        if authorization is None:
            return None
        hit = self._tokens.get(authorization)
        if hit is None:
            return None
        if hit[1] <= time.time():
            self._tokens.pop(authorization, None)
            return None
        return hit[0]

    @property
    def description(self) -> str:
        """What is accepted, for the start log line."""
        kinds = []
        if self.verifier is not None:
            source = self.verifier.jwks_url or "PEM keys"
            kinds.append(f"JWTs of {self.verifier.issuer} ({source})")
        kinds.append("API keys")
        return " and ".join(kinds)

    async def close(self) -> None:
        """Release the JWKS client."""
        if self.verifier is not None:
            await self.verifier.close()

    async def authenticate(self, authorization: str | None, api_key: str | None) -> Principal:
        """The principal of these header values; NotAuthenticated if none is acceptable."""
        credential = api_key.strip() if api_key else ""
        if not credential and authorization:
            scheme, _, rest = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not rest.strip():
                raise NotAuthenticated(
                    "the Authorization header must be 'Bearer <token or API key>'", presented=True
                )
            credential = rest.strip()
        if not credential:
            raise NotAuthenticated("authentication required", presented=False)
        if is_api_key(credential):
            return await self._api_key(credential)
        if self.verifier is None:
            raise NotAuthenticated(
                "bearer JWTs are not accepted here (no issuer is configured); use an API key",
                presented=True,
            )
        try:
            v = await self.verifier.verify(credential)
        except TokenRefused as exc:
            raise NotAuthenticated(f"invalid token: {exc}", presented=True) from None
        principal = Principal(subject=v.subject, roles=v.roles, service=v.service, via="jwt")
        if authorization is not None and not api_key and self.verifier.cache_size > 0:
            if len(self._tokens) >= self.verifier.cache_size:
                self._tokens.clear()  # rare: a burst of distinct tokens; they re-verify
            self._tokens[authorization] = (principal, v.expires + self.verifier.skew)
        return principal

    async def _api_key(self, key: str) -> Principal:
        digest = hash_key(key)
        now = time.monotonic()
        hit = self._keys.get(digest)
        if hit is not None and now < hit.until and time.time() * 1000 < hit.expires_ms:
            return hit.principal
        async with self.store.read() as tx:
            stored = await tx.apikeys.by_hash(digest)
        now_ms = int(time.time() * 1000)
        if stored is None:
            raise NotAuthenticated("unknown API key", presented=True)
        if stored.revoked:
            raise NotAuthenticated(f"API key {stored.id} is revoked", presented=True)
        if not stored.usable(now_ms):
            raise NotAuthenticated(f"API key {stored.id} has expired", presented=True)
        principal = Principal(
            subject=stored.subject,
            roles=frozenset(stored.roles),
            service=stored.service or None,
            via="apikey",
        )
        if self.apikey_ttl > 0:
            if len(self._keys) >= self.cache_size:
                self._keys.clear()
            self._keys[digest] = _KeyHit(principal, now + self.apikey_ttl, stored.expires)
        return principal
