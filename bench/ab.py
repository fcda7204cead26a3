"""Before/after in one run: the same scenarios on a base revision and on the working tree.

``python -m bench.ab --base REV [--backends sqlite] [--scenarios add,batch] [--size 10000]``

The base revision's ``src/`` is exported with ``git archive`` to a temporary directory and
run with the same interpreter and packages. Each round runs both variants, alternating which
goes first, each on a fresh, freshly seeded database; the figures are medians over rounds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.procs import Database, edgemeta_server
from bench.run import RESULTS, ROOT, SCENARIOS, log, measure, scenario_script, seed


def export(rev: str) -> Path:
    dest = Path(tempfile.mkdtemp(prefix=f"edgemeta-ab-{rev[:12]}-"))
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def one(
    variant: str, src: Path, backend: str, args: argparse.Namespace, workdir: Path, tag: str
) -> dict[str, Any]:
    db = Database(backend, tag)
    server = edgemeta_server(db.url, workdir / f"{variant}.log", src=src)
    out: dict[str, Any] = {}
    try:
        server.start()
        seed(server.port, args.size)
        db.wait_delivered()
        server.settle(10)
        for name in args.scenarios:
            _, conns, items = SCENARIOS[name]
            res = measure(
                server,
                scenario_script(name, args.size, tag),
                connections=conns,
                warmup=args.warmup,
                duration=args.duration,
                workdir=workdir,
            )
            if items:
                res["devices_per_s"] = res["rps"] * items
                db.wait_delivered()
                server.settle(10)
            out[name] = res
            log(
                f"  {variant:4s} {backend:8s} {name:10s} {res['rps']:8.0f} req/s  p50 "
                f"{res['p50_us'] / 1e3:7.2f} ms  p99 {res['p99_us'] / 1e3:7.2f} ms  cpu "
                f"{res['server_cpu_us_per_req']:7.0f} us/req  non2xx {res['status']}  other "
                f"{res['other_load_cores']:.2f}"
            )
    finally:
        server.stop()
        db.drop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ab",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument(
        "--head", default=None, help="git revision to test (default: the working tree)"
    )
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--scenarios", default="add,batch")
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()
    args.scenarios = args.scenarios.split(",")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = RESULTS / f"ab-{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    base_src = export(args.base)
    head_src = export(args.head) if args.head else None
    variants = {"base": base_src / "src", "head": head_src / "src" if head_src else ROOT / "src"}
    rounds: list[dict[str, Any]] = []
    try:
        for backend in args.backends.split(","):
            for r in range(args.rounds):
                order = ["base", "head"] if r % 2 == 0 else ["head", "base"]
                for v in order:
                    res = one(v, variants[v], backend, args, workdir, f"ab{stamp}_{v}{r}")
                    rounds.append({"backend": backend, "round": r, "variant": v, "results": res})
    finally:
        shutil.rmtree(base_src, ignore_errors=True)
        if head_src:
            shutil.rmtree(head_src, ignore_errors=True)

    def short(rev: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", rev],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()

    rev = short(args.base)
    head = short(args.head) if args.head else "working tree"
    lines = [
        f"A/B: base {rev} vs {head}; {args.rounds} rounds, {args.duration:g} s runs,"
        f" {args.size} devices; medians over rounds",
        "",
        "| scenario | backend | base req/s | head req/s | change | base CPU us/req | "
        "head CPU us/req | change | base p99 ms | head p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for backend in args.backends.split(","):
        for name in args.scenarios:

            def med(v: str, key: str, name: str = name, backend: str = backend) -> float:
                return statistics.median(
                    x["results"][name][key]
                    for x in rounds
                    if x["variant"] == v and x["backend"] == backend
                )

            b, h = med("base", "rps"), med("head", "rps")
            bc, hc = med("base", "server_cpu_us_per_req"), med("head", "server_cpu_us_per_req")
            lines.append(
                f"| {name} | {backend} | {b:,.0f} | {h:,.0f} | {h / b - 1:+.0%} | "
                f"{bc:,.0f} | {hc:,.0f} | {hc / bc - 1:+.0%} | "
                f"{med('base', 'p99_us') / 1e3:.1f} | {med('head', 'p99_us') / 1e3:.1f} |"
            )
    text = "\n".join(lines)
    print(text)
    (RESULTS / f"ab-{stamp}.json").write_text(
        json.dumps(
            {
                "base": rev,
                "head": head,
                "args": {k: v for k, v in vars(args).items()},
                "rounds": rounds,
                "table": text,
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=2,
            default=str,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
