"""The SQLite store: the embedded default.

One connection, used from the event loop thread. SQLite calls take microseconds, and crossing
to a worker thread for each would cost more than the call itself, so the driver runs them
inline; nothing inside a transaction ever waits on anything but SQLite, so a transaction never
yields to another task half-way. An :class:`asyncio.Lock` still guards the connection, so a
use case that did await inside a transaction would serialize rather than interleave.

Settings: WAL journal (readers never block the writer), ``synchronous=NORMAL`` (a committed
transaction survives a crash of the process; an OS crash or power loss may lose the last
transactions; ``EDGEMETA_SQLITE_SYNCHRONOUS=FULL`` makes every commit durable on disk),
foreign keys on, a busy timeout for the case of a second process on the same file.

WAL checkpoints (copying the log back into the database file, with an fsync) run on a
background thread with its own connection, not in the COMMIT that happens to cross SQLite's
1000-page threshold: done inline they stalled the event loop for 5-10 ms every few dozen
commits. The thread checkpoints at most every 0.2 s after a commit, in PASSIVE mode, so it
never blocks the writer; SQLite releases the GIL while it works.

SQLite's failures become domain errors at this boundary (:func:`failure`): a full disk
(``SQLITE_FULL``, or an ``OSError`` ENOSPC) is InsufficientStorage (507), a busy, read-only or
failing file ServiceUnavailable (503). The transaction is rolled back either way (a COMMIT
that fails leaves it open), so the refused request changed nothing and the next one can
begin: once space is back, writes resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson

from edgemeta.domain.errors import (
    EdgeMetaError,
    InsufficientStorage,
    ServerError,
    ServiceUnavailable,
)
from edgemeta.ports import OutboxStats, Sealer
from edgemeta.store.cursors import ListCursors
from edgemeta.store.driver import IntegrityViolation, Row
from edgemeta.store.migrations import migrations
from edgemeta.store.tx import SqlTx

log = logging.getLogger("edgemeta.store")

DISK_FULL = "insufficient storage: the disk holding the database is full"


def failure(exc: BaseException) -> EdgeMetaError:
    """The domain error for a failure of SQLite or of its file (logged in full)."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    error: EdgeMetaError
    if primary == sqlite3.SQLITE_FULL or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
        error = InsufficientStorage(DISK_FULL)
    elif primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        error = ServiceUnavailable("database busy: another process holds the database file")
    elif primary == sqlite3.SQLITE_READONLY:
        error = ServiceUnavailable("database unavailable: the database file is read-only")
    elif primary in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN) or isinstance(exc, OSError):
        error = ServiceUnavailable("database unavailable: the database file cannot be used")
    else:
        error = ServerError(f"database error: {exc}")
    log.warning("%s (%s: %s)", error.message, type(exc).__name__, exc)
    return error


_DB_ERRORS = (sqlite3.Error, OSError)


def _rollback(conn: sqlite3.Connection, savepoint: str | None = None) -> None:
    """Undo the open transaction (or savepoint), if SQLite has not already."""
    try:
        if savepoint is not None:
            conn.execute(f"ROLLBACK TO {savepoint}")
            conn.execute(f"RELEASE {savepoint}")
        elif conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error as exc:  # an automatic rollback beat us to it
        log.debug("rollback after a failure: %s", exc)


class SqliteDialect:
    """SQLite's fragments: labels are a JSON array in a TEXT column."""

    name = "sqlite"
    for_update = ""  # BEGIN IMMEDIATE already holds the write lock for the whole transaction
    for_share = ""

    def labels_match(self, column: str, count: int) -> str:
        """All labels present: one EXISTS over json_each per label."""
        one = f"EXISTS (SELECT 1 FROM json_each({column}) WHERE value = ?)"
        return " AND ".join([one] * count)

    def labels_value(self, labels: Sequence[str]) -> object:
        """Labels as JSON text."""
        return orjson.dumps(list(labels)).decode()

    def labels_args(self, labels: Sequence[str]) -> list[object]:
        """One argument per label."""
        return list(labels)

    def any_of(self, column: str) -> str:
        """Membership in a JSON array of text."""
        return f"{column} IN (SELECT value FROM json_each(?))"

    def list_value(self, values: Sequence[str]) -> object:
        """The list as JSON text."""
        return orjson.dumps(list(values)).decode()


