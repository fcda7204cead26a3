"""core-data's events and readings: validation against the device profile, pure.

An event arrives as EdgeX's ``AddEventRequest`` (JSON, keys matched case-insensitively as Go
decodes them) over REST or the bus. :func:`check_event` validates it against the device and
profile it names and returns what the store keeps: the event's columns and canonical
document, and one canonical document per reading. Nothing is stored unless every part is
valid, and every error names the field that broke.

Beyond EdgeX, which stores whatever a device service sends: the device must exist and use
the profile the event names, the event's ``sourceName`` must be a resource or a command of
that profile, each reading's ``resourceName`` a resource of it, and each reading's
``valueType`` the resource's. Values are checked against their type the way Go's ``strconv``
reads them (``Bool``: ``true``/``1``/``T``...; integers in range; floats finite or not, as
``ParseFloat`` allows; arrays as JSON text of the element type; ``Binary`` as base64 with a
``mediaType``; ``Object`` as any JSON value). These checks are what lets core-metadata know
which resources and commands have data (see ``docs/profile-rules.md``).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from edgemeta.domain import valuetypes
from edgemeta.domain.errors import ContractInvalid
from edgemeta.domain.ids import is_uuid
from edgemeta.domain.records import Device, DeviceProfile

API_VERSION = "v3"
MAX_READINGS = 10_000
_NAME_MAX = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_INT = re.compile(r"[+-]?[0-9]+")
# What Go's strconv.ParseFloat takes in base 10 (no underscores, unlike Python's float()).
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_FLOAT_WORDS = frozenset({"nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})
_FLOAT32_MAX = 3.4028234663852886e38
_BOOL = {
    "1": True,
    "t": True,
    "T": True,
    "TRUE": True,
    "true": True,
    "True": True,
    "0": False,
    "f": False,
    "F": False,
    "FALSE": False,
    "false": False,
    "False": False,
}
_INT_RANGES = {
    "Int8": (-(2**7), 2**7 - 1),
    "Int16": (-(2**15), 2**15 - 1),
    "Int32": (-(2**31), 2**31 - 1),
    "Int64": (-(2**63), 2**63 - 1),
    "Uint8": (0, 2**8 - 1),
    "Uint16": (0, 2**16 - 1),
    "Uint32": (0, 2**32 - 1),
    "Uint64": (0, 2**64 - 1),
}
NUMERIC = frozenset({*_INT_RANGES, "Float32", "Float64"})

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


@dataclass(frozen=True, slots=True)
class CheckedReading:
    """A valid reading: its indexed columns and its canonical document (JSON text)."""

    id: str
    origin: int
    resource_name: str
    document: str


@dataclass(frozen=True, slots=True)
class CheckedEvent:
    """A valid event: columns, canonical document (without readings) and its readings."""

    id: str
    device_name: str
    profile_name: str
    source_name: str
    origin: int
    document: str
    readings: tuple[CheckedReading, ...]
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class EventAddress:
    """What the event claims to be: from the REST path or the bus topic."""

    service_name: str
    profile_name: str
    device_name: str
    source_name: str


def fold_keys(data: Mapping[str, Any], table: Mapping[str, str]) -> dict[str, Any]:
    """``data`` with keys matched case-insensitively to ``table``; unknown keys dropped.

    An exactly spelled key wins over a case-folded one, as in Go's ``encoding/json``.
    """
    out: dict[str, Any] = {}
    folded: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = table.get(key.lower())
        if name is None:
            continue
        if key == name:
            out[name] = value
        else:
            folded.append((name, value))
    for name, value in folded:
        out.setdefault(name, value)
    return out


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
    if len(value) > _NAME_MAX or _CONTROL.search(value) or not value.strip():
        raise ContractInvalid(
            f"{field}: must be a name of at most {_NAME_MAX} characters without control characters"
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


def check_scalar(value_type: str, text: str, field: str) -> None:
    """ContractInvalid unless ``text`` is a value of scalar ``value_type`` (Go strconv)."""
    if value_type == "String":
        return
    if value_type == "Bool":
        if text not in _BOOL:
            raise ContractInvalid(f"{field}: {text!r} is not a Bool")
        return
    bounds = _INT_RANGES.get(value_type)
    if bounds is not None:
        if not _INT.fullmatch(text) or not bounds[0] <= int(text) <= bounds[1]:
            raise ContractInvalid(f"{field}: {text!r} is not an {value_type}")
        return
    # Float32 / Float64
    if text.lower() in _FLOAT_WORDS:
        return
    if not _FLOAT.fullmatch(text):
        raise ContractInvalid(f"{field}: {text!r} is not a {value_type}")
    number = float(text)
    limit = _FLOAT32_MAX if value_type == "Float32" else math.inf
    if math.isinf(number) or abs(number) > limit:
        raise ContractInvalid(f"{field}: {text!r} is out of {value_type} range")


def _check_element(value_type: str, item: Any, field: str) -> None:
    if value_type == "Bool":
        if not isinstance(item, bool):
            raise ContractInvalid(f"{field}: {item!r} is not a Bool")
    elif value_type == "String":
        if not isinstance(item, str):
            raise ContractInvalid(f"{field}: {item!r} is not a String")
    elif value_type in _INT_RANGES:
        low, high = _INT_RANGES[value_type]
        if isinstance(item, bool) or not isinstance(item, int) or not low <= item <= high:
            raise ContractInvalid(f"{field}: {item!r} is not an {value_type}")
    elif isinstance(item, bool) or not isinstance(item, (int, float)):
        raise ContractInvalid(f"{field}: {item!r} is not a {value_type}")
    elif value_type == "Float32" and abs(item) > _FLOAT32_MAX:
        raise ContractInvalid(f"{field}: {item!r} is out of Float32 range")


def check_value(value_type: str, reading: Mapping[str, Any], field: str) -> dict[str, Any]:
    """The value keys of a reading of ``value_type``, checked; ContractInvalid naming the
    problem. A null reading (no value of any kind) is valid for every type, as in EdgeX."""
    value = reading.get("value")
    binary = reading.get("binaryValue")
    obj = reading.get("objectValue")
    out: dict[str, Any] = {}
    if value is None and binary is None and obj is None:
        out["value"] = None
        return out
    if value_type == "Binary":
        if not isinstance(binary, str) or value is not None or obj is not None:
            raise ContractInvalid(f"{field}.binaryValue: a Binary reading carries base64 bytes")
        try:
            base64.b64decode(binary, validate=True)
        except binascii.Error:
            raise ContractInvalid(f"{field}.binaryValue: is not valid base64") from None
        media = reading.get("mediaType")
        if not isinstance(media, str) or not media:
            raise ContractInvalid(f"{field}.mediaType: is required with a binaryValue")
        out["binaryValue"] = binary
        out["mediaType"] = media
        return out
    if value_type in ("Object", "ObjectArray"):
        if obj is None or value is not None or binary is not None:
            raise ContractInvalid(
                f"{field}.objectValue: an {value_type} reading carries a JSON value"
            )
        if value_type == "ObjectArray" and not isinstance(obj, list):
            raise ContractInvalid(f"{field}.objectValue: an ObjectArray reading carries an array")
        out["objectValue"] = obj
        return out
    if binary is not None or obj is not None:
        raise ContractInvalid(f"{field}: a {value_type} reading carries its value in 'value'")
    if not isinstance(value, str):
        raise ContractInvalid(f"{field}.value: must be a string (EdgeX sends values as text)")
    if value_type.endswith("Array"):
        element = value_type.removesuffix("Array")
        try:
            items = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ContractInvalid(
                f"{field}.value: {value_type} is JSON text such as [1,2]"
            ) from None
        if not isinstance(items, list):
            raise ContractInvalid(f"{field}.value: {value_type} is JSON text such as [1,2]")
        for i, item in enumerate(items):
            _check_element(element, item, f"{field}.value[{i}]")
    else:
        check_scalar(value_type, value, f"{field}.value")
    out["value"] = value
    return out


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
            number: float | int = int(value) if _INT.fullmatch(value) else float(value)
        except ValueError:
            return document
        if isinstance(number, float) and not math.isfinite(number):
            return document  # JSON has no NaN or infinity: keep the text
        doc["value"] = number
        return orjson.dumps(doc).decode()
    return document
