"""Run the benchmarks: ``python -m bench.run [--quick] [--backends ...] [--sizes ...]``.

1. The ceiling: a bare ASGI app, a Starlette "hello" and a FastAPI "hello" on the same server
   stack, each in its own process; the bare app again at the end, to see the machine drift.
2. For each backend and size: a fresh database and a fresh ``edgemeta serve`` process; seed it
   through the API; restart it on the populated database; run every scenario with wrk
   (warm-up, then the measured run) from a separate process.
3. Write ``bench/results/<timestamp>.json`` and regenerate the figures in ``BENCHMARKS.md``.

See bench/README.md for what each scenario measures.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import importlib.util
import json
import platform
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psutil

from bench import report
from bench import workload as wl
from bench.procs import Database, Server, app_server, edgemeta_server, request, wrk

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

# name: (what it measures, wrk connections, devices per request or 0 for a read)
SCENARIOS: dict[str, tuple[str, int, int]] = {
    "ping": ("GET /ping (framework + middleware, no store)", 50, 0),
    "get": ("GET /device/name/{random seeded device}", 50, 0),
    "list": ("GET /device/service/name/{random service}?offset={random page}&limit=100", 50, 0),
    "list_first": ("GET /device/service/name/{random service}?limit=100 (first page)", 50, 0),
    "add": ("POST /device, one new device per request", 50, 1),
    "batch": ("POST /device, 100 new devices per request", 4, wl.BATCH),
}
SEED_CONCURRENCY = 4


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in (
        "edgemeta",
        "starlette",
        "fastapi",
        "uvicorn",
        "httptools",
        "uvloop",
        "pydantic",
        "pydantic-core",
        "orjson",
        "asyncpg",
        "psutil",
    ):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = "absent"
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    git = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return {
        "cpu": cpu,
        "cores": psutil.cpu_count(logical=True),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": versions,
        "wrk": (wrk_v.stdout or wrk_v.stderr).split(" [")[0].strip(),
        "git": git.stdout.strip(),
    }


def measure(
    server: Server,
    script: Callable[[int], str],
    *,
    connections: int,
    warmup: float,
    duration: float,
    workdir: Path,
    timeout: str = "10s",
) -> dict[str, Any]:
    """Warm up, then one measured wrk run; adds the server's CPU time per request."""
    warm = {"requests": 0}
    if warmup > 0:
        warm = wrk(
            server.port,
            script(1),
            seconds=warmup,
            connections=connections,
            timeout=timeout,
            workdir=workdir,
        )
    cpu0 = server.cpu_s()
    res = wrk(
        server.port,
        script(2),
        seconds=duration,
        connections=connections,
        timeout=timeout,
        workdir=workdir,
    )
    cpu = server.cpu_s() - cpu0
    res["server_cpu_s"] = round(cpu, 3)
    secs = res["duration_us"] / 1e6
    other = res["machine_busy_s"] - cpu - res["wrk_cpu_s"] - res["postgres_cpu_s"]
    res["other_load_cores"] = round(max(0.0, other) / secs, 2) if secs else 0.0
    res["server_cpu_us_per_req"] = round(cpu / res["requests"] * 1e6, 1) if res["requests"] else 0
    res["connections"] = connections
    res["warmup_requests"] = warm["requests"]
    res["rss"] = server.rss()
    return res


def device_count(port: int) -> int:
    status, body = request(port, "GET", "/api/v3/device/all?limit=0")
    if status != 200:
        raise RuntimeError(f"device count: {status} {body[:200]!r}")
    return int(orjson.loads(body)["totalCount"])


# -- seeding --------------------------------------------------------------------------------


