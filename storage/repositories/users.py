"""SQL for ``users``: profiles, access state, bans, notification preferences."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from domain.models import UserProfile, UserRecord

COLUMNS = """u.user_id, u.first_name, u.last_name, u.username, u.language, u.access_status,
    u.access_expires_at, u.access_requested_at, u.banned, u.bot_blocked, u.notify_rounds,
    u.created_at, u.last_seen_at, u.timezone"""


def to_record(row: asyncpg.Record) -> UserRecord:
    return UserRecord(
        user_id=row["user_id"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        username=row["username"],
        language=row["language"],
        access_status=row["access_status"],
        access_expires_at=row["access_expires_at"],
        access_requested_at=row["access_requested_at"],
        banned=row["banned"],
        bot_blocked=row["bot_blocked"],
        notify_rounds=row["notify_rounds"],
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
        timezone=row["timezone"],
    )


@dataclass(frozen=True)
class UserListRow:
    """A user with what the admin list shows next to them."""

    user: UserRecord
    connected: bool
    running: bool


async def touch(conn: asyncpg.Connection, profile: UserProfile, now: datetime) -> tuple[UserRecord, bool]:
    """Insert or refresh the profile; returns the row and whether it was new."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO users AS u (user_id, first_name, last_name, username, language, created_at,
                                updated_at, last_seen_at, bot_blocked)
        VALUES ($1, $2, $3, $4, $5, $6, $6, $6, false)
        ON CONFLICT (user_id) DO UPDATE SET
            first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
            username = EXCLUDED.username,
            -- U12: the bot's language comes from Telegram's language_code on first contact only (a row
            -- made by ``ensure`` has none yet); later it changes only through ``set_language``
            language = CASE WHEN u.language = '' THEN EXCLUDED.language ELSE u.language END,
            last_seen_at = EXCLUDED.last_seen_at, bot_blocked = false,
            updated_at = CASE WHEN (u.first_name, u.last_name, u.username, u.language = '')
                                   IS DISTINCT FROM (EXCLUDED.first_name, EXCLUDED.last_name,
                                                     EXCLUDED.username, false)
                              THEN EXCLUDED.updated_at ELSE u.updated_at END
        RETURNING {COLUMNS}, (xmax = 0) AS inserted
        """,
        profile.user_id, profile.first_name, profile.last_name, profile.username, profile.language, now,
    )
    assert row is not None
    return to_record(row), bool(row["inserted"])


async def ensure(conn: asyncpg.Connection, user_id: int) -> None:
    """Make sure the row exists (rows of other tables reference it)."""
    await conn.execute("INSERT INTO users (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING", user_id)


async def lock(conn: asyncpg.Connection, user_id: int) -> None:
    """Serialise a user's changes (selection limit, message versions) within the transaction."""
    await ensure(conn, user_id)
    await conn.execute("SELECT 1 FROM users WHERE user_id = $1 FOR UPDATE", user_id)


async def get(conn: asyncpg.Connection, user_id: int, for_update: bool = False) -> UserRecord | None:
    suffix = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM users u WHERE u.user_id = $1{suffix}", user_id)
    return None if row is None else to_record(row)


async def request_access(conn: asyncpg.Connection, user_id: int, now: datetime) -> None:
    await conn.execute(
        """UPDATE users SET access_status = 'pending', access_requested_at = $2, updated_at = $2
           WHERE user_id = $1""",
        user_id, now,
    )


async def set_access(
    conn: asyncpg.Connection, user_id: int, status: str, expires_at: datetime | None, now: datetime
) -> None:
    await conn.execute(
        """UPDATE users SET access_status = $2, access_expires_at = $3, access_expiry_handled_at = NULL,
                            updated_at = $4
           WHERE user_id = $1""",
        user_id, status, expires_at, now,
    )


async def set_banned(conn: asyncpg.Connection, user_id: int, banned: bool, now: datetime) -> None:
    await conn.execute(
        "UPDATE users SET banned = $2, updated_at = $3 WHERE user_id = $1", user_id, banned, now
    )


async def set_language(conn: asyncpg.Connection, user_id: int, language: str, now: datetime) -> None:
    """U12.2: the language the user chose in the settings menu. Announced on the access channel like
    an access change, so every bot replica's access cache drops its copy of the user at commit."""
    await conn.execute(
        "UPDATE users SET language = $2, updated_at = $3 WHERE user_id = $1", user_id, language, now
    )
    await conn.execute("SELECT pg_notify('ab_access', $1::text)", str(user_id))


