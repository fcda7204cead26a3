"""The core-keeper key/value store, and edgemeta's writable settings kept in it.

EdgeX changes a service's ``Writable`` settings at run time by writing keys under
``edgex/v4/<service>/Writable/`` in core-keeper. edgemeta serves that API itself
(``edgemeta.api.routes.keeper``): any key may be stored (EdgeX tools keep other services'
configuration there too), and the keys under ``edgex/v4/core-metadata/Writable/`` are
edgemeta's own settings, checked before anything is stored (a bad value or an unknown key:
ContractInvalid, nothing stored) and applied to the running service's :class:`Policy` once the
write commits. When the service starts, the stored values override the environment's
(:meth:`Keeper.load`); deleting one of these keys puts the start-up value back. Instances
sharing one database reload the settings every ``EDGEMETA_KEEPER_RELOAD_SECONDS``
(:meth:`Keeper.follow`), so a change made through one reaches the others within that time.

Values are kept as EdgeX's keeper keeps them: as text (``true``, ``5``, ``INFO``; objects and
lists as JSON), answered base64-encoded unless the client asks for ``plaintext``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from edgemeta.domain.errors import Conflict, ContractInvalid, NotFound
from edgemeta.ports import KvEntry, Store
from edgemeta.usecases.deps import Policy

log = logging.getLogger("edgemeta.keeper")

#: Where edgemeta's own writable settings live (EdgeX v4's key layout).
WRITABLE = "edgex/v4/core-metadata/Writable"

# core-keeper's KeyAllowedCharsRegexString, with its "-" made literal as core-keeper means it.
_KEY = re.compile(r"[a-zA-Z0-9\-_~;=./]+")
_KEY_MAX = 1024
_VALUE_MAX = 1024 * 1024

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})  # Go's strconv.ParseBool
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_LEVELS = {
    "TRACE": "DEBUG",  # EdgeX's finest level; Python logging's finest is DEBUG
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "WARN": "WARNING",
    "WARNING": "WARNING",
    "ERROR": "ERROR",
}


def _bool(text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("must be true or false")


def _int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not re.fullmatch(r"-?[0-9]{1,10}", text.strip()):
            raise ValueError("must be an integer")
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _level(text: str) -> str:
    level = _LEVELS.get(text.strip().upper())
    if level is None:
        raise ValueError("must be one of TRACE, DEBUG, INFO, WARN, ERROR")
    return level


@dataclass(frozen=True, slots=True)
class WritableKey:
    """One of edgemeta's writable settings: its key below ``Writable/``, its Policy field."""

    name: str
    field: str
    parse: Callable[[str], Any]


#: edgemeta's writable settings, by key below ``edgex/v4/core-metadata/Writable/`` (EdgeX
#: core-metadata's own layout, plus MaxResultCount, which EdgeX keeps under Service and does
#: not let change at run time).
WRITABLE_KEYS: dict[str, WritableKey] = {
    k.name: k
    for k in (
        WritableKey("LogLevel", "log_level", _level),
        WritableKey("MaxDevices", "max_devices", _int(0, 2**31 - 1)),
        WritableKey("MaxResultCount", "max_result_count", _int(1, 1_000_000)),
        WritableKey("ProfileChange/StrictDeviceProfileChanges", "strict_profile_changes", _bool),
        WritableKey("ProfileChange/StrictDeviceProfileDeletes", "strict_profile_deletes", _bool),
        WritableKey("UoM/Validation", "uom_validation", _bool),
    )
}
_SHORT = {k.rpartition("/")[2]: k for k in WRITABLE_KEYS if "/" in k}


def writable_document(policy: Policy) -> dict[str, Any]:
    """The ``Writable`` section of GET /config, as the settings are now."""
    return {
        "LogLevel": policy.log_level,
        "MaxDevices": policy.max_devices,
        "MaxResultCount": policy.max_result_count,
        "ProfileChange": {
            "StrictDeviceProfileChanges": policy.strict_profile_changes,
            "StrictDeviceProfileDeletes": policy.strict_profile_deletes,
        },
        "UoM": {"Validation": policy.uom_validation},
    }


def check_key(key: str) -> None:
    """core-keeper's key rule: letters, digits and ``-_~;=./`` only."""
    if not key or len(key) > _KEY_MAX or not _KEY.fullmatch(key):
        raise ContractInvalid(
            "key only allows characters between a to z, A to Z, 0 to 9, or one of -_ ~;=./"
            f" (1 to {_KEY_MAX} of them)"
        )


def _join(base: str, name: str) -> str:
    """Go's ``path.Join`` on two parts (what core-keeper flattens with)."""
    parts = [p for p in f"{base}/{name}".split("/") if p not in ("", ".")]
    out: list[str] = []
    for p in parts:
        if p == ".." and out:
            out.pop()
        elif p != "..":
            out.append(p)
    return "/".join(out)


def _scalar_text(value: Any) -> str:
    """A scalar as core-keeper stores it (Go's ``cast.ToString``)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ContractInvalid("the value must be a finite number")
        if value.is_integer():
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    return str(value)


def to_text(value: Any) -> str:
    """An unflattened value as stored: scalars as text, objects and lists as JSON."""
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return _scalar_text(value)


def flatten(key: str, value: Any) -> list[tuple[str, str]]:
    """``value`` spread over keys below ``key``, as core-keeper's ``flatten=true`` does.

    An object adds one level per member (empty objects and nulls add nothing); anything else
    is one key. Unlike core-keeper, which stores a list as an empty string when flattening,
    a list is kept as JSON.
    """
    if isinstance(value, dict):
        out: list[tuple[str, str]] = []
        for name, element in value.items():
            if element is None or (isinstance(element, dict) and not element):
                continue
            out.extend(flatten(_join(key, str(name)), element))
        return out
    if value is None:
        return []
    return [(key, to_text(value))]


def _writable_name(key: str) -> str | None:
    """The name below ``Writable/`` for a key at or below edgemeta's Writable section."""
    if key == WRITABLE:
        return ""
    if key.startswith(WRITABLE + "/"):
        return key[len(WRITABLE) + 1 :]
    return None


