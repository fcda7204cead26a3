"""Bearer JWT verification with PyJWT and ``cryptography``: keys from a JWKS URL (fetched with
httpx, cached, refreshed on an unknown ``kid``) or a PEM file; ``iss``, ``aud``, ``exp`` and
``nbf`` checked with a clock skew; the algorithm pinned by the key's type.

Pinning is what stops the classic confusions: a token saying ``alg: none`` or ``HS256`` is
refused before any signature check, because an RSA key only ever verifies RS/PS algorithms
(so the RSA public key can never be used as an HMAC secret), an EC key only the ES algorithm
of its curve, an Ed25519/Ed448 key only EdDSA.

Verified tokens are cached by their full text until their ``exp`` (bounded), so a client
that presents the same token for every request costs one dictionary lookup, not one signature
check: that is what keeps verification under the 5 % budget (bench/auth.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

log = logging.getLogger("edgemeta.security")

PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)

_RSA_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


class TokenRefused(Exception):
    """The token cannot be accepted; the message says why (for the 401 and the log)."""


class IssuerUnavailable(Exception):
    """The issuer's keys cannot be fetched and none are known: nothing can be verified."""


def algorithms_for(key: Any) -> frozenset[str]:
    """The only algorithms ``key`` may verify (empty: a key type we do not accept)."""
    if isinstance(key, rsa.RSAPublicKey):
        return _RSA_ALGS
    if isinstance(key, ec.EllipticCurvePublicKey):
        alg = _EC_ALGS.get(key.curve.name)
        return frozenset({alg}) if alg else frozenset()
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return frozenset({"EdDSA"})
    return frozenset()


@dataclass(frozen=True, slots=True)
class Verified:
    """What a verified token says: its subject, roles, bound service, and expiry."""

    subject: str
    roles: frozenset[str]
    service: str | None
    expires: float


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name, or by a dotted path into nested objects (``realm_access.roles``)."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _names(value: Any) -> set[str]:
    """Role names from a claim: a list of strings or one space-separated string."""
    if isinstance(value, str):
        return set(value.split())
    if isinstance(value, (list, tuple)):
        return {v for v in value if isinstance(v, str) and v}
    return set()


def load_pem_keys(path: Path) -> list[PublicKey]:
    """Every public key (or certificate's key) in a PEM file."""
    from cryptography import x509

    data = path.read_bytes()
    keys: list[PublicKey] = []
    marker = b"-----BEGIN "
    for chunk in data.split(marker)[1:]:
        block = marker + chunk
        if block.startswith(b"-----BEGIN CERTIFICATE-----"):
            key: Any = x509.load_pem_x509_certificate(block).public_key()
        else:
            key = serialization.load_pem_public_key(block)
        if not algorithms_for(key):
            raise ValueError(f"{path}: unsupported key type {type(key).__name__}")
        keys.append(key)
    if not keys:
        raise ValueError(f"{path}: no PEM public key in it")
    return keys


@dataclass
class _Jwks:
    """The issuer's key set as last fetched."""

    keys: dict[str, tuple[PublicKey, frozenset[str]]] = field(default_factory=dict)
    fetched: float = 0.0  # monotonic time of the last fetch attempt (successful or not)
    loaded: float = 0.0  # monotonic time of the last successful fetch


