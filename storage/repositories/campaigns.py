"""SQL for ``campaigns``: one per account (U8); interval, running/stopped, next run, pauses.

The bot's menus act on the user's current account (``scope.current``); the engine and the
scheduler name the account.

Every write to the table is here, one function per state change, used by the bot's services, the
admin API, the scheduler and the engine alike. Whether a campaign may send now is the SQL function
``campaign_blocker`` (migration 0005), asked by every statement that needs to know.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from domain.models import CampaignRecord
from domain.schedule import Window, window_of
from storage.repositories.scope import current, named_or_current

CURRENT = current()

COLUMNS = """user_id, account_id, status, interval_seconds, next_run_at, paused_until, pause_reason,
    started_at,
    stopped_at, last_round_id, window_start, window_end, window_days"""


def to_record(row: asyncpg.Record) -> CampaignRecord:
    return CampaignRecord(
        user_id=row["user_id"],
        account_id=row["account_id"],
        status=row["status"],
        interval_seconds=row["interval_seconds"],
        next_run_at=row["next_run_at"],
        paused_until=row["paused_until"],
        pause_reason=row["pause_reason"],
        started_at=row["started_at"],
        stopped_at=row["stopped_at"],
        last_round_id=row["last_round_id"],
        window_start=row["window_start"],
        window_end=row["window_end"],
        window_days=row["window_days"],
    )


async def ensure(conn: asyncpg.Connection, user_id: int) -> None:
    """The current account's campaign row exists (the insert trigger names the current account)."""
    await conn.execute("INSERT INTO campaigns (user_id) VALUES ($1) ON CONFLICT DO NOTHING", user_id)


async def get(
    conn: asyncpg.Connection, user_id: int, for_update: bool = False, account_id: int | None = None
) -> CampaignRecord | None:
    """The campaign of ``account_id`` (one of the user's), default of the current account."""
    suffix = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM campaigns WHERE {named_or_current('$1', '$2')}{suffix}", user_id, account_id)
    return None if row is None else to_record(row)