async def set_notify_rounds(conn: asyncpg.Connection, user_id: int, enabled: bool) -> bool:
    value = await conn.fetchval(
        "UPDATE users SET notify_rounds = $2 WHERE user_id = $1 RETURNING notify_rounds", user_id, enabled
    )
    return bool(value)


async def toggle_notify_rounds(conn: asyncpg.Connection, user_id: int) -> bool:
    value = await conn.fetchval(
        "UPDATE users SET notify_rounds = NOT notify_rounds WHERE user_id = $1 RETURNING notify_rounds",
        user_id,
    )
    return bool(value)


async def set_timezone(conn: asyncpg.Connection, user_id: int, name: str) -> None:
    """U10.2: the user's time zone (an IANA name or ``UTC±HH:MM``, checked by ``domain.schedule``)."""
    await conn.execute("UPDATE users SET timezone = $2, updated_at = now() WHERE user_id = $1", user_id, name)


async def timezone(conn: asyncpg.Connection, user_id: int) -> str:
    value = await conn.fetchval("SELECT timezone FROM users WHERE user_id = $1", user_id)
    return str(value) if value is not None else "UTC"


async def set_bot_blocked(conn: asyncpg.Connection, user_id: int, blocked: bool) -> None:
    await conn.execute("UPDATE users SET bot_blocked = $2 WHERE user_id = $1", user_id, blocked)


async def count(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM users"))


async def count_pending(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM users WHERE access_status = 'pending' AND NOT banned"
    ))


# U8: connected / running when any of the user's accounts is
_LIST = f"""
    SELECT {COLUMNS},
           EXISTS (SELECT 1 FROM accounts a WHERE a.user_id = u.user_id
                   AND a.status = 'connected') AS connected,
           EXISTS (SELECT 1 FROM campaigns c WHERE c.user_id = u.user_id AND c.status = 'running') AS running
    FROM users u
"""


def _list_row(row: asyncpg.Record) -> UserListRow:
    return UserListRow(to_record(row), bool(row["connected"]), bool(row["running"]))


async def page(conn: asyncpg.Connection, offset: int, limit: int) -> list[UserListRow]:
    rows = await conn.fetch(
        _LIST + " ORDER BY u.created_at DESC, u.user_id DESC OFFSET $1 LIMIT $2", offset, limit
    )
    return [_list_row(r) for r in rows]


async def list_row(conn: asyncpg.Connection, user_id: int) -> UserListRow | None:
    row = await conn.fetchrow(_LIST + " WHERE u.user_id = $1", user_id)
    return None if row is None else _list_row(row)


async def pending_requests(conn: asyncpg.Connection, limit: int) -> list[UserListRow]:
    rows = await conn.fetch(
        _LIST + """ WHERE u.access_status = 'pending' AND NOT u.banned
                    ORDER BY u.access_requested_at, u.user_id LIMIT $1""",
        limit,
    )
    return [_list_row(r) for r in rows]


async def due_expiries(conn: asyncpg.Connection, now: datetime, limit: int) -> list[tuple[int, datetime]]:
    """(user, expiry) of grants that ran out and were not handled yet; locked so callers split them."""
    rows = await conn.fetch(
        """SELECT user_id, access_expires_at FROM users
           WHERE access_status = 'granted' AND access_expiry_handled_at IS NULL AND access_expires_at <= $1
           ORDER BY access_expires_at LIMIT $2
           FOR UPDATE SKIP LOCKED""",
        now, limit,
    )
    return [(int(r["user_id"]), r["access_expires_at"]) for r in rows]


async def mark_expiry_handled(conn: asyncpg.Connection, user_ids: list[int], now: datetime) -> None:
    await conn.execute(
        "UPDATE users SET access_expiry_handled_at = $2 WHERE user_id = ANY($1::bigint[])", user_ids, now
    )


async def without_access(conn: asyncpg.Connection, mode: str, now: datetime, exclude: list[int]) -> list[int]:
    """Users with a running broadcast who have no access under ``mode`` (admins excluded)."""
    rows = await conn.fetch(
        """SELECT DISTINCT u.user_id FROM users u JOIN campaigns c ON c.user_id = u.user_id
           WHERE c.status = 'running' AND NOT (u.user_id = ANY($3::bigint[]))
             AND (u.banned OR ($1 <> 'open' AND NOT (u.access_status = 'granted'
                  AND (u.access_expires_at IS NULL OR u.access_expires_at > $2))))""",
        mode, now, exclude,
    )
    return [int(r["user_id"]) for r in rows]


async def announce_targets(conn: asyncpg.Connection) -> list[int]:
    rows = await conn.fetch("SELECT user_id FROM users WHERE NOT banned AND NOT bot_blocked ORDER BY user_id")
    return [int(r["user_id"]) for r in rows]
