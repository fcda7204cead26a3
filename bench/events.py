"""System-event benchmarks: from an API write to a subscriber on a real broker.

    python -m bench.events [--kinds mqtt,nats] [--events 20000] [--backlog 100000] [--out FILE]

Per broker kind (a private Mosquitto or nats-server started for the run, on a free port) it
starts ``edgemeta serve`` on SQLite in its own process, a load generator in another process,
and a subscriber in this one (paho-mqtt on its own thread, persistent session, QoS 1; a core
nats-py subscription), then measures, all in the same run:

1. **ceiling**: a plain client of the library edgemeta uses (aiomqtt with a window of 20
   QoS 1 publishes in flight; nats-py JetStream ``publish_async`` in chunks of 500 with
   every acknowledgement awaited) publishes copies of a real device-add envelope straight
   to the broker from its own process; messages/s as the subscriber receives them. Measured
   before and after the rest; the mean is the ceiling.
2. **end to end**: 100-device ``POST /device`` batches (2 connections) into the service;
   events/s from the first request to the last event at the subscriber, and the write rate.
3. **latency**: single-device writes paced at 200/s; commit-to-delivery latency per event,
   from the SystemEvent ``timestamp`` (ns, taken in the transaction) to the subscriber's
   receive time (the same machine clock).
4. **backlog drain**: writes/s for 5 s with the broker up (baseline); the broker stopped;
   ``--backlog`` events written (they wait in the outbox); the broker started again and,
   as soon as the first backlog event arrives, the same 5 s of writes: the drain rate
   (first to last backlog event at the subscriber; also counted from the broker's restart,
   and split into alongside the writes / alone after them) and the write rate during the
   drain against the baseline.

CPU seconds used by the service process are reported per event too: the machine is shared
and noisy, and CPU time is much less disturbed by other people's load than wall time.
Prints a Markdown table (and writes it to ``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import psutil
from tests.e2e.procs import ServeProcess, start
from tests.support.brokers import PrivateBroker

PREFIX = "bench"
BATCH = 100  # devices per POST /device in the throughput phases
TARGETS = {"e2e": 0.5, "p99_ms": 50.0, "drain": 0.5, "writes_kept": 2 / 3}


# -- load generator (its own process) -------------------------------------------------------


def _devices(service: str, names: Sequence[str]) -> bytes:
    return orjson.dumps(
        [
            {
                "apiVersion": "v3",
                "device": {
                    "name": n,
                    "serviceName": service,
                    "profileName": "prof",
                    "adminState": "UNLOCKED",
                    "operatingState": "UP",
                    "labels": ["bench"],
                    "protocols": {"other": {"Address": n, "Port": "502"}},
                },
            }
            for n in names
        ]
    )


async def _loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    """Batches (``requests`` of ``batch`` devices, or for ``seconds``) over ``connections``
    connections; or single-device writes paced at ``rate`` per second."""
    url, service, tag = spec["url"], spec["service"], spec["tag"]
    ok = failed = 0
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=max(spec.get("connections", 2), 64))
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def post(body: bytes) -> None:
            nonlocal ok, failed
            t = time.perf_counter()
            r = await client.post(
                "/device", content=body, headers={"Content-Type": "application/json"}
            )
            latencies.append(time.perf_counter() - t)
            if r.status_code == 207:
                codes = [x["statusCode"] for x in r.json()]
                ok += codes.count(201)
                failed += len(codes) - codes.count(201)
            else:
                failed += 1

        t0 = time.time_ns()
        if "rate" in spec:
            tasks = []
            start_at = time.perf_counter()
            for i in range(spec["count"]):
                delay = start_at + i / spec["rate"] - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(post(_devices(service, [f"{tag}-{i}"]))))
            await asyncio.gather(*tasks)
        else:
            counter = iter(range(1 << 40))
            stop_at = time.perf_counter() + spec.get("seconds", math.inf)
            left = [spec.get("requests", 1 << 40)]

            async def worker() -> None:
                while left[0] > 0 and time.perf_counter() < stop_at:
                    left[0] -= 1
                    n = next(counter)
                    names = [f"{tag}-{n}-{j}" for j in range(spec["batch"])]
                    await post(_devices(service, names))

            await asyncio.gather(*(worker() for _ in range(spec["connections"])))
        t1 = time.time_ns()
    return {"ok": ok, "failed": failed, "t0": t0, "t1": t1, "requests": len(latencies)}


# -- ceiling publisher (its own process) ----------------------------------------------------


async def _publish(spec: dict[str, Any]) -> dict[str, Any]:
    """``count`` copies of ``payload`` on ``topic``, straight to the broker."""
    payload = bytes.fromhex(spec["payload"])
    topic, count = spec["topic"], spec["count"]
    parts = urlsplit(spec["url"])
    host, port = parts.hostname or "127.0.0.1", parts.port or 0
    if spec["kind"] == "mqtt":
        import aiomqtt

        async with aiomqtt.Client(host, port, protocol=aiomqtt.ProtocolVersion.V5) as client:
            client.pending_calls_threshold = 1 << 30
            window: list[asyncio.Task[None]] = []
            t0 = time.time_ns()
            for _ in range(count):
                if len(window) >= 20:
                    await window.pop(0)
                window.append(
                    asyncio.create_task(client.publish(topic, payload, qos=1, timeout=math.inf))
                )
            await asyncio.gather(*window)
            t1 = time.time_ns()
    else:
        import nats

        nc = await nats.connect(spec["url"])
        js = nc.jetstream(publish_async_max_pending=1 << 30)
        subject = topic.replace("/", ".")
        t0 = time.time_ns()
        for first in range(0, count, 500):
            futures = [
                await js.publish_async(subject, payload) for _ in range(min(500, count - first))
            ]
            await asyncio.gather(*futures)
        t1 = time.time_ns()
        await nc.close()
    return {"t0": t0, "t1": t1}


def _child(role: str, spec: dict[str, Any]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.events", f"--{role}", json.dumps(spec)],
        stdout=subprocess.PIPE,
    )


async def _finish(child: subprocess.Popen[bytes]) -> dict[str, Any]:
    out, _ = await asyncio.to_thread(child.communicate)
    if child.returncode != 0:
        raise RuntimeError(f"{child.args} failed with {child.returncode}")
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


# -- subscriber (this process) -------------------------------------------------------------


@dataclass
class Tally:
    """What arrived on one owner's topics."""

    count: int = 0
    first_ns: int = 0
    last_ns: int = 0
    kept: list[tuple[int, bytes]] = field(default_factory=list)
    times: list[int] = field(default_factory=list)