def parse_writable(key: str, text: str) -> tuple[WritableKey, Any]:
    """The setting a key of edgemeta's Writable section names, and its value parsed.

    ContractInvalid for a key edgemeta does not know and for a value the setting refuses.
    """
    name = _writable_name(key)
    assert name is not None
    spec = WRITABLE_KEYS.get(name)
    if spec is None:
        hint = f"; did you mean {WRITABLE}/{_SHORT[name]}?" if name in _SHORT else ""
        known = ", ".join(WRITABLE_KEYS)
        raise ContractInvalid(f"'{key}' is not one of edgemeta's writable settings ({known}){hint}")
    try:
        return spec, spec.parse(text)
    except ValueError as exc:
        raise ContractInvalid(f"invalid value {text!r} for {key}: {exc}") from None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Keeper:
    """The key/value store and edgemeta's writable settings in it (see the module docstring)."""

    def __init__(self, store: Store, policy: Policy) -> None:
        self.store = store
        self.policy = policy
        # What each setting was at start (environment, flags, defaults): a deleted key's
        # setting goes back to this.
        self._initial = {k.field: getattr(policy, k.field) for k in WRITABLE_KEYS.values()}
        self._generation = 0  # counts this instance's writes, so a reload never undoes one
        self._warned: dict[str, str] = {}  # stored values already warned about

    def _apply(self, spec: WritableKey, value: Any) -> None:
        before = getattr(self.policy, spec.field)
        setattr(self.policy, spec.field, value)
        if spec.field == "log_level":
            logging.getLogger("edgemeta").setLevel(value)
        if before != value:
            log.info("writable setting %s: %r -> %r", spec.name, before, value)

    async def load(self) -> None:
        """Make the settings what the store says: each stored writable setting over its
        start-up value, the start-up value where none is stored (a stored value that no
        longer passes is logged and left out). Run at start, and every few seconds by
        :meth:`follow` so that instances sharing one database take each other's changes."""
        generation = self._generation
        async with self.store.read() as tx:
            entries = await tx.kv.tree(WRITABLE)
        if generation != self._generation:
            return  # a write of this instance applied meanwhile: what was read may be older
        wanted = dict(self._initial)
        for e in entries:
            try:
                spec, value = parse_writable(e.key, e.value)
            except ContractInvalid as exc:
                if self._warned.get(e.key) != e.value:
                    self._warned[e.key] = e.value
                    log.warning("stored writable setting ignored: %s", exc.message)
                continue
            wanted[spec.field] = value
        for spec in WRITABLE_KEYS.values():
            if getattr(self.policy, spec.field) != wanted[spec.field]:
                self._apply(spec, wanted[spec.field])

    async def follow(self, interval: float) -> None:
        """:meth:`load` every ``interval`` seconds, until cancelled (a failed read is logged
        and retried at the next tick)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.load()
            except Exception as exc:
                log.warning("could not reload the writable settings: %s", exc)

    async def get(self, key: str) -> list[KvEntry]:
        """The entry ``key`` and those below it; NotFound when there is none."""
        check_key(key)
        async with self.store.read() as tx:
            entries = await tx.kv.tree(key)
        if not entries:
            raise NotFound(f"no key starting with '{key}' found")
        return entries

    async def put(self, key: str, value: Any, *, flatten_value: bool) -> list[str]:
        """Store ``value`` at ``key`` (spread below it when ``flatten_value``); returns the
        keys written. Settings of edgemeta's Writable section are checked before anything is
        stored and applied once stored."""
        check_key(key)
        if value is None:
            raise ContractInvalid("the value field is undefined")
        if isinstance(value, dict) and not value:
            raise ContractInvalid("the value field is an empty object")
        pairs = flatten(key, value) if flatten_value else [(key, to_text(value))]
        applied: list[tuple[WritableKey, Any]] = []
        for k, text in pairs:
            check_key(k)
            if len(text) > _VALUE_MAX:
                raise ContractInvalid(f"the value of {k} is longer than {_VALUE_MAX} characters")
            if _writable_name(k) is not None:
                applied.append(parse_writable(k, text))
        now = _now_ms()
        async with self.store.write() as tx:
            for k, text in pairs:
                await tx.kv.put(k, text, now)
        self._generation += 1
        for spec, parsed in applied:
            self._apply(spec, parsed)
        return [k for k, _ in pairs]

    async def delete(self, key: str, *, prefix_match: bool) -> list[str]:
        """Delete ``key`` (and, with ``prefix_match``, every key below it); returns the keys
        deleted. NotFound when there is nothing; Conflict (409) when keys below it remain and
        ``prefix_match`` is off. A deleted writable setting goes back to its start-up value."""
        check_key(key)
        async with self.store.write() as tx:
            below = [e.key for e in await tx.kv.tree(key) if e.key != key]
            if below and not prefix_match:
                raise Conflict(f"keys having the same prefix {key} exist and cannot be deleted")
            deleted = [key] if await tx.kv.delete(key) else []
            if below:
                deleted.extend(await tx.kv.delete_below(key))
        if not deleted:
            raise NotFound(f"key '{key}' not found")
        self._generation += 1
        for k in deleted:
            name = _writable_name(k)
            spec = WRITABLE_KEYS.get(name) if name is not None else None
            if spec is not None:
                self._apply(spec, self._initial[spec.field])
        return deleted