def _violation(exc: sqlite3.IntegrityError) -> IntegrityViolation:
    text = str(exc)
    if text.startswith("UNIQUE constraint failed: "):
        # "UNIQUE constraint failed: device.name" -> device_name_key
        target = text.removeprefix("UNIQUE constraint failed: ").split(",")[0].strip()
        return IntegrityViolation("unique", target.replace(".", "_") + "_key")
    if "FOREIGN KEY" in text:
        return IntegrityViolation("foreign_key", "fkey")
    return IntegrityViolation("check", text)


class SqliteDriver:
    """Runs statements on the store's connection, inline."""

    dialect = SqliteDialect()

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, *args: object) -> int:
        """Run a statement; rows changed."""
        try:
            return self.conn.execute(sql, args).rowcount
        except sqlite3.IntegrityError as exc:
            raise _violation(exc) from exc

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run a statement per row."""
        try:
            self.conn.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise _violation(exc) from exc

    async def fetchone(self, sql: str, *args: object) -> Row | None:
        """First row or None."""
        row: Row | None = self.conn.execute(sql, args).fetchone()
        return row

    async def fetchall(self, sql: str, *args: object) -> list[Row]:
        """All rows."""
        return self.conn.execute(sql, args).fetchall()

    async def fetchval(self, sql: str, *args: object) -> Any:
        """First column of the first row."""
        row = self.conn.execute(sql, args).fetchone()
        return None if row is None else row[0]


# The store whose batch() the current task is inside, if any (see SqliteStore.batch).
_BATCH: contextvars.ContextVar[SqliteStore | None] = contextvars.ContextVar(
    "edgemeta_sqlite_batch", default=None
)


class SqliteLease:
    """An exclusive ``flock`` on a lock file beside the database: held while its file
    descriptor is open, so the kernel releases it when the holder dies, and exactly one
    process (or one lease object within a process) holds it (``edgemeta serve --workers N``
    runs several processes on one file). An in-memory database has one user: always held."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._fd: int | None = None

    async def acquire(self) -> bool:
        """Take the lock if free (never waits); True while this lease holds it."""
        if self.path is None or self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def release(self) -> None:
        """Let another process take it."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock


class SqliteStore:
    """Store on one SQLite file (or ``:memory:``)."""

    BUSY_TIMEOUT = 5.0  # seconds a write waits for another connection's write lock

    def __init__(self, path: str, *, synchronous: str = "NORMAL") -> None:
        self.path = path
        self.description = f"SQLite {path}"
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={synchronous}")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute(f"PRAGMA busy_timeout={int(self.BUSY_TIMEOUT * 1000)}")
        self.conn.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache
        # The WAL file is cut back to this size whenever the log starts over (_Checkpointer).
        self.conn.execute(f"PRAGMA journal_size_limit={_Checkpointer.RESTART_BYTES}")
        self.driver = SqliteDriver(self.conn)
        self._lock = asyncio.Lock()
        self._tx = SqlTx(self.driver, cursors=ListCursors())
        self._group: _Group | None = None  # the write transactions awaiting one COMMIT
        self._batch_group: _Group | None = None  # the group of the batch() running now
        self._listeners: list[Callable[[], None]] = []
        self._timer: Callable[[float], None] | None = None
        self._migrate()
        self._checkpointer: _Checkpointer | None = None
        if path != ":memory:":
            self.conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job
            self._checkpointer = _Checkpointer(path)

    def _migrate(self) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ns INTEGER NOT NULL)"
            )
            done = {r[0] for r in c.execute("SELECT version FROM schema_migrations")}
            for m in migrations("sqlite"):
                if m.version in done:
                    continue
                for stmt in m.statements():
                    c.execute(stmt)
                c.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (m.version, m.name, time.time_ns()),
                )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    @asynccontextmanager
    async def write(self) -> AsyncIterator[SqlTx]:
        """A write transaction: a member of the open commit group (see :class:`_Group`);
        a savepoint inside ``batch()``. Returns once the group has committed."""
        if _BATCH.get() is self:
            group = self._batch_group  # the lock is the batch's: no other member runs now
            if group is not None and group.lost is not None:
                # the batch's transaction is gone: so is every item
                raise type(group.lost)(group.lost.message)
            try:
                self.conn.execute("SAVEPOINT item")
                try:
                    yield self._tx
                except BaseException:
                    _rollback(self.conn, "item")
                    raise
                self.conn.execute("RELEASE item")
            except _DB_ERRORS as exc:
                error = failure(exc)
                if not self.conn.in_transaction and group is not None:
                    # SQLite rolled the whole transaction back (it may, on a full disk): the
                    # items before this one are undone too, and a SAVEPOINT now would begin
                    # a new transaction. The batch fails as a whole (see batch()).
                    self._lose(group, error)
                raise error from exc
            return
        async with self._lock:
            group = await self._join()
            with self._member(group):
                yield self._tx
            self._close_member(group)
        await self._committed(group)

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """One transaction for every write this task makes inside (one member of a group)."""
        if _BATCH.get() is self:
            yield
            return
        async with self._lock:
            group = await self._join()
            token = _BATCH.set(self)
            self._batch_group = group
            try:
                with self._member(group):
                    yield
                    if group.lost is not None:
                        raise type(group.lost)(group.lost.message)  # nothing left to commit
            finally:
                self._batch_group = None
                _BATCH.reset(token)
            self._close_member(group)
        await self._committed(group)

    # -- group commit ---------------------------------------------------------------------

    async def _join(self) -> _Group:
        """The open commit group, or a new one (BEGIN IMMEDIATE) committed soon after."""
        group = self._group
        if group is None:
            await self._begin()
            group = self._group = _Group()
            asyncio.get_running_loop().call_soon(self._flush)
        group.began.append(time.perf_counter())
        return group

    @contextlib.contextmanager
    def _member(self, group: _Group) -> Iterator[None]:
        """One member's work inside a savepoint: its failure undoes only its own writes."""
        conn = self.conn
        try:
            conn.execute("SAVEPOINT member")
            try:
                yield
            except BaseException:
                if conn.in_transaction:
                    _rollback(conn, "member")
                group.began.pop()
                raise
            conn.execute("RELEASE member")
        except _DB_ERRORS as exc:
            error = failure(exc)
            if not conn.in_transaction:
                # SQLite ended the whole transaction (a full disk, an I/O error): every
                # member of the group is undone with it.
                self._lose(group, error)
            raise error from exc

    def _lose(self, group: _Group, error: EdgeMetaError) -> None:
        """SQLite ended the group's transaction: fail every member, and open no more in it."""
        if group.lost is None:
            group.lost = error
        if self._group is group:
            self._group = None
            group.finish(group.lost)

    def _close_member(self, group: _Group) -> None:
        """A member is done: commit now when the group is full, else at the flush."""
        if self._group is group and len(group.began) >= _Group.MAX_MEMBERS:
            self._commit_group()

    async def _committed(self, group: _Group) -> None:
        """Wait for the group's commit; its failure is this member's."""
        if not group.done.is_set():
            await group.done.wait()
        if group.error is not None:
            raise type(group.error)(group.error.message)

    def _flush(self) -> None:
        """The loop callback that commits the open group once nobody holds the connection."""
        if self._group is None:
            return
        if self._lock.locked():  # a member (or a read) is running: look again next turn
            asyncio.get_running_loop().call_soon(self._flush)
            return
        self._commit_group()

    def _commit_group(self) -> None:
        """COMMIT the open group and tell its members (and the commit listeners)."""
        group, self._group = self._group, None
        if group is None:
            return
        # Whether any member queued an event (one SqlTx serves every member): only then is
        # there something for the relay, whatever the group's outcome.
        queued, self._tx.outbox.appended = self._tx.outbox.appended, False
        if group.lost is not None:
            group.finish(group.lost)
            return
        try:
            self.conn.execute("COMMIT")
        except _DB_ERRORS as exc:
            _rollback(self.conn)  # a failed COMMIT leaves the transaction open
            group.finish(failure(exc))
            return
        if not group.began:  # every member failed and undid its work: nothing committed
            group.finish(None)
            return
        if self._timer is not None:
            end = time.perf_counter()
            for began in group.began:
                self._timer(end - began)
        if self._checkpointer is not None:
            self._restart_wal(self._checkpointer)
            self._checkpointer.wake.set()
        if queued:
            for listener in self._listeners:
                listener()
        group.finish(None)

    def _restart_wal(self, checkpointer: _Checkpointer) -> None:
        """When the WAL has grown too big, let the log start over (see :class:`_Checkpointer`)."""
        if not checkpointer.restart_due:
            return
        checkpointer.restart_due = False
        try:
            busy = self.conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
        except sqlite3.Error as exc:  # the next commit tries again; the WAL grows meanwhile
            log.debug("WAL restart checkpoint failed: %s", exc)
            return
        if busy:  # a reader (or the checkpointer's own PASSIVE) held on: the next commit
            checkpointer.restart_due = True
        else:
            checkpointer.restarts += 1

    async def _begin(self) -> None:
        """BEGIN IMMEDIATE, waiting (without blocking the loop) while another connection
        holds the write lock, for up to ``BUSY_TIMEOUT`` seconds.

        SQLite's own busy handler would sleep inside the call, holding the event loop: and
        when the lock's holder is another store on this same loop (two stores on one file in
        one process) its group can only commit from a loop callback, so the handler would wait
        out its whole timeout and fail. So the handler is off for this one statement, and the
        wait is an ``asyncio.sleep`` back-off; the loop keeps serving everything else.
        """
        conn = self.conn
        deadline = time.monotonic() + self.BUSY_TIMEOUT
        pause = 0.0005
        while True:
            conn.execute("PRAGMA busy_timeout=0")
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
                if code not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    raise failure(exc) from exc
                if time.monotonic() >= deadline:  # another process holds the lock too long
                    raise failure(exc) from exc
            finally:
                conn.execute(f"PRAGMA busy_timeout={int(self.BUSY_TIMEOUT * 1000)}")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.02)

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every committed write transaction."""
        self._listeners.append(listener)

    def time_transactions(self, listener: Callable[[float], None]) -> None:
        """Tell ``listener`` how long each committed write transaction took."""
        self._timer = listener

    def pool_stats(self) -> dict[str, int]:
        """The one connection: in use while a transaction or read holds it."""
        busy = int(self._lock.locked())
        return {"in_use": busy, "idle": 1 - busy}

    def use_sealer(self, sealer: Sealer) -> None:
        """Seal secrets with ``sealer`` from now on."""
        self._tx.enrollments.sealer = sealer
        self._tx.secret.sealer = sealer

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqlTx]:
        """Reads run in autocommit; the lock keeps them off a half-done transaction."""
        if _BATCH.get() is self:
            yield self._tx  # inside our own batch: we hold the lock already
            return
        async with self._lock:
            # A read sees only committed data: the open group (if any) commits first.
            self._commit_group()
            try:
                yield self._tx
            except _DB_ERRORS as exc:
                raise failure(exc) from exc

    async def outbox_stats(self) -> OutboxStats:
        """The outbox backlog (see ``SqlOutboxFeed.stats``)."""
        async with self.read() as tx:
            return await tx.feed.stats()

    async def schema_version(self) -> tuple[int, int]:
        """The newest migration applied in the file, and the newest this code has."""
        async with self.read():
            applied = self.conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(applied[0] or 0), len(migrations("sqlite"))

    def lease(self, name: str) -> SqliteLease:
        """A lock file ``<database>.<name>.lock`` shared by every process on this file."""
        if self.path == ":memory:":
            return SqliteLease(None)
        return SqliteLease(f"{self.path}.{name}.lock")

    async def close(self) -> None:
        """Commit what is pending, checkpoint and close the file."""
        self._commit_group()
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self.conn.close()


class _Group:
    """Write transactions that share one COMMIT (group commit).

    The event loop often runs several requests' write transactions one after another before
    it next polls for I/O (nothing inside a transaction yields). Each of them used to end in a
    COMMIT of its own, about a fifth of a single add's server CPU. Now the first one opens the
    SQLite transaction, each runs inside a savepoint of its own (so one that fails undoes only
    its own writes and answers its own error), and a loop callback scheduled by the first
    commits them all at once when the connection is next free: a read, ``MAX_MEMBERS`` members
    or the next loop turn end the group. No member returns before the COMMIT, so an answer
    still means "committed", and if the COMMIT fails every member fails with it.
    """

    MAX_MEMBERS = 128

    __slots__ = ("began", "done", "error", "lost")

    def __init__(self) -> None:
        self.began: list[float] = []  # one perf_counter() start per live member
        self.done = asyncio.Event()
        self.error: EdgeMetaError | None = None
        self.lost: EdgeMetaError | None = None  # SQLite ended the transaction under us

    def finish(self, error: EdgeMetaError | None) -> None:
        """The group's outcome, for every member waiting."""
        self.error = error
        self.done.set()


