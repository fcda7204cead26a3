"""The cost of observability: metrics off, metrics on, metrics + tracing, in one run.

``python -m bench.observability [--devices 2000] [--rounds 5] [--duration 4] [--connections 20]
[--ratios 1.0] [--base REV] [--control]``

One ``edgemeta serve`` per variant, each on its own SQLite file (adds write), seeded alike:
``off`` (``EDGEMETA_METRICS=false``), ``metrics`` (the default), and ``tracing@R`` for each
ratio R of ``--ratios``: metrics on plus ``EDGEMETA_TRACING=otlp`` at
``EDGEMETA_TRACE_SAMPLE_RATIO=R``, exporting to a collector of its own in this process that
decodes each OTLP/HTTP request, counts its spans and drops them (so every span is encoded and
sent as to a real collector, and the count shows spans per request and that none were
dropped). ``--base REV`` adds the same variants running ``git archive REV src`` (prefixed
``base:``): before and after in one run. ``--control`` adds ``off#2``, a second "off" server:
the spread between two identical processes.

Two workloads: get-by-name of a random seeded device, and single-device adds. Each round runs
every variant once, in an order that rotates (``bench.auth.run_variants``), and waits after
each run until the server is idle, so that what a run leaves to do (the relay's publishing,
the exporter's thread) is counted in that run's CPU. Figures: the server process's CPU
microseconds per request (all its threads), the fairer figure on a shared machine, and
requests/s; medians over rounds, and each variant's CPU cost against ``off`` of the same
run and revision taken round by round (the median of the per-round ratios: both were
measured within seconds of each other, so a load change on the machine moves both). The
load average is recorded with every run. Targets (issue 17): metrics <= 3 % CPU per request,
tracing at 100 % sampling <= 10 %.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench import workload as wl
from bench.ab import export
from bench.auth import run_variants
from bench.procs import Server, edgemeta_server
from bench.run import ROOT, log, seed


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP collector on a free loopback port that counts the spans it is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Count)
        self.spans = 0
        self.posts = 0
        self._lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True, name="otlp-count").start()

    @property
    def endpoint(self) -> str:
        """The traces URL, signal path included (``EDGEMETA_OTLP_ENDPOINT``)."""
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"

    def add(self, spans: int) -> None:
        with self._lock:
            self.spans += spans
            self.posts += 1


class _Count(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = ExportTraceServiceRequest.FromString(body)
        self.server.add(sum(len(s.spans) for rs in request.resource_spans for s in rs.scope_spans))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def variant_envs(
    ratios: list[float], collectors: dict[str, Collector], control: bool = False
) -> dict[str, Any]:
    """The settings of each variant (a tracing variant's collector is made here); ``control``
    adds ``off#2``, a second server set exactly as ``off``: its "cost" is the spread between
    two processes that differ in nothing, the line below which a cost means nothing."""
    envs: dict[str, dict[str, str]] = {"off": {"EDGEMETA_METRICS": "false"}}
    if control:
        envs["off#2"] = {"EDGEMETA_METRICS": "false"}
    envs["metrics"] = {"EDGEMETA_METRICS": "true"}
    for ratio in ratios:
        name = f"tracing@{ratio:g}"
        collectors[name] = Collector()
        envs[name] = {
            "EDGEMETA_METRICS": "true",
            "EDGEMETA_TRACING": "otlp",
            "EDGEMETA_TRACE_SAMPLE_RATIO": str(ratio),
            "EDGEMETA_OTLP_ENDPOINT": collectors[name].endpoint,
        }
    return envs


def costs(rows: dict[str, list[dict[str, float]]], name: str, baseline: str) -> dict[str, Any]:
    """CPU per request of ``name`` against ``baseline``, round by round, in %."""
    ratios = [
        100 * (a["cpu_us"] / b["cpu_us"] - 1)
        for a, b in zip(rows[name], rows[baseline], strict=True)
    ]
    return {
        "cpu_cost_pct_median": round(statistics.median(ratios), 1),
        "cpu_cost_pct_rounds": [round(r, 1) for r in ratios],
    }


def _serve_counting(port: Any, spans: Any) -> None:
    """A collector process: counts into ``spans`` (shared) and tells its port."""
    collector = Collector()
    port.value = collector.server_address[1]
    while True:
        time.sleep(0.05)
        spans.value = collector.spans


def sdk_floor(count: int = 20_000) -> dict[str, Any]:
    """What the OpenTelemetry SDK alone costs per span, outside edgemeta: a provider as
    edgemeta makes it (``edgemeta.tracing.sdk.make_provider``), a server span like a get's
    (7 attributes, renamed once), life cycle only, then through the batching OTLP/HTTP
    exporter to a collector in another process (so its decoding is not counted). CPU
    microseconds per span of this process, the exporter's thread included."""
    import multiprocessing

    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
    from opentelemetry.trace import SpanKind

    from edgemeta.tracing.sdk import make_provider

    attributes = {
        "http.request.method": "GET",
        "url.path": "/api/v3/device/name/dev-0000001",
        "url.scheme": "http",
        "server.port": 59881,
        "edgemeta.correlation_id": "2f0e3c1a-5d1e-4c6b-9b1e-3f1d2c4b5a69",
    }

    def spans(tracer: Any, n: int) -> None:
        for _ in range(n):
            with tracer.start_as_current_span(
                "GET", kind=SpanKind.SERVER, attributes=attributes
            ) as span:
                span.update_name("GET /api/v3/device/name/{name}")
                span.set_attributes(
                    {"http.route": "/api/v3/device/name/{name}", "http.response.status_code": 200}
                )

    def cpu_us_per_span(tracer: Any, settle: Any = None) -> float:
        spans(tracer, 2_000)  # warm
        if settle:
            settle()
        t0 = time.process_time()
        for _ in range(count // 500):  # in steps, so that the exporter's queue never overflows
            spans(tracer, 500)
            time.sleep(0.01)
        if settle:
            settle()
        return (time.process_time() - t0) / count * 1e6

    class Keep(SpanExporter):
        def __init__(self) -> None:
            self.spans: list[Any] = []

        def export(self, spans: Any) -> SpanExportResult:
            self.spans.extend(spans)
            return SpanExportResult.SUCCESS

    out: dict[str, Any] = {}
    bare = make_provider(mode="none", endpoint="", ratio=1.0, service_name="core-metadata")
    out["life_cycle_us"] = round(cpu_us_per_span(bare.get_tracer("edgemeta")), 1)
    keep = Keep()
    kept = make_provider(mode="none", endpoint="", ratio=1.0, service_name="core-metadata")
    kept.add_span_processor(SimpleSpanProcessor(keep))
    spans(kept.get_tracer("edgemeta"), 512)
    t0 = time.process_time()
    for _ in range(40):
        encode_spans(keep.spans[:512]).SerializePartialToString()
    out["encode_us"] = round((time.process_time() - t0) / (40 * 512) * 1e6, 1)

    port, received = multiprocessing.Value("i", 0), multiprocessing.Value("q", 0)
    child = multiprocessing.Process(target=_serve_counting, args=(port, received), daemon=True)
    child.start()
    while not port.value:
        time.sleep(0.01)
    full = make_provider(mode="none", endpoint="", ratio=1.0, service_name="core-metadata")
    full.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port.value}/v1/traces"))
    )
    out["pipeline_us"] = round(
        cpu_us_per_span(full.get_tracer("edgemeta"), lambda: full.force_flush()), 1
    )
    full.shutdown()
    time.sleep(0.2)
    out["spans_received"] = received.value
    out["spans_made"] = count + 2_000  # the warm-up's are sent too
    child.terminate()
    return out


