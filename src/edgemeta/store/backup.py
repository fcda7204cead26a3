"""An online copy of an SQLite store (``edgemeta backup FILE``), safe while edgemeta runs.

SQLite's backup API copies the database page by page inside one read transaction: in WAL mode
(edgemeta's) writers go on meanwhile and the copy is the database as of one instant, every
committed transaction in it or none. The copy is written beside the target and renamed into
place once complete and checked, so a crash mid-way never leaves a half file under the name.
PostgreSQL has its own tools (``pg_dump``, see docs/operations.md#backups).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path


class BackupError(ValueError):
    """The backup cannot be made (no such database, the target exists, ...)."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    """What was copied."""

    path: Path
    bytes: int
    schema_version: int


def backup_sqlite(source: str | Path, target: str | Path) -> BackupResult:
    """Copy the SQLite database at ``source`` to the new file ``target``."""
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}")
    if target.exists():
        raise BackupError(f"{target} exists: choose a new file (a backup never overwrites)")
    if target.resolve() == source.resolve():
        raise BackupError("the backup must go to another file than the database")
    partial = target.with_name(f".{target.name}.partial")
    # mode=ro: a backup never writes to (or migrates) the live database.
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dest = sqlite3.connect(partial)
        try:
            src.backup(dest)  # all pages in one step: one consistent snapshot
            # A standalone file: no -wal/-shm companions to forget when copying it away.
            dest.execute("PRAGMA journal_mode=DELETE")
            check = dest.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"the copy fails SQLite's check: {check}")
            row = dest.execute("SELECT max(version) FROM schema_migrations").fetchone()
        finally:
            dest.close()
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot back up {source}: {exc}") from None
    finally:
        src.close()
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return BackupResult(target, target.stat().st_size, int(row[0] or 0))