class _Checkpointer:
    """Checkpoints the WAL from a thread of its own (see the module docstring).

    PASSIVE checkpoints never block the writer, but under a write load that never pauses they
    never catch up with the last frame either, and SQLite starts the log over only after a
    checkpoint that did: the WAL then grows without bound (seen: 2.9 GB in 70 s of batch adds).
    A RESTART checkpoint from this thread does not help: SQLite's write lock is not fair, and
    the busy writer takes it back after every COMMIT, so the thread waits out its timeout. So
    once the file passes ``RESTART_BYTES`` the thread sets ``restart_due``, and the writer
    itself runs the RESTART right after its next COMMIT (:meth:`SqliteStore._restart_wal`):
    the PASSIVE checkpoints have already copied nearly every frame, so it copies only the few
    since the last one, and the next transaction starts the log from the beginning
    (``journal_size_limit`` cuts the file back).
    """

    MIN_INTERVAL = 0.2
    RESTART_BYTES = 64 * 1024 * 1024

    def __init__(self, path: str) -> None:
        self.path = path
        self.wake = threading.Event()
        self._stopping = False
        self.restart_due = False  # set here, acted on (and cleared) by the writer
        self.restarts = 0
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
        try:
            while True:
                self.wake.wait()
                if self._stopping:
                    return
                self.wake.clear()
                # On an error, the next commit retries; the WAL just grows meanwhile.
                with contextlib.suppress(sqlite3.Error):
                    # (busy, frames in the log, frames copied): the log's length, not the
                    # file's, which stays long until the next transaction after a restart.
                    row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if row is not None and row[1] * page > self.RESTART_BYTES:
                        self.restart_due = True
                time.sleep(self.MIN_INTERVAL)
        finally:
            conn.close()

    def stop(self) -> None:
        """End the thread (the last connection's close checkpoints the rest)."""
        self._stopping = True
        self.wake.set()
        self._thread.join(5)
