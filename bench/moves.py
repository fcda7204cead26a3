"""Moves per second and move latency, with responsive edgemeta device services.

    python -m bench.moves                                  # SQLite and PostgreSQL, 20 s each
    python -m bench.moves --backends sqlite --seconds 10 --concurrency 8 --profile

For each backend, edgemeta runs in this process (an SQLite file in a temporary directory, or a
fresh PostgreSQL schema at ``postgresql://postgres@127.0.0.1:5432/postgres?schema=...``,
dropped afterwards) with the in-process bus and default move settings. ``--services`` device
services, each an :class:`edgemeta.sdk.DeviceServiceParticipant` (they answer validation
requests and confirm releases at once), serve ``--devices`` devices. ``--concurrency`` movers,
each with its own slice of the devices, reassign one device after another to the next service
(``POST /api/v3/device/reassign`` through the ASGI app, so no socket: what is measured is the
API and the move engine, store and bus, not HTTP parsing). A move's latency is its request's:
from the call to the answer, which comes after commit B (the new owner has been told).

After a warm-up, the measured run counts moves that ended ``assigned`` (anything else is
reported as a failure) and their latencies. ``--profile`` runs cProfile over the measured run
and prints the top functions by own time (they run in this one process). The figures are
printed as a Markdown table for ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime
import io
import os
import platform
import pstats
import sqlite3
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import asyncpg
import httpx

from bench.movekit import PG, add_devices, edgemeta, reassign
from edgemeta import __version__
from edgemeta.ports import Bus
from edgemeta.sdk import DeviceServiceParticipant


@dataclass
class Result:
    backend: str
    seconds: float = 0.0
    moves: int = 0
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    profile: str = ""

    @property
    def rate(self) -> float:
        return self.moves / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        lat = sorted(self.latencies)
        return lat[min(len(lat) - 1, int(len(lat) * q))] * 1000 if lat else 0.0


async def mover(
    client: httpx.AsyncClient,
    devices: list[str],
    owner: dict[str, int],
    services: list[str],
    until: float,
    result: Result | None,
) -> None:
    i = 0
    while time.monotonic() < until:
        device = devices[i % len(devices)]
        i += 1
        to = (owner[device] + 1) % len(services)
        t0 = time.perf_counter()
        item = await reassign(client, device, services[to])
        elapsed = time.perf_counter() - t0
        state = (item.get("move") or {}).get("state")
        if item["statusCode"] == 200 and state == "assigned":
            owner[device] = to
            if result is not None:
                result.moves += 1
                result.latencies.append(elapsed)
        elif result is not None:
            result.failures[f"{item['statusCode']} {state}: {item.get('message', '')[:80]}"] += 1


async def run_backend(backend: str, args: argparse.Namespace) -> Result:
    result = Result(backend if args.bus_url.startswith("memory") else f"{backend}, mqtt")
    prefix = f"bench-moves-{uuid.uuid4().hex[:8]}"
    async with edgemeta(backend, args.bus_url, bus_prefix=prefix) as (service, client):
        services = [f"ds-{i}" for i in range(args.services)]
        buses: list[Bus] = []
        for name in services:
            if args.bus_url.startswith("memory"):
                buses.append(service.bus)
            else:  # each device service has its own connection to the broker
                from edgemeta.bus.mqtt import MqttBus

                buses.append(MqttBus(args.bus_url, client_id_prefix=f"bench-{name}"))
                await buses[-1].start()
        participants = [
            DeviceServiceParticipant(
                name, api_url="http://edgemeta", bus=bus, prefix=prefix, http=client
            )
            for name, bus in zip(services, buses, strict=True)
        ]
        for p in participants:
            await p.start()
        names = [f"dev-{i:06d}" for i in range(args.devices)]
        owner = {n: i % len(services) for i, n in enumerate(names)}
        await add_devices(client, names, [services[owner[n]] for n in names])
        slices = [names[k :: args.concurrency] for k in range(args.concurrency)]

        async def load(seconds: float, into: Result | None) -> None:
            until = time.monotonic() + seconds
            await asyncio.gather(*(mover(client, s, owner, services, until, into) for s in slices))

        await load(args.warmup, None)
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        t0 = time.monotonic()
        await load(args.seconds, result)
        result.seconds = time.monotonic() - t0
        if profiler:
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
            result.profile = out.getvalue()
        # Every service serves exactly the devices the store names it owner of.
        await asyncio.sleep(0.5)
        served = {n: [p.name for p in participants if n in p.serving] for n in names}
        wrong = [n for n in names if served[n] != [services[owner[n]]]]
        if wrong:
            result.failures[f"served wrongly at the end: {len(wrong)} devices"] += 1
        for p in participants:
            await p.stop()
        for bus in buses:
            if bus is not service.bus:
                await bus.close()
    return result


async def versions() -> str:
    pg = "?"
    try:
        conn = await asyncpg.connect(PG)
        try:
            pg = str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()
    except (OSError, asyncpg.PostgresError):
        pass
    return (
        f"edgemeta {__version__}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, PostgreSQL {pg}"
    )


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def table(results: list[Result], args: argparse.Namespace) -> str:
    lines = [
        "| backend | moves | moves/s | p50 ms | p90 ms | p99 ms | max ms | failures |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        fails = "; ".join(f"{k} x{v}" for k, v in r.failures.items()) or "0"
        lines.append(
            f"| {r.backend} | {r.moves} | {r.rate:.0f} | {r.pct(0.5):.1f} | {r.pct(0.9):.1f} "
            f"| {r.pct(0.99):.1f} | {max(r.latencies, default=0) * 1000:.1f} | {fails} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    results = []
    for backend in args.backends.split(","):
        r = await run_backend(backend, args)
        results.append(r)
        print(
            f"{backend}: {r.moves} moves in {r.seconds:.1f} s = {r.rate:.0f}/s; "
            f"p50 {r.pct(0.5):.1f} ms, p99 {r.pct(0.99):.1f} ms; failures {dict(r.failures)}",
            flush=True,
        )
        if r.profile:
            print(r.profile)
    print()
    print(f"Date: {datetime.date.today().isoformat()}; machine: {machine()}")
    print(f"Versions: {await versions()}")
    print(
        f"Command: python -m bench.moves --backends {args.backends} --seconds {args.seconds:g} "
        f"--warmup {args.warmup:g} --devices {args.devices} --services {args.services} "
        f"--concurrency {args.concurrency} --bus-url {args.bus_url}"
        f"{' --profile' if args.profile else ''}"
    )
    print()
    print(table(results, args))
    return 0 if all(not r.failures for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--devices", type=int, default=400)
    ap.add_argument("--services", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=8, help="reassign requests in flight")
    ap.add_argument("--bus-url", default="memory://", help="memory:// or mqtt://host:port")
    ap.add_argument("--profile", action="store_true", help="cProfile the measured run")
    return asyncio.run(main_async(ap.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
