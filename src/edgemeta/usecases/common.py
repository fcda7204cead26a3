"""Small helpers every use case shares: the clock, new ids, UUID checks, the not-found error, and
finding a record by id or name."""

from __future__ import annotations

import time
import uuid

from edgemeta.domain.errors import ContractInvalid, NotFound
from edgemeta.domain.ids import is_uuid


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
