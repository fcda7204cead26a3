"""Shared fixtures: stores on every backend, and a service app for API tests."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator

import pytest

from edgemeta.ports import Store
from edgemeta.store import open_store
from tests.support import servers
from tests.support.schema import drop_schema as _drop_schema

# Services built in tests keep what they make by default (the key-encryption key file) in a
# scratch directory, never in the developer's ~/.local/share/edgemeta.
os.environ.setdefault("EDGEMETA_DATA_DIR", tempfile.mkdtemp(prefix="edgemeta-tests-"))


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Store]:
    """A fresh, migrated store on each backend (its own file or its own schema)."""
    if request.param == "sqlite":
        s = await open_store(f"sqlite:///{tmp_path / 'test.db'}")
        yield s
        await s.close()
        return
    servers.require(servers.POSTGRES_URL, "PostgreSQL")
    schema = servers.unique("t")
    s = await open_store(f"{servers.POSTGRES_URL}?schema={schema}")
    try:
        yield s
    finally:
        await s.close()
        await _drop_schema(schema)


@pytest.fixture
def postgres_url() -> str:
    """The test PostgreSQL URL (skips or fails if the server is down)."""
    servers.require(servers.POSTGRES_URL, "PostgreSQL")
    return servers.POSTGRES_URL
