"""A scale point: the same database grown to 10k, 100k and 1M devices, measured at each size.

    python -m bench.scale --devices 10000,100000,1000000              # SQLite and PostgreSQL
    python -m bench.scale --backends sqlite --devices 10000,100000 --keep

For each backend, one fresh database (an SQLite file in a temporary directory, or a new
PostgreSQL schema at ``$EDGEMETA_BENCH_POSTGRES_URL``) is seeded through the API, exactly as
``bench.run`` seeds (``POST /api/v3/device?bypassValidation=true``, 100 devices a request, 4
requests in flight, the data set of ``bench/workload.py``: 20 services, 50 profiles), and grown
from one size to the next. At each size the relay is given time to publish every event, the
``edgemeta serve`` process is stopped and started again on the populated database, and then:

- **start**: seconds from spawn to the first 200 of ``GET /api/v3/ping``;
- **idle RSS**: once the new process has settled;
- **get by name**, **list by service** (a page of 100: the first page; a random page in the
  second half of a random service; the cold figure is the first such deep page of each
  service, which walks to its offset once) and **add** (one new device): one client, one
  keep-alive connection, requests one after another, so the figures are latencies of an
  unloaded server (p50, p99) and its CPU per request;
- **database size**: the SQLite files, or every relation of the schema.

A move is not measured here (it needs responsive device services: ``bench.moves``). The
figures print as a Markdown table and go to ``bench/results/scale-<stamp>.json``; the database
is removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import random
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import workload as wl
from bench.procs import Database, Server, edgemeta_server, free_port, request
from bench.run import RESULTS, machine

SEED_CONCURRENCY = 4


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC).strftime('%H:%M:%S')}] {msg}", flush=True)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def seed_base(port: int) -> None:
    for path, body in (
        ("/api/v3/deviceservice", wl.service_requests()),
        ("/api/v3/deviceprofile", wl.profile_requests()),
    ):
        status, out = request(port, "POST", path, body)
        if status != 207 or any(r["statusCode"] != 201 for r in orjson.loads(out)):
            raise RuntimeError(f"seeding {path}: {status} {out[:300]!r}")


def grow(port: int, start: int, stop: int) -> float:
    """Add seeded devices ``start`` .. ``stop - 1`` through the batch API; devices/s."""
    work: queue.Queue[int] = queue.Queue()
    for at in range(start, stop, wl.BATCH):
        work.put(at)
    failures: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while not failures:
            try:
                at = work.get_nowait()
            except queue.Empty:
                break
            conn.request(
                "POST",
                "/api/v3/device?bypassValidation=true",
                wl.seed_body(at, min(at + wl.BATCH, stop)),
                {"Content-Type": "application/json"},
            )
            resp = conn.getresponse()
            out = resp.read()
            bad = [r for r in orjson.loads(out) if r["statusCode"] != 201]
            if resp.status != 207 or bad:
                failures.append(f"batch at {at}: {resp.status} {bad[:1]}")
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(SEED_CONCURRENCY)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError("seeding failed: " + "; ".join(failures[:3]))
    return (stop - start) / (time.perf_counter() - t0)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


def timed(
    server: Server,
    requests: list[tuple[str, str, bytes | None]],
    expect: int,
) -> dict[str, Any]:
    """Send ``requests`` one after another on one connection: latency and server CPU."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    latencies: list[float] = []
    cpu0 = server.cpu_s()
    try:
        for method, path, body in requests:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            t0 = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            out = resp.read()
            latencies.append(time.perf_counter() - t0)
            if resp.status != expect:
                raise RuntimeError(f"{method} {path}: {resp.status} {out[:200]!r}")
    finally:
        conn.close()
    cpu = server.cpu_s() - cpu0
    return {
        "requests": len(latencies),
        "p50_ms": round(pct(latencies, 0.50) * 1e3, 3),
        "p99_ms": round(pct(latencies, 0.99) * 1e3, 3),
        "mean_ms": round(sum(latencies) / len(latencies) * 1e3, 3),
        "server_cpu_us": round(cpu / len(latencies) * 1e6, 1),
    }


def list_path(service: int, offset: int) -> str:
    return f"/api/v3/device/service/name/{wl.service_name(service)}?offset={offset}&limit={wl.PAGE}"


