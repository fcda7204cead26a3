"""What every use case is given: the ports, the settings that change behaviour, a clock."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from edgemeta.domain.errors import ContractInvalid, NotFound
from edgemeta.ports import DeviceValidator, Store


def now_ms() -> int:
    """Wall-clock time in milliseconds (EdgeX ``created``/``modified``)."""
    return time.time_ns() // 1_000_000


def new_id() -> str:
    """A fresh record id (UUID v4, as EdgeX)."""
    return str(uuid.uuid4())


def check_uuid(value: str, what: str) -> str:
    """``value`` if it is a UUID; ContractInvalid otherwise."""
    try:
        uuid.UUID(value)
    except ValueError:
        raise ContractInvalid(f"{what} '{value}' is not a valid UUID") from None
    return value


@dataclass(frozen=True, slots=True)
class Policy:
    """Settings that change what the use cases allow (EdgeX ``Writable`` section)."""

    max_devices: int = 0
    max_resources: int = 0
    strict_profile_changes: bool = False
    strict_profile_deletes: bool = False
    uom_validation: bool = False
    units: frozenset[str] = field(default_factory=frozenset)


class AcceptAll:
    """A validator for when device validation is off: every device is accepted."""

    async def validate(self, service_name: str, device: object, correlation_id: str) -> None:
        """Accept."""


@dataclass(frozen=True, slots=True)
class Deps:
    """The ports and policy the use cases run with (built in ``bootstrap``)."""

    store: Store
    validator: DeviceValidator = field(default_factory=AcceptAll)
    policy: Policy = field(default_factory=Policy)


def not_found(noun: str, name: str) -> NotFound:
    """The standard 'not found' error."""
    return NotFound(f"{noun} '{name}' not found")
