"""SQL for ``campaigns``: one per user; interval, running/stopped, next run, pauses.

The scheduler's due query belongs to the engine (``storage/repositories/rounds.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from domain.models import CampaignRecord

COLUMNS = """user_id, status, interval_seconds, next_run_at, paused_until, pause_reason, started_at,
    stopped_at, last_round_id"""


def to_record(row: asyncpg.Record) -> CampaignRecord:
    return CampaignRecord(
        user_id=row["user_id"],
        status=row["status"],
        interval_seconds=row["interval_seconds"],
        next_run_at=row["next_run_at"],
        paused_until=row["paused_until"],
        pause_reason=row["pause_reason"],
        started_at=row["started_at"],
        stopped_at=row["stopped_at"],
        last_round_id=row["last_round_id"],
    )


async def ensure(conn: asyncpg.Connection, user_id: int) -> None:
    await conn.execute(
        "INSERT INTO campaigns (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING", user_id
    )


async def get(conn: asyncpg.Connection, user_id: int, for_update: bool = False) -> CampaignRecord | None:
    suffix = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM campaigns WHERE user_id = $1{suffix}", user_id)
    return None if row is None else to_record(row)


async def set_interval(
    conn: asyncpg.Connection, user_id: int, seconds: int, next_run_at: datetime | None, now: datetime
) -> CampaignRecord:
    """Store the interval; ``next_run_at`` replaces the stored one only when given (running)."""
    row = await conn.fetchrow(
        f"""UPDATE campaigns SET interval_seconds = $2, next_run_at = coalesce($3, next_run_at),
                                 updated_at = $4
            WHERE user_id = $1 RETURNING {COLUMNS}""",
        user_id, seconds, next_run_at, now,
    )
    assert row is not None
    return to_record(row)


async def start(
    conn: asyncpg.Connection, user_id: int, now: datetime, first_run: datetime | None = None
) -> CampaignRecord | None:
    """The one guarded transition stopped -> running, the first round due at ``first_run`` (default
    now); None when it was running already.

    A concurrent start waits on the row lock, then finds the status changed and updates nothing.
    """
    row = await conn.fetchrow(
        f"""UPDATE campaigns SET status = 'running', next_run_at = $3, paused_until = NULL,
                                 pause_reason = '', started_at = $2, updated_at = $2
            WHERE user_id = $1 AND status = 'stopped' AND interval_seconds IS NOT NULL
            RETURNING {COLUMNS}""",
        user_id, now, first_run or now,
    )
    return None if row is None else to_record(row)


async def mark_no_groups(conn: asyncpg.Connection, user_ids: Sequence[int], now: datetime) -> list[int]:
    """U6.6: of these campaigns, the running ones with no selected active group get the reason
    ``no_groups`` (once: the ids newly marked are returned); those with groups again lose it."""
    if not user_ids:
        return []
    await conn.execute(
        """UPDATE campaigns c SET pause_reason = '', updated_at = $2
           WHERE c.user_id = ANY($1::bigint[]) AND c.pause_reason = 'no_groups'
             AND EXISTS (SELECT 1 FROM groups g WHERE g.user_id = c.user_id AND g.selected
                         AND g.status = 'active')""",
        list(user_ids), now,
    )
    rows = await conn.fetch(
        """UPDATE campaigns c SET pause_reason = 'no_groups', updated_at = $2
           WHERE c.user_id = ANY($1::bigint[]) AND c.status = 'running' AND c.pause_reason = ''
             AND NOT EXISTS (SELECT 1 FROM groups g WHERE g.user_id = c.user_id AND g.selected
                             AND g.status = 'active')
           RETURNING c.user_id""",
        list(user_ids), now,
    )
    return [int(r["user_id"]) for r in rows]


async def due_now(conn: asyncpg.Connection, user_id: int, now: datetime) -> CampaignRecord | None:
    """A running campaign's next round is due at ``now`` (U6.2 "post now"); None when not running."""
    row = await conn.fetchrow(
        f"""UPDATE campaigns SET next_run_at = $2, updated_at = $2
            WHERE user_id = $1 AND status = 'running' RETURNING {COLUMNS}""",
        user_id, now,
    )
    return None if row is None else to_record(row)


async def stop(conn: asyncpg.Connection, user_id: int, now: datetime) -> CampaignRecord | None:
    """running -> stopped; None when it was not running."""
    row = await conn.fetchrow(
        f"""UPDATE campaigns SET status = 'stopped', next_run_at = NULL, stopped_at = $2, updated_at = $2
            WHERE user_id = $1 AND status = 'running' RETURNING {COLUMNS}""",
        user_id, now,
    )
    return None if row is None else to_record(row)


async def stop_many(conn: asyncpg.Connection, user_ids: Sequence[int], now: datetime) -> list[int]:
    rows = await conn.fetch(
        """UPDATE campaigns SET status = 'stopped', next_run_at = NULL, stopped_at = $2, updated_at = $2
           WHERE user_id = ANY($1::bigint[]) AND status = 'running' RETURNING user_id""",
        list(user_ids), now,
    )
    return [int(r["user_id"]) for r in rows]


async def count_running(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM campaigns WHERE status = 'running'"))


async def count_paused(conn: asyncpg.Connection, now: datetime) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM campaigns WHERE status = 'running' AND paused_until > $1", now
    ))


async def oldest_due(conn: asyncpg.Connection, now: datetime) -> datetime | None:
    """The earliest next run among running, unpaused, due campaigns (the scheduler's backlog)."""
    value: datetime | None = await conn.fetchval(
        """SELECT min(next_run_at) FROM campaigns
           WHERE status = 'running' AND next_run_at <= $1 AND (paused_until IS NULL OR paused_until <= $1)""",
        now,
    )
    return value