def seed(port: int, devices: int) -> dict[str, Any]:
    """Services, profiles, then ``devices`` devices in 100-device batches, 4 at a time."""
    for path, body in (
        ("/api/v3/deviceservice", wl.service_requests()),
        ("/api/v3/deviceprofile", wl.profile_requests()),
    ):
        status, out = request(port, "POST", path, body)
        if status != 207 or any(r["statusCode"] != 201 for r in orjson.loads(out)):
            raise RuntimeError(f"seeding {path}: {status} {out[:300]!r}")
    work: queue.Queue[int] = queue.Queue()
    for start in range(0, devices, wl.BATCH):
        work.put(start)
    failures: list[str] = []

    def worker() -> None:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while not failures:
            try:
                start = work.get_nowait()
            except queue.Empty:
                break
            body = wl.seed_body(start, min(start + wl.BATCH, devices))
            conn.request(
                "POST",
                "/api/v3/device?bypassValidation=true",
                body,
                {"Content-Type": "application/json"},
            )
            resp = conn.getresponse()
            out = resp.read()
            bad = [r for r in orjson.loads(out) if r["statusCode"] != 201]
            if resp.status != 207 or bad:
                failures.append(f"batch at {start}: {resp.status} {bad[:1]}")
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(SEED_CONCURRENCY)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.perf_counter() - t0
    if failures:
        raise RuntimeError("seeding failed: " + "; ".join(failures[:3]))
    return {
        "devices": devices,
        "seconds": round(secs, 2),
        "devices_per_s": round(devices / secs, 1),
        "concurrency": SEED_CONCURRENCY,
    }


# -- the runs -------------------------------------------------------------------------------