def measure(server: Server, size: int, rng: random.Random, tag: str, n: int) -> dict[str, Any]:
    per_service = size // wl.SERVICES
    get = [
        ("GET", f"/api/v3/device/name/{wl.device_name(rng.randrange(size))}", None)
        for _ in range(n * 4)
    ]
    first = [("GET", list_path(rng.randrange(wl.SERVICES), 0), None) for _ in range(n)]

    def deep_offset() -> int:
        return rng.randrange(per_service // 2, per_service - wl.PAGE)

    cold = [("GET", list_path(s, deep_offset()), None) for s in range(wl.SERVICES)]
    deep = [("GET", list_path(rng.randrange(wl.SERVICES), deep_offset()), None) for _ in range(n)]
    adds = []
    for i in range(n):
        doc = wl.DEVICE_TEMPLATE % (
            f"scale-{tag}-{size}-{i}",
            wl.service_name(i % wl.SERVICES),
            wl.profile_name(i % wl.PROFILES),
            "9.9",
        )
        adds.append(
            (
                "POST",
                "/api/v3/device?bypassValidation=true",
                f'[{{"apiVersion":"v3","device":{doc}}}]'.encode(),
            )
        )
    out: dict[str, Any] = {}
    timed(server, get[: n // 2], 200)  # warm the page cache a little
    out["get"] = timed(server, get, 200)
    out["list_first"] = timed(server, first, 200)
    out["list_deep_cold"] = timed(server, cold, 200)
    out["list_deep"] = timed(server, deep, 200)
    out["add"] = timed(server, adds, 207)
    return out


def server_for(url: str, logfile: Path) -> Server:
    server = edgemeta_server(url, logfile)
    server.env["EDGEMETA_KEEPER_PORT"] = str(free_port())  # other runs may hold 59890
    server.env["EDGEMETA_COMMAND_PORT"] = str(free_port())
    return server


def run_backend(backend: str, sizes: list[int], args: argparse.Namespace, stamp: str) -> list[Any]:
    db = Database(backend, f"scale_{stamp}")
    logdir = RESULTS / f"scale-{stamp}"
    logdir.mkdir(parents=True, exist_ok=True)
    logfile = logdir / f"edgemeta-{backend}.log"
    rng = random.Random(10)
    points: list[dict[str, Any]] = []
    have = 0
    try:
        for size in sizes:
            server = server_for(db.url, logfile)
            server.start(timeout=120)
            try:
                if have == 0:
                    seed_base(server.port)
                log(f"{backend}: growing {have} -> {size} devices (load {load()})")
                t0 = time.perf_counter()
                rate = grow(server.port, have, size)
                relay_s = db.wait_delivered(timeout=1800)
                log(
                    f"{backend}: {size} devices at {rate:.0f} devices/s,"
                    f" relay drained in {relay_s:.1f} s ({time.perf_counter() - t0:.0f} s)"
                )
                have = size
            finally:
                server.stop()
            server = server_for(db.url, logfile)
            startup = server.start(timeout=120)
            try:
                server.settle(10)
                rss = server.rss()
                point: dict[str, Any] = {
                    "backend": backend,
                    "devices": size,
                    "seed_devices_per_s": round(rate, 1),
                    "startup_s": round(startup, 3),
                    "rss_idle_mib": round(rss / 2**20, 1),
                    "load_before": load(),
                }
                point.update(measure(server, size, rng, stamp, args.requests))
                point["load_after"] = load()
            finally:
                server.stop()
            point["db_mib"] = round(db.size_bytes() / 2**20, 1)
            points.append(point)
            log(f"{backend} {size}: {json.dumps(point)}")
    finally:
        if not args.keep:
            db.drop()
    return points


def table(points: list[dict[str, Any]]) -> str:
    head = (
        "| backend | devices | start s | idle RSS MiB | get p50 / p99 ms | list first p50 / p99 ms"
        " | list deep p50 / p99 ms | deep, cold mean ms | add p50 / p99 ms"
        " | CPU us: get / first / deep / add | DB MiB | seeded dev/s | load |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
    )
    rows = []
    for p in points:

        def lat(k: str, p: dict[str, Any] = p) -> str:
            return f"{p[k]['p50_ms']:.2f} / {p[k]['p99_ms']:.2f}"

        cpu = " / ".join(
            f"{p[k]['server_cpu_us']:.0f}" for k in ("get", "list_first", "list_deep", "add")
        )
        rows.append(
            f"| {p['backend']} | {p['devices']:,} | {p['startup_s']:.2f} | {p['rss_idle_mib']:.0f}"
            f" | {lat('get')} | {lat('list_first')} | {lat('list_deep')}"
            f" | {p['list_deep_cold']['mean_ms']:.1f} | {lat('add')} | {cpu}"
            f" | {p['db_mib']:,.0f} | {p['seed_devices_per_s']:,.0f} | {p['load_before']} |"
        )
    return head + "\n".join(rows) + "\n"


def ratios(points: list[dict[str, Any]]) -> str:
    lines = []
    for backend in sorted({p["backend"] for p in points}):
        mine = sorted((p for p in points if p["backend"] == backend), key=lambda p: p["devices"])
        lo, hi = mine[0], mine[-1]
        for k in ("list_first", "list_deep", "get"):
            lines.append(
                f"- {backend} {k}: p50 {hi['devices']:,} / {lo['devices']:,} = "
                f"{hi[k]['p50_ms'] / lo[k]['p50_ms']:.2f}, server CPU "
                f"{hi[k]['server_cpu_us'] / lo[k]['server_cpu_us']:.2f}"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--devices", default="10000,100000,1000000")
    parser.add_argument("--requests", type=int, default=400, help="requests per figure")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)
    sizes = sorted(int(x) for x in args.devices.split(","))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    info = machine()
    log(f"machine {info['cpu']}, {info['cores']} cores; git {info['git']}; load {load()}")
    points: list[dict[str, Any]] = []
    for backend in args.backends.split(","):
        points.extend(run_backend(backend, sizes, args, stamp))
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = {
            "stamp": stamp,
            "machine": info,
            "command": " ".join(
                ["python -m bench.scale", *(argv if argv is not None else sys.argv[1:])]
            ),
            "points": points,
        }
        Path(RESULTS / f"scale-{stamp}.json").write_text(json.dumps(out, indent=1))
    print(table(points))
    print(ratios(points))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
