"""A wearable walks between two wards, each served by its own virtual device service.

    python examples/walking_wearable.py                  # its own edgemeta, in-process
    python examples/walking_wearable.py --steps 4 --pause 0.2
    python examples/walking_wearable.py --url http://127.0.0.1:59881 \\
        --bus-url mqtt://127.0.0.1:1883                  # against a running edgemeta

Two device services, ``ward-a`` and ``ward-b``, are built on :mod:`edgemeta.sdk`: each is a
:class:`~edgemeta.sdk.DeviceServiceParticipant` that registers itself, answers validation
requests, serves the devices the store names it owner of and confirms when one moves away.
A wearable, ``badge-7``, is added to ``ward-a`` and then walks: at each step the example asks
edgemeta to reassign it to the other ward (``POST /api/v3/device/reassign``), prints the move
(from, to, state, steps) and waits until exactly the new ward serves it.

A watcher looks at both services' device lists all along (every millisecond or so, during and
between moves) and counts the devices served by both wards or by none once a step has settled.
The example exits with status 1 if it ever saw the wearable served twice, or not served at the
end of a step.

Without ``--url`` the example starts edgemeta itself on a temporary SQLite file and the
in-process bus (nothing else needed). With ``--url`` the device services reach edgemeta over
HTTP and its bus (``--bus-url``, the one that edgemeta was started with: ``mqtt://`` or
``nats://``); ``memory://`` cannot be shared between processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from edgemeta.ports import Bus
from edgemeta.sdk import DeviceServiceParticipant

WARDS = ("ward-a", "ward-b")
DEVICE = "badge-7"
PROFILE = {
    "name": "wearable",
    "manufacturer": "Acme",
    "model": "W-1",
    "deviceResources": [
        {"name": "heartRate", "properties": {"valueType": "Int32", "readWrite": "R"}},
        {"name": "battery", "properties": {"valueType": "Float32", "readWrite": "R"}},
    ],
}


@dataclass
class Watch:
    """Who serves the wearable, sampled continuously."""

    services: dict[str, DeviceServiceParticipant]
    samples: int = 0
    twice: int = 0
    seen: list[str] = field(default_factory=list)

    def servers(self) -> list[str]:
        return sorted(n for n, p in self.services.items() if DEVICE in p.serving)

    async def run(self) -> None:
        while True:
            now = self.servers()
            self.samples += 1
            if len(now) > 1:
                self.twice += 1
                print(f"  !! served by {now} at once", flush=True)
            await asyncio.sleep(0.001)

    async def settle(self, expected: str, within: float = 10.0) -> list[str]:
        """Wait until exactly ``expected`` serves the wearable; returns who serves it."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while self.servers() != [expected]:  # noqa: ASYNC110 (polls the participants)
                    await asyncio.sleep(0.002)
        return self.servers()


@contextlib.asynccontextmanager
async def edgemeta_in_process(db: str) -> AsyncIterator[tuple[httpx.AsyncClient, Bus]]:
    """edgemeta on an SQLite file and the in-process bus; an HTTP client bound to it."""
    from edgemeta.bootstrap import build
    from edgemeta.settings import Settings

    service = await build(
        Settings(
            database_url=f"sqlite:///{db}",
            move_ack_timeout=2.0,
            validation_timeout=2.0,
            device_validation="auto",
        )
    )
    await service.start()
    transport = httpx.ASGITransport(app=service.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
            yield client, service.bus
    finally:
        await service.stop()


@contextlib.asynccontextmanager
async def edgemeta_remote(url: str, bus_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Bus]]:
    """A running edgemeta at ``url`` and a connection to its bus."""
    bus: Bus
    if bus_url.startswith("mqtt://"):
        from edgemeta.bus.mqtt import MqttBus

        bus = MqttBus(bus_url, client_id_prefix="walking-wearable")
    elif bus_url.startswith("nats://"):
        from edgemeta.bus.nats import NatsBus

        bus = NatsBus(bus_url)
    else:
        raise SystemExit("--url needs --bus-url mqtt://... or nats://... (edgemeta's bus)")
    await bus.start()
    base = url.rstrip("/").removesuffix("/api/v3")
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            yield client, bus
    finally:
        await bus.close()