class Counter:
    """Counts device events per owner (the topic's owner level) with arrival times; keeps the
    payloads of the owners listed in ``keep``."""

    def __init__(self) -> None:
        self.tallies: dict[str, Tally] = {}
        self.keep: set[str] = set()
        self.keep_times: set[str] = set()
        self.lock = threading.Lock()

    def add(self, topic: str, payload: bytes) -> None:
        now = time.time_ns()
        levels = topic.split("/", 6)
        if levels[3] != "device":
            return  # only device events are counted (the set-up adds device services)
        owner = levels[5]
        with self.lock:
            t = self.tallies.get(owner)
            if t is None:
                t = self.tallies[owner] = Tally()
            if t.count == 0:
                t.first_ns = now
            t.count += 1
            t.last_ns = now
            if owner in self.keep:
                t.kept.append((now, payload))
            if owner in self.keep_times:
                t.times.append(now)

    def tally(self, owner: str) -> Tally:
        with self.lock:
            return self.tallies.setdefault(owner, Tally())

    async def wait(self, owner: str, n: int, within: float) -> Tally:
        deadline = time.monotonic() + within
        while (t := self.tally(owner)).count < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{t.count} of {n} events for {owner} within {within}s")
            await asyncio.sleep(0.01)
        return t


class MqttSubscriber:
    """paho-mqtt on its own thread: persistent session, QoS 1, so a broker restart loses
    nothing (the broker runs with persistence)."""

    def __init__(self, url: str, counter: Counter) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 1883
        self.ready = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id="bench-subscriber",
            clean_session=False,
            protocol=paho.MQTTv311,
        )
        self.client.reconnect_delay_set(0.05, 0.2)  # type: ignore[arg-type]
        self.client.on_subscribe = lambda *_: self.ready.set()
        self.client.on_message = lambda _c, _u, m: counter.add(m.topic, bytes(m.payload))

        def on_connect(client: Any, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
            if not rc.is_failure and not flags.session_present:
                client.subscribe(f"{PREFIX}/system-events/#", qos=1)

        self.client.on_connect = on_connect

    async def start(self) -> None:
        self.client.connect(self.host, self.port)
        self.client.loop_start()
        await asyncio.to_thread(self.ready.wait, 10)

    async def stop(self) -> None:
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)


