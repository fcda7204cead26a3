"""Small helpers every use case shares: the clock, new ids, UUID checks, the not-found error, and
finding a record by id or name."""

from __future__ import annotations

import time
import uuid
from typing import Protocol, TypeVar

from edgemeta.domain.errors import ContractInvalid, NotFound
from edgemeta.domain.ids import is_uuid
from edgemeta.domain.patches import Target


def now_ms() -> int:
    """Wall-clock time in milliseconds (EdgeX ``created``/``modified``)."""
    return time.time_ns() // 1_000_000


def new_id() -> str:
    """A fresh record id (UUID v4, as EdgeX)."""
    return str(uuid.uuid4())


def check_uuid(value: str, what: str) -> str:
    """``value`` if it is a UUID; ContractInvalid otherwise."""
    if not is_uuid(value):
        raise ContractInvalid(f"{what} '{value}' is not a valid UUID")
    return value


def not_found(noun: str, name: str) -> NotFound:
    """The standard 'not found' error."""
    return NotFound(f"{noun} '{name}' not found")


class _Named(Protocol):
    @property
    def name(self) -> str: ...


R = TypeVar("R", bound=_Named)
R_co = TypeVar("R_co", bound=_Named, covariant=True)


class _ByIdOrName(Protocol[R_co]):
    async def get(self, name: str, *, for_update: bool = False) -> R_co | None: ...

    async def get_by_id(self, id_: str, *, for_update: bool = False) -> R_co | None: ...


async def find_target(
    repo: _ByIdOrName[R], target: Target, noun: str, *, for_update: bool = True
) -> R:
    """The record a patch names: by id when given (its name, if also given, must match),
    else by name; the standard 404 otherwise."""
    if target.id:
        found = await repo.get_by_id(target.id, for_update=for_update)
        if found is None:
            raise not_found(f"{noun} with id", target.id)
        target.check_name(noun, found.name)
        return found
    name = target.name or ""
    found = await repo.get(name, for_update=for_update)
    if found is None:
        raise not_found(noun, name)
    return found
