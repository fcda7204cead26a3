"""autoEvents' downsampling (onChange, onChangeThreshold) on a clock the test drives: each
tick is one interval, so the test knows exactly how many reads happened."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from edgemeta.sdk.autoevents import AutoEvents
from edgemeta.sdk.commands import CommandRunner
from edgemeta.sdk.driver import CommandError, Device, Resource
from edgemeta.sdk.values import Profile

PROFILE = Profile(
    {
        "name": "p",
        "deviceResources": [
            {"name": "level", "properties": {"valueType": "Float64", "readWrite": "R"}},
            {"name": "mode", "properties": {"valueType": "String", "readWrite": "R"}},
        ],
    }
)


class Clock:
    """A sleep that returns only when the test ticks."""

    def __init__(self) -> None:
        self.sleepers: asyncio.Queue[asyncio.Future[None]] = asyncio.Queue()

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self.sleepers.put(fut)
        await fut

    async def tick(self, n: int = 1) -> None:
        """Let ``n`` intervals pass, each read and handled before the next."""
        for _ in range(n):
            (await self.sleepers.get()).set_result(None)
            # The next sleep starts only once this interval's read was handled.
            sleeper = await self.sleepers.get()
            await self.sleepers.put(sleeper)


class Fake:
    """Inventory and driver: one device whose values the test sets."""

    def __init__(self, spec: list[dict[str, Any]]) -> None:
        self.doc = {"name": "d", "profileName": "p", "autoEvents": spec}
        self.values: dict[str, Any] = {"level": 10.0, "mode": "auto"}
        self.reads = 0

    def served(self, name: str) -> Mapping[str, Any] | None:
        return self.doc if self.doc.get("name") == name else None

    def refusal(self, name: str) -> CommandError:
        return CommandError(404, "unknown")

    async def profile(self, name: str) -> Profile:
        return PROFILE

    async def read(self, device: Device, resources: Sequence[Resource]) -> dict[str, Any]:
        self.reads += 1
        return {r.name: self.values[r.name] for r in resources}

    async def write(self, device: Device, values: Sequence[tuple[Resource, Any]]) -> None:
        raise AssertionError("no writes here")


async def run(spec: list[dict[str, Any]]) -> tuple[Fake, Clock, AutoEvents, list[dict[str, Any]]]:
    fake = Fake(spec)
    sent: list[dict[str, Any]] = []

    async def publish(ev: dict[str, Any], correlation: str) -> None:
        sent.append(ev)

    clock = Clock()
    auto = AutoEvents(CommandRunner(fake, fake, publish), publish, sleep=clock.sleep)
    auto.schedule(fake.doc)
    await asyncio.sleep(0)
    return fake, clock, auto, sent


def values(sent: list[dict[str, Any]]) -> list[str]:
    return [ev["readings"][0]["value"] for ev in sent]


async def test_a_constant_value_is_sent_once_not_once_per_interval() -> None:
    fake, clock, auto, sent = await run(
        [{"interval": "50ms", "sourceName": "level", "onChange": True}]
    )
    await clock.tick(10)
    assert fake.reads == 10 and values(sent) == ["10.0"] and auto.suppressed == 9
    fake.values["level"] = 10.5  # any change counts without a threshold
    await clock.tick(3)
    assert values(sent) == ["10.0", "10.5"]
    await auto.stop()


async def test_threshold_a_change_beyond_sends_within_does_not() -> None:
    fake, clock, auto, sent = await run(
        [{"interval": "50ms", "sourceName": "level", "onChange": True, "onChangeThreshold": 1.0}]
    )
    await clock.tick()
    assert values(sent) == ["10.0"]
    for v in (10.4, 10.9, 9.1, 11.0):  # within 1.0 of the last value sent (10.0)
        fake.values["level"] = v
        await clock.tick()
    assert values(sent) == ["10.0"]
    fake.values["level"] = 11.5  # beyond: sent, and the new reference
    await clock.tick()
    fake.values["level"] = 12.2  # within 1.0 of 11.5
    await clock.tick()
    fake.values["level"] = 12.6  # beyond 11.5
    await clock.tick()
    assert values(sent) == ["10.0", "11.5", "12.6"]
    assert fake.reads == 8
    await auto.stop()


async def test_without_on_change_every_interval_is_sent_and_strings_compare_by_value() -> None:
    fake, clock, auto, sent = await run(
        [
            {"interval": "1s", "sourceName": "level"},
            {"interval": "1s", "sourceName": "mode", "onChange": True, "onChangeThreshold": 5},
        ]
    )
    await clock.tick(4)  # two autoEvents share the clock: two ticks each
    assert sorted(ev["sourceName"] for ev in sent) == ["level", "level", "mode"]
    fake.values["mode"] = "manual"
    await clock.tick(2)
    assert [ev["readings"][0]["value"] for ev in sent if ev["sourceName"] == "mode"] == [
        "auto",
        "manual",
    ]
    await auto.stop()


async def test_a_device_no_longer_served_stops_its_autoevents() -> None:
    fake, clock, auto, sent = await run([{"interval": "10ms", "sourceName": "level"}])
    await clock.tick()
    (task,) = auto._tasks["d"]
    fake.doc = {"name": "other"}  # released: served("d") is None now
    (await clock.sleepers.get()).set_result(None)
    await asyncio.wait_for(task, 5)  # the autoEvent ended by itself
    assert clock.sleepers.empty() and len(sent) == 1 and fake.reads == 1
    await auto.stop()
