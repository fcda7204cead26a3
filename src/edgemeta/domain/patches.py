"""Partial updates (EdgeX PATCH semantics) and how they apply to records.

A field left ``None`` is unchanged (EdgeX treats an absent key and ``null`` alike). Arrays and
maps given replace the stored value wholesale; ``[]`` and ``{}`` clear it. The record to patch
is found by ``id`` when that is non-empty, else by ``name``; when both are given the name must
be the stored one, because names never change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypeVar

from edgemeta.domain.errors import ContractInvalid
from edgemeta.domain.records import (
    JSON,
    AdminState,
    AutoEvent,
    Device,
    DeviceProfile,
    DeviceService,
    DiscoveredDevice,
    JSONObject,
    OperatingState,
    ProvisionWatcher,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Which record a patch is for: by id (when non-empty) or by name."""

    id: str | None = None
    name: str | None = None

    def check_name(self, noun: str, stored_name: str) -> None:
        """Refuse a patch whose name differs from the record found by its id."""
        if self.name is not None and self.name != stored_name:
            raise ContractInvalid(
                f"{noun} name '{self.name}' does not match the existing '{stored_name}'"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceServicePatch:
    """Changes to a device service."""

    target: Target
    description: str | None = None
    base_address: str | None = None
    labels: tuple[str, ...] | None = None
    admin_state: AdminState | None = None
    properties: JSONObject | None = None


def apply_service_patch(s: DeviceService, p: DeviceServicePatch) -> DeviceService:
    """The service with the patch applied (timestamps and revision untouched)."""
    return replace(
        s,
        description=s.description if p.description is None else p.description,
        base_address=s.base_address if p.base_address is None else p.base_address,
        labels=s.labels if p.labels is None else p.labels,
        admin_state=s.admin_state if p.admin_state is None else p.admin_state,
        properties=s.properties if p.properties is None else p.properties,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DevicePatch:
    """Changes to a device. ``profile_name=""`` detaches it from its profile."""

    target: Target
    description: str | None = None
    admin_state: AdminState | None = None
    operating_state: OperatingState | None = None
    labels: tuple[str, ...] | None = None
    location: JSON = None
    location_set: bool = False
    service_name: str | None = None
    profile_name: str | None = None
    auto_events: tuple[AutoEvent, ...] | None = None
    protocols: dict[str, JSONObject] | None = None
    parent: str | None = None
    tags: JSONObject | None = None
    properties: JSONObject | None = None


def apply_device_patch(d: Device, p: DevicePatch) -> Device:
    """The device with the patch applied (timestamps and revision untouched)."""
    return replace(
        d,
        description=d.description if p.description is None else p.description,
        admin_state=d.admin_state if p.admin_state is None else p.admin_state,
        operating_state=d.operating_state if p.operating_state is None else p.operating_state,
        labels=d.labels if p.labels is None else p.labels,
        location=p.location if p.location_set else d.location,
        service_name=d.service_name if p.service_name is None else p.service_name,
        profile_name=d.profile_name if p.profile_name is None else p.profile_name,
        auto_events=d.auto_events if p.auto_events is None else p.auto_events,
        protocols=d.protocols if p.protocols is None else p.protocols,
        parent=d.parent if p.parent is None else p.parent,
        tags=d.tags if p.tags is None else p.tags,
        properties=d.properties if p.properties is None else p.properties,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscoveredDevicePatch:
    """Changes to a watcher's device template."""

    profile_name: str | None = None
    admin_state: AdminState | None = None
    auto_events: tuple[AutoEvent, ...] | None = None
    properties: JSONObject | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvisionWatcherPatch:
    """Changes to a provision watcher."""

    target: Target
    service_name: str | None = None
    labels: tuple[str, ...] | None = None
    identifiers: dict[str, str] | None = None
    blocking_identifiers: dict[str, list[str]] | None = None
    admin_state: AdminState | None = None
    discovered_device: DiscoveredDevicePatch | None = None


def apply_watcher_patch(w: ProvisionWatcher, p: ProvisionWatcherPatch) -> ProvisionWatcher:
    """The watcher with the patch applied (timestamps and revision untouched)."""
    dd: DiscoveredDevice = w.discovered_device
    if p.discovered_device is not None:
        q = p.discovered_device
        dd = replace(
            dd,
            profile_name=dd.profile_name if q.profile_name is None else q.profile_name,
            admin_state=dd.admin_state if q.admin_state is None else q.admin_state,
            auto_events=dd.auto_events if q.auto_events is None else q.auto_events,
            properties=dd.properties if q.properties is None else q.properties,
        )
    return replace(
        w,
        service_name=w.service_name if p.service_name is None else p.service_name,
        labels=w.labels if p.labels is None else p.labels,
        identifiers=w.identifiers if p.identifiers is None else p.identifiers,
        blocking_identifiers=(
            w.blocking_identifiers if p.blocking_identifiers is None else p.blocking_identifiers
        ),
        admin_state=w.admin_state if p.admin_state is None else p.admin_state,
        discovered_device=dd,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileBasicInfoPatch:
    """Changes to a profile's general properties (never its name)."""

    target: Target
    manufacturer: str | None = None
    description: str | None = None
    model: str | None = None
    labels: tuple[str, ...] | None = None


def apply_basic_info_patch(p: DeviceProfile, q: ProfileBasicInfoPatch) -> DeviceProfile:
    """The profile with new general properties."""
    return replace(
        p,
        manufacturer=p.manufacturer if q.manufacturer is None else q.manufacturer,
        description=p.description if q.description is None else q.description,
        model=p.model if q.model is None else q.model,
        labels=p.labels if q.labels is None else q.labels,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourcePatch:
    """Changes to a device resource: EdgeX lets only description and isHidden change here."""

    name: str
    description: str | None = None
    is_hidden: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandPatch:
    """Changes to a device command: EdgeX lets only isHidden change here."""

    name: str
    is_hidden: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TagsUpdate:
    """Tags to deep-merge into a named resource or command."""

    name: str
    tags: JSONObject


def merge_tags(old: JSONObject, new: JSONObject) -> JSONObject:
    """Deep-merge ``new`` into ``old`` map by map; other values are overwritten."""
    out: JSONObject = dict(old)
    for k, v in new.items():
        cur = out.get(k)
        if isinstance(cur, dict) and isinstance(v, dict):
            out[k] = merge_tags(cur, v)
        else:
            out[k] = v
    return out


Rec = TypeVar("Rec", DeviceService, DeviceProfile, Device, ProvisionWatcher)


def same_content(before: Rec, after: Rec) -> bool:
    """Whether two records differ only in timestamps and revision (no change → no event)."""
    return replace(after, modified=before.modified, revision=before.revision) == before
