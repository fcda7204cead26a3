"""Registrations per second: first-time and repeat, on SQLite and PostgreSQL; symmetric-key
and X.509 (first-time) in the same run.

    python -m bench.registrations [--seconds 10] [--connections 32] [--backends sqlite,postgres]
        [--output bench/REGISTRATIONS.md]

Starts ``edgemeta serve`` in its own process (device validation off, in-process bus), adds a
device service, a profile and a group enrolment, pre-computes one registration body per
request (each with its own token: an HMAC with a fresh nonce, so no request is a replay), and
drives the service with ``wrk`` from another process. First-time registrations create devices;
repeat registrations of the same devices (new tokens) find them assigned where allocation
puts them. Every answer is checked afterwards (devices and records counted), so a rate is never
reported for failed requests. X.509 first-time registrations: a group enrolment naming a test
CA, one P-256 device certificate per device, and one server nonce per request fetched before
the run (``GET /registration/challenge``, a long time-to-live), each signed by its device's
key. Results go to ``bench/REGISTRATIONS.md`` (or ``--output``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
from tests.support import x509pki as pki

from edgemeta import __version__
from edgemeta.domain.attestation import derive_device_key, make_token

GROUP_KEY = "ZWRnZW1ldGEtYmVuY2gtZ3JvdXAta2V5LTAxMjM0NTY3ODlhYmNkZWY="
PG = "postgresql://postgres@127.0.0.1:5432/postgres"
LUA = """
local bodies = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
end
request = function()
  i = i + 1
  if i > #bodies then i = 1 end
  local headers = {["Content-Type"] = "application/json"}
  return wrk.format("POST", "/api/v3/registration", headers, bodies[i])
end
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def bodies(prefix: str, n: int) -> list[str]:
    expiry = int(time.time()) + 3600
    out = []
    for i in range(n):
        rid = f"{prefix}-{i:07d}"
        tok = make_token(derive_device_key(GROUP_KEY, rid), rid, expiry)
        out.append(
            json.dumps(
                {
                    "apiVersion": "v3",
                    "registration": {"registrationId": rid, "token": tok, "site": "A"},
                }
            )
        )
    return out


def repeat_bodies(prefix: str, devices: int, n: int) -> list[str]:
    """``n`` registrations of the first ``devices`` devices, round robin, each a new token."""
    expiry = int(time.time()) + 3600
    out = []
    for i in range(n):
        rid = f"{prefix}-{i % max(devices, 1):07d}"
        tok = make_token(derive_device_key(GROUP_KEY, rid), rid, expiry)
        out.append(
            json.dumps(
                {
                    "apiVersion": "v3",
                    "registration": {"registrationId": rid, "token": tok, "site": "A"},
                }
            )
        )
    return out


def wrk(
    url: str, body_file: Path, seconds: int, connections: int, workdir: Path
) -> dict[str, float]:
    script = workdir / "reg.lua"
    script.write_text(LUA)
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
            "--",
            str(body_file),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def latency(label: str) -> float:
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    m = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": float(m.group(1)) if m else 0.0,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
    }


async def setup(api: str) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=30) as c:
        await c.post(
            "/deviceservice",
            json=[
                {
                    "apiVersion": "v3",
                    "service": {
                        "name": "ds-a",
                        "baseAddress": "http://127.0.0.1:1",
                        "adminState": "UNLOCKED",
                    },
                }
            ],
        )
        await c.post(
            "/deviceprofile",
            json=[
                {
                    "apiVersion": "v3",
                    "profile": {
                        "name": "badge",
                        "deviceResources": [
                            {"name": "t", "properties": {"valueType": "Float32", "readWrite": "R"}}
                        ],
                    },
                }
            ],
        )
        r = await c.post(
            "/enrollment",
            json=[
                {
                    "apiVersion": "v3",
                    "enrollment": {
                        "name": "bench",
                        "kind": "group",
                        "match": {"namePattern": "bench-.*"},
                        "allocation": {"policy": "static", "services": [{"name": "ds-a"}]},
                        "initialState": {"profileName": "badge"},
                        "attestation": {"primaryKey": GROUP_KEY},
                    },
                }
            ],
        )
        assert r.json()[0]["statusCode"] == 201, r.text


X509_CA = pki.root("Bench CA")


async def setup_x509(api: str, n: int) -> list[str]:
    """An X.509 group enrolment, and ``n`` registration bodies, each with its own nonce."""
    async with httpx.AsyncClient(base_url=api, timeout=30) as c:
        r = await c.post(
            "/enrollment",
            json=[
                {
                    "apiVersion": "v3",
                    "enrollment": {
                        "name": "bench-x509",
                        "kind": "group",
                        "match": {"namePattern": "x509-.*"},
                        "allocation": {"policy": "static", "services": [{"name": "ds-a"}]},
                        "initialState": {"profileName": "badge"},
                        "attestation": {"type": "x509", "caCertificates": [X509_CA.pem]},
                    },
                }
            ],
        )
        assert r.json()[0]["statusCode"] == 201, r.text
        nonces: list[str] = []
        while len(nonces) < n:
            batch = await asyncio.gather(
                *(c.get("/registration/challenge") for _ in range(min(64, n - len(nonces))))
            )
            nonces += [b.json()["nonce"] for b in batch]
    out = []
    for i, nonce in enumerate(nonces):
        rid = f"x509-{i:07d}"
        device = pki.leaf(rid, X509_CA)
        proof = {
            "type": "x509",
            "chain": [device.pem],
            "nonce": nonce,
            "signature": pki.sign(device.key, f"{nonce}\n{rid}".encode()),
        }
        body = {"registrationId": rid, "attestation": proof, "site": "A"}
        out.append(json.dumps({"apiVersion": "v3", "registration": body}))
    return out


