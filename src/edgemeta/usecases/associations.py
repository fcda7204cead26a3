"""What holds a profile or a device: the questions the change rules ask of the store.

Answers come from the association index that core-data keeps with its events and readings
(never from the readings themselves) and from the devices' autoEvents.
"""

from __future__ import annotations

from edgemeta.domain.errors import Conflict
from edgemeta.domain.profile_rules import DataUse, Diff, Usage
from edgemeta.domain.records import DeviceProfile
from edgemeta.ports import DataAssociation, Tx


def _summary(rows: list[DataAssociation]) -> tuple[int, int, str]:
    events = sum(r.count for r in rows if r.kind == "source")
    readings = sum(r.count for r in rows if r.kind == "resource")
    return events, readings, rows[0].device_name


async def usage(tx: Tx, profile: DeviceProfile, change: Diff) -> Usage:
    """The data and the autoEvents that hold the names ``change`` touches."""
    if not change.situational:
        return Usage()
    rows = await tx.data.associations(profile=profile.name)
    resources: dict[str, DataUse] = {}
    commands: dict[str, DataUse] = {}
    for r in rows:
        # A resource is held by its readings and by events read from it alone; a command
        # by the events read through it.
        if r.kind == "resource" or profile.resource(r.name) is not None:
            target = resources
        else:
            target = commands
        held = target.get(r.name) or DataUse(0, 0, r.device_name)
        events, readings = (r.count, 0) if r.kind == "source" else (0, r.count)
        target[r.name] = DataUse(held.events + events, held.readings + readings, held.device)
    removed = (*change.removed_resources, *change.removed_commands)
    return Usage(resources, commands, await tx.data.auto_event_users(profile.name, removed))


async def ensure_profile_without_data(tx: Tx, name: str, doing: str) -> None:
    """Conflict when events or readings are associated with profile ``name``."""
    rows = await tx.data.associations(profile=name)
    if rows:
        events, readings, device = _summary(rows)
        raise Conflict(
            f"device profile '{name}' {doing}: {events} events and {readings} readings are "
            f"associated with it (e.g. from device '{device}'); delete them in core-data first"
        )


async def ensure_device_without_data(tx: Tx, name: str, doing: str) -> None:
    """Conflict when device ``name`` has events or readings."""
    rows = await tx.data.associations(device=name)
    if rows:
        events, readings, _ = _summary(rows)
        raise Conflict(
            f"device '{name}' {doing}: it has {events} events and {readings} readings in "
            f"core-data (DELETE /api/v3/event/device/name/{name} on core-data removes them)"
        )
