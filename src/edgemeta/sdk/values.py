"""A device profile as commands use it, and values converted and checked by ``valueType``
(and transformed by the resource's ``scale``/``offset``/..., :mod:`edgemeta.sdk.transforms`).

A command names a device command (its ``resourceOperations``) or a single device resource,
as in EdgeX. What is read becomes readings in core-data's form (the value as Go-like text,
checked by :func:`edgemeta.domain.readings.check_value`, the same rule core-data applies on
ingest); what is written is checked before the driver is called, defense in depth beside
core-command's own checks:

=================================================  ======
refusal                                            status
=================================================  ======
command not in the profile                         404
command or resource not readable / not writable    405
value missing (and no ``defaultValue``)            400
value not of the resource's ``valueType``          400
value below ``minimum`` or above ``maximum``       400
=================================================  ======
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from edgemeta.domain import valuetypes
from edgemeta.domain.errors import ContractInvalid
from edgemeta.domain.readings import NUMERIC, check_scalar, check_value
from edgemeta.sdk import transforms
from edgemeta.sdk.driver import CommandError, Resource

# Go's strconv.ParseBool: the texts that mean true (check_scalar has refused anything else).
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_INTEGERS = NUMERIC - {"Float32", "Float64"}


@dataclass(frozen=True, slots=True)
class Operation:
    """One resource a command touches, the value written when a set leaves it out, and its
    ``mappings`` (EdgeX's value translation table, e.g. ``{"0": "off", "1": "on"}``)."""

    resource: Resource
    default_value: str = ""
    mappings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Command:
    """A command as a device service runs it: a device command or a lone resource."""

    name: str
    read_write: str
    operations: tuple[Operation, ...]

    @property
    def resources(self) -> list[Resource]:
        """The resources it touches, in order."""
        return [op.resource for op in self.operations]

    @property
    def mappings(self) -> dict[str, Mapping[str, str]]:
        """The mapping table of each resource that has one, by resource name."""
        return {op.resource.name: op.mappings for op in self.operations if op.mappings}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def resource_of(doc: Mapping[str, Any]) -> Resource:
    """A :class:`Resource` from a profile's ``deviceResources`` item."""
    props = doc.get("properties") or {}
    value_type = valuetypes.normalize(str(props.get("valueType", ""))) or "String"
    return Resource(
        name=str(doc["name"]),
        value_type=value_type,
        read_write=str(props.get("readWrite", "R")),
        units=str(props.get("units", "") or ""),
        minimum=_number(props.get("minimum")),
        maximum=_number(props.get("maximum")),
        default_value=str(props.get("defaultValue", "") or ""),
        media_type=str(props.get("mediaType", "") or ""),
        attributes=doc.get("attributes") or {},
        is_hidden=bool(doc.get("isHidden", False)),
        mask=int(props.get("mask") or 0),
        shift=int(props.get("shift") or 0),
        base=float(props.get("base") or 0),
        scale=_number(props.get("scale")),
        offset=float(props.get("offset") or 0),
    )


class Profile:
    """A device profile's resources and commands, by name."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.name = str(doc["name"])
        self.document = doc
        self.resources = {r.name: r for r in map(resource_of, doc.get("deviceResources") or [])}
        self.commands: dict[str, Command] = {}
        for c in doc.get("deviceCommands") or []:
            ops = tuple(
                Operation(
                    self.resources[o["deviceResource"]],
                    str(o.get("defaultValue") or ""),
                    {str(k): str(v) for k, v in (o.get("mappings") or {}).items()},
                )
                for o in c.get("resourceOperations") or []
                if o.get("deviceResource") in self.resources
            )
            self.commands[c["name"]] = Command(c["name"], str(c.get("readWrite", "R")), ops)

    def command(self, name: str) -> Command:
        """The device command called ``name``, else the resource (404 if neither)."""
        found = self.commands.get(name)
        if found is not None:
            return found
        r = self.resources.get(name)
        if r is None:
            raise CommandError(404, f"command '{name}' not found in profile '{self.name}'")
        return Command(r.name, r.read_write, (Operation(r, r.default_value),))


# -- reading: driver value -> EdgeX reading --------------------------------------------------


def _float_text(value: float, value_type: str) -> str:
    if value_type == "Float64" or not math.isfinite(value):
        return repr(value)
    # The shortest text that reads back as the same float32 (Go's FormatFloat(v, 'g', -1, 32)).
    try:
        target = struct.pack("<f", value)
    except OverflowError:
        raise ContractInvalid(f"{value!r} is out of Float32 range") from None
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if struct.pack("<f", float(text)) == target:
            return repr(float(text))  # 20.0 rather than 2e+01
    return repr(value)


def scalar_text(value_type: str, value: Any) -> str:
    """A Python value as EdgeX's text for a scalar ``value_type`` (not yet checked)."""
    if value_type == "Bool":
        return ("true" if value else "false") if isinstance(value, bool) else str(value)
    if value_type in ("Float32", "Float64") and isinstance(value, (int, float)):
        return _float_text(float(value), value_type)
    if value_type in _INTEGERS and isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def reading(
    device: str,
    profile: str,
    resource: Resource,
    value: Any,
    origin: int,
    mappings: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The EdgeX reading (BaseReading DTO) of ``value`` read from ``resource``; 500 if the
    driver's value is not of the resource's type (the device service's own fault).

    With ``mappings`` (the command's resource operation), a value whose text is a key of the
    table is read as the mapped text, a ``String`` reading, as EdgeX's Go SDK does; a value
    the table does not name stays as it is."""
    doc: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "origin": origin,
        "deviceName": device,
        "resourceName": resource.name,
        "profileName": profile,
        "valueType": resource.value_type,
    }
    if resource.units:
        doc["units"] = resource.units
    vt = resource.value_type
    raw: dict[str, Any]
    try:
        if vt == "Binary":
            data = value if isinstance(value, (bytes, bytearray)) else bytes(str(value), "utf-8")
            raw = {
                "binaryValue": base64.b64encode(data).decode(),
                "mediaType": resource.media_type or "application/octet-stream",
            }
        elif vt in ("Object", "ObjectArray"):
            raw = {"objectValue": value}
        elif vt.endswith("Array"):
            element = vt.removesuffix("Array")
            items = value if isinstance(value, (list, tuple)) else orjson.loads(str(value))
            if element in ("Float32", "Float64"):
                items = [float(i) for i in items]
            raw = {"value": orjson.dumps(list(items)).decode()}
        else:
            if vt in NUMERIC and _number(value) is not None:
                value = transforms.on_read(resource, value)
            raw = {"value": scalar_text(vt, value)}
        doc.update(check_value(vt, raw, f"reading '{resource.name}'"))
        mapped = mappings.get(doc.get("value", "")) if mappings else None
        if mapped is not None:
            doc["value"], doc["valueType"] = mapped, "String"
    except (ContractInvalid, ValueError, TypeError) as exc:
        raise CommandError(
            500, f"driver returned a bad value for '{resource.name}': {exc}"
        ) from None
    return doc


def reading_number(doc: Mapping[str, Any]) -> float | None:
    """A numeric reading's value as a number (for onChangeThreshold), else None."""
    if doc.get("valueType") not in NUMERIC or not isinstance(doc.get("value"), str):
        return None
    try:
        return float(doc["value"])
    except ValueError:
        return None


def reading_key(doc: Mapping[str, Any]) -> Any:
    """What decides whether a reading changed: its value, binary value or object value."""
    return doc.get("value", doc.get("binaryValue", orjson.dumps(doc.get("objectValue"))))


# -- writing: EdgeX set request -> checked driver value --------------------------------------


def parse_write(resource: Resource, given: Any) -> Any:
    """The Python value to write to ``resource`` from a set request's value, checked against
    the profile: writable (405), of its type and within ``minimum``/``maximum`` (400)."""
    where = f"resource '{resource.name}'"
    if not resource.writable:
        raise CommandError(405, f"{where} is not writable (readWrite {resource.read_write})")
    vt = resource.value_type
    try:
        if vt == "Binary":
            if not isinstance(given, str):
                raise ContractInvalid(f"{where}: a Binary value is base64 text")
            return base64.b64decode(given, validate=True)
        if vt in ("Object", "ObjectArray"):
            value = orjson.loads(given) if isinstance(given, str) else given
            if vt == "ObjectArray" and not isinstance(value, list):
                raise ContractInvalid(f"{where}: an ObjectArray value is a JSON array")
            return value
        if vt.endswith("Array"):
            text = given if isinstance(given, str) else orjson.dumps(given).decode()
            check_value(vt, {"value": text}, where)
            items: list[Any] = orjson.loads(text)
            for item in items:
                _check_range(resource, item, item)
            return items
        text = given if isinstance(given, str) else scalar_text(vt, given)
        check_scalar(vt, text, f"{where} value")
    except ContractInvalid as exc:
        raise CommandError(400, f"value {given!r} refused: {exc.message}") from None
    except (orjson.JSONDecodeError, binascii.Error, ValueError):
        raise CommandError(400, f"value {given!r} refused: {where} takes {vt}") from None
    if vt == "Bool":
        return text in _TRUE
    if vt == "String":
        return text
    number: int | float = int(text) if vt in _INTEGERS else float(text)
    _check_range(resource, number, given)
    if transforms.transforms(resource):
        number = transforms.on_write(resource, number)
        try:  # the raw value must still fit the type
            check_scalar(vt, scalar_text(vt, number), f"{where} raw value")
        except ContractInvalid as exc:
            raise CommandError(400, f"value {given!r} refused: {exc.message}") from None
    return number


def _check_range(resource: Resource, value: Any, shown: Any) -> None:
    number = _number(value)
    if number is None:
        return
    if resource.minimum is not None and number < resource.minimum:
        raise CommandError(
            400,
            f"value {shown!r} refused: resource '{resource.name}' is below its minimum "
            f"{resource.minimum:g}",
        )
    if resource.maximum is not None and number > resource.maximum:
        raise CommandError(
            400,
            f"value {shown!r} refused: resource '{resource.name}' is above its maximum "
            f"{resource.maximum:g}",
        )


def write_values(command: Command, given: Mapping[str, Any]) -> list[tuple[Resource, Any]]:
    """Every resource of a set command with its checked value: what ``given`` names, else
    the operation's or the resource's ``defaultValue``; 400 for a value of no resource of the
    command, or a resource left without a value."""
    names = {op.resource.name for op in command.operations}
    extra = sorted(set(given) - names)
    if extra:
        raise CommandError(400, f"'{extra[0]}' is not a resource of command '{command.name}'")
    if "W" not in command.read_write:
        raise CommandError(405, f"command '{command.name}' is not writable")
    out: list[tuple[Resource, Any]] = []
    for op in command.operations:
        r = op.resource
        value = given.get(r.name)
        if value is None:
            value = op.default_value or r.default_value or None
        if value is None:
            raise CommandError(400, f"set command '{command.name}' needs a value for '{r.name}'")
        out.append((r, parse_write(r, mapped_write(op, value))))
    return out


def mapped_write(op: Operation, given: Any) -> Any:
    """A set's value through the operation's ``mappings``: the table's value when the given
    text is one of its keys (``"on"`` -> ``"1"``), else the value unchanged, as EdgeX's Go
    SDK maps a write before parsing it."""
    if not op.mappings:
        return given
    text = given if isinstance(given, str) else scalar_text(op.resource.value_type, given)
    return op.mappings.get(text, given)


def read_resources(command: Command) -> Sequence[Resource]:
    """The resources a get reads; 405 if the command or one of them is not readable."""
    if "R" not in command.read_write:
        raise CommandError(405, f"command '{command.name}' is not readable")
    for r in command.resources:
        if not r.readable:
            raise CommandError(405, f"resource '{r.name}' is not readable")
    return command.resources
