"""core-data ingest benchmark: ``python -m bench.ingest [--quick] [--parts rest,mqtt,rules]``.

Everything in one run, so that the ratios are meaningful (see bench/INGEST.md):

1. **REST ingest** (``rest``): ``edgemeta serve`` (SQLite, ``--device-validation never``,
   in-process bus, core-data on a free ``EDGEMETA_DATA_PORT``) seeded with one device service,
   one profile of 10 Float32 resources (``r0`` .. ``r9``, command ``all`` reading all ten) and
   one device; wrk (50 connections, one thread) POSTs
   ``/api/v3/event/{svc}/{profile}/{device}/{source}`` with a fresh UUID v4 per request, 1
   reading (source ``r0``) or 10 readings (source ``all``). The stored event count is checked
   against wrk's 2xx count afterwards. The bare-ASGI ceiling (``bench.apps bare``) is measured
   before and after in the same run.
2. **MQTT ingest** (``mqtt``): the same service with ``EDGEMETA_BUS_URL=mqtt://...`` and a
   unique ``EDGEMETA_BUS_PREFIX`` / ``EDGEMETA_DATA_CLIENT_ID``; a publisher process
   publishes N pre-built EdgeX MessageEnvelopes at QoS 1; the time from its first publish to
   ``/event/count`` reaching N gives events/s. The ceiling: the same publisher to a plain
   QoS 1 subscriber process (paho, counting) on the same broker. The machine's Mosquitto
   (127.0.0.1:1883) is tried first; if the ingest falls short of N (its default
   ``max_queued_messages 1000`` drops messages for a slow subscriber) a private Mosquitto
   with ``max_queued_messages 0`` is used instead (the result says which).
3. **Rules check at 10M readings** (``rules``): an SQLite database with a profile of 1,000
   resources (100 commands of 10) and one device, 1,000,000 events of 10 readings inserted
   straight into ``core_event`` / ``core_reading`` / ``core_data_association``; whole-profile
   PUTs (descriptions only: 200; a resource's valueType with data: 409) timed on it and on the
   same database with no readings; ``EXPLAIN QUERY PLAN`` of the association query.

Writes ``bench/results/ingest-<stamp>.json`` and the logs to ``bench/results/ingest-<stamp>/``
and prints markdown tables (pasted by hand into BENCHMARKS.md, section "core-data ingest").
Needs wrk, mosquitto, paho-mqtt and (for ``--profile``) py-spy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psutil

from bench.procs import (
    Server,
    _busy_s,
    app_server,
    edgemeta_server,
    free_port,
    request,
    wrk,
)
from bench.run import RESULTS, ROOT, machine, measure
from bench.workload import _COMMON, lua_get

SVC, PROFILE, DEVICE = "bench-ds", "bench-p10", "bench-d"
RULES_PROFILE, RULES_RESOURCES, RULES_COMMANDS = "bench-p1000", 1000, 100
MACHINE_BROKER = ("127.0.0.1", 1883)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _load() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


# -- seeding --------------------------------------------------------------------------------


def profile_doc(name: str, resources: int, commands: int, *, desc: str = "", vt0: str = "") -> Any:
    per = resources // commands if commands else 0
    return {
        "name": name,
        "manufacturer": "Acme",
        "model": "M1",
        "description": f"bench profile {desc}",
        "labels": ["bench"],
        "deviceResources": [
            {
                "name": f"r{k}",
                "description": f"resource {k} {desc}",
                "properties": {
                    "valueType": (vt0 or "Float32") if k == 0 else "Float32",
                    "readWrite": "R",
                    "units": "C",
                },
            }
            for k in range(resources)
        ],
        "deviceCommands": [
            {
                "name": "all" if commands == 1 else f"c{c}",
                "readWrite": "R",
                "resourceOperations": [
                    {"deviceResource": f"r{k}"} for k in range(c * per, (c + 1) * per)
                ],
            }
            for c in range(commands)
        ],
    }


def _post_all(port: int, path: str, key: str, doc: Any) -> None:
    body = orjson.dumps([{"apiVersion": "v3", key: doc}])
    status, out = request(port, "POST", path, body)
    if status != 207 or any(r["statusCode"] != 201 for r in orjson.loads(out)):
        raise RuntimeError(f"seeding {path}: {status} {out[:300]!r}")


def seed(port: int, profile: Any) -> None:
    service = {"name": SVC, "baseAddress": "http://bench-ds:59999", "adminState": "UNLOCKED"}
    _post_all(port, "/api/v3/deviceservice", "service", service)
    _post_all(port, "/api/v3/deviceprofile", "profile", profile)
    device = {
        "name": DEVICE,
        "serviceName": SVC,
        "profileName": profile["name"],
        "adminState": "UNLOCKED",
        "operatingState": "UP",
        "protocols": {"other": {"Address": "10.0.0.1"}},
    }
    _post_all(port, "/api/v3/device?bypassValidation=true", "device", device)


def data_count(server: Server, what: str = "event") -> int:
    status, body = request(server_data_port(server), "GET", f"/api/v3/{what}/count", timeout=10)
    if status != 200:
        raise RuntimeError(f"{what} count: {status} {body[:200]!r}")
    return int(orjson.loads(body)["count"])


def server_data_port(server: Server) -> int:
    return int(server.env["EDGEMETA_DATA_PORT"])


class DataSide:
    """The server as ``bench.run.measure`` sees it, with core-data's port."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.port = server_data_port(server)

    def cpu_s(self) -> float:
        return self.server.cpu_s()

    def rss(self) -> int:
        return self.server.rss()