async def set_interval(
    conn: asyncpg.Connection, user_id: int, seconds: int, next_run_at: datetime | None, now: datetime
) -> CampaignRecord:
    """Store the interval; ``next_run_at`` replaces the stored one only when given (running)."""
    row = await conn.fetchrow(
        f"""UPDATE campaigns SET interval_seconds = $2, next_run_at = coalesce($3, next_run_at),
                                 updated_at = $4
            WHERE {CURRENT} RETURNING {COLUMNS}""",
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
            WHERE {CURRENT} AND status = 'stopped' AND interval_seconds IS NOT NULL
            RETURNING {COLUMNS}""",
        user_id, now, first_run or now,
    )
    return None if row is None else to_record(row)


async def set_window(
    conn: asyncpg.Connection, user_id: int, window: Window | None, next_run_at: datetime | None, now: datetime
) -> CampaignRecord:
    """U10.3/U10.1: the schedule window (None: none); ``next_run_at`` replaces the stored one when
    given (running: the next due instant moved to the window's opening)."""
    row = await conn.fetchrow(
        f"""UPDATE campaigns SET window_start = $2, window_end = $3, window_days = $4,
                                 next_run_at = coalesce($5, next_run_at), updated_at = $6
            WHERE {CURRENT} RETURNING {COLUMNS}""",
        user_id,
        None if window is None else window.start,
        None if window is None else window.end,
        127 if window is None else window.days,
        next_run_at,
        now,
    )
    assert row is not None
    return to_record(row)


async def set_next_run(
    conn: asyncpg.Connection, user_id: int, next_run_at: datetime, now: datetime,
    account_id: int | None = None,
) -> None:
    """A running campaign's next due instant (its window or the user's time zone changed); of
    ``account_id``, default the current account."""
    await conn.execute(
        f"""UPDATE campaigns SET next_run_at = $2, updated_at = $3
            WHERE {named_or_current('$1', '$4')} AND status = 'running'""",
        user_id, next_run_at, now, account_id,
    )


async def mark_no_groups(
    conn: asyncpg.Connection, account_ids: Sequence[int], now: datetime
) -> list[tuple[int, int]]:
    """U6.6: of these accounts' campaigns, the running ones with no selected active group get the
    reason ``no_groups`` (once: the (user id, account id) newly marked are returned); those with
    groups again lose it."""
    if not account_ids:
        return []
    await conn.execute(
        """UPDATE campaigns c SET pause_reason = '', updated_at = $2
           WHERE c.account_id = ANY($1::bigint[]) AND c.pause_reason = 'no_groups'
             AND EXISTS (SELECT 1 FROM groups g WHERE g.account_id = c.account_id AND g.selected
                         AND g.status = 'active')""",
        list(account_ids), now,
    )
    rows = await conn.fetch(
        """UPDATE campaigns c SET pause_reason = 'no_groups', updated_at = $2
           WHERE c.account_id = ANY($1::bigint[]) AND c.status = 'running' AND c.pause_reason = ''
             AND NOT EXISTS (SELECT 1 FROM groups g WHERE g.account_id = c.account_id AND g.selected
                             AND g.status = 'active')
           RETURNING c.user_id, c.account_id""",
        list(account_ids), now,
    )
    return [(int(r["user_id"]), int(r["account_id"])) for r in rows]


async def due_now(conn: asyncpg.Connection, user_id: int, now: datetime) -> CampaignRecord | None:
    """A running campaign's next round is due at ``now`` (U6.2 "post now"); None when not running."""
    row = await conn.fetchrow(
        f"""UPDATE campaigns SET next_run_at = $2, updated_at = $2
            WHERE {CURRENT} AND status = 'running' RETURNING {COLUMNS}""",
        user_id, now,
    )
    return None if row is None else to_record(row)


async def stop(
    conn: asyncpg.Connection, user_id: int | None, now: datetime | None = None, *,
    account_id: int | None = None, every: bool = False,
) -> CampaignRecord | None:
    """running -> stopped; None when it was not running. ``now`` None: the database clock.

    Acts on ``account_id`` when given (the engine, logout), else on the current account of
    ``user_id`` (the menus); ``every``: on all the user's accounts (an admin's stop; the first one
    stopped is returned).
    """
    row = await conn.fetchrow(
        f"""UPDATE campaigns SET status = 'stopped', next_run_at = NULL,
                                 stopped_at = coalesce($2::timestamptz, now()),
                                 updated_at = coalesce($2::timestamptz, now())
            WHERE status = 'running' AND CASE WHEN $4 THEN user_id = $1
                                              WHEN $3::bigint IS NOT NULL THEN account_id = $3
                                              ELSE {current()} END
            RETURNING {COLUMNS}""",
        user_id, now, account_id, every,
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


async def pause(
    conn: asyncpg.Connection, account_id: int | None, seconds: float, reason: str
) -> datetime | None:
    """Pause a running campaign for ``seconds`` (never shortening a longer pause); returns the end."""
    value: datetime | None = await conn.fetchval(
        """
        UPDATE campaigns
        SET paused_until = greatest(coalesce(paused_until, now()), now() + make_interval(secs => $2)),
            pause_reason = $3, updated_at = now()
        WHERE account_id = $1 AND status = 'running'
        RETURNING paused_until
        """,
        account_id,
        float(seconds),
        reason,
    )
    return value


async def paused_until(
    conn: asyncpg.Connection, account_id: int | None
) -> tuple[datetime | None, datetime] | None:
    """The end of the campaign's pause (None: not paused) and the database's now; None: no campaign."""
    row = await conn.fetchrow("SELECT paused_until, now() AS now FROM campaigns WHERE account_id = $1",
                              account_id)
    return None if row is None else (row["paused_until"], row["now"])


@dataclass(frozen=True)
class DueCampaign:
    user_id: int
    account_id: int
    next_run_at: datetime
    interval_seconds: int
    window: Window | None = None  # U10: the next run is moved to its opening
    timezone: str = "UTC"


DUE_QUERY = """
SELECT c.user_id, c.account_id, c.next_run_at, c.interval_seconds, c.window_start, c.window_end,
       c.window_days,
       u.timezone, now() AS now
FROM campaigns c JOIN users u ON u.user_id = c.user_id
WHERE c.status = 'running'
  AND c.next_run_at <= now()
  AND c.interval_seconds IS NOT NULL
  AND campaign_blocker(c.status, c.started_at, c.paused_until, NULL) IS NULL
  AND NOT EXISTS (SELECT 1 FROM rounds r WHERE r.user_id = c.user_id AND r.account_id = c.account_id
                  AND r.finished_at IS NULL)
ORDER BY c.next_run_at
LIMIT $1
FOR UPDATE OF c SKIP LOCKED
"""


async def lock_due(conn: asyncpg.Connection, limit: int) -> tuple[datetime, list[DueCampaign]]:
    """Running, due, unpaused campaigns without an unfinished round, locked for this transaction.

    Served by ``campaigns_status_next_run_at_idx`` (a range scan over the due rows only) and, for
    the open-round check, by ``rounds_user_id_account_id_open_idx`` (one open round per account).
    ``SKIP LOCKED`` lets two schedulers
    split the work instead of waiting on each other; after a row is locked PostgreSQL re-checks
    ``next_run_at`` against the latest version, so a campaign another scheduler just advanced
    is not taken again.
    """
    rows = await conn.fetch(DUE_QUERY, limit)
    now = rows[0]["now"] if rows else await conn.fetchval("SELECT now()")
    return now, [DueCampaign(r["user_id"], r["account_id"], r["next_run_at"], r["interval_seconds"],
                             window_of(r["window_start"], r["window_end"], r["window_days"]), r["timezone"])
                 for r in rows]


async def advance(conn: asyncpg.Connection, next_runs: Sequence[tuple[int, datetime]]) -> None:
    """Set each running campaign's ``next_run_at``, by account id (``services.engine.next_run_after``
    computes it)."""
    if not next_runs:
        return
    await conn.execute(
        """
        UPDATE campaigns c SET next_run_at = v.next_run_at, updated_at = now()
        FROM unnest($1::bigint[], $2::timestamptz[]) AS v(account_id, next_run_at)
        WHERE c.account_id = v.account_id AND c.status = 'running'
        """,
        [account_id for account_id, _ in next_runs],
        [at for _, at in next_runs],
    )


# A restriction met again within this long after the last pause for it ended is the same spell.
SAME_SPELL_SECONDS = 24 * 3600.0


async def restriction_told(conn: asyncpg.Connection, account_id: int | None, code: str) -> bool:
    """True when the campaign's last pause was for ``code`` and ended less than a day ago (or
    lasts): the user heard about this restriction already. Read before the new pause is written."""
    told = await conn.fetchval(
        """
        SELECT pause_reason = $2 AND paused_until IS NOT NULL
               AND paused_until > now() - make_interval(secs => $3)
        FROM campaigns WHERE account_id = $1
        """,
        account_id, code, SAME_SPELL_SECONDS,
    )
    return bool(told)


async def rotation(conn: asyncpg.Connection, user_id: int) -> str:
    """U9: the broadcast's rotation mode (seq when the user has no campaign row yet)."""
    value = await conn.fetchval(f"SELECT rotation FROM campaigns WHERE {CURRENT}", user_id)
    return str(value or "seq")


async def set_rotation(conn: asyncpg.Connection, user_id: int, mode: str, now: datetime) -> None:
    await conn.execute(
        """INSERT INTO campaigns (user_id, rotation, updated_at) VALUES ($1, $2, $3)
           ON CONFLICT ON CONSTRAINT campaigns_user_id_account_id_key
           DO UPDATE SET rotation = excluded.rotation, updated_at = excluded.updated_at""",
        user_id, mode, now,
    )


async def of_user(conn: asyncpg.Connection, user_id: int) -> list[CampaignRecord]:
    """Every campaign of the user, one per account (the admin's user card, U8)."""
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM campaigns WHERE user_id = $1 ORDER BY account_id",
                            user_id)
    return [to_record(r) for r in rows]
