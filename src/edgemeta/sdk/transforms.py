"""A resource's value transforms (``mask``, ``shift``, ``base``, ``scale``, ``offset``), as
EdgeX's device SDK applies them.

On a read, to the raw number the driver returned, in this order: ``mask`` (bitwise and) and
``shift`` (left when positive, right when negative), for unsigned integer types only; then
``base`` (``base ** value``), ``scale`` (times) and ``offset`` (plus), for every numeric type.
On a write, the inverse of ``offset``, ``scale`` and ``base`` in reverse order, applied to
the value **after** it was checked against ``minimum``/``maximum`` (those bound what the user
writes, in the profile's units). An integer type keeps an integer: a result that is not
whole is truncated toward zero, as Go's conversion does; one out of the type's range is an
overflow (500 on a read, 400 on a write).
"""

from __future__ import annotations

import math

from edgemeta.sdk.driver import CommandError, Resource

_UNSIGNED = frozenset({"Uint8", "Uint16", "Uint32", "Uint64"})
_SIGNED = frozenset({"Int8", "Int16", "Int32", "Int64"})


def transforms(resource: Resource) -> bool:
    """Whether reading or writing ``resource`` changes its value."""
    return bool(
        resource.mask
        or resource.shift
        or resource.base
        or (resource.scale is not None and resource.scale != 1)
        or resource.offset
    )


def _integral(resource: Resource, value: float, status: int) -> int | float:
    if resource.value_type not in _UNSIGNED | _SIGNED:
        return value
    if not math.isfinite(value):
        raise CommandError(
            status, f"resource '{resource.name}': {value} overflows {resource.value_type}"
        )
    return int(value)


def on_read(resource: Resource, value: int | float) -> int | float:
    """The value a reading carries for the driver's raw ``value``."""
    if not transforms(resource):
        return value
    out: int | float = value
    if resource.value_type in _UNSIGNED and isinstance(out, int):
        if resource.mask:
            out &= resource.mask
        if resource.shift:
            out = out << resource.shift if resource.shift > 0 else out >> -resource.shift
    if not (resource.base or resource.offset or (resource.scale not in (None, 1))):
        return out  # only mask/shift: exact integers, even for a Uint64
    out = float(out)
    try:
        if resource.base:
            out = resource.base**out
        if resource.scale is not None and resource.scale != 1:
            out = out * resource.scale
        if resource.offset:
            out = out + resource.offset
    except OverflowError:
        raise CommandError(500, f"resource '{resource.name}': transform overflowed") from None
    return _integral(resource, out, 500)


def on_write(resource: Resource, value: int | float) -> int | float:
    """The raw value the driver writes for the user's ``value`` (already range-checked)."""
    if not transforms(resource):
        return value
    out = float(value)
    if resource.offset:
        out -= resource.offset
    if resource.scale is not None and resource.scale != 1:
        if resource.scale == 0:
            raise CommandError(400, f"resource '{resource.name}': scale 0 cannot be inverted")
        out /= resource.scale
    if resource.base:
        if out <= 0 or resource.base <= 0 or resource.base == 1:
            raise CommandError(
                400, f"resource '{resource.name}': {value} has no base-{resource.base:g} logarithm"
            )
        out = math.log(out, resource.base)
    return _integral(resource, out, 400)
