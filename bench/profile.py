"""Where the time goes: sample the service with py-spy while wrk drives one scenario.

``python -m bench.profile [--backend sqlite] [--size 10000] [--scenarios get,add,batch]``

For each scenario: a fresh seeded service (as in ``bench.run``), a warm-up, then py-spy
(``record --format raw``, 200 Hz, non-blocking, idle samples excluded) on the service
process for the measured run. Writes the collapsed stacks and a summary of the top
functions (inclusive and self time, as a share of the busy samples) to
``bench/results/profile-<stamp>/``, and prints the summary.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench.procs import Database, edgemeta_server, wrk
from bench.run import RESULTS, SCENARIOS, scenario_script, seed

_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    """``function (path/to/module.py:12)`` -> ``module.py:function``, keeping package hints."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "/src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{m.group('fn')}"


# Where a sample's time goes: the component of the leaf-most frame that has one (stdlib
# frames such as asyncio or contextlib count for the component that called them).
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("edgemeta/store/sqlite.py", "SQLite (statements, commits)"),
    ("asyncpg/", "asyncpg (PostgreSQL round trips)"),
    ("edgemeta/store/postgres.py", "asyncpg (PostgreSQL round trips)"),
    ("edgemeta/store/outbox.py", "outbox and relay"),
    ("edgemeta/bus/", "outbox and relay"),
    ("edgemeta/workers/", "outbox and relay"),
    ("edgemeta/store/", "repositories (SQL, rows to records)"),
    ("pydantic", "request validation (pydantic, wire DTOs)"),
    ("edgemeta/documents/", "documents (DTOs, records <-> JSON dicts)"),
    ("edgemeta/api/body.py", "request body (read, JSON parse)"),
    ("edgemeta/domain/", "domain rules"),
    ("edgemeta/usecases/", "use cases"),
    ("edgemeta/api/responses.py", "response JSON (orjson)"),
    ("edgemeta/api/", "edgemeta API glue (middleware, handlers)"),
    ("starlette/", "Starlette (routing, middleware, Request/Response)"),
    ("uvicorn/", "uvicorn + httptools (HTTP, socket writes)"),
    ("uvloop/", "event loop"),
    ("asyncio/", "event loop"),
)


def _component(frame: str) -> str | None:
    for marker, name in COMPONENTS:
        if marker in frame:
            return name
    return None


def components(raw: Path) -> list[tuple[str, float]]:
    """Share of busy samples per component, plus the relay's share of all of it."""
    counts: Counter[str] = Counter()
    total = relay = 0
    for line in raw.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        n = int(count_s)
        frames = stack.split(";")
        total += n
        if any("workers/relay.py" in f for f in frames):
            relay += n
        for f in reversed(frames):
            c = _component(f)
            if c:
                counts[c] += n
                break
        else:
            counts["other"] += n
    shares = [(c, n / total) for c, n in counts.most_common()] if total else []
    if total:
        shares.append(("(of which in the outbox relay task)", relay / total))
    return shares


def summarize(raw: Path, top: int = 30) -> str:
    inclusive: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        n = int(count_s)
        frames = [
            _short(f)
            for f in stack.split(";")
            if f and not f.startswith("process ") and not f.startswith("thread ")
        ]
        if not frames:
            continue
        total += n
        for f in set(frames):
            inclusive[f] += n
        self_[frames[-1]] += n
    lines = [f"busy samples: {total}", "", "by component (leaf-most frame):"]
    for c, share in components(raw):
        lines.append(f"  {share:6.1%}  {c}")
    lines += ["", "inclusive (share of busy samples):"]
    for f, n in inclusive.most_common(top):
        lines.append(f"  {n / total:6.1%}  {f}")
    lines += ["", "self:"]
    for f, n in self_.most_common(top):
        lines.append(f"  {n / total:6.1%}  {f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--scenarios", default="get,add,batch")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument(
        "--src", type=Path, default=None, help="profile the edgemeta under this src/"
    )
    parser.add_argument("--summarize", type=Path, default=None, help="only summarize this file")
    args = parser.parse_args()
    if args.summarize:
        print(summarize(args.summarize))
        return 0
    pyspy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not pyspy:
        print("py-spy is not installed (pip install py-spy)", file=sys.stderr)
        return 2
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    outdir = RESULTS / f"profile-{stamp}"
    outdir.mkdir(parents=True, exist_ok=True)
    for name in args.scenarios.split(","):
        _, conns, _ = SCENARIOS[name]
        db = Database(args.backend, f"prof_{stamp}_{name}")
        server = edgemeta_server(db.url, outdir / "edgemeta.log", src=args.src)
        try:
            server.start()
            seed(server.port, args.size)
            db.wait_delivered()
            server.settle(10)
            script = scenario_script(name, args.size, f"p{stamp}")
            wrk(server.port, script(1), seconds=args.warmup, connections=conns, workdir=outdir)
            raw = outdir / f"{args.backend}-{name}.txt"
            assert server.proc is not None
            spy = subprocess.Popen(
                [
                    pyspy,
                    "record",
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--rate",
                    str(args.rate),
                    "--duration",
                    str(int(args.duration)),
                    "--pid",
                    str(server.proc.pid),
                    "--output",
                    str(raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)
            res = wrk(
                server.port, script(2), seconds=args.duration - 1, connections=conns, workdir=outdir
            )
            spy.wait(60)
            summary = summarize(raw)
            head = (
                f"# {args.backend} {name}, {args.size} devices, c={conns}: "
                f"{res['rps']:.0f} req/s, p50 {res['p50_us'] / 1e3:.1f} ms, "
                f"p99 {res['p99_us'] / 1e3:.1f} ms (under py-spy)\n"
            )
            (outdir / f"{args.backend}-{name}.summary.txt").write_text(head + summary + "\n")
            print(head + summary + "\n", flush=True)
        finally:
            server.stop()
            db.drop()
    print(f"profiles in {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
