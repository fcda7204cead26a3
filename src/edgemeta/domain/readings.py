"""core-data's value rules: what a reading's value must look like for its value type, pure.

Values are checked against their type the way Go's ``strconv`` reads them (``Bool``:
``true``/``1``/``T``...; integers in range; floats finite or not, as ``ParseFloat`` allows;
arrays as JSON text of the element type; ``Binary`` as base64 with a ``mediaType``;
``Object`` as any JSON value). Here too are the checked event and reading as the store takes
them. The AddEventRequest JSON itself is read in :mod:`edgemeta.documents.coredata`.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from edgemeta.domain.errors import ContractInvalid

INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


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
        if not INTEGER_TEXT.fullmatch(text) or not bounds[0] <= int(text) <= bounds[1]:
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
