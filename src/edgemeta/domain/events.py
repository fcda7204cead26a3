"""System events: which changes core-metadata announces, and to whom.

Domain functions return :class:`Change` values; use cases write them to the outbox in the same
transaction as the records, and the relay publishes them (see ``edgemeta.bus``). The owner
rules are EdgeX's (``internal/core/metadata/application/notify.go``):

- a device or provision watcher belongs to its ``serviceName``; when that changes, the update
  goes to the old owner **and** the new one;
- a device profile is announced with owner ``core-metadata``; an update is also sent once to
  every device service that owns a device of that profile;
- a device service owns itself.

A change that changes nothing produces no event (the use cases never call these then).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from edgemeta.domain.records import Device, DeviceProfile, DeviceService, ProvisionWatcher

SOURCE = "core-metadata"

Record = Device | DeviceProfile | DeviceService | ProvisionWatcher


class EventType(StrEnum):
    """The ``type`` of a SystemEvent."""

    DEVICE = "device"
    DEVICE_PROFILE = "deviceprofile"
    DEVICE_SERVICE = "deviceservice"
    PROVISION_WATCHER = "provisionwatcher"


class Action(StrEnum):
    """The ``action`` of a SystemEvent."""

    ADD = "add"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Change:
    """One system event to publish: a record, what happened to it, and who is told."""

    type: EventType
    action: Action
    owner: str
    record: Record
    profile_name: str = ""
    tags: tuple[tuple[str, str], ...] = ()  # extra SystemEvent tags, e.g. ("moveId", "...")

    @property
    def key(self) -> str:
        """The name of the record the event is about (the unit of ordering)."""
        return self.record.name

    @property
    def revision(self) -> int:
        """The record revision this event announces."""
        return self.record.revision


def device_added(d: Device) -> list[Change]:
    """Events for a new device."""
    return [Change(EventType.DEVICE, Action.ADD, d.service_name, d, d.profile_name)]


def device_updated(before: Device, after: Device) -> list[Change]:
    """Events for a changed device: to its owner, and to the old owner if that changed."""
    out = [Change(EventType.DEVICE, Action.UPDATE, after.service_name, after, after.profile_name)]
    if before.service_name != after.service_name:
        out.insert(
            0,
            Change(EventType.DEVICE, Action.UPDATE, before.service_name, after, after.profile_name),
        )
    return out


def device_deleted(d: Device) -> list[Change]:
    """Events for a deleted device (details: the device as it was)."""
    return [Change(EventType.DEVICE, Action.DELETE, d.service_name, d, d.profile_name)]


def profile_added(p: DeviceProfile) -> list[Change]:
    """Events for a new profile."""
    return [Change(EventType.DEVICE_PROFILE, Action.ADD, SOURCE, p, p.name)]


def profile_updated(p: DeviceProfile, owning_services: list[str]) -> list[Change]:
    """Events for a changed profile: the general one, then one per owning device service."""
    out = [Change(EventType.DEVICE_PROFILE, Action.UPDATE, SOURCE, p, p.name)]
    out.extend(
        Change(EventType.DEVICE_PROFILE, Action.UPDATE, s, p, p.name)
        for s in sorted(set(owning_services))
    )
    return out


def profile_deleted(p: DeviceProfile) -> list[Change]:
    """Events for a deleted profile."""
    return [Change(EventType.DEVICE_PROFILE, Action.DELETE, SOURCE, p, p.name)]


def service_changed(action: Action, s: DeviceService) -> list[Change]:
    """Events for an added, updated or deleted device service (it owns itself)."""
    return [Change(EventType.DEVICE_SERVICE, action, s.name, s)]


def watcher_added(w: ProvisionWatcher) -> list[Change]:
    """Events for a new provision watcher."""
    return [
        Change(
            EventType.PROVISION_WATCHER,
            Action.ADD,
            w.service_name,
            w,
            w.discovered_device.profile_name,
        )
    ]


def watcher_updated(before: ProvisionWatcher, after: ProvisionWatcher) -> list[Change]:
    """Events for a changed watcher: to its owner, and to the old owner if that changed."""
    profile = after.discovered_device.profile_name
    out = [Change(EventType.PROVISION_WATCHER, Action.UPDATE, after.service_name, after, profile)]
    if before.service_name != after.service_name:
        out.insert(
            0,
            Change(EventType.PROVISION_WATCHER, Action.UPDATE, before.service_name, after, profile),
        )
    return out


def watcher_deleted(w: ProvisionWatcher) -> list[Change]:
    """Events for a deleted watcher."""
    return [
        Change(
            EventType.PROVISION_WATCHER,
            Action.DELETE,
            w.service_name,
            w,
            w.discovered_device.profile_name,
        )
    ]