def make_server(db_url: str, logfile: Path, env: dict[str, str]) -> Server:
    server = edgemeta_server(db_url, logfile)
    server.env.update(env)
    return server


# -- events ---------------------------------------------------------------------------------


def event_request(readings: int, *, event_id: str, origin: int) -> dict[str, Any]:
    """An AddEventRequest of ``readings`` Float32 readings (source r0, or command all)."""
    source = "r0" if readings == 1 else "all"
    return {
        "apiVersion": "v3",
        "event": {
            "apiVersion": "v3",
            "id": event_id,
            "deviceName": DEVICE,
            "profileName": PROFILE,
            "sourceName": source,
            "origin": origin,
            "readings": [
                {
                    "resourceName": f"r{k}",
                    "valueType": "Float32",
                    "value": "1.5",
                    "origin": origin,
                    "deviceName": DEVICE,
                    "profileName": PROFILE,
                }
                for k in range(readings)
            ],
        },
    }


def envelope(req: dict[str, Any]) -> bytes:
    """An EdgeX MessageEnvelope carrying ``req`` as its payload (as tests/data/test_ingest)."""
    return orjson.dumps(
        {
            "apiVersion": "v3",
            "receivedTopic": "",
            "correlationID": str(uuid.uuid4()),
            "requestID": str(uuid.uuid4()),
            "errorCode": 0,
            "payload": req,
            "contentType": "application/json",
        }
    )


def lua_post_event(seed: int, readings: int) -> str:
    """POST an event with a fresh UUID v4 per request: the first group is random per script
    (wrk's Lua generator is seeded deterministically, so two scripts would otherwise repeat
    each other's ids, and the service answers 409), the rest random per request except the
    last 10 hex digits (the seed, the wrk thread and a counter): ids never repeat."""
    marker = event_request(readings, event_id="@@ID@@", origin=0)
    text = orjson.dumps(marker).decode().replace('"origin":0', '"origin":@@ORIGIN@@')
    pieces = re.split(r"(@@ID@@|@@ORIGIN@@)", text)
    segs = pieces[0::2]
    toks = [p.strip("@").lower() for p in pieces[1::2]]
    source = marker["event"]["sourceName"]
    path = f"/api/v3/event/{SVC}/{PROFILE}/{DEVICE}/{source}"
    lua_segs = "{" + ", ".join("[==[" + s + "]==]" for s in segs) + "}"
    lua_toks = "{" + ", ".join(f'"{t}"' for t in toks) + "}"
    base_s = str(int(time.time()))
    return (
        f"SEED = {seed}\n"
        + _COMMON
        + f"""
local path = "{path}"
local segs = {lua_segs}
local toks = {lua_toks}
local base_s = "{base_s}"
local salt = "{uuid.uuid4().hex[:8]}"
local hex = "0123456789abcdef"
local n = 0
local headers = {{["Content-Type"] = "application/json"}}
local function rhex(k)
  local t = {{}}
  for i = 1, k do
    local d = math.random(1, 16)
    t[i] = hex:sub(d, d)
  end
  return table.concat(t)
end
request = function()
  n = n + 1
  local v = math.random(9, 12)
  local vals = {{
    id = salt .. "-" .. rhex(4) .. "-4" .. rhex(3) .. "-" .. hex:sub(v, v) .. rhex(3)
      .. "-" .. string.format("%02x%02x%08x", SEED % 256, (tid or 0) % 256, n),
    origin = base_s .. string.format("%09d", n % 1000000000),
  }}
  local t = {{}}
  for i = 1, #toks do
    t[#t + 1] = segs[i]
    t[#t + 1] = vals[toks[i]]
  end
  t[#t + 1] = segs[#segs]
  return wrk.format("POST", path, headers, table.concat(t))
end
"""
    )


# -- part 1: REST ---------------------------------------------------------------------------


