"""The records core-metadata keeps: device services, profiles, devices, provision watchers.

Records are frozen dataclasses; an update builds a new record with :func:`dataclasses.replace`.
Field names are Python's; the EdgeX names live in :mod:`edgemeta.documents` (one module per
resource, e.g. :mod:`edgemeta.documents.devices`), which turns a record into its canonical
document (the EdgeX DTO shape) and back.

Every record carries ``revision``: 1 when created, +1 on every stored change. Events carry it
so that consumers can drop duplicates and detect gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeAlias

JSON: TypeAlias = "str | int | float | bool | list[JSON] | dict[str, JSON] | None"
JSONObject: TypeAlias = "dict[str, JSON]"


class AdminState(StrEnum):
    """Whether an entity may be used (EdgeX ``adminState``)."""

    LOCKED = "LOCKED"
    UNLOCKED = "UNLOCKED"


class OperatingState(StrEnum):
    """Whether a device is reachable (EdgeX ``operatingState``)."""

    UP = "UP"
    DOWN = "DOWN"
    UNKNOWN = "UNKNOWN"


class ReadWrite(StrEnum):
    """Access mode of a resource or command."""

    R = "R"
    W = "W"
    RW = "RW"
    WR = "WR"

    @property
    def readable(self) -> bool:
        """True if the mode allows reading."""
        return "R" in self.value

    @property
    def writable(self) -> bool:
        """True if the mode allows writing."""
        return "W" in self.value


@dataclass(frozen=True, slots=True, kw_only=True)
class Retention:
    """How core-data retains the events of an autoEvent."""

    max_cap: int = 0
    min_cap: int = 0
    duration: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AutoEvent:
    """A reading the owning device service produces on a schedule."""

    interval: str
    source_name: str
    on_change: bool = False
    on_change_threshold: float = 0.0
    retention: Retention = field(default_factory=Retention)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceService:
    """A device service: the owner of devices."""

    id: str
    name: str
    base_address: str
    admin_state: AdminState
    description: str = ""
    labels: tuple[str, ...] = ()
    properties: JSONObject = field(default_factory=dict)
    created: int = 0
    modified: int = 0
    revision: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceProperties:
    """Value type, access and scaling of a device resource."""

    value_type: str
    read_write: ReadWrite
    units: str = ""
    minimum: float | None = None
    maximum: float | None = None
    default_value: str = ""
    mask: int | None = None
    shift: int | None = None
    scale: float | None = None
    offset: float | None = None
    base: float | None = None
    assertion: str = ""
    media_type: str = ""
    optional: JSONObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceResource:
    """One value a device can read or write."""

    name: str
    properties: ResourceProperties
    description: str = ""
    is_hidden: bool = False
    attributes: JSONObject = field(default_factory=dict)
    tags: JSONObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceOperation:
    """A reference from a command to one of its profile's resources."""

    device_resource: str
    default_value: str = ""
    mappings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceCommand:
    """A named group of resource operations."""

    name: str
    read_write: ReadWrite
    resource_operations: tuple[ResourceOperation, ...]
    is_hidden: bool = False
    tags: JSONObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceProfile:
    """The description of a kind of device: its resources and commands."""

    id: str
    name: str
    manufacturer: str = ""
    description: str = ""
    model: str = ""
    labels: tuple[str, ...] = ()
    device_resources: tuple[DeviceResource, ...] = ()
    device_commands: tuple[DeviceCommand, ...] = ()
    created: int = 0
    modified: int = 0
    revision: int = 1

    def resource(self, name: str) -> DeviceResource | None:
        """The resource called ``name``, if any."""
        for r in self.device_resources:
            if r.name == name:
                return r
        return None

    def command(self, name: str) -> DeviceCommand | None:
        """The command called ``name``, if any."""
        for c in self.device_commands:
            if c.name == name:
                return c
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    """A device, owned by exactly one device service."""

    id: str
    name: str
    service_name: str
    admin_state: AdminState
    operating_state: OperatingState
    protocols: dict[str, JSONObject]
    profile_name: str = ""
    parent: str = ""
    description: str = ""
    labels: tuple[str, ...] = ()
    location: JSON = None
    auto_events: tuple[AutoEvent, ...] = ()
    tags: JSONObject = field(default_factory=dict)
    properties: JSONObject = field(default_factory=dict)
    created: int = 0
    modified: int = 0
    revision: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscoveredDevice:
    """The template a provision watcher applies to the devices it matches."""

    admin_state: AdminState
    profile_name: str = ""
    auto_events: tuple[AutoEvent, ...] = ()
    properties: JSONObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvisionWatcher:
    """Matching rules by which a device service adds the devices it discovers."""

    id: str
    name: str
    service_name: str
    identifiers: dict[str, str]
    admin_state: AdminState
    discovered_device: DiscoveredDevice
    labels: tuple[str, ...] = ()
    blocking_identifiers: dict[str, list[str]] = field(default_factory=dict)
    created: int = 0
    modified: int = 0
    revision: int = 1
