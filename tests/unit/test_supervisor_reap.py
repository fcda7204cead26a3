"""The supervisor of ``serve --workers N`` forgets an exited worker's live gauges and removes
the metrics directory when it stops (edgemeta.supervisor). Real child processes write real
multi-process metric files; no edgemeta service is started."""

from __future__ import annotations

import multiprocessing
import os
import time
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, multiprocess

from edgemeta.supervisor import MULTIPROC_ENV, Workers, metrics_dir


def _worker_metrics(in_flight: int, linger: float) -> None:
    """A stand-in worker: edgemeta's metrics with ``in_flight`` moves running and the bus
    connected (live gauges), one finished move (a counter); then it lingers or exits."""
    from edgemeta.observability.metrics import Metrics, multiprocess_dir

    directory = multiprocess_dir()
    assert directory is not None  # inherited from the parent, as the workers inherit it
    m = Metrics(directory)
    m.moves_in_flight.inc(in_flight)
    m.bus_connected.set(1)
    m.moves.labels("assigned", "operator").inc()
    time.sleep(linger)


def _scrape(directory: str) -> dict[str, float]:
    """What a scrape of any worker would add up from the directory's files."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return {s.name: s.value for family in registry.collect() for s in family.samples}


def _wait_files(directory: str, pid: int | None, seconds: float = 30.0) -> None:
    """Until the child ``pid`` has written its live gauge file."""
    deadline = time.monotonic() + seconds
    while not any(
        f.name.endswith(f"_{pid}.db") and "live" in f.name for f in Path(directory).iterdir()
    ):
        assert time.monotonic() < deadline, "the child wrote no live gauge"
        time.sleep(0.05)


def test_exited_and_stopped_workers_are_reaped() -> None:
    ctx = multiprocessing.get_context("spawn")
    started: list[BaseProcess] = []

    def spawn(index: int) -> BaseProcess:
        # The first worker "crashes" right after recording; its replacement stays up.
        first = not started
        proc = ctx.Process(target=_worker_metrics, args=(3, 0.0 if first else 60.0))
        proc.start()
        started.append(proc)
        return proc

    with metrics_dir() as directory:
        workers = Workers(1, spawn, directory, restart_delay=0.0)
        try:
            crashed = workers.procs[0]
            crashed.join(30)
            assert crashed.exitcode == 0
            before = _scrape(directory)
            assert before["edgemeta_moves_in_flight"] == 3  # the dead worker's value, still summed
            assert before["edgemeta_bus_connected"] == 1

            assert workers.restart_exited() == 1
            replacement = workers.procs[0]
            assert replacement is not crashed
            _wait_files(directory, replacement.pid)
            after = _scrape(directory)
            assert after["edgemeta_moves_in_flight"] == 3  # the replacement's only
            # Counters are not live: the dead worker's finished move still counts.
            assert after["edgemeta_moves_total"] == 2
            assert not list(Path(directory).glob(f"gauge_live*_{crashed.pid}.db"))
            assert workers.restart_exited() == 0  # the replacement is alive: nothing to do
        finally:
            workers.stop(timeout=10)
        assert not replacement.is_alive()
        stopped = _scrape(directory)
        assert stopped.get("edgemeta_moves_in_flight", 0) == 0
        assert stopped.get("edgemeta_bus_connected") is None  # livemin over no live worker
        assert stopped["edgemeta_moves_total"] == 2
    assert not Path(directory).exists()


def test_metrics_dir_is_fresh_exported_and_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, "/somewhere/else")
    with metrics_dir() as directory:
        assert os.environ[MULTIPROC_ENV] == directory
        assert Path(directory).is_dir() and not list(Path(directory).iterdir())
        (Path(directory) / "counter_1.db").write_bytes(b"x")  # what workers leave in it
    assert not Path(directory).exists()
    assert os.environ[MULTIPROC_ENV] == "/somewhere/else"


def test_metrics_dir_is_removed_when_the_supervisor_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    with pytest.raises(RuntimeError), metrics_dir() as directory:
        raise RuntimeError("a worker could not be started")
    assert not Path(directory).exists()
    assert MULTIPROC_ENV not in os.environ
