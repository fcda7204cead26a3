"""API key administration: create (the key is returned once), list, revoke."""

from __future__ import annotations

from collections.abc import Sequence

from edgemeta.domain.errors import ContractInvalid, NotFound
from edgemeta.ports import Store
from edgemeta.security.apikeys import ApiKey, hash_key, new_key
from edgemeta.security.roles import ROLES
from edgemeta.usecases.common import now_ms

MAX_LIFETIME_S = 10 * 365 * 86400


async def create_key(
    store: Store,
    roles: Sequence[str],
    *,
    lifetime_s: float,
    service: str = "",
    name: str = "",
) -> tuple[str, ApiKey]:
    """A new key with these roles, valid for ``lifetime_s``: ``(the key, what is stored)``."""
    unknown = sorted(set(roles) - set(ROLES))
    if not roles or unknown:
        raise ContractInvalid(
            f"roles must be some of {', '.join(ROLES)}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )
    if not 0 < lifetime_s <= MAX_LIFETIME_S:
        raise ContractInvalid("an API key's lifetime must be more than 0 and at most 10 years")
    if service and "admin" in roles:
        raise ContractInvalid("a key bound to a service cannot also be an admin key")
    if "service" in roles and not service:
        raise ContractInvalid("the service role needs the service the key is bound to (--service)")
    key, key_id = new_key()
    created = now_ms()
    stored = ApiKey(
        id=key_id,
        key_hash=hash_key(key),
        name=name,
        roles=tuple(sorted(set(roles))),
        service=service,
        created=created,
        expires=created + int(lifetime_s * 1000),
    )
    async with store.write() as tx:
        await tx.apikeys.add(stored)
    return key, stored


async def list_keys(store: Store) -> list[ApiKey]:
    """Every key (without the keys themselves), oldest first."""
    async with store.read() as tx:
        return await tx.apikeys.all()


async def revoke_key(store: Store, key_id: str) -> None:
    """Revoke a key; NotFound if there is no unrevoked key with this id."""
    async with store.write() as tx:
        if not await tx.apikeys.revoke(key_id, now_ms()):
            raise NotFound(f"no unrevoked API key with id {key_id}")
