"""Giving a connection back to the pool costs no round trip, and leaves no transaction behind."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

pytestmark = pytest.mark.integration


async def test_release_sends_nothing_to_the_server(db_pool, monkeypatch) -> None:
    sent: list[str] = []
    original = asyncpg.connection.Connection.execute

    async def execute(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(query)
        return await original(self, query, *args, **kwargs)

    async with db_pool.acquire() as conn:
        await conn.fetchval("SELECT 1")
        # the default reset sends its query through Connection.execute
        monkeypatch.setattr(asyncpg.connection.Connection, "execute", execute)
    assert sent == []  # not "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;"


async def test_a_transaction_left_open_is_rolled_back_on_release(db_pool) -> None:
    async with db_pool.acquire() as conn:
        await conn.execute("BEGIN")  # unmanaged: asyncpg rolls it back before the pool's reset
        await conn.execute("CREATE TEMP TABLE left_open (x int)")
    # the pool has one idle connection at most here, so this is most likely the same one
    async with db_pool.acquire() as conn:
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT to_regclass('pg_temp.left_open') IS NULL")
