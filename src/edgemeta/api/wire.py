"""Request DTOs: EdgeX's JSON shapes, validated the way EdgeX's Go server decodes them.

- Keys match **case-insensitively** (Go's ``encoding/json``): ``"Device"``, ``"baseaddress"``
  and ``"basicinfo"`` all land on their fields; an exact match wins over a folded one.
- Unknown keys are ignored; ``null`` means "absent" for every optional field.
- Types are strict, as in Go: a string is not a number, ``1.0`` is not an integer, ``"true"``
  is not a boolean.
- Beyond EdgeX, lengths are bounded (names 256 characters, free text 16 KiB, 256 labels) and
  names may not contain control characters, so nothing unbounded or unprintable reaches a
  topic, a URL or the store. These limits are listed in ``docs/compatibility.md``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel

from edgemeta.domain import valuetypes
from edgemeta.domain.durations import DurationError, parse_duration
from edgemeta.domain.ids import is_uuid

NAME_MAX = 256
TEXT_MAX = 16 * 1024
LABELS_MAX = 256
# C0 and C1 control characters: a broker refuses them in topics, a terminal misprints them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _name(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; nothing legitimate needs it.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _ref_name(value: str) -> str:
    # A reference that may be empty ("no profile", "no parent") but is otherwise a name.
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _request_id(value: str | None) -> str:
    if not value:
        return ""
    if not is_uuid(value):
        raise ValueError("must be a UUID or empty")
    return value


def _uuid_or_empty(value: str | None) -> str | None:
    if value and not is_uuid(value):
        raise ValueError("must be a UUID")
    return value


def _base_address(value: str) -> str:
    # go-playground's `uri` check is url.ParseRequestURI: an absolute URI or an absolute path.
    if not value or " " in value or _CONTROL.search(value):
        raise ValueError("must be a URI, e.g. http://device-virtual:59900")
    parts = urlsplit(value)
    if not parts.scheme and not value.startswith("/"):
        raise ValueError("must be a URI, e.g. http://device-virtual:59900")
    return value


def _value_type(value: str) -> str:
    canonical = valuetypes.normalize(value)
    if canonical is None:
        raise ValueError(f"must be one of {', '.join(valuetypes.ALL)}")
    return canonical


def _interval(value: str) -> str:
    try:
        ns = parse_duration(value)
    except DurationError:
        raise ValueError("must be a duration such as 500ms, 15s or 1h") from None
    if ns < 1_000_000:
        raise ValueError("must be at least 1ms")
    return value


def _retention_duration(value: str) -> str:
    if value:
        try:
            ns = parse_duration(value)
        except DurationError:
            raise ValueError("must be a duration such as 24h") from None
        if ns < 0:
            raise ValueError("must not be negative")
    return value


Name = Annotated[str, StringConstraints(max_length=NAME_MAX), AfterValidator(_name)]
RefName = Annotated[str, StringConstraints(max_length=NAME_MAX), AfterValidator(_ref_name)]
Text = Annotated[str, StringConstraints(max_length=TEXT_MAX), AfterValidator(_no_nul)]
Label = Annotated[str, StringConstraints(max_length=NAME_MAX), AfterValidator(_name)]
Labels = Annotated[list[Label], Field(max_length=LABELS_MAX)]
Uuid = Annotated[str, AfterValidator(_uuid_or_empty)]
ApiVersion = Annotated[str, StringConstraints(min_length=1, max_length=16)]
RequestId = Annotated[str | None, AfterValidator(_request_id)]
AdminStateWire = Literal["LOCKED", "UNLOCKED"]
OperatingStateWire = Literal["UP", "DOWN", "UNKNOWN"]
ReadWriteWire = Literal["R", "W", "RW", "WR"]
Object = dict[str, Any]
_KEY_TABLES: dict[type, tuple[dict[str, str], frozenset[str]]] = {}


class Wire(BaseModel):
    """Base of every request DTO: strict types, camelCase keys matched case-insensitively."""

    model_config = ConfigDict(
        strict=True,
        extra="ignore",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
    )

    @classmethod
    def _key_table(cls) -> tuple[dict[str, str], frozenset[str]]:
        found = _KEY_TABLES.get(cls)
        if found is None:
            table = {(f.alias or n).lower(): f.alias or n for n, f in cls.model_fields.items()}
            found = _KEY_TABLES[cls] = (table, frozenset(table.values()))
        return found

    @model_validator(mode="before")
    @classmethod
    def _fold_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        table, exact = cls._key_table()
        if exact.issuperset(data):
            return data  # the common case: every key already spelled as declared
        out: dict[str, Any] = {}
        folded: list[tuple[str, Any]] = []
        for key, value in data.items():
            if not isinstance(key, str):
                continue
            alias = table.get(key.lower())
            if alias is None:
                continue
            if key == alias:
                out[alias] = value
            else:
                folded.append((alias, value))
        for alias, value in folded:
            out.setdefault(alias, value)  # an exact key beats a case-folded one
        return out


class Envelope(Wire):
    """EdgeX BaseRequest: ``apiVersion`` required, ``requestId`` empty or a UUID."""

    api_version: ApiVersion
    request_id: RequestId = ""


# -- shared pieces --------------------------------------------------------------------------


class RetentionDTO(Wire):
    """AutoEvent retention."""

    max_cap: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    min_cap: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    duration: (
        Annotated[str, StringConstraints(max_length=64), AfterValidator(_retention_duration)] | None
    ) = None


class AutoEventDTO(Wire):
    """AutoEvent."""

    interval: Annotated[str, StringConstraints(max_length=64), AfterValidator(_interval)]
    on_change: bool | None = None
    on_change_threshold: Annotated[float, Field(ge=0)] | None = None
    source_name: Name
    retention: RetentionDTO | None = None


AutoEvents = Annotated[list[AutoEventDTO], Field(max_length=1024)]


# -- device services ------------------------------------------------------------------------


class DeviceServiceDTO(Wire):
    """DeviceService (add)."""

    id: Uuid | None = None
    name: Name
    description: Text | None = None
    labels: Labels | None = None
    base_address: Annotated[str, StringConstraints(max_length=2048), AfterValidator(_base_address)]
    admin_state: AdminStateWire
    properties: Object | None = None


class UpdateDeviceServiceDTO(Wire):
    """UpdateDeviceService (patch)."""

    id: Uuid | None = None
    name: Name | None = None
    description: Text | None = None
    labels: Labels | None = None
    base_address: (
        Annotated[str, StringConstraints(max_length=2048), AfterValidator(_base_address)] | None
    ) = None
    admin_state: AdminStateWire | None = None
    properties: Object | None = None

    @model_validator(mode="after")
    def _target(self) -> UpdateDeviceServiceDTO:
        _require_target(self.id, self.name)
        return self


class AddDeviceServiceRequest(Envelope):
    """AddDeviceServiceRequest."""

    service: DeviceServiceDTO


class UpdateDeviceServiceRequest(Envelope):
    """UpdateDeviceServiceRequest."""

    service: UpdateDeviceServiceDTO


# -- device profiles ------------------------------------------------------------------------


class ResourcePropertiesDTO(Wire):
    """ResourceProperties."""

    value_type: Annotated[str, StringConstraints(max_length=32), AfterValidator(_value_type)]
    read_write: ReadWriteWire
    units: Text | None = None
    minimum: float | None = None
    maximum: float | None = None
    default_value: Text | None = None
    mask: Annotated[int, Field(ge=0, le=2**64 - 1)] | None = None
    shift: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | None = None
    scale: float | None = None
    offset: float | None = None
    base: float | None = None
    assertion: Text | None = None
    media_type: Text | None = None
    optional: Object | None = None


class DeviceResourceDTO(Wire):
    """DeviceResource."""

    name: Name
    description: Text | None = None
    is_hidden: bool | None = None
    properties: ResourcePropertiesDTO
    attributes: Object | None = None
    tags: Object | None = None


class ResourceOperationDTO(Wire):
    """ResourceOperation."""

    device_resource: Name
    default_value: Text | None = None
    mappings: dict[str, str] | None = None


class DeviceCommandDTO(Wire):
    """DeviceCommand."""

    name: Name
    is_hidden: bool | None = None
    read_write: ReadWriteWire
    resource_operations: Annotated[list[ResourceOperationDTO], Field(min_length=1, max_length=4096)]
    tags: Object | None = None


class DeviceProfileDTO(Wire):
    """DeviceProfile (add or whole-profile update)."""

    id: Uuid | None = None
    name: Name
    manufacturer: Text | None = None
    description: Text | None = None
    model: Text | None = None
    labels: Labels | None = None
    device_resources: Annotated[list[DeviceResourceDTO], Field(max_length=65536)] | None = None
    device_commands: Annotated[list[DeviceCommandDTO], Field(max_length=65536)] | None = None


class DeviceProfileRequest(Envelope):
    """DeviceProfileRequest (POST and PUT /deviceprofile)."""

    profile: DeviceProfileDTO


class BasicInfoDTO(Wire):
    """UpdateDeviceProfileBasicInfo."""

    id: Uuid | None = None
    name: Name | None = None
    manufacturer: Text | None = None
    description: Text | None = None
    model: Text | None = None
    labels: Labels | None = None

    @model_validator(mode="after")
    def _target(self) -> BasicInfoDTO:
        _require_target(self.id, self.name)
        return self


class BasicInfoRequest(Envelope):
    """DeviceProfileBasicInfoRequest; the key is ``basicinfo`` (any case)."""

    basic_info: BasicInfoDTO = Field(alias="basicinfo")


class TagsDTO(Wire):
    """UpdateTags: a map with at least one entry, for one resource or command."""

    name: Name
    tags: Annotated[Object, Field(min_length=1)]


class TagsRequest(Envelope):
    """DeviceProfileTagsRequest (one object, not a batch)."""

    device_resources: list[TagsDTO] | None = None
    device_commands: list[TagsDTO] | None = None


class AddResourceRequest(Envelope):
    """AddDeviceResourceRequest."""

    profile_name: Name
    resource: DeviceResourceDTO


class UpdateResourceDTO(Wire):
    """UpdateDeviceResource: only description and isHidden may change."""

    name: Name
    description: Text | None = None
    is_hidden: bool | None = None


class UpdateResourceRequest(Envelope):
    """UpdateDeviceResourceRequest."""

    profile_name: Name
    resource: UpdateResourceDTO


class AddCommandRequest(Envelope):
    """AddDeviceCommandRequest."""

    profile_name: Name
    device_command: DeviceCommandDTO


class UpdateCommandDTO(Wire):
    """UpdateDeviceCommand: only isHidden may change."""

    name: Name
    is_hidden: bool | None = None


class UpdateCommandRequest(Envelope):
    """UpdateDeviceCommandRequest."""

    profile_name: Name
    device_command: UpdateCommandDTO


# -- devices --------------------------------------------------------------------------------

Protocols = Annotated[dict[str, Object], Field(max_length=64)]


class DeviceDTO(Wire):
    """Device (add). ``protocols`` must be present; ``{}`` is accepted, as in EdgeX."""

    id: Uuid | None = None
    name: Name
    parent: RefName | None = None
    description: Text | None = None
    admin_state: AdminStateWire
    operating_state: OperatingStateWire
    labels: Labels | None = None
    location: Any = None
    service_name: Name
    profile_name: RefName | None = None
    auto_events: AutoEvents | None = None
    protocols: Protocols
    tags: Object | None = None
    properties: Object | None = None


class UpdateDeviceDTO(Wire):
    """UpdateDevice (patch); ``profileName: ""`` detaches the profile."""

    id: Uuid | None = None
    name: Name | None = None
    parent: RefName | None = None
    description: Text | None = None
    admin_state: AdminStateWire | None = None
    operating_state: OperatingStateWire | None = None
    labels: Labels | None = None
    location: Any = None
    service_name: Name | None = None
    profile_name: RefName | None = None
    auto_events: AutoEvents | None = None
    protocols: Protocols | None = None
    tags: Object | None = None
    properties: Object | None = None

    @model_validator(mode="after")
    def _target(self) -> UpdateDeviceDTO:
        _require_target(self.id, self.name)
        return self


class AddDeviceRequest(Envelope):
    """AddDeviceRequest."""

    device: DeviceDTO


class UpdateDeviceRequest(Envelope):
    """UpdateDeviceRequest."""

    device: UpdateDeviceDTO


# -- provision watchers ---------------------------------------------------------------------

Identifiers = Annotated[
    dict[
        Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX)],
        Annotated[str, StringConstraints(min_length=1, max_length=TEXT_MAX)],
    ],
    Field(min_length=1, max_length=256),
]
BlockingIdentifiers = Annotated[
    dict[
        Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX)],
        Annotated[list[Text], Field(max_length=1024)],
    ],
    Field(max_length=256),
]


class DiscoveredDeviceDTO(Wire):
    """DiscoveredDevice (add)."""

    profile_name: Name | None = None
    admin_state: AdminStateWire
    auto_events: AutoEvents | None = None
    properties: Object | None = None


class ProvisionWatcherDTO(Wire):
    """ProvisionWatcher (add)."""

    id: Uuid | None = None
    name: Name
    service_name: Name
    labels: Labels | None = None
    identifiers: Identifiers
    blocking_identifiers: BlockingIdentifiers | None = None
    admin_state: AdminStateWire
    discovered_device: DiscoveredDeviceDTO


class UpdateDiscoveredDeviceDTO(Wire):
    """UpdateDiscoveredDevice: every field optional; ``profileName`` may be ``""``."""

    profile_name: RefName | None = None
    admin_state: AdminStateWire | None = None
    auto_events: AutoEvents | None = None
    properties: Object | None = None


class UpdateProvisionWatcherDTO(Wire):
    """UpdateProvisionWatcher (patch)."""

    id: Uuid | None = None
    name: Name | None = None
    service_name: Name | None = None
    labels: Labels | None = None
    identifiers: Identifiers | None = None
    blocking_identifiers: BlockingIdentifiers | None = None
    admin_state: AdminStateWire | None = None
    discovered_device: UpdateDiscoveredDeviceDTO | None = None

    @model_validator(mode="after")
    def _target(self) -> UpdateProvisionWatcherDTO:
        _require_target(self.id, self.name)
        return self


class AddProvisionWatcherRequest(Envelope):
    """AddProvisionWatcherRequest."""

    provision_watcher: ProvisionWatcherDTO


class UpdateProvisionWatcherRequest(Envelope):
    """UpdateProvisionWatcherRequest."""

    provision_watcher: UpdateProvisionWatcherDTO


class ReassignDTO(Wire):
    """One device to move (edgemeta's reassign request)."""

    device_name: Name
    service_name: Name
    expected_revision: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    state_policy: Literal["migrate", "reset"] | None = None
    requested_by: (
        Annotated[str, StringConstraints(max_length=NAME_MAX), AfterValidator(_ref_name)] | None
    ) = None
    note: Text | None = None


class ReassignRequest(Envelope):
    """A ReassignDeviceRequest of seed option 2: move a named device to a named service."""

    reassign: ReassignDTO


def _require_target(id_: str | None, name: str | None) -> None:
    """Update DTOs name their record by ``id`` or ``name``; at least one must be given."""
    if not id_ and not name:
        raise ValueError("either id or name is required")