def run_ceiling(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    server = app_server("bare", workdir / "bare.log")
    server.start()
    try:
        server.settle(5)
        res = measure(
            server,
            lambda s: lua_get(s, "/"),
            connections=50,
            warmup=args.warmup,
            duration=args.duration,
            workdir=workdir,
        )
    finally:
        server.stop()
    res["loadavg"] = _load()
    log(
        f"  bare ASGI ceiling {res['rps']:8.0f} req/s  p50 {res['p50_us'] / 1e3:.2f} ms  "
        f"other load {res['other_load_cores']:.2f}"
    )
    return res


def run_rest(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="edgemeta-ingest-rest-"))
    try:
        server = make_server(f"sqlite:///{tmp / 'rest.db'}", workdir / "edgemeta-rest.log", {})
        server.start()
        try:
            seed(server.port, profile_doc(PROFILE, 10, 1))
            server.settle(5)
            for readings in (1, 10):
                ev0, rd0 = data_count(server), data_count(server, "reading")
                warm = wrk(
                    server_data_port(server),
                    lua_post_event(1, readings),
                    seconds=args.warmup,
                    connections=50,
                    workdir=workdir,
                )
                res = measure(
                    DataSide(server),  # type: ignore[arg-type]
                    lambda s, r=readings: lua_post_event(s + 1, r),  # type: ignore[misc]
                    connections=50,
                    warmup=0,
                    duration=args.duration,
                    workdir=workdir,
                )
                res["warmup_requests"], res["warmup_status"] = warm["requests"], warm["status"]
                time.sleep(0.3)
                stored = data_count(server) - ev0
                stored_r = data_count(server, "reading") - rd0
                ok_2xx = (res["warmup_requests"] - res.get("warmup_status", 0)) + (
                    res["requests"] - res["status"]
                )
                res.update(
                    readings_per_event=readings,
                    events_per_s=round(res["rps"], 1),
                    readings_per_s=round(res["rps"] * readings, 1),
                    stored_events=stored,
                    stored_readings=stored_r,
                    wrk_2xx=ok_2xx,
                    loadavg=_load(),
                )
                out[f"{readings}r"] = res
                log(
                    f"  REST {readings:2d} reading(s): {res['rps']:7.0f} events/s "
                    f"{res['rps'] * readings:8.0f} readings/s  p50 {res['p50_us'] / 1e3:.2f} ms "
                    f"p99 {res['p99_us'] / 1e3:.2f} ms  non2xx {res['status']} err "
                    f"{res['errors']}  cpu {res['server_cpu_us_per_req']:.0f} us/req  stored "
                    f"{stored} (wrk 2xx incl. warm-up {ok_2xx})  other load "
                    f"{res['other_load_cores']:.2f}"
                )
                server.settle(10)
        finally:
            server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# -- part 2: MQTT ---------------------------------------------------------------------------


