"""``edgemeta`` with its event loop timed: ``python -m bench.loopmon serve ...``.

Runs the ``edgemeta`` command line on asyncio's own loop (uvloop's callbacks cannot be
wrapped) and prints, for every loop callback that ran longer than 5 ms of CPU time, one line
``LOOPMON <monotonic start> <cpu ms> <wall ms> <task name> <coroutine>`` to stderr. CPU time,
not wall time: on a loaded machine the process is also descheduled, which no code change can
avoid; the CPU time of one callback is how long edgemeta itself held the loop. ``bench.stress
--loop-monitor`` uses it to report the longest callback during each attack.
"""

from __future__ import annotations

import asyncio.events
import sys
import time
from typing import Any

THRESHOLD = 0.005


def _install() -> None:
    run = asyncio.events.Handle._run

    def timed(self: Any) -> None:
        wall = time.monotonic()
        cpu = time.thread_time()
        run(self)
        spent = time.thread_time() - cpu
        if spent < THRESHOLD:
            return
        owner = getattr(self._callback, "__self__", None)
        task = owner if hasattr(owner, "get_coro") else getattr(owner, "_task", None)
        where = "-"
        if task is not None:
            coro = task.get_coro()
            where = f"{task.get_name()} {getattr(coro, '__qualname__', coro)}"
        print(
            f"LOOPMON {wall:.4f} {spent * 1000:.1f} {(time.monotonic() - wall) * 1000:.1f} {where}",
            file=sys.stderr,
            flush=True,
        )

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]


def main() -> None:
    sys.modules["uvloop"] = None  # type: ignore[assignment]  # uvicorn falls back to asyncio
    _install()
    from edgemeta.cli import app

    sys.argv = ["edgemeta", *sys.argv[1:]]
    app()


if __name__ == "__main__":
    main()
