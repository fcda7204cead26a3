"""What every use case is given: the ports, the settings that change behaviour.

Built once in :mod:`edgemeta.bootstrap` (tests build their own). The defaults are the
adapters for "nothing there": no validation, nobody confirming releases, no webhooks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from edgemeta.domain.errors import ServiceUnavailable
from edgemeta.domain.moves import ReleasePolicy
from edgemeta.domain.x509 import Issuer
from edgemeta.ports import (
    AllocationHook,
    DeviceValidator,
    Meter,
    Releases,
    ReleaseWatch,
    Store,
)
from edgemeta.security.proofs import Keyring
from edgemeta.tracing import Tracing


@dataclass(slots=True)
class Policy:
    """The writable settings (EdgeX's ``Writable`` section): what the use cases allow, and the
    few API limits an operator may change while the service runs.

    Deliberately mutable and shared: the service holds one instance, every use case and route
    reads it at request time (never copies a field at start), and the core-keeper API
    (``edgemeta.usecases.keeper``) changes it in place, so a change applies to the very next
    request. Fields change one at a time on the event loop, never across an ``await``.
    """

    max_devices: int = 0
    max_resources: int = 0
    strict_profile_changes: bool = False
    strict_profile_deletes: bool = False
    uom_validation: bool = False
    units: frozenset[str] = field(default_factory=frozenset)
    max_result_count: int = 1024
    log_level: str = "INFO"


@dataclass(frozen=True, slots=True)
class MoveSettings:
    """How moves wait on device services (``EDGEMETA_MOVE_*`` settings)."""

    ack_timeout: float = 5.0  # for an old owner that confirms releases
    release_deadline: float = 0.5  # for an old owner that cannot (an EdgeX device service)
    release_policy: ReleasePolicy = ReleasePolicy.ROLLBACK  # no confirmation in time
    implicit: bool = False  # an add by another service becomes a move (seed option 1)
    stale_after: float = 30.0  # seconds without progress before any instance resumes a move


@dataclass(frozen=True, slots=True)
class X509Settings:
    """X.509 registration (``EDGEMETA_X509_*`` and ``EDGEMETA_ISSUING_CA_*`` settings)."""

    max_chain_depth: int = 4  # intermediates between a device certificate and its enrolled CA
    challenge_ttl: int = 60  # seconds a server nonce may be spent
    issuer: Issuer | None = None  # signs the CSRs of enrolments that issue certificates


class NoReleases:
    """Release confirmations when there is no bus: nobody listens, nobody confirms."""

    async def watch(self, service: str, move_id: str, device: str = "") -> ReleaseWatch:
        """A watch that never confirms."""
        return _NeverConfirmed()

    def nobody_listens(self, service: str, profile_name: str, *, by_delete: bool = False) -> bool:
        """Nobody."""
        return True


class _NeverConfirmed:
    async def wait(self) -> None:
        await asyncio.Event().wait()

    async def close(self) -> None:
        return None


class NoWebhooks:
    """Allocation webhooks when none can be called: every call fails (fallback applies)."""

    async def decide(
        self, url: str, time_limit: float, request: dict[str, object], *, secret: str = ""
    ) -> str:
        """Fail."""
        raise ServiceUnavailable("allocation webhooks are not available")


class NoMeter:
    """Metrics off: nothing is counted."""

    def move_started(self) -> None:
        """Nothing."""

    def move_ended(self, state: str, reason: str) -> None:
        """Nothing."""

    def move_step(self, step: str, seconds: float) -> None:
        """Nothing."""

    def move_ack_timeout(self) -> None:
        """Nothing."""

    def registration(self, outcome: str, reason: str) -> None:
        """Nothing."""

    def ingested(self, stored: int, duplicates: int, refused: int) -> None:
        """Nothing."""


class AcceptAll:
    """A validator for when device validation is off: every device is accepted."""

    def asks(self, service_name: str) -> bool:
        """Never: it accepts at once."""
        return False

    async def validate(self, service_name: str, device: object, correlation_id: str) -> None:
        """Accept."""


@dataclass(frozen=True, slots=True)
class Deps:
    """The ports and policy the use cases run with (built in ``bootstrap``)."""

    store: Store
    validator: DeviceValidator = field(default_factory=AcceptAll)
    policy: Policy = field(default_factory=Policy)
    releases: Releases = field(default_factory=NoReleases)
    move_settings: MoveSettings = field(default_factory=MoveSettings)
    allocation_hook: AllocationHook = field(default_factory=NoWebhooks)
    # Device services' release keys (None: derived from the store's secret when asked).
    keyring: Keyring | None = None
    x509: X509Settings = field(default_factory=X509Settings)
    # Spans of moves and their steps (edgemeta.tracing; off: no-ops).
    tracing: Tracing = field(default_factory=Tracing.off)
    meter: Meter = field(default_factory=NoMeter)
