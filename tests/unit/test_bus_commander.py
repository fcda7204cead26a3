"""core-command's bus delivery with one standing answer subscription: concurrent commands
each get their own answer, a stray or late answer is dropped, a slow service is a 504, and
closing the commander fails whatever still waits (in-process bus)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from edgemeta.bus.envelope import decode, envelope
from edgemeta.bus.memory import MemoryBus
from edgemeta.domain.errors import PeerTimeout, ServiceUnavailable
from edgemeta.peers.commands import BusCommander
from edgemeta.ports import CommandCall


def _call(device: str) -> CommandCall:
    return CommandCall("ds1", "", device, "temp", "get", None, {}, device)


async def _device_service(bus: MemoryBus, delay: dict[str, float]) -> asyncio.Task[None]:
    """Answers each request with its device's name, after that device's delay; first a
    stray answer to a request nobody made."""
    sub = await bus.subscribe("edgex/device/command/request/ds1/#")

    async def answer(topic: str, request_id: str, device: str) -> None:
        await asyncio.sleep(delay.get(device, 0))
        body = {"apiVersion": "v3", "statusCode": 200, "event": {"deviceName": device}}
        await bus.publish(f"edgex/response/ds1/{request_id}", envelope(body))

    async def serve() -> None:
        try:
            while True:
                m = await sub.get()
                req = decode(m.payload)
                device = m.topic.split("/")[-3]
                await bus.publish("edgex/response/ds1/nobody-asked", envelope({"x": 1}))
                asyncio.get_running_loop().create_task(answer(m.topic, req["requestID"], device))
        finally:
            await sub.close()

    return asyncio.create_task(serve())


async def test_concurrent_commands_each_get_their_own_answer() -> None:
    bus = MemoryBus()
    await bus.start()
    ds = await _device_service(bus, {"d0": 0.05, "d3": 0.02})
    commander = BusCommander(bus)
    try:
        answers = await asyncio.gather(*(commander.call(_call(f"d{i}"), 2.0) for i in range(8)))
        for i, a in enumerate(answers):
            assert a.status == 200
            assert orjson.loads(a.body)["event"]["deviceName"] == f"d{i}"
        assert commander._pending == {}  # nothing left behind
    finally:
        ds.cancel()
        await commander.close()
        await bus.close()


async def test_a_slow_answer_is_a_504_and_then_dropped() -> None:
    bus = MemoryBus()
    await bus.start()
    ds = await _device_service(bus, {"slow": 0.3})
    commander = BusCommander(bus)
    try:
        with pytest.raises(PeerTimeout):
            await commander.call(_call("slow"), 0.05)
        await asyncio.sleep(0.4)  # the late answer arrives and is dropped unread
        fast = await commander.call(_call("fast"), 2.0)
        assert orjson.loads(fast.body)["event"]["deviceName"] == "fast"
    finally:
        ds.cancel()
        await commander.close()
        await bus.close()


async def test_closing_fails_what_still_waits() -> None:
    bus = MemoryBus()
    await bus.start()
    ds = await _device_service(bus, {"never": 60})
    commander = BusCommander(bus)
    waiting = asyncio.create_task(commander.call(_call("never"), 30))
    await asyncio.sleep(0.05)
    await commander.close()
    with pytest.raises(ServiceUnavailable):
        await waiting
    ds.cancel()
    await bus.close()
