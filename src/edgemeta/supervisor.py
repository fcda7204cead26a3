"""``edgemeta serve --workers N``: N API processes on the same ports, and a supervisor.

The supervisor (this process) serves nothing itself. It

1. applies the migrations once (opening and closing the store) and makes the key files a
   first start makes, so that no worker races another through them;
2. points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh empty directory, so that the workers'
   metrics are added up rather than each answering its own; it removes the directory when
   it stops;
3. starts N workers (``multiprocessing`` spawn: a clean interpreter each). Each worker is an
   ordinary ``edgemeta serve`` (same TLS, limits and graceful stop) except that it binds its
   ports itself with ``SO_REUSEPORT``; the kernel spreads new connections over the workers;
4. restarts a worker that dies (a second later), and on SIGINT/SIGTERM tells every worker to
   stop, waits for their graceful stop (each delivers what it can and closes its store), and
   exits. A worker that has exited is *reaped* first: ``mark_process_dead`` drops its live
   gauges' file (``edgemeta_moves_in_flight``, ``edgemeta_bus_connected``, the pool's
   connections), which would otherwise go on being summed into every scrape with the values
   it had when it died. Its counters stay: a counter's total must not go down.

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
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from multiprocessing.process import BaseProcess
from types import FrameType

from prometheus_client import multiprocess

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


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def metrics_dir() -> Iterator[str]:
    """A fresh, empty ``PROMETHEUS_MULTIPROC_DIR`` for the workers (inherited by every process
    spawned meanwhile); removed, and the variable restored, on the way out. Without the
    removal every ``serve --workers N`` would leave a directory of memory-mapped files in
    /tmp behind."""
    path = tempfile.mkdtemp(prefix="edgemeta-metrics-")
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


def reap(pid: int | None, directory: str) -> None:
    """Forget the live gauges of the exited worker ``pid`` (prometheus_client's
    ``mark_process_dead``: it deletes that pid's ``live*`` gauge files in ``directory``)."""
    if pid is not None:
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


class Workers:
    """The running workers: spawned by ``spawn(index)``, restarted and reaped when they exit,
    stopped together."""

    def __init__(
        self,
        n: int,
        spawn: Callable[[int], BaseProcess],
        directory: str,
        restart_delay: float = 1.0,
    ) -> None:
        self.spawn = spawn
        self.directory = directory
        self.restart_delay = restart_delay
        self.procs = [spawn(i) for i in range(n)]

    def restart_exited(self, stopping: Callable[[], bool] = lambda: False) -> int:
        """Reap and replace every worker that has exited (unless ``stopping`` says the
        supervisor is stopping); how many were replaced."""
        replaced = 0
        for i, proc in enumerate(self.procs):
            if proc.is_alive() or stopping():
                continue
            log.warning(
                "worker %d (pid %s) exited with %s; restarting it", i, proc.pid, proc.exitcode
            )
            reap(proc.pid, self.directory)
            time.sleep(self.restart_delay)  # a worker that cannot start should not spin the CPU
            self.procs[i] = self.spawn(i)
            replaced += 1
        return replaced

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every worker, wait up to ``timeout`` for their graceful stop (then kill
        what is left), and reap each."""
        for proc in self.procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.error("worker pid %s did not stop in time; killing it", proc.pid)
                proc.kill()
                proc.join()
            reap(proc.pid, self.directory)


def supervise(settings: Settings) -> int:
    """Run ``settings.workers`` workers until SIGINT/SIGTERM; the exit status."""
    asyncio.run(_prepare(settings))
    with metrics_dir() as directory:
        _supervise(settings, directory)
    log.info("edgemeta supervisor stopped")
    return 0


def _supervise(settings: Settings, directory: str) -> None:
    """Start the workers, keep them running until SIGINT/SIGTERM, stop them."""
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

    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    workers = Workers(n, spawn, directory)
    try:
        log.info(
            "edgemeta supervisor: %d workers (pids %s)",
            n,
            ", ".join(str(p.pid) for p in workers.procs),
        )
        while not stopping:
            workers.restart_exited(lambda: stopping)
            time.sleep(0.2)
    finally:
        workers.stop()
