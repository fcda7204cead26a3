"""Moving a device from one device service to another: the records and the rules.

A move is a durable operation. Its states:

    requested ──accept──▶ assigning ──commit A──▶ releasing ──commit B──▶ assigned
        │                     │                       │
        ▼                     ▼                       ▼
      failed               failed              rolledBack (release not confirmed, policy)

- **requested**: recorded; at most one unfinished move per device (a database constraint).
- **assigning**: the new service is asked to accept the device (EdgeX's validation request).
  A refusal or no answer fails the move; the device has not changed.
- **commit A** (one transaction): the store names the new owner; the *old* owner is told
  (an EdgeX ``device/update`` system event, tagged with the move id) and the move is
  **releasing**. The old owner stops serving the device: an edgemeta device service says so
  (a release acknowledgement); an EdgeX device service, which cannot, gets a deadline.
- **commit B** (one transaction): the *new* owner is told (its ``device/update`` event) and the
  move is **assigned**. If a release that should be acknowledged is not, the policy decides:
  ``force`` goes on to commit B; ``rollback`` gives the device back to the old owner (and tells
  it) and the move is **rolledBack**.

At every instant the store names exactly one owner (``Device.service_name``); the old owner is
told before the new one, so no two services serve the device at once when the old one
acknowledges.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from edgemeta.domain.errors import Conflict, ContractInvalid, EdgeMetaError
from edgemeta.domain.records import AdminState, Device, DeviceService


class MoveState(StrEnum):
    """Where a move is."""

    REQUESTED = "requested"
    ASSIGNING = "assigning"
    RELEASING = "releasing"
    ASSIGNED = "assigned"
    FAILED = "failed"
    ROLLED_BACK = "rolledBack"

    @property
    def active(self) -> bool:
        """True until the move has ended (one active move per device)."""
        return self in (MoveState.REQUESTED, MoveState.ASSIGNING, MoveState.RELEASING)


ACTIVE_STATES = tuple(s.value for s in MoveState if s.active)


class StatePolicy(StrEnum):
    """What state the device takes to its new service."""

    MIGRATE = "migrate"  # its current state (the default)
    RESET = "reset"  # its initial configuration, as first provisioned


class ReleasePolicy(StrEnum):
    """What happens when an old owner that acknowledges releases does not, in time."""

    ROLLBACK = "rollback"
    FORCE = "force"


class MoveReason(StrEnum):
    """Why a move was made."""

    OPERATOR = "operator"  # POST /device/reassign
    PATCH = "patch"  # EdgeX PATCH /device with a new serviceName
    FORCED_ADD = "forcedAdd"  # EdgeX POST /device?force=true by another service
    IMPLICIT_ADD = "implicitAdd"  # an add by another service, in implicit mode
    POLICY = "policy"  # a registration or reprovisioning policy


@dataclass(frozen=True, slots=True)
class MoveStep:
    """One step of a move, for its history: what happened and when (ms)."""

    step: str
    at: int
    outcome: str
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Move:
    """A move of one device between two services."""

    id: str
    device_name: str
    from_service: str
    to_service: str
    policy: StatePolicy
    reason: MoveReason
    state: MoveState = MoveState.REQUESTED
    requested_by: str = ""
    correlation_id: str = ""
    note: str = ""  # the requester's own words on why
    device_revision: int = 0  # the revision the move was planned from
    origin: Device | None = None  # the device before the move (what a rollback restores)
    target: Device | None = None  # the device as the new service gets it
    error: str = ""
    steps: tuple[MoveStep, ...] = ()
    created: int = 0
    modified: int = 0
    revision: int = 1

    @property
    def name(self) -> str:
        """Moves are keyed by id."""
        return self.id

    def step(self, step: str, at: int, outcome: str, detail: str = "") -> Move:
        """The move with one more history step."""
        return replace(self, steps=(*self.steps, MoveStep(step, at, outcome, detail)), modified=at)

    def to(self, state: MoveState, at: int, *, error: str = "") -> Move:
        """The move in a new state."""
        return replace(self, state=state, modified=at, error=error or self.error)


RELEASE_BY_DELETE = "delete"  # properties.edgemeta.releaseBy of a C-SDK device service


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a device service says it can do in a move (its ``properties.edgemeta``)."""

    acknowledges_release: bool = False
    capacity: int = 0  # 0: no limit
    # How the service must be told to let go of a device, and to take one: EdgeX's Go SDK
    # obeys a ``device/update`` naming another service; the C SDK ignores updates (it keeps
    # serving whatever serviceName says) but obeys ``device/delete`` and ``device/add``.
    release_by_delete: bool = False

    @staticmethod
    def of(service: DeviceService) -> Capabilities:
        """Read the capabilities an edgemeta device service registers with."""
        raw = service.properties.get("edgemeta")
        if not isinstance(raw, dict):
            return Capabilities()
        ack = raw.get("acksRelease")
        cap = raw.get("capacity")
        return Capabilities(
            acknowledges_release=ack is True or ack == "true",
            capacity=cap if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0 else 0,
            release_by_delete=raw.get("releaseBy") == RELEASE_BY_DELETE,
        )


