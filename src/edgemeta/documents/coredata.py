"""core-data's events and readings as JSON: the AddEventRequest read, checked and stored.

An event arrives as EdgeX's ``AddEventRequest`` (JSON, keys matched case-insensitively as Go
decodes them) over REST or the bus. :func:`check_event` validates it against the device and
profile it names and returns what the store keeps: the event's columns and canonical
document, and one canonical document per reading. Nothing is stored unless every part is
valid, and every error names the field that broke.

Beyond EdgeX, which stores whatever a device service sends: the device must exist and use
the profile the event names, the event's ``sourceName`` must be a resource or a command of
that profile, each reading's ``resourceName`` a resource of it, and each reading's
``valueType`` the resource's. How each value is checked against its type is a domain rule,
in :mod:`edgemeta.domain.readings`. These checks are what lets core-metadata know which
resources and commands have data (see ``docs/profile-rules.md``).

Unlike the request DTOs of core-metadata (pydantic), events are read by hand: they are the
hot path of core-data, and a reading's shape depends on its value type.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from edgemeta.documents.common import API_VERSION, NAME_MAX, fold_keys
from edgemeta.domain import valuetypes
from edgemeta.domain.errors import ContractInvalid
from edgemeta.domain.ids import is_uuid
from edgemeta.domain.names import has_control_chars
from edgemeta.domain.readings import (
    INTEGER_TEXT,
    NUMERIC,
    CheckedEvent,
    CheckedReading,
    EventAddress,
    check_value,
)
from edgemeta.domain.records import Device, DeviceProfile

MAX_READINGS = 10_000


_EVENT_KEYS = {
    k.lower(): k
    for k in ("apiVersion", "id", "deviceName", "profileName", "sourceName", "origin", "tags")
} | {"readings": "readings"}


_READING_KEYS = {
    k.lower(): k
    for k in (
        "id",
        "origin",
        "deviceName",
        "resourceName",
        "profileName",
        "valueType",
        "units",
        "value",
        "binaryValue",
        "mediaType",
        "objectValue",
        "tags",
    )
}


_REQUEST_KEYS = {"apiversion": "apiVersion", "requestid": "requestId", "event": "event"}


def parse_request(data: Any) -> tuple[dict[str, Any], str]:
    """The ``event`` object of an AddEventRequest and its ``requestId``; 400 if malformed."""
    if not isinstance(data, dict):
        raise ContractInvalid("request body must be a JSON object (AddEventRequest)")
    req = fold_keys(data, _REQUEST_KEYS)
    api = req.get("apiVersion")
    if not isinstance(api, str) or not api:
        raise ContractInvalid("apiVersion: is required")
    rid = req.get("requestId")
    if rid is None or rid == "":
        rid = ""
    elif not isinstance(rid, str) or not is_uuid(rid):
        raise ContractInvalid("requestId: must be a UUID or empty")
    event = req.get("event")
    if not isinstance(event, dict):
        raise ContractInvalid("event: is required and must be a JSON object")
    return event, rid


def _name(value: Any, field: str, *, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise ContractInvalid(f"{field}: is required")
        return ""
    if not isinstance(value, str):
        raise ContractInvalid(f"{field}: must be a string")
    if len(value) > NAME_MAX or has_control_chars(value) or not value.strip():
        raise ContractInvalid(
            f"{field}: must be a name of at most {NAME_MAX} characters without control characters"
        )
    return value


def _origin(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractInvalid(f"{field}: must be an integer (nanoseconds since the epoch)")
    if not 0 < value <= 2**63 - 1:
        raise ContractInvalid(f"{field}: must be a positive 64-bit integer")
    return value


def _tags(value: Any, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ContractInvalid(f"{field}: must be a JSON object")
    return value


def check_event(
    raw: Mapping[str, Any],
    address: EventAddress | None,
    device: Device | None,
    profile: DeviceProfile | None,
    *,
    request_id: str = "",
) -> CheckedEvent:
    """Validate an event against the device and profile it names; the rows to store."""
    ev = fold_keys(raw, _EVENT_KEYS)
    api = ev.get("apiVersion")
    if not isinstance(api, str) or not api:
        raise ContractInvalid("event.apiVersion: is required")
    event_id = ev.get("id")
    if not isinstance(event_id, str) or not is_uuid(event_id):
        raise ContractInvalid("event.id: is required and must be a UUID")
    device_name = _name(ev.get("deviceName"), "event.deviceName")
    profile_name = _name(ev.get("profileName"), "event.profileName", required=address is None)
    source_name = _name(ev.get("sourceName"), "event.sourceName", required=address is None)
    if address is not None:
        for what, claimed, given in (
            ("deviceName", address.device_name, device_name),
            ("profileName", address.profile_name, profile_name),
            ("sourceName", address.source_name, source_name),
        ):
            if given and given != claimed:
                raise ContractInvalid(
                    f"event.{what} '{given}' does not match '{claimed}' in the path or topic"
                )
        profile_name = profile_name or address.profile_name
        source_name = source_name or address.source_name
    origin = _origin(ev.get("origin"), "event.origin")
    tags = _tags(ev.get("tags"), "event.tags")
    readings = ev.get("readings")
    if not isinstance(readings, list) or not readings:
        raise ContractInvalid("event.readings: must hold at least one reading")
    if len(readings) > MAX_READINGS:
        raise ContractInvalid(f"event.readings: at most {MAX_READINGS} readings per event")
    if device is None:
        raise ContractInvalid(f"event.deviceName: device '{device_name}' does not exist")
    if device.profile_name != profile_name:
        raise ContractInvalid(
            f"event.profileName: device '{device_name}' uses profile "
            f"'{device.profile_name or '(none)'}', not '{profile_name}'"
        )
    if profile is None or profile.name != profile_name:
        raise ContractInvalid(f"event.profileName: device profile '{profile_name}' does not exist")
    if profile.resource(source_name) is None and profile.command(source_name) is None:
        raise ContractInvalid(
            f"event.sourceName: '{source_name}' is neither a device resource nor a device "
            f"command of profile '{profile_name}'"
        )
    checked: list[CheckedReading] = []
    for i, r in enumerate(readings):
        checked.append(_check_reading(r, i, device_name, profile, origin))
    doc: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "id": event_id,
        "deviceName": device_name,
        "profileName": profile_name,
        "sourceName": source_name,
        "origin": origin,
    }
    if tags:
        doc["tags"] = tags
    return CheckedEvent(
        id=event_id,
        device_name=device_name,
        profile_name=profile_name,
        source_name=source_name,
        origin=origin,
        document=orjson.dumps(doc).decode(),
        readings=tuple(checked),
        request_id=request_id,
    )


def _check_reading(
    raw: Any, index: int, device_name: str, profile: DeviceProfile, event_origin: int
) -> CheckedReading:
    field = f"event.readings[{index}]"
    if not isinstance(raw, dict):
        raise ContractInvalid(f"{field}: must be a JSON object")
    r = fold_keys(raw, _READING_KEYS)
    rid = r.get("id")
    if rid is None or rid == "":
        rid = str(uuid.uuid4())
    elif not isinstance(rid, str) or not is_uuid(rid):
        raise ContractInvalid(f"{field}.id: must be a UUID")
    origin = _origin(r.get("origin", event_origin), f"{field}.origin")
    dname = _name(r.get("deviceName"), f"{field}.deviceName", required=False) or device_name
    if dname != device_name:
        raise ContractInvalid(f"{field}.deviceName: '{dname}' is not the event's '{device_name}'")
    pname = _name(r.get("profileName"), f"{field}.profileName", required=False) or profile.name
    if pname != profile.name:
        raise ContractInvalid(f"{field}.profileName: '{pname}' is not the event's '{profile.name}'")
    resource_name = _name(r.get("resourceName"), f"{field}.resourceName")
    resource = profile.resource(resource_name)
    if resource is None:
        raise ContractInvalid(
            f"{field}.resourceName: '{resource_name}' is not a device resource of profile "
            f"'{profile.name}'"
        )
    expected = resource.properties.value_type
    given = r.get("valueType")
    if not isinstance(given, str) or not given:
        raise ContractInvalid(f"{field}.valueType: is required")
    canonical = valuetypes.normalize(given)
    if canonical is None:
        raise ContractInvalid(f"{field}.valueType: must be one of {', '.join(valuetypes.ALL)}")
    if canonical != expected:
        raise ContractInvalid(
            f"{field}.valueType: '{canonical}' is not resource '{resource_name}''s '{expected}'"
        )
    units = r.get("units")
    if units is not None and not isinstance(units, str):
        raise ContractInvalid(f"{field}.units: must be a string")
    tags = _tags(r.get("tags"), f"{field}.tags")
    doc: dict[str, Any] = {
        "id": rid,
        "origin": origin,
        "deviceName": device_name,
        "resourceName": resource_name,
        "profileName": profile.name,
        "valueType": canonical,
        "units": units if units is not None else resource.properties.units,
    }
    doc.update(check_value(canonical, r, field))
    if tags:
        doc["tags"] = tags
    return CheckedReading(rid, origin, resource_name, orjson.dumps(doc).decode())


def numeric_document(document: str) -> str:
    """A stored reading with a numeric ``value`` as a JSON number (``numeric=true``)."""
    doc = orjson.loads(document)
    value = doc.get("value")
    if doc.get("valueType") in NUMERIC and isinstance(value, str):
        try:
            number: float | int = int(value) if INTEGER_TEXT.fullmatch(value) else float(value)
        except ValueError:
            return document
        if isinstance(number, float) and not math.isfinite(number):
            return document  # JSON has no NaN or infinity: keep the text
        doc["value"] = number
        return orjson.dumps(doc).decode()
    return document
