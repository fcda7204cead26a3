"""Move pre-flight: each check found with its kind, and the status follows the kind."""

from __future__ import annotations

from edgemeta.domain.errors import Conflict, ContractInvalid
from edgemeta.domain.moves import Preflight, ProblemKind, preflight
from edgemeta.domain.records import AdminState, Device, DeviceService, OperatingState


def _device(service: str = "old", revision: int = 3) -> Device:
    return Device(
        id="d",
        name="dev",
        service_name=service,
        admin_state=AdminState.UNLOCKED,
        operating_state=OperatingState.UP,
        protocols={},
        profile_name="p",
        revision=revision,
    )


def _service(name: str = "new", *, locked: bool = False, capacity: int = 0) -> DeviceService:
    return DeviceService(
        id="s",
        name=name,
        base_address="http://x",
        admin_state=AdminState.LOCKED if locked else AdminState.UNLOCKED,
        properties={"edgemeta": {"capacity": capacity}} if capacity else {},
    )


def _kinds(check: Preflight) -> list[ProblemKind]:
    return [p.kind for p in check.problems]


def test_a_clean_move_passes() -> None:
    check = preflight(
        _device(),
        _service(),
        "new",
        target_device_count=0,
        target_profile="p",
        profile_exists=True,
        expected_revision=3,
    )
    assert check.ok and check.error() is None and check.messages == []


def test_every_store_check_is_found_with_its_kind() -> None:
    check = preflight(
        _device(service="new"),
        _service(locked=True, capacity=2),
        "new",
        target_device_count=2,
        target_profile="p",
        profile_exists=False,
        expected_revision=2,
    )
    assert _kinds(check) == [
        ProblemKind.STALE_REVISION,
        ProblemKind.LOCKED_SERVICE,
        ProblemKind.AT_CAPACITY,
        ProblemKind.UNKNOWN_PROFILE,
        ProblemKind.ALREADY_OWNED,
    ]
    error = check.error()
    assert isinstance(error, Conflict)  # the first is a conflict with the device's state
    assert error.message == "; ".join(check.messages)


def test_an_unknown_target_is_a_bad_request() -> None:
    check = preflight(
        _device(),
        None,
        "nowhere",
        target_device_count=0,
        target_profile="",
        profile_exists=False,
        expected_revision=None,
    )
    assert _kinds(check) == [ProblemKind.UNKNOWN_SERVICE]
    assert isinstance(check.error(), ContractInvalid)


def test_the_status_follows_the_kind_not_the_words() -> None:
    # A device service's refusal that happens to say "revision" or "already" stays a 400;
    # another move under way is a 409 whatever its message says.
    refused = Preflight().with_problem(ProblemKind.REFUSED, "already at revision 2, says the DS")
    assert isinstance(refused.error(), ContractInvalid)
    moving = Preflight().with_problem(ProblemKind.ALREADY_MOVING, "busy")
    assert isinstance(moving.error(), Conflict)