class ProblemKind(StrEnum):
    """Why a move cannot go ahead (a pre-flight finding)."""

    STALE_REVISION = "staleRevision"  # the caller expected another revision of the device
    UNKNOWN_SERVICE = "unknownService"
    LOCKED_SERVICE = "lockedService"
    AT_CAPACITY = "atCapacity"
    UNKNOWN_PROFILE = "unknownProfile"
    ALREADY_OWNED = "alreadyOwned"  # the target already owns the device
    ALREADY_MOVING = "alreadyMoving"  # another move of the device is under way
    REFUSED = "refused"  # the target device service does not accept the device

    @property
    def conflict(self) -> bool:
        """Whether it is a conflict with the device's current state (409), not a bad request."""
        return self in _CONFLICTS


_CONFLICTS = frozenset(
    {ProblemKind.STALE_REVISION, ProblemKind.ALREADY_OWNED, ProblemKind.ALREADY_MOVING}
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One pre-flight finding: its kind (what the API's status follows) and its message."""

    kind: ProblemKind
    message: str


@dataclass(frozen=True, slots=True)
class Preflight:
    """The checks a move must pass before anything changes (also what a dry run reports)."""

    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems

    @property
    def messages(self) -> list[str]:
        """The problems' messages, in the order found."""
        return [p.message for p in self.problems]

    def with_problem(self, kind: ProblemKind, message: str) -> Preflight:
        """This result with one more problem."""
        return Preflight((*self.problems, Problem(kind, message)))

    def error(self) -> EdgeMetaError | None:
        """The error the API reports (409 when the first problem is a conflict), or None."""
        if not self.problems:
            return None
        kind = Conflict if self.problems[0].kind.conflict else ContractInvalid
        return kind("; ".join(self.messages))


def preflight(
    device: Device,
    target: DeviceService | None,
    target_name: str,
    *,
    target_device_count: int,
    target_profile: str,
    profile_exists: bool,
    expected_revision: int | None,
) -> Preflight:
    """Every check that can be made from the store: target known and unlocked, the device's
    profile present, the target's capacity, and the revision the caller expects."""
    found: list[Problem] = []

    def problem(kind: ProblemKind, message: str) -> None:
        found.append(Problem(kind, message))

    if expected_revision is not None and expected_revision != device.revision:
        problem(
            ProblemKind.STALE_REVISION,
            f"device '{device.name}' is at revision {device.revision}, not {expected_revision}",
        )
    if target is None:
        problem(ProblemKind.UNKNOWN_SERVICE, f"device service '{target_name}' does not exist")
    else:
        if target.admin_state == AdminState.LOCKED:
            problem(ProblemKind.LOCKED_SERVICE, f"device service '{target_name}' is locked")
        cap = Capabilities.of(target).capacity
        if cap and target_device_count >= cap:
            problem(
                ProblemKind.AT_CAPACITY,
                f"device service '{target_name}' is at its capacity of {cap} devices",
            )
    if target_profile and not profile_exists:
        problem(ProblemKind.UNKNOWN_PROFILE, f"device profile '{target_profile}' does not exist")
    if target is not None and device.service_name == target.name:
        problem(
            ProblemKind.ALREADY_OWNED, f"device '{device.name}' is already owned by '{target_name}'"
        )
    return Preflight(tuple(found))


def raise_for(check: Preflight) -> None:
    """Raise the error a failed pre-flight reports (nothing when it passed)."""
    error = check.error()
    if error is not None:
        raise error


def target_device(
    device: Device, to_service: str, policy: StatePolicy, initial: Device | None
) -> Device:
    """The device as its new service gets it: its current state, or its initial one."""
    if policy == StatePolicy.RESET:
        if initial is None:
            raise ContractInvalid(
                f"device '{device.name}' has no initial configuration to reset to"
            )
        base = replace(
            initial,
            id=device.id,
            created=device.created,
            modified=device.modified,
            revision=device.revision,
        )
        return replace(base, service_name=to_service)
    return replace(device, service_name=to_service)
