"""Release keys: the server secret they derive from, and a device service's own key.

:func:`server_secret` is the one place the secret is loaded or made (the store seals it at
rest, see :mod:`edgemeta.store.secrets`); :func:`release_key` is what the
``releasekey`` route and ``edgemeta releasekey`` give a device service.
"""

from __future__ import annotations

import binascii
import secrets
from pathlib import Path

from edgemeta.domain.errors import ServerError
from edgemeta.ports import Store
from edgemeta.security.proofs import SECRET_BYTES, Keyring
from edgemeta.usecases.common import not_found, now_ms
from edgemeta.usecases.deps import Deps

PLAIN = "plain"  # the stored text is the secret in hex


def _decode(scheme: str, stored: str) -> bytes:
    """The secret from what the store keeps (the hook for encryption at rest)."""
    if scheme != PLAIN:
        raise ServerError(f"the server secret is kept as {scheme!r}: this version cannot read it")
    try:
        return bytes.fromhex(stored)
    except ValueError:
        raise ServerError("the stored server secret is not valid hex") from None


def read_key_file(path: Path) -> bytes:
    """The secret in ``EDGEMETA_RELEASE_KEY_FILE``: 64 (or more) hex characters, e.g. from
    ``openssl rand -hex 32``, or at least 32 raw bytes."""
    raw = path.read_bytes()
    text = raw.strip()
    try:
        secret = binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        secret = raw
    if len(secret) < SECRET_BYTES:
        raise ValueError(
            f"{path}: the release key file must hold at least {SECRET_BYTES} bytes "
            f"(e.g. 'openssl rand -hex {SECRET_BYTES}')"
        )
    return secret


async def server_secret(store: Store, key_file: Path | None = None) -> bytes:
    """The server secret: from ``key_file`` when given, else the store's, made at the first
    start. Two instances starting together on one database agree: each inserts its own only if
    none is kept, in a transaction, then reads what is kept."""
    if key_file is not None:
        return read_key_file(key_file)
    async with store.read() as tx:
        kept = await tx.secret.get()
    if kept is None:
        async with store.write() as tx:
            await tx.secret.put_if_absent(PLAIN, secrets.token_bytes(SECRET_BYTES).hex(), now_ms())
            kept = await tx.secret.get()
        if kept is None:  # pragma: no cover - the insert above or another's is visible
            raise ServerError("the server secret could not be stored")
    return _decode(*kept)


async def keyring(deps: Deps) -> Keyring:
    """The keyring the service was started with (or one from the store's secret)."""
    if deps.keyring is not None:
        return deps.keyring
    return Keyring(await server_secret(deps.store))


async def release_key(deps: Deps, service: str) -> bytes:
    """``service``'s release key; NotFound if no such device service is registered."""
    async with deps.store.read() as tx:
        if await tx.services.get(service) is None:
            raise not_found("device service", service)
    return (await keyring(deps)).key(service)