def main() -> None:
    """Run the benchmark and print (and save) the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--connections", type=int, default=20)
    ap.add_argument("--ratios", default="1.0", help="sampling ratios, comma-separated")
    ap.add_argument("--base", default="", help="also run this revision's src/ (before/after)")
    ap.add_argument("--workloads", default="get-by-name,add")
    ap.add_argument("--control", action="store_true", help="add off#2, a copy of off")
    ap.add_argument(
        "--sdk-floor", action="store_true", help="only the bare SDK's cost per span, no server"
    )
    args = ap.parse_args()
    if args.sdk_floor:
        from google.protobuf.internal import api_implementation

        floor = sdk_floor()
        floor["protobuf_backend"] = api_implementation.Type()
        print(json.dumps(floor, indent=2))
        return

    work = Path(tempfile.mkdtemp(prefix="edgemeta-bench-observability-"))
    ratios = [float(r) for r in args.ratios.split(",") if r]
    revisions: dict[str, Path | None] = {"": None}
    if args.base:
        revisions = {"base:": export(args.base) / "src", "": None}
    collectors: dict[str, Collector] = {}
    servers: dict[str, Server] = {}
    for prefix, src in revisions.items():
        for name, env in variant_envs(ratios, collectors, args.control).items():
            full = prefix + name
            if prefix and name in collectors:
                collectors[full] = collectors.pop(name)
            tag = full.replace(":", "-").replace("@", "-").replace("#", "-")
            srv = edgemeta_server(f"sqlite:///{work / (tag + '.db')}", work / f"{tag}.log", src=src)
            srv.env.update(env)
            srv.start()
            log(f"seeding {args.devices} devices for {full}")
            seed(srv.port, args.devices)
            servers[full] = srv
    for srv in servers.values():
        srv.settle(30)

    def get(seed_: int) -> str:
        return wl.lua_get_by_name(seed_, args.devices)

    def add(seed_: int) -> str:
        return wl.lua_add(seed_, f"obs{seed_}-")

    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    summary: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": head + (" (+ uncommitted changes)" if _dirty() else ""),
        "base": args.base,
        "machine": f"{psutil.cpu_count()} cores, {_cpu_model()}",
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
        "args": vars(args),
    }
    makes = {"get-by-name": get, "add": add}
    try:
        for workload in args.workloads.split(","):
            variants = {name: (srv, makes[workload]) for name, srv in servers.items()}
            counters = {name: _spans_of(c) for name, c in collectors.items()}
            rows = run_variants(variants, args, work, settle=True, counters=counters)
            part: dict[str, Any] = {}
            for name, runs in rows.items():
                part[name] = {
                    "cpu_us_median": round(statistics.median(r["cpu_us"] for r in runs), 1),
                    "rps_median": round(statistics.median(r["rps"] for r in runs)),
                    "load_1m": [round(r["load_1m"], 2) for r in runs],
                }
                prefix = name.partition(":")[0] + ":" if ":" in name else ""
                if name != prefix + "off":
                    part[name].update(costs(rows, name, prefix + "off"))
                if name in collectors:
                    # A batch of fewer than 512 spans waits up to 5 s to be sent: a run's
                    # last spans are counted in the next run of that server, and the very
                    # last ones not at all (a 1-2 % undercount at these rates).
                    requests = sum(r["requests"] for r in runs)
                    counted = sum(r["counted"] for r in runs)
                    part[name]["spans_per_request"] = round(counted / requests, 2)
            summary[workload] = part
    finally:
        for srv in servers.values():
            srv.stop()
        for c in collectors.values():
            c.shutdown()
    summary["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out = ROOT / "bench" / "results" / f"observability-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


def _spans_of(collector: Collector) -> Any:
    return lambda: collector.spans


def _dirty() -> bool:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "src"],
        capture_output=True,
        text=True,
    ).stdout
    return bool(out.strip())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
