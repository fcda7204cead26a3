"""The cost of tracing: get-by-name and single add with tracing off and at 100 % sampling.

``python -m bench.tracing_cost [--devices 5000] [--rounds 3] [--duration 5] [--connections 20]
[--ratio 1.0]``

Two edgemeta servers (``bench.auth.server``) share one SQLite database, seeded once through
the tracing-off one: one with ``EDGEMETA_TRACING=off``, one with ``EDGEMETA_TRACING=otlp``,
``EDGEMETA_TRACE_SAMPLE_RATIO=1.0`` (``--ratio``) and ``EDGEMETA_OTLP_ENDPOINT`` pointing at a dummy
collector in this process (it accepts every POST and drops it), so the spans are encoded and
sent as to a real one. Each round runs every variant once, in an order that rotates; figures
are medians over rounds of requests/s and of the server's CPU microseconds per request (the
exporter's thread included), the fairer figure on a shared machine. Target: tracing at 100 %
costs at most 10 % CPU per request.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil

from bench import workload as wl
from bench.auth import server
from bench.procs import free_port, wrk
from bench.run import ROOT, log, seed


class _Collector(BaseHTTPRequestHandler):
    """Takes an OTLP export and drops it."""

    received = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        type(self).received += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def main() -> None:
    """Run the benchmark and print (and save) the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=5_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--connections", type=int, default=20)
    ap.add_argument("--ratio", type=float, default=1.0, help="EDGEMETA_TRACE_SAMPLE_RATIO")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="edgemeta-bench-tracing-"))
    db_url = f"sqlite:///{work / 'bench.db'}"
    collector = ThreadingHTTPServer(("127.0.0.1", free_port()), _Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}/v1/traces"

    # Two servers on one machine: the second would find the keeper's port taken.
    off = server(
        db_url, work / "off.log", {"EDGEMETA_TRACING": "off", "EDGEMETA_CORE_KEEPER": "false"}
    )
    on = server(
        db_url,
        work / "on.log",
        {
            "EDGEMETA_TRACING": "otlp",
            "EDGEMETA_TRACE_SAMPLE_RATIO": str(args.ratio),
            "EDGEMETA_OTLP_ENDPOINT": endpoint,
            "EDGEMETA_CORE_KEEPER": "false",
        },
    )
    off.start()
    log(f"seeding {args.devices} devices")
    seed(off.port, args.devices)
    on.start()
    off.settle(30)
    on.settle(30)

    variants: dict[str, tuple[Any, Any]] = {
        "get-off": (off, lambda s: wl.lua_get_by_name(s, args.devices)),
        "get-on": (on, lambda s: wl.lua_get_by_name(s, args.devices)),
        "add-off": (off, lambda s: wl.lua_add(s, f"off{s}-")),
        "add-on": (on, lambda s: wl.lua_add(s, f"on{s}-")),
    }
    names = list(variants)
    results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    try:
        for name in ("get-off", "get-on"):
            srv, make = variants[name]
            wrk(srv.port, make(0), seconds=args.warmup, connections=args.connections, workdir=work)
        for rnd in range(args.rounds):
            order = names[rnd % len(names) :] + names[: rnd % len(names)]
            for name in order:
                srv, make = variants[name]
                cpu0 = srv.cpu_s()
                res = wrk(
                    srv.port,
                    make(rnd + 1),
                    seconds=args.duration,
                    connections=args.connections,
                    workdir=work,
                )
                srv.settle(30)  # the relay's (and the exporter's) work after the run counts too
                cpu = srv.cpu_s() - cpu0
                if res["errors"] or res["status"]:
                    raise RuntimeError(f"{name}: errors in the run: {res}")
                results[name].append(
                    {"rps": res["rps"], "cpu_us": cpu / max(res["requests"], 1) * 1e6}
                )
                log(f"round {rnd + 1} {name}: {res['rps']:.0f} req/s")
    finally:
        on.stop()
        off.stop()
        collector.shutdown()

    summary: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{psutil.cpu_count()} cores, load {psutil.getloadavg()}",
        "args": vars(args),
        "collector_posts": _Collector.received,
    }
    for name in names:
        rows = results[name]
        summary[name] = {
            "rps_median": round(statistics.median(r["rps"] for r in rows)),
            "cpu_us_median": round(statistics.median(r["cpu_us"] for r in rows), 1),
            "rps_rounds": [round(r["rps"]) for r in rows],
        }
    for op in ("get", "add"):
        base, traced = summary[f"{op}-off"], summary[f"{op}-on"]
        traced["cpu_cost_pct"] = round(
            100 * (traced["cpu_us_median"] / base["cpu_us_median"] - 1), 1
        )
        traced["throughput_cost_pct"] = round(
            100 * (1 - traced["rps_median"] / base["rps_median"]), 1
        )
    out = ROOT / "bench" / "results" / f"tracing-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
