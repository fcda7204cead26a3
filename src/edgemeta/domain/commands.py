"""Device commands as core-command offers them, and the checks a set passes before it is sent.

A device's core commands are its profile's ``deviceCommands`` and its ``deviceResources``
(each resource is a command of its own name, as in EdgeX), less those marked ``isHidden``.
A command can be read (``get``) when its ``readWrite`` holds ``R`` and set when it holds ``W``.

:func:`check_set` is the part EdgeX's core-command does not do: every value of a set is
checked against the profile (resource known and part of the command, resource writable,
value parses as the ``valueType`` the way core-data parses readings, within ``minimum`` and
``maximum``, one of ``optional.allowedValues`` when the profile lists them). A refusal is a
:class:`~edgemeta.domain.errors.ContractInvalid` naming the resource, the value and the rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from edgemeta.domain.errors import ContractInvalid, NotFound
from edgemeta.domain.readings import NUMERIC, check_scalar
from edgemeta.domain.records import DeviceProfile, DeviceResource, ReadWrite
from edgemeta.domain.valuetypes import SCALARS

_READS = (ReadWrite.R, ReadWrite.RW, ReadWrite.WR)
_WRITES = (ReadWrite.W, ReadWrite.RW, ReadWrite.WR)


def readable(rw: ReadWrite) -> bool:
    """Whether ``readWrite`` allows a read."""
    return rw in _READS


def writable(rw: ReadWrite) -> bool:
    """Whether ``readWrite`` allows a write."""
    return rw in _WRITES


@dataclass(frozen=True, slots=True)
class Command:
    """One core command of a profile: its name, what it can do and the resources it names."""

    name: str
    get: bool
    set: bool
    resources: tuple[DeviceResource, ...]
    # A device command's resourceOperations ``mappings``, by resource name: the device service
    # translates a set's value through them, so the value checked is the translated one.
    mappings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def commands(profile: DeviceProfile) -> list[Command]:
    """The profile's offered commands: device commands first, then resources; hidden ones
    left out. A device command naming a resource the profile lacks is offered without it."""
    by_name = {r.name: r for r in profile.device_resources}
    out: list[Command] = []
    taken: set[str] = set()
    for c in profile.device_commands:
        if c.is_hidden:
            continue
        names = [op.device_resource for op in c.resource_operations]
        resources = tuple(by_name[n] for n in names if n in by_name)
        tables = {op.device_resource: op.mappings for op in c.resource_operations if op.mappings}
        out.append(
            Command(c.name, readable(c.read_write), writable(c.read_write), resources, tables)
        )
        taken.add(c.name)
    for r in profile.device_resources:
        if r.is_hidden or r.name in taken:
            continue
        rw = r.properties.read_write
        out.append(Command(r.name, readable(rw), writable(rw), (r,)))
    return out


def find(profile: DeviceProfile, name: str) -> Command:
    """The offered command ``name`` (NotFound: unknown or hidden)."""
    for c in commands(profile):
        if c.name == name:
            return c
    raise NotFound(f"command '{name}' is not a command of profile '{profile.name}'")


def _allowed(resource: DeviceResource) -> list[str] | None:
    """``properties.optional.allowedValues`` (a list or a comma-separated string), or None."""
    raw = resource.properties.optional.get("allowedValues")
    if raw is None:
        return None
    if isinstance(raw, str):
        return [v.strip() for v in raw.split(",") if v.strip()]
    if isinstance(raw, list):
        return [v if isinstance(v, str) else orjson.dumps(v).decode() for v in raw]
    return None


def _text(value: Any) -> str:
    """A JSON value of a set request as the text a device service receives (EdgeX sends
    strings: ``true``, ``21.5``; arrays and objects as their JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return orjson.dumps(value).decode()


def _refuse(resource: str, value: str, rule: str) -> ContractInvalid:
    return ContractInvalid(f"resource '{resource}', value {value!r}: {rule}")


def check_value(resource: DeviceResource, value: Any) -> str:
    """The value as sent, if ``resource`` accepts it; else ContractInvalid naming the rule."""
    props = resource.properties
    text = _text(value)
    name = resource.name
    if not writable(props.read_write):
        raise _refuse(name, text, f"the resource is read-only (readWrite {props.read_write})")
    vt = props.value_type
    if vt in SCALARS:
        try:
            check_scalar(vt, text, name)
        except ContractInvalid:
            raise _refuse(name, text, f"not a {vt}") from None
    elif vt.endswith("Array") and vt != "ObjectArray":
        element = vt.removesuffix("Array")
        try:
            items = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise _refuse(name, text, f"not a {vt} (a JSON array)") from None
        if not isinstance(items, list):
            raise _refuse(name, text, f"not a {vt} (a JSON array)")
        for item in items:
            try:
                check_scalar(element, _text(item), name)
            except ContractInvalid:
                raise _refuse(name, text, f"element {item!r} is not a {element}") from None
    elif vt == "Object" and not isinstance(value, dict):
        raise _refuse(name, text, "not an Object (a JSON object)")
    if vt in NUMERIC and (props.minimum is not None or props.maximum is not None):
        number = float(text)
        if math.isnan(number):
            raise _refuse(name, text, "not a number, and the resource has bounds")
        if props.minimum is not None and number < props.minimum:
            raise _refuse(name, text, f"below the minimum {props.minimum:g}")
        if props.maximum is not None and number > props.maximum:
            raise _refuse(name, text, f"above the maximum {props.maximum:g}")
    allowed = _allowed(resource)
    if allowed is not None and text not in allowed:
        raise _refuse(name, text, f"not one of the allowed values {allowed}")
    return text


def check_set(command: Command, values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings to send for a set of ``command``, every value checked (ContractInvalid
    naming the resource, the value and the rule at the first refusal)."""
    if not command.set:
        names = ", ".join(r.name for r in command.resources) or command.name
        raise ContractInvalid(
            f"command '{command.name}' is read-only: it cannot be set (resources {names})"
        )
    if not values:
        raise ContractInvalid(f"a set of command '{command.name}' needs at least one value")
    by_name = {r.name: r for r in command.resources}
    out: dict[str, Any] = {}
    for key, value in values.items():
        resource = by_name.get(key)
        if resource is None:
            raise _refuse(key, _text(value), f"not a resource of command '{command.name}'")
        table = command.mappings.get(key)
        mapped = table.get(_text(value)) if table else None
        try:
            text = check_value(resource, value if mapped is None else mapped)
        except ContractInvalid as exc:
            if mapped is None:
                raise
            raise ContractInvalid(f"{exc.message} ({_text(value)!r} maps to it)") from None
        if mapped is not None:
            # Sent as given: the device service applies the mapping itself (EdgeX's SDKs do),
            # and a value mapped twice would be a different value.
            text = _text(value)
        # Objects travel as themselves, everything else as text (what EdgeX's SDKs parse).
        out[key] = value if resource.properties.value_type.startswith("Object") else text
    return out
