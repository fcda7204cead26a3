"""The cost of observability: metrics off, metrics on, metrics + tracing, in one run.

``python -m bench.observability [--devices 2000] [--rounds 3] [--duration 5] [--connections 50]``

Three ``edgemeta serve`` processes, each on its own SQLite file (adds write), seeded alike:
``EDGEMETA_METRICS=false``; metrics on (the default); metrics on plus
``EDGEMETA_TRACING=otlp`` sampling every request (``EDGEMETA_TRACE_SAMPLE_RATIO=1.0``) to a
dummy local OTLP/HTTP collector that accepts and discards (a server without tracing ignores
those settings: that variant then equals "metrics"). Two workloads: get-by-name of a random
seeded device, and single-device adds. Each round runs every variant once, in an order that
rotates (``bench.auth``'s machinery); figures are medians: requests/s and the server's CPU
microseconds per request. Targets: metrics <= 3 % CPU per request, tracing at 100 % <= 10 %.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench import workload as wl
from bench.auth import add_costs, run_variants, server, summarize
from bench.procs import Server
from bench.run import ROOT, log, seed


class _Discard(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector that takes every export and keeps nothing."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def collector() -> ThreadingHTTPServer:
    """The dummy collector on a free loopback port, in a thread."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Discard)
    threading.Thread(target=httpd.serve_forever, daemon=True, name="otlp-discard").start()
    return httpd


def main() -> None:
    """Run the benchmark and print (and save) the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--connections", type=int, default=50)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="edgemeta-bench-observability-"))
    otlp = collector()
    endpoint = f"http://127.0.0.1:{otlp.server_address[1]}"
    envs = {
        "off": {"EDGEMETA_METRICS": "false"},
        "metrics": {"EDGEMETA_METRICS": "true"},
        "metrics+tracing": {
            "EDGEMETA_METRICS": "true",
            "EDGEMETA_TRACING": "otlp",
            "EDGEMETA_TRACE_SAMPLE_RATIO": "1.0",
            "EDGEMETA_OTLP_ENDPOINT": endpoint,
        },
    }
    servers: dict[str, Server] = {}
    for name, env in envs.items():
        db_url = f"sqlite:///{work / (name.replace('+', '-') + '.db')}"
        srv = server(db_url, work / f"{name.replace('+', '-')}.log", env)
        srv.start()
        log(f"seeding {args.devices} devices for {name}")
        seed(srv.port, args.devices)
        servers[name] = srv
    for srv in servers.values():
        srv.settle(30)

    def get(seed_: int) -> str:
        return wl.lua_get_by_name(seed_, args.devices)

    def add(seed_: int) -> str:
        return wl.lua_add(seed_, f"obs{seed_}")

    summary: dict[str, Any] = {}
    try:
        for workload, make in (("get-by-name", get), ("add", add)):
            variants = {name: (srv, make) for name, srv in servers.items()}
            results = run_variants(variants, args, work)
            part = summarize(results, args)
            for name in ("metrics", "metrics+tracing"):
                add_costs(part, name, "off")
            summary[workload] = part
    finally:
        for srv in servers.values():
            srv.stop()
        otlp.shutdown()
    summary["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    out = ROOT / "bench" / "results" / f"observability-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
