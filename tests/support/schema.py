"""Test schemas on the machine's PostgreSQL: dropping one a test made."""

from __future__ import annotations

import asyncpg

from tests.support import servers


async def drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(servers.POSTGRES_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
