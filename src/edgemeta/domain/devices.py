"""Rules about a device and its profile: parent, autoEvents (EdgeX ``validateDeviceProfile``)."""

from __future__ import annotations

from dataclasses import replace

from edgemeta.domain import patterns
from edgemeta.domain.durations import DurationError, parse_duration
from edgemeta.domain.errors import ContractInvalid
from edgemeta.domain.records import AutoEvent, Device, DeviceProfile


def _source_known(source: str, profile: DeviceProfile) -> bool:
    # EdgeX compiles sourceName as a regex (Go's regexp, RE2 syntax) that must fully match a
    # resource name, or equals a command name. A sourceName that is not a valid regex can
    # still match a command by name.
    if profile.command(source) is not None:
        return True
    if not patterns.valid(source):
        return profile.resource(source) is not None
    return any(patterns.fullmatch(source, r.name) for r in profile.device_resources)


def auto_event_problem(event: AutoEvent, profile: DeviceProfile) -> str | None:
    """Why ``event`` is not valid for ``profile``, or None if it is."""
    try:
        parse_duration(event.interval)
    except DurationError as exc:
        return str(exc)
    if not _source_known(event.source_name, profile):
        return (
            f"auto event source '{event.source_name}' cannot be found in the device "
            f"profile '{profile.name}'"
        )
    return None


def validate_against_profile(device: Device, profile: DeviceProfile) -> None:
    """Raise ContractInvalid if the device's parent or autoEvents break the profile's rules."""
    if device.parent and device.parent == device.name:
        raise ContractInvalid("a device cannot be its own parent")
    for event in device.auto_events:
        problem = auto_event_problem(event, profile)
        if problem is not None:
            raise ContractInvalid(problem)


def drop_invalid_auto_events(device: Device, profile: DeviceProfile) -> Device:
    """The device without the autoEvents its (new) profile cannot serve (EdgeX 4.0.2 PATCH)."""
    kept = tuple(a for a in device.auto_events if auto_event_problem(a, profile) is None)
    if len(kept) == len(device.auto_events):
        return device
    return replace(device, auto_events=kept)
