"""A device's ``autoEvents``: its sources read on a schedule and sent to core-data.

Each autoEvent (``interval`` a Go duration such as ``"10s"`` or ``"50ms"``, ``sourceName`` a
device command or resource) reads its source every interval through the same path as a get
command (a device released, locked or down is not read) and publishes the event to core-data.

With ``onChange`` the seed's downsampling applies: an event is sent only if some reading
changed since the **last one sent** (compared with what was sent, not with the previous
read, so a slow drift is still reported once it adds up). For a numeric reading,
``onChangeThreshold`` > 0 means changed only by **more than** the threshold; other readings
change when their value does. A constant value is sent once, not once per interval.

The clock is injectable (``sleep``) so tests drive the intervals themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from edgemeta.domain.durations import DurationError, parse_duration
from edgemeta.sdk import values
from edgemeta.sdk.commands import CommandRunner
from edgemeta.sdk.driver import CommandError

log = logging.getLogger("edgemeta.sdk.autoevents")

Sleep = Callable[[float], Awaitable[None]]
Readings = dict[str, dict[str, Any]]


def changed(last: Readings | None, readings: list[dict[str, Any]], threshold: float) -> bool:
    """Whether ``readings`` differ from the ``last`` ones sent (beyond ``threshold`` for
    numbers)."""
    if last is None or len(last) != len(readings):
        return True
    for r in readings:
        before = last.get(r["resourceName"])
        if before is None:
            return True
        new, old = values.reading_number(r), values.reading_number(before)
        if new is not None and old is not None and threshold > 0:
            if abs(new - old) > threshold:
                return True
        elif values.reading_key(r) != values.reading_key(before):
            return True
    return False


class AutoEvents:
    """The running autoEvents of the devices one service serves."""

    def __init__(
        self,
        runner: CommandRunner,
        publish: Callable[[dict[str, Any], str], Awaitable[None]],
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.runner = runner
        self.publish = publish
        self.sleep = sleep
        self.sent = 0  # events published
        self.suppressed = 0  # reads not sent because nothing changed (onChange)
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._specs: dict[str, Any] = {}

    def schedule(self, device: Mapping[str, Any]) -> None:
        """Run ``device``'s autoEvents (restarted only if they changed)."""
        name = str(device["name"])
        spec = device.get("autoEvents") or []
        if name in self._tasks and self._specs.get(name) == spec:
            return
        self.cancel(name)
        self._specs[name] = spec
        self._tasks[name] = [
            asyncio.create_task(
                self._run(name, ae), name=f"autoevent-{name}-{ae.get('sourceName')}"
            )
            for ae in spec
            if isinstance(ae, Mapping)
        ]

    def cancel(self, name: str) -> None:
        """Stop ``name``'s autoEvents."""
        self._specs.pop(name, None)
        for task in self._tasks.pop(name, []):
            task.cancel()

    async def stop(self) -> None:
        """Stop every autoEvent."""
        tasks = [t for ts in self._tasks.values() for t in ts]
        self._tasks.clear()
        self._specs.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, name: str, spec: Mapping[str, Any]) -> None:
        source = str(spec.get("sourceName", ""))
        try:
            interval = parse_duration(str(spec.get("interval", ""))) / 1e9
        except DurationError:
            log.warning("%s: autoEvent %s has no valid interval: not run", name, source)
            return
        if interval <= 0:
            log.warning("%s: autoEvent %s has interval 0: not run", name, source)
            return
        on_change = bool(spec.get("onChange", False))
        threshold = float(spec.get("onChangeThreshold", 0) or 0)
        last: Readings | None = None
        while True:
            await self.sleep(interval)
            doc = self.runner.inventory.served(name)
            if doc is None:
                return
            try:
                profile = await self.runner.inventory.profile(str(doc.get("profileName", "")))
                cmd = profile.command(source)
                resources = list(values.read_resources(cmd))
                ev = await self.runner.read(name, resources, profile, cmd.name, cmd.mappings)
            except CommandError as exc:
                log.debug("%s: autoEvent %s not read: %s", name, source, exc.message)
                continue
            if on_change and not changed(last, ev["readings"], threshold):
                self.suppressed += 1
                continue
            try:
                await self.publish(ev, "")
            except Exception:
                # Not sent: the next read is compared with what was sent before, so it goes.
                log.exception("%s: publishing autoEvent %s failed", name, source)
                continue
            last = {r["resourceName"]: r for r in ev["readings"]}
            self.sent += 1
