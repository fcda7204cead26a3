"""The PostgreSQL store: for many edgemeta instances on one database.

asyncpg pool; each write transaction runs on its own connection at READ COMMITTED. Unique
names and references are constraints; a read-modify-write locks its row (``FOR UPDATE``) and
updates only the revision it read, so concurrent instances never lose an update or create a
name twice. Migrations run under an advisory lock, so instances starting together apply each
step once.

The URL may carry ``?schema=<name>`` (default ``edgemeta``); the tables live in that schema.

Failures of the database itself become domain errors at this boundary (:func:`failure`):
a refused, lost or shutting-down connection is ServiceUnavailable (503) and a full disk
InsufficientStorage (507), each with a message that says what happened without the driver's
internals (the log keeps them). The transaction that failed is rolled back by PostgreSQL (a
connection that dies mid-transaction commits nothing), so a 503 has changed nothing. When
the connection dies, asyncpg detaches it from the pool at once; returning it afterwards may
raise again, which must neither hide the real error nor turn a committed write into a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

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

_MIGRATION_LOCK = 0x6564_6765_6D65  # "edgeme": one advisory lock id for schema changes
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@lru_cache(maxsize=512)
def _numbered(sql: str) -> str:
    """``?`` placeholders to ``$1, $2, ...`` (our SQL never has ``?`` inside a literal)."""
    parts = sql.split("?")
    out = [parts[0]]
    for i, part in enumerate(parts[1:], start=1):
        out.append(f"${i}{part}")
    return "".join(out)


class PostgresDialect:
    """PostgreSQL's fragments: labels are a ``text[]`` with a GIN index."""

    name = "postgres"
    for_update = " FOR UPDATE"
    for_share = " FOR SHARE"

    def labels_match(self, column: str, count: int) -> str:
        """Array containment: all labels present."""
        return f"{column} @> ?::text[]"

    def labels_value(self, labels: Sequence[str]) -> object:
        """Labels as a text array."""
        return list(labels)

    def labels_args(self, labels: Sequence[str]) -> list[object]:
        """One array argument."""
        return [list(labels)]

    def any_of(self, column: str) -> str:
        """Membership in a text array."""
        return f"{column} = ANY(?::text[])"

    def list_value(self, values: Sequence[str]) -> object:
        """The list as a text array."""
        return list(values)


# The store, connection and task of the batch() the current task is inside, if any. The task
# is part of it because a task created inside a batch inherits the context: it must not take
# the batch's connection for its own, which is back in the pool once the batch ends.
_BATCH: contextvars.ContextVar[tuple[PostgresStore, Any, object] | None] = contextvars.ContextVar(
    "edgemeta_postgres_batch", default=None
)


def _in_batch(store: PostgresStore) -> Any:
    """The connection of ``store``'s batch this task is inside, or None."""
    current = _BATCH.get()
    if current is None or current[0] is not store or current[2] is not asyncio.current_task():
        return None
    return current[1]


# What a database failure can raise through asyncpg: the server's errors, the client's own
# (a closed or detached connection) and the socket's.
_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)

_LOST = (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError, ConnectionError)
_SHUTTING_DOWN = (
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.CrashShutdownError,
)


def failure(exc: BaseException) -> EdgeMetaError:
    """The domain error for a failure of PostgreSQL or of the way to it (logged in full)."""
    error: EdgeMetaError
    if isinstance(exc, asyncpg.DiskFullError):
        error = InsufficientStorage("insufficient storage: the disk holding the database is full")
    elif isinstance(exc, ConnectionRefusedError):
        error = ServiceUnavailable("database unavailable: PostgreSQL refused the connection")
    elif isinstance(exc, _LOST):
        error = ServiceUnavailable("database unavailable: the connection to PostgreSQL was lost")
    elif isinstance(exc, OSError):  # unreachable host, timeout, name resolution
        error = ServiceUnavailable("database unavailable: PostgreSQL cannot be reached")
    elif isinstance(exc, _SHUTTING_DOWN):
        error = ServiceUnavailable("database unavailable: PostgreSQL is shutting down or starting")
    elif isinstance(exc, asyncpg.TooManyConnectionsError):
        error = ServiceUnavailable("database unavailable: PostgreSQL has no free connection")
    elif isinstance(exc, asyncpg.PostgresConnectionError):
        error = ServiceUnavailable("database unavailable: cannot connect to PostgreSQL")
    elif isinstance(exc, asyncpg.InsufficientResourcesError):
        error = ServiceUnavailable("database unavailable: PostgreSQL is out of resources")
    elif isinstance(exc, asyncpg.TransactionRollbackError):  # serialization failure, deadlock
        error = ServiceUnavailable("database busy: the transaction conflicted with another; retry")
    else:
        error = ServerError(f"database error: {exc}")
    log.warning("%s (%s: %s)", error.message, type(exc).__name__, exc)
    return error


