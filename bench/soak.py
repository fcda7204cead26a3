"""Move soak: devices walk among edgemeta device services that are killed and restarted.

    python -m bench.soak --devices 1000 --services 5 --seconds 180
    python -m bench.soak --devices 1000 --services 5 --seconds 180 \\
        --bus-url mqtt://127.0.0.1:1883      # through a real broker, with broker outages

edgemeta runs in this process (an SQLite file in a temporary directory, or ``--database
postgres`` for a fresh PostgreSQL schema), with the short move timeouts a soak needs
(``--ack-timeout``). ``--services`` device services, each an
:class:`edgemeta.sdk.DeviceServiceParticipant` with its own bus connection, serve
``--devices`` devices; ``--movers`` tasks reassign random devices to random services as fast as
edgemeta answers. A chaos task kills a random live service now and then (mean
``--chaos-every`` seconds): it stops listening and forgets what it served, as a killed process
does; it restarts ``--down`` seconds later (a new participant, which reconciles with the store).
With ``--bus-url mqtt://...`` every connection to the broker (edgemeta's and each service's)
goes through a TCP proxy (``tests/tcpproxy.py``) that the chaos task also cuts for a while
(a broker outage); the broker itself is never touched, and a private topic prefix keeps the
run apart from anything else on it.

A sampler looks, every ``--sample-every`` seconds, at

- the store: one ``GET /device/all`` listing; a device is seen with **zero owners** if it is
  missing or its ``serviceName`` is not one of the services, with **two** if it is listed
  twice;
- the services: each live participant's set of served devices, read at the same instant (no
  await in between). A device served by two live services is seen **twice-owned** at once. A
  device is seen **with zero owners** if nobody serves it for longer than ``--grace``
  seconds while its store owner is up (started at least ``--grace`` ago) and no move of it is
  in flight: a dead owner, or a move on its way, is not an orphan.

At the end the chaos stops, every service is up again, the movers stop, and after
``--grace`` seconds a final check asks for every device to be served by exactly its store
owner. The run prints moves done, moves failed by policy (rolled back: the old owner did not
confirm), other failures and conflicts, the chaos counts, and the devices ever seen with zero
or two owners in the store and in the services; it exits 1 unless all of those are 0.

``--hostile`` adds a hostile bus participant (``bench/hostile.py``) that hears every move and
validation request and confirms every release and accepts every validation, for whichever
service should, as fast as it can, with no proof, a random one, a replayed genuine one, or one
signed with a key of its own. Its envelopes are marked, and the engine's proof gate tells the
soak which replies it believed, so the run prints ``forgeries sent N, accepted M`` (M must be
0; the run fails otherwise). ``--release-proof`` (default ``strict``: every participant here
signs) sets ``EDGEMETA_RELEASE_PROOF``; ``--release-proof off`` is the control, in which the
forgeries are believed.

``--commands`` makes every device service an SDK :class:`edgemeta.sdk.DeviceService` (a
recording driver) and adds ``--commanders`` tasks that send commands through core-command
(its ASGI app, in process) as fast as it answers, while the devices move and the services are
killed: a read of ``heartRate`` or a set of ``setpoint`` (checked against the profile's 0..100)
on a random device. Each service records every command request it receives, at the instant
its command runner takes it: whether the device was in its served set then, and if not,
whether it had released it (moved away). Its driver records each call the same way. The run
prints the commands by final HTTP status, the requests that got none (lost), the requests the
services received for a device they did not serve (and of those, for one they had released),
and driver calls on a device not served; it fails unless the deliveries to a service that had
released the device, the driver calls on a device not served, and the lost requests are 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.hostile import MARK, Hostile
from bench.movekit import add_devices, edgemeta, reassign
from edgemeta.peers.releases import BusReleases
from edgemeta.ports import Bus
from edgemeta.sdk import Device, DeviceService, DeviceServiceParticipant, Resource
from edgemeta.security.proofs import Kind

Served = DeviceServiceParticipant | DeviceService


class RecordingDriver:
    """A driver that answers at once and records whether its service served the device at
    the instant of each call (the SDK's promise: a driver never touches a released device)."""

    def __init__(self, soak: Soak, service: str) -> None:
        self.soak = soak
        self.service = service
        self.setpoints: dict[str, float] = {}

    def _note(self, device: Device) -> None:
        live = self.soak.live.get(self.service)
        if live is None or device.name not in live.serving:
            self.soak.driver_not_served.append(f"{self.service}:{device.name}")

    async def read(self, device: Device, resources: Sequence[Resource]) -> dict[str, Any]:
        """Constant values (the soak is about routing, not readings)."""
        self._note(device)
        values = {"heartRate": 70, "battery": 0.5, "setpoint": self.setpoints.get(device.name, 0)}
        return {r.name: values.get(r.name, 0) for r in resources}

    async def write(self, device: Device, values: Sequence[tuple[Resource, Any]]) -> None:
        """Keep the setpoint."""
        self._note(device)
        for _resource, value in values:
            self.setpoints[device.name] = float(value)


@dataclass
class Soak:
    args: argparse.Namespace
    client: httpx.AsyncClient
    shared_bus: Bus | None  # the in-process bus (memory://), or None: each service connects
    bus_url: str
    prefix: str
    names: list[str]
    services: list[str]
    rng: random.Random
    commands: httpx.AsyncClient | None = None  # core-command's client, with --commands
    live: dict[str, Served] = field(default_factory=dict)
    up_since: dict[str, float] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)
    outcomes: Counter[str] = field(default_factory=Counter)
    chaos: Counter[str] = field(default_factory=Counter)
    store_zero: set[str] = field(default_factory=set)
    store_two: set[str] = field(default_factory=set)
    svc_zero: set[str] = field(default_factory=set)
    svc_two: set[str] = field(default_factory=set)
    unserved_since: dict[str, float] = field(default_factory=dict)
    samples: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)  # conflicts and other answers
    running: bool = True
    explain: list[asyncio.Task[str]] = field(default_factory=list)
    restarts: list[asyncio.Task[None]] = field(default_factory=list)
    # --commands: what core-command answered, and what the services received
    cmd_status: Counter[int] = field(default_factory=Counter)
    cmd_lost: Counter[str] = field(default_factory=Counter)
    cmd_latencies: list[float] = field(default_factory=list)
    received: Counter[str] = field(default_factory=Counter)
    arriving: list[str] = field(default_factory=list)  # service:device, not served yet
    to_releaser: list[str] = field(default_factory=list)  # ... released and not served since
    # per service instance (reset at each start): device -> times it began serving it
    serves: dict[str, Counter[str]] = field(default_factory=dict)
    driver_not_served: list[str] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)  # non-200 bodies, abridged
    cmd_explain: list[str] = field(default_factory=list)  # a few non-owner deliveries
    unserved: list[tuple[str, str, float]] = field(default_factory=list)  # svc, device, ms
    by_store: Counter[str] = field(default_factory=Counter)  # those, by the store's history
    by_store_bad: list[str] = field(default_factory=list)

    # -- services --------------------------------------------------------------------------

    async def start_service(self, name: str) -> None:
        bus = self.shared_bus
        if bus is None:
            from edgemeta.bus.mqtt import MqttBus

            bus = MqttBus(self.bus_url, client_id_prefix=f"soak-{name}")
            await bus.start()
        delay = self.args.release_delay

        async def letting_go(device: dict[str, object]) -> None:
            if delay:
                await asyncio.sleep(delay)  # stopping a driver takes a moment

        p: Served
        if self.commands is not None:
            serves = self.serves[name] = Counter()  # a new process remembers nothing

            async def serving(device: dict[str, object]) -> None:
                serves[str(device["name"])] += 1

            p = DeviceService(
                name,
                RecordingDriver(self, name),
                api_url="http://edgemeta",
                bus=bus,
                prefix=self.prefix,
                http=self.client,
                on_serve=serving,
                on_release=letting_go,
            )
            self.record_receipts(name, p)
        else:
            p = DeviceServiceParticipant(
                name,
                api_url="http://edgemeta",
                bus=bus,
                prefix=self.prefix,
                http=self.client,
                on_release=letting_go,
            )
        await p.start()
        self.live[name] = p
        self.up_since[name] = time.monotonic()
        self.chaos["started"] += 1

    def record_receipts(self, name: str, svc: DeviceService) -> None:
        """Wrap the service's command runner so each request is recorded as it is taken:
        the device served here at that instant; or not, and then either released by this
        service and not served again since (a delivery to a non-owner), or not served yet
        (the store names this service but the event saying so has not arrived: refused
        404 by the SDK, the driver untouched)."""
        runner = svc.runner
        serves = self.serves[name]

        def recording(run: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def taken(device: str, command: str, *rest: Any) -> Any:
                self.received["total"] += 1
                if device not in svc.serving:
                    self.unserved.append((name, device, time.time() * 1000))
                if device in svc.serving:
                    self.received["served"] += 1
                elif svc.participant.released.count(device) >= serves[device] > 0:
                    self.to_releaser.append(f"{name}:{device}")  # its last word: released
                    # a move of it in flight now: it started after core-command routed
                    self.received["to releaser, move in flight"] += device in self.in_flight
                else:
                    self.arriving.append(f"{name}:{device}")
                return await run(device, command, *rest)

            return taken

        # BusCommands calls runner.get / runner.set: instance attributes shadow the methods.
        runner.get = recording(runner.get)  # type: ignore[method-assign]
        runner.set = recording(runner.set)  # type: ignore[method-assign]

    async def judge_unserved(self) -> None:
        """Who the store named as each unserved receipt's owner at its instant: the device's
        first owner, then the ``toService`` of each move whose commit (new owner stored) came
        before it, or its ``fromService`` again from its rollback (old owner restored) on. A
        commit in the same millisecond is counted apart (order unknown)."""
        history: dict[str, list[tuple[int, str]]] = {}
        for svc, device, ms in self.unserved:
            if device not in history:
                r = await self.client.get(
                    f"/api/v3/device/name/{device}/moves", params={"limit": -1}
                )
                # commit A names the new owner; a rollback names the old one again
                commits = [
                    (step["at"], m["toService"] if step["step"] == "commit" else m["fromService"])
                    for m in r.json().get("moves", [])
                    for step in m["steps"]
                    if (step["step"], step["outcome"])
                    in {("commit", "new owner stored"), ("rollback", "old owner restored")}
                ]
                history[device] = sorted(commits)
            owner = self.services[int(device.rsplit("-", 1)[1]) % len(self.services)]
            tie = False
            for at, to in history[device]:
                if at < int(ms):
                    owner = to
                elif at == int(ms):
                    tie = True
            if tie:
                self.by_store["commit in the same ms"] += 1
            elif owner == svc:
                self.by_store["owner"] += 1
            else:
                self.by_store["non-owner"] += 1
                self.by_store_bad.append(f"{svc}:{device}")
                if len(self.cmd_explain) < 3:
                    before = [f"{to} at {at}" for at, to in history[device] if at < ms][-2:]
                    after = [f"{to} at {at}" for at, to in history[device] if at > ms][:1]
                    self.cmd_explain.append(
                        f"command for {device} received by {svc} at {ms:.0f} ms; the store's "
                        f"owners around it (commit times, ms): {before} | {after}"
                    )

    async def commander(self) -> None:
        """Commands through core-command, one after another, each to a random device."""
        assert self.commands is not None
        while self.running:
            device = self.rng.choice(self.names)
            t0 = time.perf_counter()
            try:
                if self.rng.random() < 0.5:
                    r = await self.commands.get(f"/api/v3/device/name/{device}/heartRate")
                else:
                    value = f"{self.rng.uniform(0, 100):.1f}"
                    r = await self.commands.put(
                        f"/api/v3/device/name/{device}/setpoint", json={"setpoint": value}
                    )
            except httpx.HTTPError as exc:
                self.cmd_lost[type(exc).__name__] += 1  # no final status: lost
                continue
            self.cmd_latencies.append(time.perf_counter() - t0)
            self.cmd_status[r.status_code] += 1
            if r.status_code != 200:
                message = str(r.json().get("message", ""))
                self.answers[f"{r.status_code} {message[:70]}"] += 1

    async def kill_service(self, name: str) -> None:
        p = self.live.pop(name)
        self.up_since.pop(name, None)
        await p.stop()
        if self.shared_bus is None:
            await p.bus.close()
        self.chaos["killed"] += 1

    # -- load ------------------------------------------------------------------------------

    async def mover(self) -> None:
        while self.running:
            device = self.rng.choice(self.names)
            if device in self.in_flight:
                continue
            to = self.rng.choice(self.services)
            self.in_flight.add(device)
            t0 = time.perf_counter()
            try:
                item = await reassign(self.client, device, to)
            except httpx.HTTPError as exc:
                self.errors[type(exc).__name__] += 1
                continue
            finally:
                self.in_flight.discard(device)
            self.latencies.append(time.perf_counter() - t0)
            code = item["statusCode"]
            state = (item.get("move") or {}).get("state")
            if code == 200 and state == "assigned":
                self.outcomes["assigned"] += 1
            elif state == "rolledBack":
                self.outcomes["rolledBack"] += 1
            elif state == "failed":
                self.outcomes["failed"] += 1
            elif code == 409 and "already owned" in item.get("message", ""):
                self.outcomes["noop"] += 1  # the random target was the owner already
            elif code == 409:
                self.outcomes["conflict"] += 1
                self.messages[f"409 {item.get('message', '')[:90]}"] += 1
            else:
                self.outcomes[f"{code}"] += 1
                self.messages[f"{code} {state}: {item.get('message', '')[:90]}"] += 1

    async def chaos_monkey(self, proxy: object | None) -> None:
        while self.running:
            await asyncio.sleep(self.rng.expovariate(1 / self.args.chaos_every))
            if not self.running:
                return
            if proxy is not None and self.rng.random() < 0.25:
                self.chaos["broker outages"] += 1
                await proxy.stop()  # type: ignore[attr-defined]
                await asyncio.sleep(self.rng.uniform(0.2, self.args.down))
                await proxy.start()  # type: ignore[attr-defined]
                continue
            up = list(self.live)
            if len(up) <= 1:
                continue
            victim = self.rng.choice(up)
            await self.kill_service(victim)
            self.restarts.append(asyncio.create_task(self.restart_later(victim)))

    async def restart_later(self, name: str) -> None:
        await asyncio.sleep(self.rng.uniform(0.2, self.args.down))
        while name not in self.live:
            try:
                await self.start_service(name)
            except Exception as exc:  # e.g. the broker is out: try again
                self.errors[f"restart: {type(exc).__name__}"] += 1
                await asyncio.sleep(0.5)

    # -- sampling --------------------------------------------------------------------------

    def served(self) -> dict[str, list[str]]:
        """Who serves each device, read from every live participant at one instant."""
        by: dict[str, list[str]] = {}
        for name, p in self.live.items():
            for device in p.serving:
                by.setdefault(device, []).append(name)
        return by

    async def store_owners(self) -> dict[str, str]:
        r = await self.client.get("/api/v3/device/all", params={"limit": -1})
        r.raise_for_status()
        owners: dict[str, str] = {}
        for d in r.json()["devices"]:
            if d["name"] in owners:
                self.store_two.add(d["name"])
            owners[d["name"]] = d["serviceName"]
        for name in self.names:
            if owners.get(name) not in self.services:
                self.store_zero.add(name)
        return owners

    async def sample(self, final: bool = False) -> None:
        owners = await self.store_owners()
        by = self.served()  # no await between this and the checks below
        now = time.monotonic()
        grace = self.args.grace
        self.samples += 1
        for device in self.names:
            servers = by.get(device, [])
            if len(servers) > 1 and device not in self.svc_two:
                self.svc_two.add(device)
                self.explain.append(asyncio.create_task(self.why(device, servers)))
            owner = owners.get(device, "")
            if final:
                if servers != [owner]:
                    (self.svc_two if len(servers) > 1 else self.svc_zero).add(device)
                continue
            if servers:
                self.unserved_since.pop(device, None)
                continue
            started = self.up_since.get(owner)
            if started is None or device in self.in_flight:
                self.unserved_since.pop(device, None)  # owner down or moving: not an orphan
                continue
            since = max(self.unserved_since.setdefault(device, now), started)
            if now - since > grace:
                self.svc_zero.add(device)

    async def why(self, device: str, servers: list[str]) -> str:
        """What edgemeta says about a device seen twice-owned (for the report)."""
        now = time.monotonic()
        up = {s: f"{now - self.up_since[s]:.1f}s" for s in servers if s in self.up_since}
        r = await self.client.get(f"/api/v3/device/name/{device}/moves", params={"limit": -1})
        moves = r.json().get("moves", [])[-3:]
        lines = [f"{device}: served by {servers} (up for {up})"]
        for m in moves:
            steps = ", ".join(f"{s['step']}:{s['outcome']}" for s in m["steps"])
            lines.append(f"    {m['fromService']} -> {m['toService']} {m['state']} [{steps}]")
        return "\n".join(lines)

    async def sampler(self) -> None:
        while self.running:
            try:
                await self.sample()
            except httpx.HTTPError as exc:
                self.errors[f"sample: {type(exc).__name__}"] += 1
            await asyncio.sleep(self.args.sample_every)


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    prefix = "edgex" if args.bus_url.startswith("memory") else f"soak-{uuid.uuid4().hex[:8]}"
    proxy = None
    bus_url = args.bus_url
    if bus_url.startswith("mqtt://"):
        from tests.support.tcpproxy import TcpProxy

        parts = urlsplit(bus_url)
        proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 1883)
        await proxy.start()
        bus_url = f"mqtt://127.0.0.1:{proxy.port}"
    elif not bus_url.startswith("memory"):
        raise SystemExit("--bus-url: memory:// or mqtt://host:port")
    settings = {
        "move_ack_timeout": args.ack_timeout,
        "validation_timeout": args.ack_timeout,
        "move_release_deadline": 0.1,
        "bus_prefix": prefix,
        "release_proof": args.release_proof,
    }
    if args.commands:
        settings["command_timeout"] = args.command_timeout
        settings["command_move_wait"] = args.command_timeout * 3
    t_start = time.monotonic()
    async with edgemeta(args.database, bus_url, **settings) as (service, client):
        shared = service.bus if args.bus_url.startswith("memory") else None
        services = [f"ds-{i}" for i in range(args.services)]
        names = [f"walker-{i:05d}" for i in range(args.devices)]
        soak = Soak(args, client, shared, bus_url, prefix, names, services, rng)
        commands: httpx.AsyncClient | None = None
        if args.commands:
            assert service.command_app is not None, "core-command is off"
            commands = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=service.command_app),
                base_url="http://core-command",
                timeout=60,
            )
            soak.commands = commands
        believed: Counter[str] = Counter()  # the hostile's replies the engine believed
        hostile = None
        if args.hostile:
            releases = service.deps.releases
            assert isinstance(releases, BusReleases)
            assert service.deps.keyring is not None

            def observe(kind: Kind, svc: str, device: str, env: dict[str, object]) -> None:
                if str(env.get("correlationID", "")).startswith(MARK):
                    believed[kind] += 1
                    old = soak.live.get(svc)
                    if kind == Kind.RELEASE and old is not None and device in old.serving:
                        believed["while served"] += 1  # the old owner had not let go

            releases.gate.observers.append(observe)
            hostile_bus = shared
            if hostile_bus is None:  # its own connection, straight to the broker: never cut
                from edgemeta.bus.mqtt import MqttBus

                hostile_bus = MqttBus(args.bus_url, client_id_prefix="soak-hostile")
                await hostile_bus.start()
            # a registered but malicious service's genuine key, for the own-key forgeries
            hostile = Hostile(hostile_bus, prefix, own_key=service.deps.keyring.key("mallory"))
            await hostile.start()
        for name in services:
            await soak.start_service(name)
        soak.chaos.clear()
        await add_devices(client, names, [services[i % len(services)] for i in range(len(names))])
        print(
            f"soak: {args.devices} devices, {args.services} services, {args.movers} movers, "
            f"{args.seconds:g} s, {args.database}, bus {args.bus_url}"
            + (" (through a TCP proxy)" if proxy else "")
            + (f", {args.commanders} commanders" if args.commands else ""),
            flush=True,
        )
        tasks = [asyncio.create_task(soak.mover()) for _ in range(args.movers)]
        if args.commands:
            tasks += [asyncio.create_task(soak.commander()) for _ in range(args.commanders)]
        background = [
            asyncio.create_task(soak.chaos_monkey(proxy)),
            asyncio.create_task(soak.sampler()),
        ]
        t0 = time.monotonic()
        next_report = t0 + 10
        while time.monotonic() - t0 < args.seconds:
            await asyncio.sleep(0.5)
            if time.monotonic() >= next_report and not args.quiet:
                next_report += 10
                print(
                    f"  {time.monotonic() - t0:5.0f} s: {dict(soak.outcomes)} "
                    f"chaos {dict(soak.chaos)} up {sorted(soak.live)}",
                    flush=True,
                )
        soak.running = False
        for task in background:  # the chaos may be asleep for long: do not wait for it
            task.cancel()
        await asyncio.gather(*tasks, *background, return_exceptions=True)
        elapsed = time.monotonic() - t0
        if proxy is not None and proxy._server is None:
            await proxy.start()
        await asyncio.gather(*soak.restarts)  # every killed service is up again
        for name in services:
            while name not in soak.live:
                with contextlib.suppress(Exception):
                    await soak.start_service(name)
        # Quiet now: let the last events land, then everyone must serve exactly its devices.
        deadline = time.monotonic() + max(args.grace, 5.0) * 2
        while time.monotonic() < deadline:
            owners = await soak.store_owners()
            by = soak.served()
            if all(by.get(d, []) == [owners.get(d)] for d in names):
                break
            await asyncio.sleep(0.2)
        await soak.sample(final=True)
        if args.commands:
            await soak.judge_unserved()
        explained = [await t for t in soak.explain[:5]]
        explained += soak.cmd_explain
        for t in soak.explain[5:]:
            t.cancel()
        for name in list(soak.live):  # the end of the run, not chaos: not counted
            p = soak.live.pop(name)
            await p.stop()
            if shared is None:
                await p.bus.close()
        if hostile is not None:
            await hostile.stop()
            if shared is None:
                await hostile.bus.close()
        if commands is not None:
            await commands.aclose()
        gate = service.deps.releases.gate  # type: ignore[attr-defined]
        refused = {str(k): v for k, v in gate.refused.items()}
    if proxy is not None:
        await proxy.stop()
    moves = sum(soak.outcomes.values())
    lat = sorted(soak.latencies)
    p99 = lat[int(len(lat) * 0.99)] * 1000 if lat else 0.0
    print(f"soak done in {time.monotonic() - t_start:.0f} s ({elapsed:.0f} s of load)")
    print(
        f"  moves done: {soak.outcomes['assigned']}; failed by policy (rolled back): "
        f"{soak.outcomes['rolledBack']}; failed before the device changed (refused, no "
        f"answer, bus down): {soak.outcomes['failed']}; "
        f"conflicts: {soak.outcomes['conflict']}; already owned: {soak.outcomes['noop']}; "
        f"other: "
        f"{ {k: v for k, v in soak.outcomes.items() if k.isdigit()} }; "
        f"requests {moves} ({moves / elapsed:.0f}/s, p99 {p99:.0f} ms)"
    )
    print(
        f"  chaos: services killed {soak.chaos['killed']}, restarted {soak.chaos['started']}, "
        f"broker outages {soak.chaos['broker outages']}; errors {dict(soak.errors)}"
    )
    for message, n in soak.messages.most_common(5):
        print(f"    {n} x {message}")
    print(f"  samples: {soak.samples} (the last one after the load stopped)")
    print(
        f"  devices ever seen with zero owners: store {len(soak.store_zero)}, "
        f"services {len(soak.svc_zero)}"
    )
    print(
        f"  devices ever seen with two owners:  store {len(soak.store_two)}, "
        f"services {len(soak.svc_two)}"
    )
    print(f"  proofs: {args.release_proof}; replies refused by the engine {refused}")
    forged_ok = True
    if hostile is not None:
        sent = sum(hostile.sent.values())
        accepted = believed[Kind.RELEASE] + believed[Kind.VALIDATE]
        print(
            f"  forgeries sent {sent}, accepted {accepted} (releases sent "
            f"{hostile.sent[Kind.RELEASE]}, accepted {believed[Kind.RELEASE]}; validations "
            f"sent {hostile.sent[Kind.VALIDATE]}, accepted {believed[Kind.VALIDATE]}); "
            f"forged releases believed while the old owner still served the device: "
            f"{believed['while served']}"
        )
        forged_ok = accepted == 0
    commands_ok = True
    if args.commands:
        sent = sum(soak.cmd_status.values()) + sum(soak.cmd_lost.values())
        clat = sorted(soak.cmd_latencies)
        cp99 = clat[int(len(clat) * 0.99)] * 1000 if clat else 0.0
        statuses = dict(sorted(soak.cmd_status.items()))
        print(
            f"  commands sent {sent} ({sent / elapsed:.0f}/s, p99 {cp99:.0f} ms); by final "
            f"status {statuses}; lost (no final status) {sum(soak.cmd_lost.values())} "
            f"{dict(soak.cmd_lost)}"
        )
        for message, n in soak.answers.most_common(6):
            print(f"    {n} x {message}")
        print(
            f"  commands received by the services {soak.received['total']}: for a device "
            f"served {soak.received['served']}, not served and never released by that service "
            f"{len(soak.arriving)} {soak.arriving[:3]}"
        )
        print(
            f"    of those not served, released by that service and not served again since: "
            f"{len(soak.to_releaser)} {soak.to_releaser[:3]}"
        )
        print(
            f"  commands delivered to a non-owner (by the store's owner history at receipt) "
            f"{soak.by_store['non-owner']} {soak.by_store_bad[:3]}; unserved receipts whose "
            f"service the store named owner {soak.by_store['owner']}, with a commit in the "
            f"same ms {soak.by_store['commit in the same ms']}; driver calls on a device not "
            f"served {len(soak.driver_not_served)} {soak.driver_not_served[:5]}"
        )
        commands_ok = (
            not soak.by_store_bad
            and not soak.driver_not_served
            and not soak.cmd_lost
            and soak.cmd_status[200] > 0
        )
    for text in explained:
        print("  " + text)
    if not commands_ok:
        print("  FAILED: a command reached a non-owner, was lost, or none was answered")
        return 1
    if not forged_ok:
        print("  FAILED: the engine believed forged replies")
        return 1
    bad = soak.store_zero | soak.store_two | soak.svc_zero | soak.svc_two
    if bad:
        print(f"  FAILED: {sorted(bad)[:10]}")
        return 1
    if soak.outcomes["assigned"] == 0:
        print("  FAILED: no move was done")
        return 1
    print("  OK: one owner in the store and at most one serving service, always")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--services", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=180)
    ap.add_argument("--movers", type=int, default=8, help="concurrent reassign requests")
    ap.add_argument("--database", default="sqlite", help="sqlite, postgres, or a URL")
    ap.add_argument("--bus-url", default="memory://", help="memory:// or mqtt://host:port")
    ap.add_argument("--ack-timeout", type=float, default=1.0, help="EDGEMETA_MOVE_ACK_TIMEOUT")
    ap.add_argument("--chaos-every", type=float, default=2.0, help="mean seconds between kills")
    ap.add_argument("--down", type=float, default=2.0, help="most seconds a service stays down")
    ap.add_argument("--grace", type=float, default=3.0, help="seconds unserved before orphan")
    ap.add_argument("--sample-every", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    ap.add_argument("--hostile", action="store_true", help="add a participant that forges")
    ap.add_argument(
        "--release-delay", type=float, default=0.0, help="seconds a service takes to let go"
    )
    ap.add_argument(
        "--release-proof",
        default="strict",
        choices=["off", "on", "strict"],
        help="EDGEMETA_RELEASE_PROOF (off: the control, forgeries believed)",
    )
    ap.add_argument("--commands", action="store_true", help="commands through core-command too")
    ap.add_argument("--commanders", type=int, default=8, help="concurrent command senders")
    ap.add_argument("--command-timeout", type=float, default=1.0, help="EDGEMETA_COMMAND_TIMEOUT")
    args = ap.parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
