"""``edgemeta serve --workers N``: N API processes on the same ports, and a supervisor.

The supervisor (this process) serves nothing itself. It

1. applies the migrations once (opening and closing the store) and makes the key files a
   first start makes, so that no worker races another through them;
2. points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh empty directory, so that the workers'
   metrics are added up rather than each answering its own;
3. starts N workers (``multiprocessing`` spawn: a clean interpreter each). Each worker is an
   ordinary ``edgemeta serve`` (same TLS, limits and graceful stop) except that it binds its
   ports itself with ``SO_REUSEPORT``; the kernel spreads new connections over the workers;
4. restarts a worker that dies (a second later), and on SIGINT/SIGTERM tells every worker to
   stop, waits for their graceful stop (each delivers what it can and closes its store), and
   exits.

Every worker runs a relay; the store's ``outbox-relay`` lease lets exactly one publish (a
PostgreSQL advisory lock; on SQLite an ``flock`` on a file beside the database). When the
leader dies the kernel or the database drops its lock and another worker's relay takes it at
its next poll (``poll_interval``, 0.5 s). Only worker 0 runs core-data's bus ingest: its MQTT
session has one fixed client id (a second connection with it would push the first off), and
the broker keeps that session's messages while worker 0 is being restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import tempfile
import time
from multiprocessing.process import BaseProcess
from types import FrameType

from edgemeta.security.sealing import load_keyring
from edgemeta.settings import Settings
from edgemeta.store import open_store
from edgemeta.usecases.release_keys import server_secret

log = logging.getLogger("edgemeta.supervisor")


def _worker(settings: Settings, index: int) -> None:
    """A worker process's body (run by multiprocessing, in a fresh interpreter)."""
    # Here, not at the top: cli imports this module lazily, and a spawned child imports us.
    from edgemeta.cli import _run_worker
    from edgemeta.logs import configure

    _stop_with_parent()
    configure(settings.log_level, settings.log_format, worker=index)
    _run_worker(settings, reuse_port=True)


def _stop_with_parent() -> None:
    """Ask Linux for SIGTERM when the supervisor dies (even by SIGKILL): no orphan keeps
    serving the port."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


async def _prepare(settings: Settings) -> None:
    """What two workers starting together would race through: the migrations, a new
    key-encryption key file, the release-proof secret."""
    load_keyring(env_keys=settings.kek, key_file=settings.kek_file, data_dir=settings.data_dir)
    store = await open_store(settings.database_url)  # opening migrates
    try:
        await server_secret(store, settings.release_key_file)
    finally:
        await store.close()


def supervise(settings: Settings) -> int:
    """Run ``settings.workers`` workers until SIGINT/SIGTERM; the exit status."""
    asyncio.run(_prepare(settings))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="edgemeta-metrics-")
    ctx = multiprocessing.get_context("spawn")
    n = settings.workers

    def spawn(index: int) -> BaseProcess:
        # Ingest on worker 0 only (see the module docstring); one process each, not N each.
        # The north bridge too: N workers on one external broker would answer each request N
        # times.
        own = settings.model_copy(
            update={
                "workers": 1,
                "data_ingest": settings.data_ingest and index == 0,
                "north_mqtt_url": settings.north_mqtt_url if index == 0 else "",
            }
        )
        proc = ctx.Process(target=_worker, args=(own, index), name=f"edgemeta-worker-{index}")
        proc.start()
        return proc

    procs = [spawn(i) for i in range(n)]
    log.info("edgemeta supervisor: %d workers (pids %s)", n, ", ".join(str(p.pid) for p in procs))
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        for i, proc in enumerate(procs):
            if not proc.is_alive() and not stopping:
                log.warning(
                    "worker %d (pid %s) exited with %s; restarting it", i, proc.pid, proc.exitcode
                )
                time.sleep(1.0)  # a worker that cannot start should not spin the CPU
                procs[i] = spawn(i)
        time.sleep(0.2)
    for proc in procs:
        if proc.is_alive() and proc.pid is not None:
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30.0
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            log.error("worker pid %s did not stop in time; killing it", proc.pid)
            proc.kill()
            proc.join()
    log.info("edgemeta supervisor stopped")
    return 0
