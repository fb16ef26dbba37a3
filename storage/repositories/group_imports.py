"""SQL for ``group_imports``: one group-import job per user, with where its dialog listing stopped
and (U8) the account it lists: the current account when it was started."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

ACTIVE = ("running", "waiting", "cancelling")
COLUMNS = ("status, folder, page_offset, chats_read, seen, new_count, updated_count, resume_at, "
           "error, started_at, updated_at, account_id")


@dataclass(frozen=True)
class ImportRow:
    status: str
    folder: int
    page_offset: str
    chats_read: int
    seen: list[int]
    new_count: int
    updated_count: int
    resume_at: datetime | None
    error: str
    started_at: datetime
    updated_at: datetime
    account_id: int | None = None  # the account whose dialogs are listed


def _row(row: asyncpg.Record) -> ImportRow:
    return ImportRow(row["status"], row["folder"], row["page_offset"], row["chats_read"],
                     list(row["seen"]), row["new_count"], row["updated_count"], row["resume_at"],
                     row["error"], row["started_at"], row["updated_at"], row["account_id"])


async def get(conn: asyncpg.Connection, user_id: int) -> ImportRow | None:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM group_imports WHERE user_id = $1", user_id)
    return None if row is None else _row(row)


async def begin(conn: asyncpg.Connection, user_id: int, now: datetime, stale_before: datetime
                ) -> tuple[str, ImportRow] | None:
    """Start a fresh import, or take over one whose runner went quiet before ``stale_before``
    (its saved folder and cursor are kept). None while another runner keeps one going.
    Call inside a transaction (the row is locked until it ends)."""
    current = await conn.fetchrow(
        "SELECT status, updated_at FROM group_imports WHERE user_id = $1 FOR UPDATE", user_id)
    if current is not None and current["status"] in ACTIVE:
        if current["updated_at"] >= stale_before:
            return None
        row = await conn.fetchrow(
            f"""UPDATE group_imports SET status = 'running', resume_at = NULL, error = '', updated_at = $2
                WHERE user_id = $1 RETURNING {COLUMNS}""", user_id, now)
        return "resumed", _row(row)
    row = await conn.fetchrow(
        f"""
        INSERT INTO group_imports (user_id, status, started_at, updated_at) VALUES ($1, 'running', $2, $2)
        ON CONFLICT (user_id) DO UPDATE SET
            status = 'running', folder = 0, page_offset = '', chats_read = 0, seen = '{{}}', new_count = 0,
            updated_count = 0, resume_at = NULL, error = '', started_at = $2, updated_at = $2,
            account_id = current_account($1)
        RETURNING {COLUMNS}
        """,
        user_id, now,
    )
    return "started", _row(row)


async def save_page(
    conn: asyncpg.Connection, user_id: int, *, folder: int, page_offset: str, read: int,
    peers: Sequence[int], new: int, updated: int, now: datetime,
) -> str:
    """Record one page merged: the cursor moves on; returns the status (``cancelling`` = stop)."""
    return str(await conn.fetchval(
        """UPDATE group_imports SET folder = $2, page_offset = $3, chats_read = chats_read + $4,
                  seen = seen || $5::bigint[], new_count = new_count + $6, updated_count = updated_count + $7,
                  status = CASE WHEN status = 'cancelling' THEN status ELSE 'running' END,
                  resume_at = NULL, updated_at = $8
           WHERE user_id = $1 RETURNING status""",
        user_id, folder, page_offset, read, list(peers), new, updated, now,
    ))


async def set_waiting(conn: asyncpg.Connection, user_id: int, resume_at: datetime, now: datetime) -> str:
    return str(await conn.fetchval(
        """UPDATE group_imports SET status = CASE WHEN status = 'cancelling' THEN status ELSE 'waiting' END,
                  resume_at = $2, updated_at = $3
           WHERE user_id = $1 RETURNING status""",
        user_id, resume_at, now,
    ))


async def touch(conn: asyncpg.Connection, user_id: int, now: datetime) -> str:
    """The runner is alive (heartbeat while it waits); returns the status."""
    return str(await conn.fetchval(
        "UPDATE group_imports SET updated_at = $2 WHERE user_id = $1 RETURNING status", user_id, now))


async def finish(conn: asyncpg.Connection, user_id: int, status: str, error: str, now: datetime) -> None:
    await conn.execute(
        """UPDATE group_imports SET status = $2, error = $3, resume_at = NULL, updated_at = $4
           WHERE user_id = $1""",
        user_id, status, error, now,
    )


async def request_cancel(conn: asyncpg.Connection, user_id: int, now: datetime) -> bool:
    status = await conn.execute(
        """UPDATE group_imports SET status = 'cancelling', updated_at = $2
           WHERE user_id = $1 AND status IN ('running', 'waiting')""",
        user_id, now,
    )
    return bool(status.split()[-1] != "0")
