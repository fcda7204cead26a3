"""Running a get or set command against the driver, whatever it came by (bus or REST).

Before the driver is called, in this order (each refusal sends nothing to the device):

======================================================================  ======
refusal                                                                 status
======================================================================  ======
device not served here and never was                                    404
device released by this service (moved away, or deleted), or arriving   423
on a move not yet confirmed to this service
device ``adminState`` LOCKED, or ``operatingState`` DOWN                423
command not in the profile; not readable/writable; bad or out-of-range  see
value                                                                   values
======================================================================  ======

The served set is the participant's (:mod:`edgemeta.sdk.participant`): a device is served
from the moment the store names this service and any move to it is confirmed, until the
release. The check is made again immediately before the driver is called (nothing awaited in
between), and every driver call is counted per device so a release waits for those in flight
(:meth:`CommandRunner.drain`) before it is confirmed: once a service confirms a release, its
driver never touches the device again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from edgemeta.sdk import values
from edgemeta.sdk.driver import CommandError, Device, Driver, Resource
from edgemeta.sdk.events import event, now_ns

log = logging.getLogger("edgemeta.sdk.commands")

LOCKED = 423


class Inventory(Protocol):
    """Where a command finds its device and profile (the device service)."""

    def served(self, name: str) -> Mapping[str, Any] | None:
        """The document of a device this service serves now, else None."""

    def refusal(self, name: str) -> CommandError:
        """Why a device not served is refused (404 unknown, 423 released or arriving)."""

    async def profile(self, name: str) -> values.Profile:
        """The profile called ``name`` (fetched once, kept up to date)."""


@dataclass(frozen=True, slots=True)
class Options:
    """A get's reserved query parameters (EdgeX's ``ds-pushevent`` / ``ds-returnevent``)."""

    push_event: bool = False
    return_event: bool = True

    @classmethod
    def of(cls, params: Mapping[str, Any] | None) -> Options:
        """From query parameters, as the Go SDK reads them (``"true"``/``"false"``; EdgeX 2's
        ``"yes"``/``"no"`` too)."""
        params = params or {}
        push = str(params.get("ds-pushevent", "false")).lower() in ("true", "yes")
        ret = str(params.get("ds-returnevent", "true")).lower() not in ("false", "no")
        return cls(push, ret)


def _usable(doc: Mapping[str, Any]) -> None:
    name = doc.get("name")
    if doc.get("adminState") == "LOCKED":
        raise CommandError(LOCKED, f"device '{name}' is locked (adminState LOCKED)")
    if doc.get("operatingState") == "DOWN":
        raise CommandError(LOCKED, f"device '{name}' is down (operatingState DOWN)")


class CommandRunner:
    """Gets and sets on the devices of one service, through its driver."""

    def __init__(
        self,
        inventory: Inventory,
        driver: Driver,
        publish: Callable[[dict[str, Any], str], Awaitable[None]],
    ) -> None:
        self.inventory = inventory
        self.driver = driver
        self.publish = publish  # (event, correlation id): to core-data
        self.driver_calls = 0  # every call made (tests and logs)
        self._inflight: dict[str, int] = {}
        self._idle: dict[str, asyncio.Event] = {}

    async def _resolve(self, name: str, command: str) -> tuple[values.Profile, values.Command]:
        doc = self.inventory.served(name)
        if doc is None:
            raise self.inventory.refusal(name)
        _usable(doc)
        profile = await self.inventory.profile(str(doc.get("profileName", "")))
        return profile, profile.command(command)

    @contextlib.asynccontextmanager
    async def _driving(self, name: str) -> AsyncIterator[Device]:
        # Checked again here, with nothing awaited since: a release that happened while the
        # profile was fetched is seen, and the driver is not called.
        doc = self.inventory.served(name)
        if doc is None:
            raise self.inventory.refusal(name)
        _usable(doc)
        self._inflight[name] = self._inflight.get(name, 0) + 1
        self._idle.setdefault(name, asyncio.Event()).clear()
        self.driver_calls += 1
        try:
            yield Device.of(doc)
        finally:
            self._inflight[name] -= 1
            if not self._inflight[name]:
                del self._inflight[name]
                self._idle.pop(name).set()

    async def drain(self, name: str, within: float) -> bool:
        """Wait until no driver call is in flight for ``name`` (False if one outlasted
        ``within`` seconds)."""
        idle = self._idle.get(name)
        if idle is None:
            return True
        try:
            async with asyncio.timeout(within):
                await idle.wait()
        except TimeoutError:
            return False
        return True

    async def read(
        self,
        name: str,
        resources: list[Resource],
        profile: values.Profile,
        source: str,
        mappings: Mapping[str, Mapping[str, str]] | None = None,
    ) -> dict[str, Any]:
        """Read ``resources`` through the driver: the Event DTO of their readings (each value
        through its resource's ``mappings``, when the command has them)."""
        async with self._driving(name) as device:
            try:
                got = await self.driver.read(device, resources)
            except CommandError:
                raise
            except Exception as exc:
                log.exception("%s: reading %s failed", name, source)
                raise CommandError(500, f"driver failed to read '{source}': {exc}") from None
        if isinstance(got, Mapping):
            missing = [r.name for r in resources if r.name not in got]
            if missing:
                raise CommandError(500, f"driver returned no value for '{missing[0]}'")
            ordered = [got[r.name] for r in resources]
        else:
            ordered = list(got)
            if len(ordered) != len(resources):
                raise CommandError(500, f"driver returned {len(ordered)} values for {source}")
        origin = now_ns()
        readings = [
            values.reading(name, profile.name, r, v, origin, (mappings or {}).get(r.name))
            for r, v in zip(resources, ordered, strict=True)
        ]
        return event(name, profile.name, source, readings, origin)

    async def get(
        self, name: str, command: str, options: Options = Options(), correlation_id: str = ""
    ) -> dict[str, Any]:
        """Run a get command: the event read (pushed to core-data with ``push_event``)."""
        profile, cmd = await self._resolve(name, command)
        resources = list(values.read_resources(cmd))
        ev = await self.read(name, resources, profile, cmd.name, cmd.mappings)
        if options.push_event:
            await self.publish(ev, correlation_id)
        return ev

    async def set(self, name: str, command: str, given: Mapping[str, Any]) -> None:
        """Run a set command: every value checked first, then written through the driver."""
        if not isinstance(given, Mapping):
            raise CommandError(400, "a set request is a JSON object of resource name to value")
        _, cmd = await self._resolve(name, command)
        checked = values.write_values(cmd, given)
        async with self._driving(name) as device:
            try:
                await self.driver.write(device, checked)
            except CommandError:
                raise
            except Exception as exc:
                log.exception("%s: writing %s failed", name, command)
                raise CommandError(500, f"driver failed to write '{command}': {exc}") from None