async def count(api: str) -> tuple[int, int]:
    async with httpx.AsyncClient(base_url=api, timeout=30) as c:
        devices = (await c.get("/device/all", params={"limit": 0})).json()["totalCount"]
        regs = (await c.get("/registration/all", params={"limit": 0})).json()["totalCount"]
    return int(devices), int(regs)


def run_backend(
    backend: str, seconds: int, connections: int, n: int, n_x509: int
) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="bench-reg-"))
    port = free_port()
    schema = f"bench_reg_{os.getpid()}"
    url = f"sqlite:///{work / 'reg.db'}" if backend == "sqlite" else f"{PG}?schema={schema}"
    env = {
        **os.environ,
        "EDGEMETA_DEVICE_VALIDATION": "never",
        "EDGEMETA_LOG_LEVEL": "WARNING",
        "EDGEMETA_DATA_PORT": str(free_port()),
        "EDGEMETA_REGISTRATION_CHALLENGE_TTL": "3600",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgemeta", "serve", "--port", str(port), "--database-url", url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api/v3"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{api}/ping", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        asyncio.run(setup(api))
        first_file = work / "first.jsonl"
        first_file.write_text("\n".join(bodies("bench", n)) + "\n")
        first = wrk(f"http://127.0.0.1:{port}", first_file, seconds, connections, work)
        devices, regs = asyncio.run(count(api))
        done = int(first["requests"] - first["non2xx"])
        # Repeat: the devices just created register again, with new tokens.
        repeat_file = work / "repeat.jsonl"
        # Enough fresh tokens that wrk never sends one twice (a second use is a replay: 401).
        repeat_file.write_text("\n".join(repeat_bodies("bench", devices, n)) + "\n")
        repeat = wrk(f"http://127.0.0.1:{port}", repeat_file, seconds, connections, work)
        # X.509 first-time: bodies made (nonces fetched, signed) before the clock starts.
        x509_file = work / "x509.jsonl"
        x509_file.write_text("\n".join(asyncio.run(setup_x509(api, n_x509))) + "\n")
        before = asyncio.run(count(api))
        x509 = wrk(f"http://127.0.0.1:{port}", x509_file, seconds, connections, work)
        after = asyncio.run(count(api))
        return {
            "x509": x509,
            "x509_devices": after[0] - before[0],
            "x509_records": after[1] - before[1],
            "backend": backend,
            "first": first,
            "repeat": repeat,
            "devices_created": devices,
            "records": regs,
            "first_ok": done,
        }
    finally:
        proc.terminate()
        proc.wait(20)
        shutil.rmtree(work, ignore_errors=True)
        if backend == "postgres":

            async def drop() -> None:
                conn = await asyncpg.connect(PG)
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                await conn.close()

            asyncio.run(drop())


def main() -> None:
    """Run and write bench/REGISTRATIONS.md."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--bodies", type=int, default=60_000)
    p.add_argument("--x509-bodies", type=int, default=12_000, help="nonces fetched beforehand")
    p.add_argument("--output", type=Path, default=Path(__file__).with_name("REGISTRATIONS.md"))
    args = p.parse_args()
    results = [
        run_backend(b, args.seconds, args.connections, args.bodies, args.x509_bodies)
        for b in args.backends.split(",")
    ]
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lines = [
        "# Registrations per second",
        "",
        f"- **Date:** {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- **Command:** `python -m bench.registrations --seconds {args.seconds} "
        f"--connections {args.connections} --backends {args.backends}`",
        f"- **Machine:** {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}; "
        f"edgemeta {__version__}",
        "- **Setup:** one `edgemeta serve` process (device validation off, in-process bus), "
        "wrk (1 thread) in another; each request a group-enrolment registration with its own "
        "token (HMAC-SHA256, fresh nonce); static allocation to one service. X.509: a "
        "P-256 device certificate per device under an enrolled CA, each request with its own "
        "server nonce (fetched beforehand) signed by the device key (ECDSA P-256).",
        "",
        "| backend | kind | req/s | p50 ms | p99 ms | non-2xx | checked |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        first, repeat = r["first"], r["repeat"]
        assert isinstance(first, dict)
        assert isinstance(repeat, dict)
        lines.append(
            f"| {r['backend']} | first-time | {first['rps']:,.0f} | {first['p50_ms']:.1f} | "
            f"{first['p99_ms']:.1f} | {first['non2xx']:.0f} | {r['devices_created']} devices, "
            f"{r['records']} records |"
        )
        lines.append(
            f"| {r['backend']} | repeat | {repeat['rps']:,.0f} | {repeat['p50_ms']:.1f} | "
            f"{repeat['p99_ms']:.1f} | {repeat['non2xx']:.0f} | |"
        )
        x = r["x509"]
        assert isinstance(x, dict)
        lines.append(
            f"| {r['backend']} | X.509 first-time | {x['rps']:,.0f} | {x['p50_ms']:.1f} | "
            f"{x['p99_ms']:.1f} | {x['non2xx']:.0f} | {r['x509_devices']} devices, "
            f"{r['x509_records']} records; {x['rps'] / max(first['rps'], 1):.0%} of "
            "symmetric-key first-time |"
        )
    lines += [
        "",
        "Target: first-time registrations >= 1,000/s on SQLite "
        "(Azure DPS publishes 1,000 per minute per instance); X.509 first-time at least half "
        "the symmetric-key first-time rate.",
        "",
    ]
    args.output.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
