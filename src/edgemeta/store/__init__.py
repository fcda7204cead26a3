"""Store adapters, chosen by URL: ``sqlite:///<path>`` (or ``sqlite:///:memory:``) and
``postgresql://user@host:port/db[?schema=name]``.

One SQL implementation of the repositories and the outbox (``repos``, ``coredata``,
``moves``, ``provisioning``, ``outbox``) over two drivers, and the versioned migrations.
Imports: the domain, the ports and :mod:`edgemeta.documents` (records are stored as their
documents). Imported by :mod:`edgemeta.bootstrap` (and tests) only.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from edgemeta.ports import Store
from edgemeta.store.postgres import PostgresStore
from edgemeta.store.sqlite import SqliteStore


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:///`` URL (``:memory:`` for an in-memory database)."""
    rest = url.split(":", 1)[1]
    if not rest.startswith("///") and rest not in ("//", ""):
        raise ValueError(f"an SQLite URL is sqlite:///<path>, not {url!r}")
    path = unquote(rest[3:]) if rest.startswith("///") else ":memory:"
    return path or ":memory:"


async def open_store(url: str, *, sqlite_synchronous: str = "NORMAL") -> Store:
    """Open (and migrate) the store named by ``url``."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        return SqliteStore(sqlite_path(url), synchronous=sqlite_synchronous)
    if scheme in ("postgresql", "postgres"):
        return await PostgresStore.open(url)
    raise ValueError(f"unsupported database URL scheme {scheme!r} (use sqlite:// or postgresql://)")