async def _release(pool: Any, conn: Any) -> None:
    """Return ``conn`` to the pool. A connection that broke is terminated by asyncpg while it
    raises; the pool opens a new one when needed, so the error is only worth a debug line."""
    try:
        await pool.release(conn)
    except _DB_ERRORS as exc:
        log.debug("a broken PostgreSQL connection was dropped: %s", exc)


def _violation(exc: asyncpg.IntegrityConstraintViolationError) -> IntegrityViolation:
    name = getattr(exc, "constraint_name", None) or ""
    if isinstance(exc, asyncpg.UniqueViolationError):
        return IntegrityViolation("unique", name)
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return IntegrityViolation("foreign_key", name)
    return IntegrityViolation("check", name)


class PostgresDriver:
    """Runs statements on one pooled connection."""

    dialect = PostgresDialect()

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def execute(self, sql: str, *args: object) -> int:
        """Run a statement; rows changed."""
        try:
            status: str = await self.conn.execute(_numbered(sql), *args)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _violation(exc) from exc
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run a statement per row (pipelined by asyncpg)."""
        try:
            await self.conn.executemany(_numbered(sql), rows)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _violation(exc) from exc

    async def fetchone(self, sql: str, *args: object) -> Row | None:
        """First row or None."""
        try:
            row: Row | None = await self.conn.fetchrow(_numbered(sql), *args)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _violation(exc) from exc
        return row

    async def fetchall(self, sql: str, *args: object) -> list[Row]:
        """All rows."""
        rows: list[Row] = await self.conn.fetch(_numbered(sql), *args)
        return rows

    async def fetchval(self, sql: str, *args: object) -> Any:
        """First column of the first row."""
        try:
            return await self.conn.fetchval(_numbered(sql), *args)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _violation(exc) from exc


def split_url(url: str) -> tuple[str, str]:
    """The asyncpg DSN and the schema named by ``?schema=`` (default ``edgemeta``)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = "edgemeta"
    kept = []
    for k, v in query:
        if k == "schema":
            schema = v
        else:
            kept.append((k, v))
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r} in the database URL")
    scheme = "postgresql" if parts.scheme.startswith("postgres") else parts.scheme
    dsn = urlunsplit((scheme, parts.netloc, parts.path, urlencode(kept), parts.fragment))
    return dsn, schema


