"""Reading the records a command is given: JSON or YAML files, or ``-`` for stdin."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import yaml


class FileError(ValueError):
    """A file cannot be read or parsed (a usage error: exit 2)."""


def read_text(source: str) -> tuple[str, bytes]:
    """``(name, bytes)`` of a path, or of stdin for ``-``."""
    if source == "-":
        return "<stdin>", sys.stdin.buffer.read()
    path = Path(source)
    try:
        return source, path.read_bytes()
    except OSError as exc:
        raise FileError(f"{source}: {exc.strerror or exc}") from None


def is_yaml_name(name: str) -> bool:
    """True for a ``.yaml``/``.yml`` file name."""
    return name.lower().endswith((".yaml", ".yml"))


def parse(name: str, data: bytes) -> Any:
    """JSON, else YAML (JSON is YAML too, but orjson is faster and stricter)."""
    if not is_yaml_name(name):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            if name.lower().endswith(".json"):
                raise FileError(f"{name}: not valid JSON: {exc}") from None
    try:
        return yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise FileError(f"{name}: not valid JSON or YAML: {exc}") from None


def records(doc: Any, key: str, name: str) -> list[dict[str, Any]]:
    """The records of a document: one object, a list of them, or EdgeX requests
    (``{"apiVersion": "v3", key: {...}}``) either way; unwrapped."""
    items = doc if isinstance(doc, list) else [doc]
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise FileError(f"{name}: item {i} is not an object")
        inner = item.get(key)
        out.append(inner if isinstance(inner, dict) and "apiVersion" in item else item)
    return out


def wrap(key: str, record: dict[str, Any]) -> dict[str, Any]:
    """A record in EdgeX's request form (results come back in the same order)."""
    return {"apiVersion": "v3", key: record}
