"""Get-by-name with authentication off, with a bearer JWT, and with an API key, in one run.

``python -m bench.auth [--devices 10000] [--rounds 5] [--duration 5] [--connections 50]``

Two edgemeta servers share one SQLite database (seeded once through the auth-off one): one
with ``EDGEMETA_AUTH=off``, one with ``EDGEMETA_AUTH=on`` and a static PEM key (the same
verification path as a JWKS, minus the fetch). Each round runs every variant once, in an order
that rotates between rounds, with the same wrk script (a random seeded device per request);
the JWT variant sends one RS256 token for the whole run (as a client does until it expires),
the API-key variant one key. Figures are medians over rounds: requests/s and the server's CPU
microseconds per request (the fairer figure on a shared machine). Target: verification costs
under 5 % of throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import psutil
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench import workload as wl
from bench.procs import Server, free_port, wrk
from bench.run import ROOT, log, seed
from edgemeta.store import open_store
from edgemeta.usecases.apikeys import create_key

ISSUER = "https://bench.issuer/edge"
AUDIENCE = "edgemeta"


def server(db_url: str, logfile: Path, env: dict[str, str]) -> Server:
    """``edgemeta serve`` with extra settings in the environment."""
    exe = str(Path(sys.executable).parent / "edgemeta")
    port = free_port()
    argv = [exe, "serve", "--port", str(port), "--database-url", db_url]
    argv += ["--device-validation", "never", "--log-level", "WARNING"]
    return Server(
        "edgemeta",
        argv,
        port,
        "/api/v3/ping",
        logfile,
        env={
            "EDGEMETA_DATA_PORT": str(free_port()),
            "EDGEMETA_KEEPER_PORT": str(free_port()),
            "EDGEMETA_COMMAND_PORT": str(free_port()),
            **env,
        },
    )


def script(devices: int, credential: str | None, header: str = "Authorization") -> Any:
    """The wrk script (get a random seeded device by name), with the credential header."""

    def make(seed_: int) -> str:
        base = wl.lua_get_by_name(seed_, devices)
        if credential is None:
            return base
        return base + f'\nwrk.headers["{header}"] = [==[{credential}]==]\n'

    return make


Variants = dict[str, tuple[Server, Any]]


def run_variants(
    variants: Variants,
    args: argparse.Namespace,
    work: Path,
    *,
    settle: bool = False,
    counters: Mapping[str, Callable[[], int]] | None = None,
) -> dict[str, list[dict[str, float]]]:
    """Every variant once per round (order rotating between rounds) with wrk, after a warm-up
    of each server: requests/s, server CPU microseconds per request, other cores busy, the
    1-minute load average at the start. ``args`` has ``rounds``, ``duration``, ``warmup`` and
    ``connections``. ``settle``: wait after each run until the server is idle and count that
    CPU too (work a request leaves behind: the relay, an exporter's thread); ``counters``: a
    variant's count (``counted``) is what its counter grew by over the run, settling included."""
    counters = counters or {}
    names = list(variants)
    results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for srv, make in {id(v[0]): v for v in variants.values()}.values():
        wrk(srv.port, make(0), seconds=args.warmup, connections=args.connections, workdir=work)
    for rnd in range(args.rounds):
        order = names[rnd % len(names) :] + names[: rnd % len(names)]
        for name in order:
            srv, make = variants[name]
            load = os.getloadavg()[0]
            count0 = counters[name]() if name in counters else 0
            cpu0 = srv.cpu_s()
            res = wrk(
                srv.port,
                make(rnd + 1),
                seconds=args.duration,
                connections=args.connections,
                workdir=work,
            )
            if settle:
                srv.settle(30)
            cpu = srv.cpu_s() - cpu0
            if res["errors"] or res["status"]:
                raise RuntimeError(f"{name}: errors in the run: {res}")
            results[name].append(
                {
                    "rps": res["rps"],
                    "cpu_us": cpu / max(res["requests"], 1) * 1e6,
                    "other_cores": max(
                        0.0,
                        (res["machine_busy_s"] - res["wrk_cpu_s"] - cpu) / args.duration,
                    ),
                    "requests": res["requests"],
                    "load_1m": load,
                    "counted": (counters[name]() - count0) if name in counters else 0,
                }
            )
            log(f"round {rnd + 1} {name}: {res['rps']:.0f} req/s")
    return results


def summarize(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> Any:
    """Medians over rounds per variant, with the date, the machine and its load."""
    summary: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{psutil.cpu_count()} cores, load {psutil.getloadavg()}",
        "args": vars(args),
    }
    for name, rows in results.items():
        summary[name] = {
            "rps_median": round(statistics.median(r["rps"] for r in rows)),
            "cpu_us_median": round(statistics.median(r["cpu_us"] for r in rows), 1),
            "other_cores_median": round(statistics.median(r["other_cores"] for r in rows), 2),
            "rps_rounds": [round(r["rps"]) for r in rows],
        }
    return summary


def add_costs(summary: dict[str, Any], name: str, baseline: str) -> None:
    """The throughput and CPU-per-request cost of ``name`` against ``baseline``, in %."""
    summary[name]["throughput_cost_pct"] = round(
        100 * (1 - summary[name]["rps_median"] / summary[baseline]["rps_median"]), 1
    )
    summary[name]["cpu_cost_pct"] = round(
        100 * (summary[name]["cpu_us_median"] / summary[baseline]["cpu_us_median"] - 1), 1
    )


def main() -> None:
    """Run the benchmark and print (and save) the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--connections", type=int, default=50)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="edgemeta-bench-auth-"))
    db_url = f"sqlite:///{work / 'bench.db'}"
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = work / "issuer.pem"
    pem.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    now = int(time.time())
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "exp": now + 7200, "roles": ["read"]},
        private,
        algorithm="RS256",
    )

    off = server(db_url, work / "off.log", {"EDGEMETA_AUTH": "off"})
    on = server(
        db_url,
        work / "on.log",
        {
            "EDGEMETA_AUTH": "on",
            "EDGEMETA_AUTH_PUBLIC_KEYS": str(pem),
            "EDGEMETA_AUTH_ISSUER": ISSUER,
            "EDGEMETA_AUTH_AUDIENCE": AUDIENCE,
        },
    )
    off.start()
    log(f"seeding {args.devices} devices")
    seed(off.port, args.devices)
    on.start()
    # The off server relayed the seeding's events: let both go idle before measuring.
    off.settle(30)
    on.settle(30)

    async def make_key() -> str:
        store = await open_store(db_url)
        try:
            key, _ = await create_key(store, ["read"], lifetime_s=7200)
            return key
        finally:
            await store.close()

    key = asyncio.run(make_key())
    variants = {
        "off": (off, script(args.devices, None)),
        "jwt": (on, script(args.devices, f"Bearer {token}")),
        "apikey": (on, script(args.devices, key, "X-API-Key")),
    }
    try:
        results = run_variants(variants, args, work)
    finally:
        on.stop()
        off.stop()
    summary = summarize(results, args)
    for name in ("jwt", "apikey"):
        add_costs(summary, name, "off")
    out = ROOT / "bench" / "results" / f"auth-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
