"""The asyncpg pool and the unit of work that owns a transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson

# A connection as the services name it in their signatures (they never import asyncpg).
Connection = asyncpg.Connection

# What a database restart looks like from a caller (InternalClientError: a connection cut mid-query).
DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind,
            encoder=lambda value: orjson.dumps(value).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release, without a round trip.

    asyncpg's default sends ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` at every
    release: one more round trip per unit of work (a bot update's card, an engine job). Nothing in
    this code base leaves session state on a pooled connection: advisory locks are transaction-scoped
    (``pg_advisory_xact_lock``), no setting is changed (``SET``) and no cursor is held, and the one
    LISTEN (``storage.access_events``) is undone by its owner before it gives the connection back.
    Before calling this, asyncpg still rolls back a transaction left open and drops the connection's
    Python-side listeners.
    """
    return None


async def create_pool(dsn: str, min_size: int = 1, max_size: int = 10, **kwargs: Any) -> asyncpg.Pool:
    """A pool whose connections speak JSON through orjson: the one way JSON goes in and out of
    PostgreSQL (repositories pass and get Python values for json/jsonb, never JSON text)."""
    kwargs.setdefault("reset", keep_session)
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection,
                                     **kwargs)
    assert pool is not None
    return pool


class Database:
    """Hands out connections; ``transaction()`` is the unit of work.

    Repositories take a connection and never commit: the handler or job that
    opened the transaction decides.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, dsn: str, min_size: int = 1, max_size: int = 10) -> Database:
        return cls(await create_pool(dsn, min_size=min_size, max_size=max_size))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire() as conn:
            yield conn

    async def ping(self) -> bool:
        async with self.pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT 1"))

    async def close(self) -> None:
        await self.pool.close()