class TokenVerifier:
    """Verifies bearer JWTs against one issuer (a JWKS URL, static PEM keys, or both)."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str = "",
        static_keys: Iterable[PublicKey] = (),
        roles_claim: str = "roles",
        service_claim: str = "service",
        clock_skew: float = 30.0,
        min_refresh: float = 30.0,
        max_age: float = 3600.0,
        cache_size: int = 10_000,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks_url = jwks_url
        self.static = [(k, algorithms_for(k)) for k in static_keys]
        self.roles_claim = roles_claim
        self.service_claim = service_claim
        self.skew = clock_skew
        self.min_refresh = min_refresh
        self.max_age = max_age
        self.cache_size = cache_size
        self._http = http
        self._jwks = _Jwks()
        self._lock = asyncio.Lock()
        self._cache: dict[str, Verified] = {}
        self.fetches = 0  # how many times the JWKS was fetched (tests, logs)

    async def close(self) -> None:
        """Close the HTTP client, if this verifier made one."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def cached(self, token: str) -> Verified | None:
        """A token verified before and not expired yet (the fast path, no await)."""
        hit = self._cache.get(token)
        if hit is None:
            return None
        if hit.expires + self.skew <= time.time():
            self._cache.pop(token, None)
            return None
        return hit

    async def verify(self, token: str) -> Verified:
        """The token's claims, verified; TokenRefused if it cannot be accepted."""
        hit = self.cached(token)
        if hit is not None:
            return hit
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRefused(f"malformed token: {exc}") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg == "none" or alg.startswith("HS"):
            raise TokenRefused(f"algorithm {alg!r} is not accepted")
        kid = header.get("kid")
        candidates = await self._keys_for(kid if isinstance(kid, str) else None, alg)
        if not candidates:
            raise TokenRefused(
                f"no key of the issuer verifies algorithm {alg}"
                + (f" with kid {kid!r}" if kid is not None else "")
            )
        last: Exception | None = None
        for key, algs in candidates:
            try:
                claims = jwt.decode(
                    token,
                    key=key,
                    algorithms=sorted(algs),
                    audience=self.audience,
                    issuer=self.issuer,
                    leeway=self.skew,
                    options={"require": ["exp", "iss", "aud", "sub"]},
                )
                break
            except jwt.InvalidSignatureError as exc:
                last = exc  # another static key may be the one
            except jwt.PyJWTError as exc:
                raise TokenRefused(str(exc)) from None
        else:
            raise TokenRefused(f"invalid token: {last}")
        verified = self._principal_of(claims)
        self._remember(token, verified)
        return verified

    def _principal_of(self, claims: Mapping[str, Any]) -> Verified:
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise TokenRefused("the token has no subject")
        roles = _names(_claim(claims, self.roles_claim)) | _names(claims.get("scope"))
        service = _claim(claims, self.service_claim)
        bound = service if isinstance(service, str) and service else None
        if bound is None:
            # The service role means "this one service's identity": without a service to be
            # bound to it would grant a service's writes on every service's records.
            roles.discard("service")
        return Verified(
            subject=sub,
            roles=frozenset(roles),
            service=bound,
            expires=float(claims["exp"]),
        )

    def _remember(self, token: str, verified: Verified) -> None:
        if self.cache_size <= 0:
            return
        if len(self._cache) >= self.cache_size:
            now = time.time()
            for t in [t for t, v in self._cache.items() if v.expires + self.skew <= now]:
                del self._cache[t]
            while len(self._cache) >= self.cache_size:
                del self._cache[next(iter(self._cache))]  # the oldest entry
        self._cache[token] = verified

    async def _keys_for(self, kid: str | None, alg: str) -> list[tuple[PublicKey, frozenset[str]]]:
        """The keys that may verify a token with this ``kid`` and ``alg``."""
        found = [(k, a) for k, a in self.static if alg in a]
        if not self.jwks_url:
            return found
        now = time.monotonic()
        if not self._jwks.loaded or now - self._jwks.loaded > self.max_age:
            await self._refresh(force=True)
        entry = self._lookup(kid, alg)
        if not entry and kid is not None:
            # An unknown kid: the issuer may have rotated its key. Refetch, but at most once
            # per min_refresh, so tokens with made-up kids cannot hammer the issuer.
            await self._refresh(force=False)
            entry = self._lookup(kid, alg)
        return found + entry

    def _lookup(self, kid: str | None, alg: str) -> list[tuple[PublicKey, frozenset[str]]]:
        keys = self._jwks.keys
        if kid is not None:
            hit = keys.get(kid)
            return [hit] if hit is not None and alg in hit[1] else []
        return [v for v in keys.values() if alg in v[1]]

    async def _refresh(self, *, force: bool) -> None:
        started = time.monotonic()
        async with self._lock:
            if self._jwks.fetched >= started:
                return  # another request fetched while this one waited
            if not force and started - self._jwks.fetched < self.min_refresh:
                return
            self._jwks.fetched = time.monotonic()
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("cannot fetch the issuer's keys from %s: %s", self.jwks_url, exc)
                if not self._jwks.loaded and not self.static:
                    raise IssuerUnavailable(
                        f"cannot fetch the issuer's keys from {self.jwks_url}"
                    ) from None
                return
            self._jwks.keys = keys
            self._jwks.loaded = time.monotonic()

    async def _fetch(self) -> dict[str, tuple[PublicKey, frozenset[str]]]:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        self.fetches += 1
        resp = await self._http.get(self.jwks_url, headers={"Accept": "application/json"})
        resp.raise_for_status()
        body = resp.json()
        if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
            raise ValueError("not a JWK set")
        out: dict[str, tuple[PublicKey, frozenset[str]]] = {}
        for i, jwk in enumerate(body["keys"]):
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(jwk).key
            except jwt.PyJWTError as exc:
                log.warning("skipping key %d of %s: %s", i, self.jwks_url, exc)
                continue
            algs = algorithms_for(key)
            declared = jwk.get("alg")
            if isinstance(declared, str):
                algs = algs & {declared}  # a key that names its algorithm verifies only that
            if algs:
                out[str(jwk.get("kid", f"#{i}"))] = (key, algs)
        return out