class PrivateMosquitto:
    """A Mosquitto of our own: no persistence, ``max_queued_messages 0`` (no drops)."""

    def __init__(self, workdir: Path, inflight: int | None = None) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.inflight = inflight
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = self.workdir / f"mosquitto-{self.port}.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            "max_queued_messages 0",
            "max_queued_bytes 0",
        ]
        if self.inflight is not None:
            lines.append(f"max_inflight_messages {self.inflight}")
        conf.write_text("\n".join(lines) + "\n")
        logf = (self.workdir / f"mosquitto-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=logf, stderr=logf)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                import socket

                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            time.sleep(0.05)
        raise RuntimeError("private mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


def _mosquitto_pid(port: int) -> int | None:
    for c in psutil.net_connections("tcp"):
        if c.status == "LISTEN" and c.laddr and c.laddr.port == port and c.pid:
            return c.pid
    return None


def _cpu(pid: int | None) -> float:
    if not pid:
        return 0.0
    try:
        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    except psutil.Error:
        return 0.0


def _helper(argv: list[str], workdir: Path, name: str) -> subprocess.Popen[str]:
    err = (workdir / f"{name}.err").open("a")
    return subprocess.Popen(
        [sys.executable, "-m", "bench.ingest", *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        cwd=ROOT,
    )


def _publisher(host: str, port: int, prefix: str, n: int, readings: int, workdir: Path) -> Any:
    pub = _helper(
        ["_publish", host, str(port), prefix, str(n), str(readings)], workdir, "publisher"
    )
    assert pub.stdout is not None
    line = pub.stdout.readline()
    if not line.startswith("READY"):
        raise RuntimeError(f"publisher: {line!r}; see {workdir / 'publisher.err'}")
    return pub


def _go(pub: subprocess.Popen[str]) -> None:
    assert pub.stdin is not None
    pub.stdin.write("GO\n")
    pub.stdin.flush()


def _finish(pub: subprocess.Popen[str]) -> dict[str, Any]:
    assert pub.stdout is not None
    line = pub.stdout.readline()
    pub.wait(30)
    if not line:
        raise RuntimeError("publisher gave no result")
    result: dict[str, Any] = json.loads(line)
    return result


def mqtt_ceiling(host: str, port: int, n: int, readings: int, workdir: Path) -> dict[str, Any]:
    """The same publisher to a plain QoS 1 subscriber (paho, counting): messages/s."""
    prefix = f"benchceil{uuid.uuid4().hex[:8]}"
    sub = _helper(["_subscribe", host, str(port), prefix, str(n)], workdir, "subscriber")
    assert sub.stdout is not None
    if not sub.stdout.readline().startswith("READY"):
        raise RuntimeError("subscriber did not start")
    pub = _publisher(host, port, prefix, n, readings, workdir)
    busy0 = _busy_s()
    _go(pub)
    p = _finish(pub)
    s = json.loads(sub.stdout.readline())
    sub.wait(30)
    busy = _busy_s() - busy0
    secs = s["t_last"] - p["t0"]
    res = {
        "messages": n,
        "received": s["count"],
        "seconds": round(secs, 3),
        "messages_per_s": round(s["count"] / secs, 1) if secs > 0 else 0.0,
        "publish_all_acked_s": round(p["t_acked"] - p["t0"], 3),
        "publisher_cpu_s": p["cpu_s"],
        "subscriber_cpu_s": s["cpu_s"],
        "machine_busy_s": round(busy, 2),
        "loadavg": _load(),
    }
    log(
        f"  ceiling ({readings} r/msg): {res['messages_per_s']:8.0f} msg/s "
        f"({s['count']}/{n} in {secs:.2f}s; publisher acked all after "
        f"{res['publish_all_acked_s']:.2f}s)"
    )
    return res


def mqtt_ingest(
    host: str,
    port: int,
    n: int,
    readings: int,
    workdir: Path,
    *,
    batch: int,
    profile: bool,
    broker_pid: int | None,
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    prefix, client_id = f"benchingest{tag}", f"bench-cd-{tag}"
    tmp = Path(tempfile.mkdtemp(prefix="edgemeta-ingest-mqtt-"))
    env = {
        "EDGEMETA_BUS_URL": f"mqtt://{host}:{port}",
        "EDGEMETA_BUS_PREFIX": prefix,
        "EDGEMETA_DATA_CLIENT_ID": client_id,
        "EDGEMETA_DATA_BATCH": str(batch),
    }
    server = make_server(f"sqlite:///{tmp / 'mqtt.db'}", workdir / "edgemeta-mqtt.log", env)
    res: dict[str, Any] = {"messages": n, "readings_per_event": readings, "batch": batch}
    try:
        server.start()
        seed(server.port, profile_doc(PROFILE, 10, 1))
        server.settle(5)
        time.sleep(0.5)  # the ingest subscribes in the background
        pub = _publisher(host, port, prefix, n, readings, workdir)
        spy = None
        raw = workdir / f"pyspy-mqtt-{readings}r-b{batch}.txt"
        if profile and shutil.which("py-spy", path=str(Path(sys.executable).parent)):
            spy = subprocess.Popen(
                [
                    shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy",
                    "record",
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--rate",
                    "200",
                    "--pid",
                    str(server.ps.pid),
                    "--output",
                    str(raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        cpu0, bcpu0, busy0 = server.cpu_s(), _cpu(broker_pid), _busy_s()
        _go(pub)
        last, last_change, t_done = 0, time.monotonic(), None
        while True:
            c = data_count(server)
            now = time.monotonic()
            if c >= n:
                t_done = now
                break
            if c != last:
                last, last_change = c, now
            elif now - last_change > 10:
                break
            time.sleep(0.02)
        cpu, bcpu, busy = server.cpu_s() - cpu0, _cpu(broker_pid) - bcpu0, _busy_s() - busy0
        p = _finish(pub)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
            if raw.exists():
                from bench.profile import summarize

                res["profile"] = summarize(raw, top=25)
        stored = data_count(server)
        stored_r = data_count(server, "reading")
        end = t_done if t_done is not None else last_change
        secs = end - p["t0"]
        res.update(
            stored_events=stored,
            stored_readings=stored_r,
            complete=t_done is not None,
            seconds=round(secs, 3),
            events_per_s=round(stored / secs, 1) if secs > 0 else 0.0,
            readings_per_s=round(stored_r / secs, 1) if secs > 0 else 0.0,
            publish_all_acked_s=round(p["t_acked"] - p["t0"], 3),
            server_cpu_s=round(cpu, 2),
            server_cpu_us_per_event=round(cpu / stored * 1e6, 1) if stored else 0.0,
            broker_cpu_s=round(bcpu, 2),
            publisher_cpu_s=p["cpu_s"],
            machine_busy_s=round(busy, 2),
            loadavg=_load(),
        )
        log(
            f"  ingest ({readings} r/ev, batch {batch}): {res['events_per_s']:8.0f} events/s "
            f"{res['readings_per_s']:9.0f} readings/s  stored {stored}/{n} in {secs:.2f}s  "
            f"server cpu {cpu / max(secs, 1e-9):.2f} cores ({res['server_cpu_us_per_event']:.0f}"
            f" us/event)  broker {bcpu:.1f}s"
        )
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        drop_session(host, port, client_id)
    return res


def drop_session(host: str, port: int, client_id: str) -> None:
    """Connect once with the ingest's client id and clean_session=True: the broker forgets
    the persistent session (and whatever it still queued for it)."""
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    try:
        c.connect(host, port, 10)
        c.loop_start()
        time.sleep(0.3)
        c.disconnect()
        c.loop_stop()
    except OSError as exc:
        log(f"  could not drop session {client_id}: {exc}")


def run_mqtt(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": []}
    sizes = {1: args.mqtt_events_1, 10: args.mqtt_events_10}
    brokers: list[tuple[str, Any]] = []
    if not args.private_only:
        brokers.append(("machine", None))
    for inflight in args.broker_inflight:
        name = "private" + (f", max_inflight_messages {inflight}" if inflight is not None else "")
        brokers.append((name, PrivateMosquitto(workdir, inflight)))
    for kind, broker in brokers:
        host, port = MACHINE_BROKER
        if broker is not None:
            broker.start()
            port = broker.port
        pid = _mosquitto_pid(port)
        short = False
        try:
            log(f" broker: {kind} mosquitto on port {port}")
            for readings in (1, 10):
                n = sizes[readings]
                ceil = mqtt_ceiling(host, port, n, readings, workdir)
                for b in args.batches:
                    ing = mqtt_ingest(
                        host,
                        port,
                        n,
                        readings,
                        workdir,
                        batch=b,
                        profile=args.profile and readings == 1 and b == args.batches[0],
                        broker_pid=pid,
                    )
                    ing["broker"] = kind
                    ing["ceiling_messages_per_s"] = ceil["messages_per_s"]
                    ing["vs_ceiling"] = (
                        round(ing["events_per_s"] / ceil["messages_per_s"], 3)
                        if ceil["messages_per_s"]
                        else 0.0
                    )
                    ing["ceiling"] = ceil
                    out["runs"].append(ing)
                    short = short or not ing["complete"]
        finally:
            if broker is not None:
                broker.stop()
        if kind == "machine" and not short and len(brokers) == 2:
            break
        if kind == "machine":
            log(" the machine broker dropped messages: again on a private mosquitto")
    return out


# -- helper processes (publisher, ceiling subscriber) ---------------------------------------


def _self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return round(ru.ru_utime + ru.ru_stime, 3)


def cmd_publish(host: str, port: int, prefix: str, n: int, readings: int) -> None:
    import paho.mqtt.client as mqtt

    topic = f"{prefix}/events/device/{SVC}/{PROFILE}/{DEVICE}/" + ("r0" if readings == 1 else "all")
    base = time.time_ns()
    envs = [
        envelope(event_request(readings, event_id=str(uuid.uuid4()), origin=base + i))
        for i in range(n)
    ]
    acked = 0
    done = threading.Event()
    connected = threading.Event()

    def on_connect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        connected.set()

    def on_publish(client: Any, userdata: Any, mid: Any, rc: Any, props: Any) -> None:
        nonlocal acked
        acked += 1
        if acked >= n:
            done.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:8]}")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.on_connect = on_connect
    c.on_publish = on_publish
    c.connect(host, port, 60)
    c.loop_start()
    connected.wait(10)
    print("READY", flush=True)
    sys.stdin.readline()
    t0 = time.monotonic()
    for e in envs:
        c.publish(topic, e, qos=1)
    t_sent = time.monotonic()
    done.wait(600)
    t_acked = time.monotonic()
    c.disconnect()
    c.loop_stop()
    print(
        json.dumps(
            {"t0": t0, "t_sent": t_sent, "t_acked": t_acked, "acked": acked, "cpu_s": _self_cpu()}
        ),
        flush=True,
    )


def cmd_subscribe(host: str, port: int, prefix: str, n: int) -> None:
    import paho.mqtt.client as mqtt

    count = 0
    t_last = 0.0
    done = threading.Event()
    subscribed = threading.Event()

    def on_connect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        client.subscribe(f"{prefix}/events/device/#", qos=1)

    def on_subscribe(client: Any, userdata: Any, mid: Any, rcs: Any, props: Any) -> None:
        subscribed.set()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        nonlocal count, t_last
        count += 1
        t_last = time.monotonic()
        if count >= n:
            done.set()

    c = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"bench-sub-{uuid.uuid4().hex[:8]}",
        clean_session=True,
    )
    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    c.connect(host, port, 60)
    c.loop_start()
    subscribed.wait(10)
    print("READY", flush=True)
    last = -1
    while not done.wait(5):
        if count == last and count > 0:
            break  # no message for 5 s: short
        last = count
    c.disconnect()
    c.loop_stop()
    print(json.dumps({"count": count, "t_last": t_last, "cpu_s": _self_cpu()}), flush=True)


# -- part 3: rules check at 10M readings ----------------------------------------------------

ASSOC_SQL = (
    "SELECT profile_name, kind, name, device_name, count FROM core_data_association"
    " WHERE profile_name = ? AND count > 0 ORDER BY profile_name, kind, name, device_name"
)


def bulk_insert(path: Path, events: int, per_event: int = 10) -> dict[str, Any]:
    """``events`` events of ``per_event`` readings of RULES_PROFILE straight into the tables,
    with the association index they imply."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in (
        "journal_mode=OFF",
        "synchronous=OFF",
        "cache_size=-2000000",
        "temp_store=MEMORY",
        "locking_mode=EXCLUSIVE",
    ):
        conn.execute(f"PRAGMA {pragma}")
    per_cmd = RULES_RESOURCES // RULES_COMMANDS
    assert per_event == per_cmd
    origin0 = time.time_ns() - (events + 1000) * 1_000_000  # 1 ms apart, ends ~now
    chunk = 50_000
    t0 = time.perf_counter()
    ev_head = f'{{"apiVersion":"v3","id":"%s","deviceName":"{DEVICE}","profileName":"{RULES_PROFILE}","sourceName":"c%d","origin":%d}}'  # noqa: E501
    rd_head = f'{{"id":"%s","origin":%d,"deviceName":"{DEVICE}","resourceName":"r%d","profileName":"{RULES_PROFILE}","valueType":"Float32","value":"1.5"}}'  # noqa: E501
    for start in range(0, events, chunk):
        stop = min(start + chunk, events)
        conn.execute("BEGIN")
        ev_rows = []
        rd_rows = []
        for i in range(start, stop):
            cmd = i % RULES_COMMANDS
            origin = origin0 + i * 1_000_000
            eid = f"{i:08x}-0000-4000-8000-000000000000"
            ev_rows.append(
                (i + 1, eid, DEVICE, RULES_PROFILE, f"c{cmd}", origin, ev_head % (eid, cmd, origin))
            )
            for k in range(per_event):
                res = cmd * per_cmd + k
                rid = f"{i:08x}-{k:04x}-4000-8000-000000000001"
                rd_rows.append(
                    (
                        i * per_event + k + 1,
                        i + 1,
                        DEVICE,
                        f"r{res}",
                        origin,
                        rd_head % (rid, origin, res),
                    )
                )
        conn.executemany(
            "INSERT INTO core_event (seq, id, device_name, profile_name, source_name, origin,"
            " content) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ev_rows,
        )
        conn.executemany(
            "INSERT INTO core_reading (seq, event_seq, device_name, resource_name, origin,"
            " content) VALUES (?, ?, ?, ?, ?, ?)",
            rd_rows,
        )
        conn.execute("COMMIT")
        if (stop // chunk) % 4 == 0:
            rate = stop * per_event / (time.perf_counter() - t0)
            log(f"    {stop * per_event:>10,} readings ({rate:,.0f}/s)")
    # The index: events per (profile, command, device), readings per (profile, resource,
    # device), exactly what was inserted.
    ev_per_cmd = [0] * RULES_COMMANDS
    for i in range(events):
        ev_per_cmd[i % RULES_COMMANDS] += 1
    rows: list[tuple[str, str, str, str, int]] = []
    for c in range(RULES_COMMANDS):
        rows.append((RULES_PROFILE, "source", f"c{c}", DEVICE, ev_per_cmd[c]))
        for k in range(per_cmd):
            rows.append((RULES_PROFILE, "resource", f"r{c * per_cmd + k}", DEVICE, ev_per_cmd[c]))
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO core_data_association (profile_name, kind, name, device_name, count)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (profile_name, kind, name, device_name)"
        " DO UPDATE SET count = core_data_association.count + excluded.count",
        rows,
    )
    conn.execute("COMMIT")
    secs = time.perf_counter() - t0
    # sanity: the index agrees with the tables
    n_ev = conn.execute("SELECT count(*) FROM core_event").fetchone()[0]
    n_rd = conn.execute("SELECT max(seq) FROM core_reading").fetchone()[0]
    idx_ev, idx_rd = conn.execute(
        "SELECT sum(CASE WHEN kind = 'source' THEN count END),"
        " sum(CASE WHEN kind = 'resource' THEN count END) FROM core_data_association"
    ).fetchone()
    conn.close()
    return {
        "events": n_ev,
        "readings": n_rd,
        "index_events": idx_ev,
        "index_readings": idx_rd,
        "index_rows": len(rows),
        "seconds": round(secs, 1),
        "readings_per_s": round(events * per_event / secs),
        "db_bytes": path.stat().st_size,
    }


def explain(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("EXPLAIN QUERY PLAN " + ASSOC_SQL, (RULES_PROFILE,)).fetchall()
        return [str(r[-1]) for r in rows]
    finally:
        conn.close()


def time_puts(port: int, repeats: int, with_data: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for what in ("descriptions", "properties"):
        times, codes = [], []
        for i in range(repeats):
            if what == "descriptions":
                doc = profile_doc(RULES_PROFILE, RULES_RESOURCES, RULES_COMMANDS, desc=f"v{i}")
            else:  # r0's valueType to Int32 (refused each time with data; without data,
                # alternately Int32 and Float32 so that each PUT is a change)
                vt = "Int32" if with_data or i % 2 == 0 else "Float32"
                doc = profile_doc(RULES_PROFILE, RULES_RESOURCES, RULES_COMMANDS, vt0=vt)
            body = orjson.dumps([{"apiVersion": "v3", "profile": doc}])
            t0 = time.perf_counter()
            status, resp = request(port, "PUT", "/api/v3/deviceprofile", body)
            times.append((time.perf_counter() - t0) * 1e3)
            items = orjson.loads(resp)
            codes.append(items[0]["statusCode"] if status == 207 else status)
            if what == "properties" and with_data and i == 0:
                out["refusal_message"] = items[0].get("message", "")[:300]
        out[what] = {
            "codes": codes,
            "ms_median": round(statistics.median(times), 1),
            "ms_min": round(min(times), 1),
            "ms_max": round(max(times), 1),
        }
    return out


def run_rules(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    profile = profile_doc(RULES_PROFILE, RULES_RESOURCES, RULES_COMMANDS, desc="v-initial")
    for label, events in (("0 readings", 0), ("with data", args.rules_events)):
        tmp = Path(tempfile.mkdtemp(prefix="edgemeta-ingest-rules-", dir=args.tmpdir))
        db = tmp / "rules.db"
        url = f"sqlite:///{db}"
        try:
            logfile = workdir / "edgemeta-rules.log"
            server = make_server(url, logfile, {})
            server.start()
            try:
                seed(server.port, profile)
                server.settle(5)
            finally:
                server.stop()
            res: dict[str, Any] = {}
            if events:
                log(f"  bulk insert: {events:,} events x 10 readings")
                res["insert"] = bulk_insert(db, events)
                log(
                    f"  inserted {res['insert']['readings']:,} readings in "
                    f"{res['insert']['seconds']:.0f}s ({res['insert']['readings_per_s']:,}/s), "
                    f"db {res['insert']['db_bytes'] / 1e9:.2f} GB"
                )
            server = make_server(url, logfile, {})
            res["startup_s"] = round(server.start(timeout=300), 3)
            try:
                server.settle(10)
                res["puts"] = time_puts(server.port, args.put_repeats, bool(events))
                t0 = time.perf_counter()
                res["reading_count"] = data_count(server, "reading")
                res["reading_count_ms"] = round((time.perf_counter() - t0) * 1e3, 1)
            finally:
                server.stop()
            res["explain"] = explain(db)
            res["loadavg"] = _load()
            out[label] = res
            p = res["puts"]
            log(
                f"  {label}: PUT descriptions {p['descriptions']['codes']} median "
                f"{p['descriptions']['ms_median']} ms; PUT r0 valueType "
                f"{p['properties']['codes']} median {p['properties']['ms_median']} ms; "
                f"GET /reading/count {res['reading_count']:,} in {res['reading_count_ms']} ms"
            )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


# -- report ---------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    lines: list[str] = []
    rest = results.get("rest")
    if rest:
        ceil = results["ceiling"]
        c = statistics.mean(x["rps"] for x in ceil)
        lines += [
            "Bare-ASGI ceiling: " + " / ".join(f"{x['rps']:,.0f}" for x in ceil) + " req/s "
            f"(before / after; mean {c:,.0f}).",
            "",
            "| REST ingest | events/s | readings/s | p50 ms | p99 ms | non-2xx | server CPU"
            " us/event | stored = wrk 2xx | vs ceiling | other load |",
            "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
        ]
        for key, r in rest.items():
            lines.append(
                f"| {key.replace('r', '')} reading(s) | {r['events_per_s']:,.0f} | "
                f"{r['readings_per_s']:,.0f} | {r['p50_us'] / 1e3:.2f} | {r['p99_us'] / 1e3:.2f}"
                f" | {r['status']} | {r['server_cpu_us_per_req']:,.0f} | {r['stored_events']:,}"
                f" / {r['wrk_2xx']:,} | {r['rps'] / c:.1%} | {r['other_load_cores']:.2f} |"
            )
        lines.append("")
    mq = results.get("mqtt")
    if mq:
        lines += [
            "| broker | readings/event | batch | events | stored | s | events/s | readings/s"
            " | ceiling msg/s | vs ceiling | server CPU us/event | load avg |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in mq["runs"]:
            lines.append(
                f"| {r['broker']} | {r['readings_per_event']} | {r['batch']} | "
                f"{r['messages']:,} | {r['stored_events']:,} | {r['seconds']:.2f} | "
                f"{r['events_per_s']:,.0f} | {r['readings_per_s']:,.0f} | "
                f"{r['ceiling_messages_per_s']:,.0f} | {r['vs_ceiling']:.0%} | "
                f"{r['server_cpu_us_per_event']:,.0f} | {r['loadavg'][0]:.2f} |"
            )
        lines.append("")
    rules = results.get("rules")
    if rules:
        lines += [
            "| database | PUT descriptions: codes | median ms (min-max) | PUT r0 valueType:"
            " codes | median ms (min-max) | GET /reading/count ms | start s |",
            "|---|---|---:|---|---:|---:|---:|",
        ]
        for label, r in rules.items():
            d, p = r["puts"]["descriptions"], r["puts"]["properties"]
            lines.append(
                f"| {label} | {' '.join(map(str, d['codes']))} | {d['ms_median']} "
                f"({d['ms_min']}-{d['ms_max']}) | {' '.join(map(str, p['codes']))} | "
                f"{p['ms_median']} ({p['ms_min']}-{p['ms_max']}) | {r['reading_count_ms']} | "
                f"{r['startup_s']} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_publish":
        host, port, prefix, n, readings = argv[1:6]
        cmd_publish(host, int(port), prefix, int(n), int(readings))
        return 0
    if argv and argv[0] == "_subscribe":
        host, port, prefix, n = argv[1:5]
        cmd_subscribe(host, int(port), prefix, int(n))
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="short runs, 100k-event rules db")
    parser.add_argument("--parts", default="rest,mqtt,rules")
    parser.add_argument("--duration", type=float, default=None, help="wrk seconds (10)")
    parser.add_argument("--warmup", type=float, default=None, help="wrk warm-up seconds (3)")
    parser.add_argument("--mqtt-events-1", type=int, default=None, help="events, 1 reading")
    parser.add_argument("--mqtt-events-10", type=int, default=None, help="events, 10 readings")
    parser.add_argument("--batches", default="500", help="EDGEMETA_DATA_BATCH values to try")
    parser.add_argument("--private-only", action="store_true", help="skip the machine broker")
    parser.add_argument(
        "--broker-inflight",
        default="",
        help="private brokers' max_inflight_messages values to try ('' = Mosquitto's, 20)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the 1-reading MQTT run")
    parser.add_argument("--rules-events", type=int, default=None, help="events of 10 readings")
    parser.add_argument("--put-repeats", type=int, default=5)
    parser.add_argument("--tmpdir", default=None, help="where the rules databases go")
    args = parser.parse_args(argv)
    q = args.quick
    args.duration = args.duration or (3.0 if q else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if q else 3.0)
    args.mqtt_events_1 = args.mqtt_events_1 or (10_000 if q else 60_000)
    args.mqtt_events_10 = args.mqtt_events_10 or (5_000 if q else 25_000)
    args.rules_events = args.rules_events or (100_000 if q else 1_000_000)
    args.batches = [int(b) for b in args.batches.split(",")]
    args.broker_inflight = [int(x) if x else None for x in args.broker_inflight.split(",")]
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]

    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    workdir = RESULTS / f"ingest-{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "command": "python -m bench.ingest " + " ".join(argv),
        "machine": machine(),
        "loadavg_start": _load(),
    }
    t0 = time.monotonic()
    if "rest" in parts:
        log("REST ingest (and the bare-ASGI ceiling before and after)")
        results["ceiling"] = [run_ceiling(args, workdir)]
        results["rest"] = run_rest(args, workdir)
        results["ceiling"].append(run_ceiling(args, workdir))
    if "mqtt" in parts:
        log("MQTT ingest")
        results["mqtt"] = run_mqtt(args, workdir)
    if "rules" in parts:
        log("rules check")
        results["rules"] = run_rules(args, workdir)
    results["elapsed_s"] = round(time.monotonic() - t0, 1)
    results["loadavg_end"] = _load()
    path = RESULTS / f"ingest-{stamp}.json"
    path.write_text(json.dumps(results, indent=2))
    log(f"results in {path.relative_to(ROOT)} after {results['elapsed_s']:.0f}s")
    print()
    print(markdown(results))
    for r in results.get("mqtt", {}).get("runs", []):
        if "profile" in r:
            print(f"py-spy of the server, MQTT {r['readings_per_event']} reading(s):")
            print(r["profile"])
    for label, r in results.get("rules", {}).items():
        print(f"EXPLAIN QUERY PLAN ({label}): {r['explain']}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
