"""SQL for the admin-set send caps: the global override (``settings`` key ``send_caps``) and ``send_caps``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import asyncpg

from storage.repositories import settings as settings_repo

GLOBAL_KEY = "send_caps"
WINDOWS = ("minute", "hour", "day")


async def global_caps(conn: asyncpg.Connection) -> dict[str, int]:
    """The admin's global caps by window name (only the windows an admin has set)."""
    raw = await settings_repo.get(conn, GLOBAL_KEY, {})
    if not isinstance(raw, dict):
        return {}
    return {name: int(value) for name, value in raw.items() if name in WINDOWS and isinstance(value, int)}


async def put_global(conn: asyncpg.Connection, caps: Mapping[str, int], now: datetime) -> None:
    await settings_repo.put(conn, GLOBAL_KEY, dict(caps), now)


async def user_caps(conn: asyncpg.Connection, user_id: int) -> dict[str, int | None]:
    row = await conn.fetchrow("SELECT minute, hour, day FROM send_caps WHERE user_id = $1", user_id)
    return {name: row[name] for name in WINDOWS} if row is not None else {}


async def all_user_caps(conn: asyncpg.Connection) -> dict[int, dict[str, int | None]]:
    rows = await conn.fetch("SELECT user_id, minute, hour, day FROM send_caps")
    return {row["user_id"]: {name: row[name] for name in WINDOWS} for row in rows}


async def put_user(
    conn: asyncpg.Connection, user_id: int, caps: Mapping[str, int | None], now: datetime
) -> None:
    """Set the user's caps (a None window follows the global value)."""
    await conn.execute(
        """INSERT INTO send_caps (user_id, minute, hour, day, updated_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (user_id) DO UPDATE SET minute = EXCLUDED.minute, hour = EXCLUDED.hour,
               day = EXCLUDED.day, updated_at = EXCLUDED.updated_at""",
        user_id, caps.get("minute"), caps.get("hour"), caps.get("day"), now,
    )


async def delete_user(conn: asyncpg.Connection, user_id: int) -> bool:
    result = await conn.execute("DELETE FROM send_caps WHERE user_id = $1", user_id)
    return bool(result.endswith(" 1"))
