"""A private PostgreSQL a test starts and stops at will (database-down tests, issue 15).

The machine's PostgreSQL binaries (``initdb``, ``pg_ctl`` under ``/usr/lib/postgresql/*/bin``,
or ``$EDGEMETA_TEST_PG_BIN``) create a throwaway cluster in a directory of its own, listening
on a free loopback port with its socket in that directory. PostgreSQL refuses to run as root,
so as root the cluster is owned by and run as the ``postgres`` user (``runuser``). Without the
binaries the test is skipped locally and fails under ``CI``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


def _bin_dir() -> Path | None:
    explicit = os.environ.get("EDGEMETA_TEST_PG_BIN")
    candidates = [explicit] if explicit else sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    for c in reversed(candidates):
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    return None


class PrivatePostgres:
    """One throwaway cluster: :meth:`start`, :meth:`stop`, :attr:`url`."""

    def __init__(self, bin_dir: Path, port: int) -> None:
        self.bin = bin_dir
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="edgemeta-pg-"))
        self.data = self.root / "data"
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres"
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        """Create the cluster (trust authentication, no fsync: it is thrown away)."""
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "log")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", log, "-w", "start")

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (``immediate``: like a crash, every connection cut at once)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        """Stop it if running and delete the cluster."""
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def private_postgres() -> PrivatePostgres:
    """A new, initialized and started cluster; skips (fails under CI) without the binaries."""
    from tests.e2e.procs import free_port

    bin_dir = _bin_dir()
    message = "no PostgreSQL binaries (initdb, pg_ctl) for a private server"
    if bin_dir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    pg = PrivatePostgres(bin_dir, free_port())
    try:
        pg.init()
        pg.start()
    except (subprocess.CalledProcessError, KeyError, OSError) as exc:
        pg.destroy()
        if os.environ.get("CI"):
            raise
        pytest.skip(f"cannot run a private PostgreSQL: {exc}")
    return pg
