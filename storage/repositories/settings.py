"""SQL for ``settings``: global runtime switches (access mode, global pause) as JSON values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from domain.rules import AccessMode, as_access_mode

ACCESS_MODE = "access_mode"
GLOBAL_PAUSE = "global_pause"


async def get(conn: asyncpg.Connection, key: str, default: Any = None) -> Any:
    row = await conn.fetchrow("SELECT value FROM settings WHERE key = $1", key)
    return default if row is None else row["value"]


async def put(conn: asyncpg.Connection, key: str, value: Any, now: datetime) -> None:
    await conn.execute(
        """INSERT INTO settings (key, value, updated_at) VALUES ($1, $2::jsonb, $3)
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at""",
        key, value, now,
    )


async def get_for_update(conn: asyncpg.Connection, key: str, default: Any, now: datetime) -> Any:
    """``key`` under a row lock held to the end of the transaction, for a read-modify-write: a concurrent
    writer waits, and this read sees the value the previous writer committed (the row is created with
    ``default`` first, so there is always a row to lock)."""
    await conn.execute(
        """INSERT INTO settings (key, value, updated_at) VALUES ($1, $2::jsonb, $3)
           ON CONFLICT (key) DO NOTHING""",
        key, default, now,
    )
    return await conn.fetchval("SELECT value FROM settings WHERE key = $1 FOR UPDATE", key)


async def access_mode_for_update(conn: asyncpg.Connection, now: datetime) -> AccessMode:
    return as_access_mode(await get_for_update(conn, ACCESS_MODE, "open", now))


async def global_pause_for_update(conn: asyncpg.Connection, now: datetime) -> bool:
    return bool(await get_for_update(conn, GLOBAL_PAUSE, False, now))


async def access_mode(conn: asyncpg.Connection) -> AccessMode:
    return as_access_mode(await get(conn, ACCESS_MODE, "open"))


async def global_pause(conn: asyncpg.Connection) -> bool:
    """The admin kill switch, as the SQL function every engine statement asks (migration 0005)."""
    return bool(await conn.fetchval("SELECT global_pause()"))
