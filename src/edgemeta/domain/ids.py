"""Record ids: UUIDs in their canonical text form only (8-4-4-4-12 hex digits)."""

from __future__ import annotations

import re

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_uuid(value: str) -> bool:
    """Whether ``value`` is a canonical UUID (no braces, no ``urn:uuid:``, no other digits)."""
    return _UUID.fullmatch(value) is not None