class NatsSubscriber:
    """A core NATS subscription that reconnects quickly (before edgemeta does, whose client
    waits a second between attempts)."""

    def __init__(self, url: str, counter: Counter) -> None:
        self.url = url
        self.counter = counter
        self.nc: Any = None

    async def start(self) -> None:
        import nats

        async def quiet(_exc: Exception) -> None:
            pass  # refused reconnections while the broker is stopped, on purpose

        self.nc = await nats.connect(
            self.url, max_reconnect_attempts=-1, reconnect_time_wait=0.05, error_cb=quiet
        )

        async def on_msg(msg: Any) -> None:
            self.counter.add(msg.subject.replace(".", "/"), msg.data)

        await self.nc.subscribe(f"{PREFIX}.system-events.>", cb=on_msg)
        await self.nc.flush()

    async def stop(self) -> None:
        await self.nc.close()


# -- the run ---------------------------------------------------------------------------------


def _cpu(p: ServeProcess) -> float:
    """CPU seconds of the service: the process and (``--workers N``) its live workers."""
    proc = psutil.Process(p.proc.pid)
    total = 0.0
    for one in [proc, *proc.children()]:
        try:
            t = one.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def _setup(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        owners = ["warm", "e2e", "lat", "base", "bk", "dw"]
        body = [
            {
                "apiVersion": "v3",
                "service": {
                    "name": o,
                    "baseAddress": "http://127.0.0.1:1",
                    "adminState": "UNLOCKED",
                },
            }
            for o in owners
        ]
        assert (await c.post("/deviceservice", json=body)).status_code == 207
        profile = {
            "name": "prof",
            "deviceResources": [
                {"name": "temp", "properties": {"valueType": "Float32", "readWrite": "R"}}
            ],
            "deviceCommands": [],
        }
        r = await c.post("/deviceprofile", json=[{"apiVersion": "v3", "profile": profile}])
        assert r.json()[0]["statusCode"] == 201, r.text


@dataclass
class Run:
    """One broker kind's set-up, shared by its phases."""

    kind: str
    work: Path
    broker: PrivateBroker
    svc: ServeProcess
    counter: Counter
    events: int
    backlog: int
    res: dict[str, Any]
    sample: bytes = b""

    @property
    def db(self) -> Path:
        """The service's SQLite file (``start`` puts its data directory in the work dir)."""
        return self.work / "data" / "edgemeta.db"

    def load(self, **spec: Any) -> subprocess.Popen[bytes]:
        return _child("loadgen", {"url": self.svc.url, "batch": BATCH, "connections": 2, **spec})


async def warm_up(r: Run) -> None:
    """A few batches; keeps a real device-add envelope for the ceiling publisher."""
    r.counter.keep.add("warm")
    await _finish(r.load(service="warm", tag="w", connections=1, requests=3))
    r.sample = (await r.counter.wait("warm", 3 * BATCH, 30)).kept[-1][1]
    r.res["envelope_bytes"] = len(r.sample)


async def ceiling(r: Run, label: str) -> None:
    """The plain client library publishing straight to the broker."""
    r.counter.tallies.pop("ceiling", None)
    topic = f"{PREFIX}/system-events/core-metadata/device/add/ceiling/prof"
    spec = {"kind": r.kind, "url": r.broker.url, "topic": topic, "count": r.events}
    out = await _finish(_child("publish", {**spec, "payload": r.sample.hex()}))
    t = await r.counter.wait("ceiling", r.events, 120)
    r.res[f"ceiling_{label}"] = r.events / ((t.last_ns - out["t0"]) / 1e9)
    r.res[f"ceiling_publish_{label}"] = r.events / ((out["t1"] - out["t0"]) / 1e9)


async def end_to_end(r: Run) -> None:
    """100-device batches from the load generator to the subscriber."""
    cpu0 = _cpu(r.svc)
    out = await _finish(r.load(service="e2e", tag="e", requests=r.events // BATCH))
    assert out["ok"] == r.events, out
    t = await r.counter.wait("e2e", r.events, 300)
    r.res["e2e"] = r.events / ((t.last_ns - out["t0"]) / 1e9)
    r.res["e2e_writes"] = r.events / ((out["t1"] - out["t0"]) / 1e9)
    r.res["e2e_cpu_us"] = (_cpu(r.svc) - cpu0) / r.events * 1e6


async def latency(r: Run, count: int = 2000, rate: float = 200) -> None:
    """Single writes paced at ``rate``/s: commit (event timestamp) to arrival."""
    r.counter.keep.add("lat")
    out = await _finish(r.load(service="lat", tag="l", rate=rate, count=count))
    assert out["ok"] == count, out
    t = await r.counter.wait("lat", count, 60)
    lat = [(at - orjson.loads(p)["payload"]["timestamp"]) / 1e6 for at, p in t.kept]
    r.res["lat_rate"] = count / ((out["t1"] - out["t0"]) / 1e9)
    r.res["lat_p50"], r.res["lat_p99"] = _pct(lat, 0.5), _pct(lat, 0.99)
    r.res["lat_max"] = max(lat)
    # The service's part: from the timestamp to the broker's acknowledgement (delivered_ns
    # is taken when the relay records it).
    conn = sqlite3.connect(f"file:{r.db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT delivered_ns - timestamp_ns FROM outbox WHERE type = 'device'"
            " AND owner = 'lat' AND delivered_ns IS NOT NULL"
        ).fetchall()
    finally:
        conn.close()
    svc = [v / 1e6 for (v,) in rows]
    r.res["svc_p50"], r.res["svc_p99"] = _pct(svc, 0.5), _pct(svc, 0.99)


async def drain(r: Run, seconds: float = 5.0) -> None:
    """Writes/s without a backlog; a backlog written with the broker down; the broker back
    with the same writes as before going on: drain rate and writes/s during it."""
    out = await _finish(r.load(service="base", tag="b", seconds=seconds))
    r.res["writes_base"] = out["ok"] / ((out["t1"] - out["t0"]) / 1e9)
    await r.counter.wait("base", out["ok"], 120)
    r.broker.stop()
    t_down = time.monotonic()
    out = await _finish(r.load(service="bk", tag="k", requests=r.backlog // BATCH))
    assert out["ok"] == r.backlog, out
    r.res["backlog_write_s"] = (out["t1"] - out["t0"]) / 1e9
    await asyncio.sleep(max(0.0, 3 - (time.monotonic() - t_down)))
    r.counter.keep_times.add("bk")
    r.broker.start()
    t_up = time.time_ns()
    # The writes start once the drain has: the time the relay and the bus take to notice
    # that the broker is back is reported on its own.
    await r.counter.wait("bk", 1, 60)
    out = await _finish(r.load(service="dw", tag="d", seconds=seconds))
    cpu_alone = _cpu(r.svc)
    r.res["writes_drain"] = out["ok"] / ((out["t1"] - out["t0"]) / 1e9)
    t = await r.counter.wait("bk", r.backlog, 900)
    cpu_alone = _cpu(r.svc) - cpu_alone
    r.res["drain"] = r.backlog / ((t.last_ns - t.first_ns) / 1e9)
    r.res["drain_from_up"] = r.backlog / ((t.last_ns - t_up) / 1e9)
    r.res["drain_first_s"] = (t.first_ns - t_up) / 1e9
    # Split at the end of the writes: the drain alongside writes, then alone.
    during = [at for at in t.times if at <= out["t1"]]
    if during:
        r.res["drain_with_writes"] = len(during) / ((out["t1"] - t.first_ns) / 1e9)
    alone = r.backlog - len(during)
    if alone > 1000:
        r.res["drain_alone"] = alone / ((t.last_ns - out["t1"]) / 1e9)
        r.res["drain_alone_cpu_us"] = cpu_alone / alone * 1e6
    await r.counter.wait("dw", out["ok"], 120)


PHASES = ("ceiling", "e2e", "latency", "drain")


async def bench_kind(
    kind: str, work: Path, events: int, backlog: int, phases: set[str], workers: int = 1
) -> dict[str, Any]:
    """The measurements in ``phases`` on one broker kind; returns the figures."""
    (work / "broker").mkdir(parents=True)
    broker = PrivateBroker(kind, work / "broker", persistent=True)
    broker.start()
    counter = Counter()
    sub: MqttSubscriber | NatsSubscriber = (
        MqttSubscriber(broker.url, counter)
        if kind == "mqtt"
        else NatsSubscriber(broker.url, counter)
    )
    await sub.start()
    svc = start(
        work,
        "--bus-url", broker.url,
        "--bus-prefix", PREFIX,
        "--device-validation", "never",
        "--log-level", "WARNING",
        "--workers", str(workers),
    )  # fmt: skip
    r = Run(kind, work, broker, svc, counter, events, backlog, {"kind": kind})
    try:
        svc.wait_ready(30)
        await _setup(svc.url)
        await warm_up(r)
        if "ceiling" in phases:
            await ceiling(r, "before")
        if "e2e" in phases:
            await end_to_end(r)
        if "latency" in phases:
            await latency(r)
        if "ceiling" in phases:
            await ceiling(r, "after")
            r.res["ceiling"] = statistics.mean([r.res["ceiling_before"], r.res["ceiling_after"]])
        if "drain" in phases:
            await drain(r)
    finally:
        svc.stop()
        await sub.stop()
        broker.stop()
    return r.res


def _fmt(v: float) -> str:
    return f"{v:,.0f}"


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """The figures as Markdown."""
    by = {r["kind"]: r for r in results}
    kinds = [k for k in ("mqtt", "nats") if k in by]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    head = "| figure | " + " | ".join(k.upper() for k in kinds) + " | target |"
    lines = [
        f"Run of `python -m bench.events --events {args.events} --backlog {args.backlog}` "
        f"(git `{commit}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} at the end).",
        "",
        head,
        "|---|" + "---:|" * len(kinds) + "---|",
    ]

    def cell(fn: Any, r: dict[str, Any]) -> str:
        try:
            return str(fn(r))
        except KeyError:
            return "-"  # the phase did not run

    def row(label: str, fn: Any, target: str = "") -> None:
        cells = [cell(fn, by[k]) for k in kinds]
        if any(c != "-" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {target} |")

    def met(ok: bool) -> str:
        return "**met**" if ok else "**missed**"

    def both(a: str, b: str, fmt: Any = _fmt) -> Any:
        return lambda r: f"{fmt(r[a])} / {fmt(r[b])}"

    def ms(v: float) -> str:
        return f"{v:.1f}"

    def e2e_ratio(r: dict[str, Any]) -> str:
        ok = r["e2e"] >= TARGETS["e2e"] * r["ceiling"]
        return f"{r['e2e'] / r['ceiling']:.0%} {met(ok)}"

    def drain_ratio(r: dict[str, Any]) -> str:
        ok = r["drain"] >= TARGETS["drain"] * r["ceiling"]
        return f"{r['drain'] / r['ceiling']:.0%} {met(ok)}"

    def kept(r: dict[str, Any]) -> str:
        ok = r["writes_drain"] >= TARGETS["writes_kept"] * r["writes_base"]
        return f"{r['writes_drain'] / r['writes_base']:.0%} {met(ok)}"

    def lat(r: dict[str, Any]) -> str:
        return f"{r['lat_p50']:.1f} / {r['lat_p99']:.1f} / {r['lat_max']:.1f}"

    row(
        "ceiling: plain client to subscriber, msg/s (before / after)",
        both("ceiling_before", "ceiling_after"),
    )
    row(
        "ceiling: the publisher alone, msg/s (before / after)",
        both("ceiling_publish_before", "ceiling_publish_after"),
    )
    row("end to end, events/s (100-device batches)", lambda r: _fmt(r["e2e"]))
    row("end to end / ceiling", e2e_ratio, "≥ 50 %")
    row("API writes meanwhile, devices/s", lambda r: _fmt(r["e2e_writes"]))
    row("service CPU per event (write + relay), µs", lambda r: _fmt(r["e2e_cpu_us"]))
    row("load generator's pace in the latency run, writes/s", lambda r: _fmt(r["lat_rate"]))
    row("commit to subscriber at 200 writes/s: p50 / p99 / max, ms", lat)
    row("commit to broker's ack (outbox): p50 / p99, ms", both("svc_p50", "svc_p99", ms))
    row("latency p99", lambda r: met(r["lat_p99"] < TARGETS["p99_ms"]), "p99 < 50 ms")
    row(
        "backlog: time to write it with the broker down, s", lambda r: f"{r['backlog_write_s']:.1f}"
    )
    row("drain: broker restarted to first event, s", lambda r: f"{r['drain_first_s']:.1f}")
    row("drain, events/s (first to last backlog event)", lambda r: _fmt(r["drain"]))
    row("drain, events/s (from the broker's restart)", lambda r: _fmt(r["drain_from_up"]))
    row(
        "drain, events/s: alongside writes / alone after them",
        both("drain_with_writes", "drain_alone"),
    )
    row("service CPU per event, relay alone, µs", lambda r: _fmt(r["drain_alone_cpu_us"]))
    row("drain / ceiling", drain_ratio, "≥ 50 %")
    row("API writes, devices/s: no drain / during the drain", both("writes_base", "writes_drain"))
    row("writes kept during the drain", kept, "≥ 67 %")
    row("envelope size, bytes", lambda r: str(r["envelope_bytes"]))
    return "\n".join(lines) + "\n"


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="edgemeta-bench-events-") as tmp:
        for kind in args.kinds.split(","):
            print(f"-- {kind}", file=sys.stderr)
            phases = set(args.phases.split(","))
            r = await bench_kind(
                kind, Path(tmp) / kind, args.events, args.backlog, phases, args.workers
            )
            r["workers"] = args.workers
            print(json.dumps(r), file=sys.stderr)
            results.append(r)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kinds", default="mqtt,nats")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--workers", type=int, default=1, help="edgemeta serve --workers N")
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    parser.add_argument("--publish", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.loadgen:
        print(json.dumps(asyncio.run(_loadgen(json.loads(args.loadgen)))))
        return
    if args.publish:
        print(json.dumps(asyncio.run(_publish(json.loads(args.publish)))))
        return
    results = asyncio.run(run(args))
    text = report(results, args)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