class PostgresStore:
    """Store on a PostgreSQL database."""

    def __init__(self, pool: Any, schema: str, description: str) -> None:
        self.pool = pool
        self.schema = schema
        self.description = description
        self._listeners: list[Callable[[], None]] = []
        self._sealer: Sealer | None = None
        self._cursors = ListCursors()  # the lists' keyset cursors, for every transaction
        self._timer: Callable[[float], None] | None = None

    def use_sealer(self, sealer: Sealer) -> None:
        """Seal secrets with ``sealer`` from now on."""
        self._sealer = sealer

    def time_transactions(self, listener: Callable[[float], None]) -> None:
        """Tell ``listener`` how long each committed write transaction took."""
        self._timer = listener

    def pool_stats(self) -> dict[str, int]:
        """The asyncpg pool's connections in use and idle."""
        size, idle = self.pool.get_size(), self.pool.get_idle_size()
        return {"in_use": size - idle, "idle": idle}

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every write transaction this process commits."""
        self._listeners.append(listener)

    @classmethod
    async def open(cls, url: str, *, min_size: int = 2, max_size: int = 10) -> PostgresStore:
        """Connect, create the schema if needed and apply pending migrations."""
        dsn, schema = split_url(url)
        try:
            # asyncpg prepares every statement and caches it per connection (the default
            # statement_cache_size of 100 is kept: the hot statements are far fewer). So the
            # SQL text must not vary with the data: lists are bound as one array
            # (PostgresDialect.any_of), many rows go through executemany's one statement.
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                server_settings={"search_path": schema, "application_name": "edgemeta"},
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise ServiceUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        safe = urlsplit(dsn)
        host = safe.hostname or "localhost"
        where = f"{host}:{safe.port or 5432}{safe.path}"
        store = cls(pool, schema, f"PostgreSQL {where} schema {schema}")
        await store._migrate()
        return store

    async def _migrate(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ns BIGINT NOT NULL)"
            )
            done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for m in migrations("postgres"):
                if m.version in done:
                    continue
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    time.time_ns(),
                )

    async def schema_version(self) -> tuple[int, int]:
        """The newest migration applied in the schema, and the newest this code has."""
        conn = await self._acquire()
        try:
            applied = await conn.fetchval("SELECT max(version) FROM schema_migrations")
        except _DB_ERRORS as exc:
            raise failure(exc) from exc
        finally:
            await _release(self.pool, conn)
        return int(applied or 0), len(migrations("postgres"))

    async def _acquire(self) -> Any:
        try:
            return await self.pool.acquire()
        except _DB_ERRORS as exc:
            raise failure(exc) from exc

    @asynccontextmanager
    async def write(self) -> AsyncIterator[SqlTx]:
        """A READ COMMITTED transaction on one connection; a savepoint inside ``batch()``."""
        batch_conn = _in_batch(self)
        if batch_conn is not None:
            try:
                async with batch_conn.transaction():  # nested: a savepoint
                    yield SqlTx(PostgresDriver(batch_conn), self._sealer, self._cursors)
            except _DB_ERRORS as exc:
                raise failure(exc) from exc
            return
        conn = await self._acquire()
        began = time.perf_counter()
        try:
            async with conn.transaction():
                tx = SqlTx(PostgresDriver(conn), self._sealer, self._cursors)
                yield tx
        except _DB_ERRORS as exc:
            raise failure(exc) from exc
        finally:
            await _release(self.pool, conn)
        if self._timer is not None:
            self._timer(time.perf_counter() - began)
        if tx.outbox.appended:  # only a commit with events in it has news for the relay
            for listener in self._listeners:
                listener()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqlTx]:
        """Statements in autocommit on one connection (the batch's, inside ``batch()``)."""
        batch_conn = _in_batch(self)
        if batch_conn is not None:
            try:
                yield SqlTx(PostgresDriver(batch_conn), self._sealer, self._cursors)
            except _DB_ERRORS as exc:
                raise failure(exc) from exc
            return
        conn = await self._acquire()
        try:
            yield SqlTx(PostgresDriver(conn), self._sealer, self._cursors)
        except _DB_ERRORS as exc:
            raise failure(exc) from exc
        finally:
            await _release(self.pool, conn)

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """One transaction (and one commit) for every write this task makes inside.

        If the connection fails part-way, every later item fails too and the commit cannot
        happen: the whole request is the one ServiceUnavailable, having changed nothing.
        """
        if _in_batch(self) is not None:
            yield
            return
        conn = await self._acquire()
        try:
            async with conn.transaction():
                token = _BATCH.set((self, conn, asyncio.current_task()))
                try:
                    yield
                finally:
                    _BATCH.reset(token)
        except _DB_ERRORS as exc:
            raise failure(exc) from exc
        finally:
            await _release(self.pool, conn)
        for listener in self._listeners:
            listener()

    async def outbox_stats(self) -> OutboxStats:
        """The outbox backlog (see ``SqlOutboxFeed.stats``)."""
        async with self.read() as tx:
            return await tx.feed.stats()

    def lease(self, name: str) -> PostgresLease:
        """A session advisory lock on its own connection: held while that connection lives.

        Advisory locks are per database, not per schema, so the key names the schema too:
        instances on other schemas of the same database (other tenants, other test runs)
        must not take each other's lease.
        """
        return PostgresLease(self.pool, f"{self.schema}/{name}")

    async def close(self) -> None:
        """Close the pool."""
        await self.pool.close()


class PostgresLease:
    """``pg_try_advisory_lock`` on a dedicated connection. If the connection (or the process)
    dies, PostgreSQL releases the lock and another instance's ``acquire`` succeeds."""

    def __init__(self, pool: Any, name: str) -> None:
        self.pool = pool
        self.key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        self.conn: Any = None

    async def acquire(self) -> bool:
        """Take the lock if free; confirm the connection still holds it if taken before."""
        try:
            if self.conn is not None:
                if not self.conn.is_closed():
                    await self.conn.fetchval("SELECT 1")
                    return True
                await self._drop()
            conn = await self.pool.acquire()
            try:
                locked = await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key)
            except BaseException:
                await _release(self.pool, conn)  # not leaked when the query fails
                raise
            if locked:
                self.conn = conn
                return True
            await _release(self.pool, conn)
            return False
        except _DB_ERRORS:
            await self._drop()
            return False

    async def _drop(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await self.pool.release(conn)

    async def release(self) -> None:
        """Unlock and return the connection to the pool."""
        if self.conn is not None and not self.conn.is_closed():
            with contextlib.suppress(Exception):
                await self.conn.execute("SELECT pg_advisory_unlock($1)", self.key)
        await self._drop()
