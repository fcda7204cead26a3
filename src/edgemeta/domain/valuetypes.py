"""EdgeX value types: the names a resource's ``valueType`` may take, in canonical casing."""

from __future__ import annotations

SCALARS = (
    "Bool",
    "String",
    "Uint8",
    "Uint16",
    "Uint32",
    "Uint64",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Float32",
    "Float64",
)
ARRAYS = tuple(f"{t}Array" for t in SCALARS)
OTHERS = ("Binary", "Object", "ObjectArray")
ALL = SCALARS + OTHERS + ARRAYS

_CANONICAL = {t.lower(): t for t in ALL}


def normalize(value_type: str) -> str | None:
    """The canonical spelling of ``value_type`` (matched case-insensitively), or None."""
    return _CANONICAL.get(value_type.lower())