async def walk(
    client: httpx.AsyncClient, bus: Bus, steps: int, pause: float, prefix: str = "edgex"
) -> int:
    async def said(what: str) -> Any:
        async def hook(device: dict[str, Any]) -> None:
            print(f"  {what} {device['name']}", flush=True)

        return hook

    base = str(client.base_url)
    services = {
        name: DeviceServiceParticipant(
            name,
            api_url=base,
            bus=bus,
            prefix=prefix,
            http=client,
            on_serve=await said(f"{name}: serving"),
            on_release=await said(f"{name}: released"),
        )
        for name in WARDS
    }
    for p in services.values():
        await p.start()
    watch = Watch(services)
    watcher = asyncio.create_task(watch.run())
    failures = 0
    try:
        r = await client.post(
            "/api/v3/deviceprofile", json=[{"apiVersion": "v3", "profile": PROFILE}]
        )
        r.raise_for_status()
        # Start from ward-a (a previous run against the same edgemeta may have left it anywhere).
        await client.delete(f"/api/v3/device/name/{DEVICE}")
        device = {
            "name": DEVICE,
            "serviceName": WARDS[0],
            "profileName": "wearable",
            "adminState": "UNLOCKED",
            "operatingState": "UP",
            "protocols": {"ble": {"mac": "c0:ff:ee:00:00:07"}},
        }
        r = await client.post("/api/v3/device", json=[{"apiVersion": "v3", "device": device}])
        print(f"add {DEVICE} to {WARDS[0]}: {r.json()[0]['statusCode']}", flush=True)
        print(f"  served by {await watch.settle(WARDS[0])}", flush=True)
        here = WARDS[0]
        for step in range(1, steps + 1):
            there = WARDS[1] if here == WARDS[0] else WARDS[0]
            r = await client.post(
                "/api/v3/device/reassign",
                json=[
                    {
                        "apiVersion": "v3",
                        "reassign": {
                            "deviceName": DEVICE,
                            "serviceName": there,
                            "requestedBy": "walking-wearable",
                            "note": f"step {step}: walked into {there}",
                        },
                    }
                ],
            )
            item = r.json()[0]
            move = item.get("move") or {}
            outcomes = ", ".join(f"{s['step']}:{s['outcome']}" for s in move.get("steps", []))
            print(
                f"step {step}: move {move.get('id', '?')[:8]} {move.get('fromService')} -> "
                f"{move.get('toService')}: {move.get('state')} ({item['statusCode']}) "
                f"[{outcomes}]",
                flush=True,
            )
            expected = there if item["statusCode"] == 200 else here
            served = await watch.settle(expected)
            ok = served == [expected]
            print(f"  served by {served} {'(exactly one)' if ok else '!! expected ' + expected}")
            failures += not ok
            here = expected
            await asyncio.sleep(pause)
        history = (await client.get(f"/api/v3/device/name/{DEVICE}/moves")).json()
        print(f"history: {history['totalCount']} moves of {DEVICE} recorded")
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        for p in services.values():
            await p.stop()
    print(
        f"watched {watch.samples} samples: served twice {watch.twice} times, "
        f"steps not settled on one ward {failures}"
    )
    return 1 if watch.twice or failures else 0


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=6, help="moves to make (default 6)")
    ap.add_argument("--pause", type=float, default=0.5, help="seconds between steps")
    ap.add_argument("--url", help="a running edgemeta (default: start one in-process)")
    ap.add_argument("--bus-url", default="", help="with --url: edgemeta's bus (mqtt:// or nats://)")
    ap.add_argument("--prefix", default="edgex", help="with --url: edgemeta's base topic prefix")
    args = ap.parse_args(argv)
    if args.url:
        async with edgemeta_remote(args.url, args.bus_url) as (client, bus):
            return await walk(client, bus, args.steps, args.pause, args.prefix)
    with tempfile.TemporaryDirectory(prefix="walking-wearable-") as tmp:
        async with edgemeta_in_process(f"{tmp}/edgemeta.db") as (client, bus):
            return await walk(client, bus, args.steps, args.pause)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