def run_ceiling(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    server = app_server(kind, workdir / f"{kind}.log")
    startup = server.start()
    try:
        server.settle(5)
        idle = server.rss()
        res = measure(
            server,
            lambda s: wl.lua_get(s, "/"),
            connections=50,
            warmup=args.warmup,
            duration=args.duration,
            workdir=workdir,
        )
    finally:
        server.stop()
    res.update(startup_s=round(startup, 3), rss_idle=idle)
    log(
        f"  {kind:10s} {res['rps']:9.0f} req/s  p50 {res['p50_us'] / 1e3:6.2f} ms  "
        f"p99 {res['p99_us'] / 1e3:6.2f} ms  other load {res['other_load_cores']:.2f} cores"
    )
    return res


def scenario_script(name: str, devices: int, tag: str) -> Callable[[int], str]:
    if name == "ping":
        return lambda s: wl.lua_get(s, "/api/v3/ping")
    if name == "get":
        return lambda s: wl.lua_get_by_name(s, devices)
    if name == "list":
        return lambda s: wl.lua_list_by_service(s, devices, first_page_only=False)
    if name == "list_first":
        return lambda s: wl.lua_list_by_service(s, devices, first_page_only=True)
    if name == "add":
        return lambda s: wl.lua_add(s, f"add{tag}r{s}")
    if name == "batch":
        return lambda s: wl.lua_batch(s, f"bat{tag}r{s}")
    raise ValueError(name)


def run_backend(
    backend: str, size: int, args: argparse.Namespace, workdir: Path, stamp: str
) -> dict[str, Any]:
    tag = f"{stamp}_{size}"
    db = Database(backend, tag)
    out: dict[str, Any] = {"backend": backend, "size": size, "scenarios": {}}
    logfile = workdir / f"edgemeta-{backend}-{size}.log"
    try:
        out["db_version"] = db.server_version()
        server = edgemeta_server(db.url, logfile, src=args.src)
        out["startup_fresh_s"] = round(server.start(), 3)
        try:
            server.settle(5)
            out["rss_idle_fresh"] = server.rss()
            log(
                f"  started in {out['startup_fresh_s']:.2f}s, idle RSS "
                f"{out['rss_idle_fresh'] / 2**20:.0f} MiB; seeding {size} devices"
            )
            out["seed"] = seed(server.port, size)
            out["seed"]["relay_wait_s"] = round(db.wait_delivered(), 2)
            server.settle(10)
            out["rss_after_seed"] = server.rss()
            out["rss_max_seed"] = server.rss_max
            log(
                f"  seeded at {out['seed']['devices_per_s']:.0f} devices/s, RSS "
                f"{out['rss_after_seed'] / 2**20:.0f} MiB"
            )
        finally:
            server.stop()
        # A fresh process on the populated database: start-up and idle memory with N devices.
        server = edgemeta_server(db.url, logfile, src=args.src)
        out["startup_populated_s"] = round(server.start(), 3)
        try:
            server.settle(5)
            out["rss_idle_populated"] = server.rss()
            for name in args.scenarios:
                what, conns, items = SCENARIOS[name]
                before = device_count(server.port) if items else 0
                res = measure(
                    server,
                    scenario_script(name, size, tag),
                    connections=conns,
                    warmup=args.warmup,
                    duration=args.duration,
                    workdir=workdir,
                    timeout="10s",
                )
                res["what"] = what
                if items:
                    waited = db.wait_delivered()
                    time.sleep(0.2)
                    added = device_count(server.port) - before
                    res["relay_wait_s"] = round(waited, 2)
                    res["items_per_request"] = items
                    res["devices_per_s"] = round(res["rps"] * items, 1)
                    res["devices_added_total"] = added  # warm-up and measured run
                    # Every request wrk counted must have stored its devices (a 207 can hide
                    # per-device refusals); requests cut off by wrk's stop may add a few more.
                    expected = (res["warmup_requests"] + res["requests"]) * items
                    res["all_stored"] = added >= expected
                    if not res["all_stored"]:
                        log(f"  WARNING: {name}: {added} devices stored, {expected} expected")
                    server.settle(10)
                out["scenarios"][name] = res
                extra = f"  {res['devices_per_s']:8.0f} dev/s" if items else ""
                log(
                    f"  {name:10s} {res['rps']:9.0f} req/s  p50 {res['p50_us'] / 1e3:7.2f} ms  "
                    f"p99 {res['p99_us'] / 1e3:7.2f} ms  cpu {res['server_cpu_us_per_req']:7.0f}"
                    f" us/req  non2xx {res['status']} err {res['errors']}  other load "
                    f"{res['other_load_cores']:.2f}{extra}"
                )
            out["rss_after_scenarios"] = server.rss()
            out["rss_max"] = max(server.rss_max, out.get("rss_max_seed", 0))
            out["devices_at_end"] = device_count(server.port)
        finally:
            server.stop()
        out["db_bytes"] = db.size_bytes()
    finally:
        if not args.keep:
            db.drop()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 s warm-up, 3 s runs, 10,000 devices only"
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--sizes", default=None, help="device counts (default 10000,100000)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--duration", type=float, default=None, help="seconds per run (10)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up seconds (3)")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the ceiling apps")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--no-report", action="store_true", help="do not touch BENCHMARKS.md")
    parser.add_argument(
        "--src",
        type=Path,
        default=None,
        help="run the edgemeta package under this src/ directory instead",
    )
    args = parser.parse_args(argv)
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0)
    sizes = [int(s) for s in (args.sizes or ("10000" if args.quick else "10000,100000")).split(",")]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for s in args.scenarios:
        if s not in SCENARIOS:
            parser.error(f"unknown scenario {s!r} (known: {', '.join(SCENARIOS)})")

    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    workdir = RESULTS / stamp
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "command": "python -m bench.run " + " ".join(sys.argv[1:] if argv is None else argv),
        "config": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "sizes": sizes,
            "backends": backends,
            "scenarios": args.scenarios,
            "services": wl.SERVICES,
            "profiles": wl.PROFILES,
            "batch": wl.BATCH,
            "page": wl.PAGE,
            "seed_concurrency": SEED_CONCURRENCY,
        },
        "machine": machine(),
        "ceiling": {},
        "runs": [],
    }
    t0 = time.monotonic()
    if not args.no_ceiling:
        log("ceiling apps")
        for kind in ("bare", "starlette", "fastapi"):
            if importlib.util.find_spec(kind) is None and kind != "bare":
                log(f"  {kind} is not installed: skipped (pip install -e '.[bench]')")
                continue
            results["ceiling"][kind] = run_ceiling(kind, args, workdir)
    for backend in backends:
        for size in sizes:
            log(f"edgemeta on {backend}, {size} devices")
            results["runs"].append(run_backend(backend, size, args, workdir, stamp))
            if not args.no_ceiling:
                # The bare app again after every block: the ceiling is the mean of all of
                # them, and their spread shows how much the machine drifted during the run.
                log("  ceiling again (drift check)")
                results["ceiling"][f"bare_after_{backend}_{size}"] = run_ceiling(
                    "bare", args, workdir
                )
    results["elapsed_s"] = round(time.monotonic() - t0, 1)
    path = RESULTS / f"{stamp}.json"
    path.write_text(json.dumps(results, indent=2))
    log(f"results in {path.relative_to(ROOT)} after {results['elapsed_s']:.0f}s")
    if not args.no_report:
        report.update(ROOT / "BENCHMARKS.md", results, path.relative_to(ROOT))
        log("BENCHMARKS.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
