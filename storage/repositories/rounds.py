"""SQL for ``rounds``: creation from the due campaigns, open rounds, completion.

Repositories take a connection and never commit; the scheduler tick and the worker's job own
their transactions. Times come from the database clock (``now()``) so that every replica agrees
on what is due.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from storage.repositories.campaigns import DueCampaign


@dataclass(frozen=True)
class CreatedRound:
    round_id: int
    user_id: int
    planned_at: datetime
    message_id: int
    total: int


@dataclass(frozen=True)
class OverdueRound:
    round_id: int
    user_id: int
    due: datetime  # when its next job was due


@dataclass(frozen=True)
class FinishedRound:
    round_id: int
    user_id: int
    status: str
    total: int
    sent: int
    failed: int
    skipped: int
    unknown: int
    planned_at: datetime
    started_at: datetime | None
    finished_at: datetime

    def summary(self) -> dict[str, int]:
        return {"round_id": self.round_id, "total": self.total, "sent": self.sent, "failed": self.failed,
                "skipped": self.skipped, "unknown": self.unknown}


async def create_rounds(conn: asyncpg.Connection, due: Sequence[DueCampaign]) -> list[CreatedRound]:
    """One round per due campaign with its attempts, from one snapshot (a single statement).

    The round keeps the user's first active message (U9 rotation may then pick another) and the
    attempts copy the selected active groups (peer id, access hash, kind), so later edits change
    the next round, not this one. A campaign with no message or no selected active group gets no
    round. Rounds are per account (U8). A conflict with the unique ``(user_id, account_id, planned_at)``
    or the one-open-round index
    (another scheduler won the race) is skipped, not raised.
    """
    if not due:
        return []
    rows = await conn.fetch(
        """
        WITH due AS (
            SELECT * FROM unnest($1::bigint[], $3::bigint[], $2::timestamptz[])
                          AS d(user_id, account_id, planned_at)
        ), msg AS (
            SELECT DISTINCT ON (m.account_id) m.account_id, m.message_id
            FROM messages m JOIN due USING (account_id)
            WHERE m.active
            ORDER BY m.account_id, m.position
        ), sel AS (
            SELECT g.account_id, g.group_id, g.peer_id, g.access_hash, g.kind
            FROM groups g JOIN due USING (account_id)
            WHERE g.selected AND g.status = 'active'
        ), cnt AS (
            SELECT account_id, count(*)::int AS n FROM sel GROUP BY account_id
        ), new_rounds AS (
            INSERT INTO rounds (user_id, account_id, message_id, planned_at, total)
            SELECT due.user_id, due.account_id, msg.message_id, due.planned_at, cnt.n
            FROM due JOIN msg USING (account_id) JOIN cnt USING (account_id)
            ON CONFLICT DO NOTHING
            RETURNING round_id, user_id, account_id, planned_at, message_id, total
        ), new_attempts AS (
            INSERT INTO attempts (round_id, group_id, peer_id, access_hash, kind)
            SELECT nr.round_id, sel.group_id, sel.peer_id, sel.access_hash, sel.kind
            FROM new_rounds nr JOIN sel USING (account_id)
            ORDER BY nr.round_id, sel.group_id
            RETURNING round_id
        )
        SELECT nr.round_id, nr.user_id, nr.planned_at, nr.message_id, nr.total FROM new_rounds nr
        """,
        [d.user_id for d in due],
        [d.next_run_at for d in due],
        [d.account_id for d in due],
    )
    return [CreatedRound(r["round_id"], r["user_id"], r["planned_at"], r["message_id"], r["total"])
            for r in rows]


async def user_of(conn: asyncpg.Connection, round_id: int) -> int | None:
    """The user whose round it is; None: no such round."""
    value = await conn.fetchval("SELECT user_id FROM rounds WHERE round_id = $1", round_id)
    return None if value is None else int(value)


async def overdue_rounds(
    conn: asyncpg.Connection, grace: timedelta, after: tuple[datetime, int] | None, limit: int
) -> list[OverdueRound]:
    """Unfinished rounds whose next job was due more than ``grace`` ago (``next_job_at``, or the
    creation when no job has run yet), in ``(due, round_id)`` order after ``after``: a slice of
    ``rounds_job_due_idx``, whatever the number of open rounds whose job is not due yet."""
    if after is None:
        after = (datetime.min.replace(tzinfo=UTC), 0)
    rows = await conn.fetch(
        """
        SELECT round_id, user_id, coalesce(next_job_at, created_at) AS due FROM rounds
        WHERE finished_at IS NULL AND coalesce(next_job_at, created_at) <= now() - $1::interval
          AND (coalesce(next_job_at, created_at), round_id) > ($2::timestamptz, $3::bigint)
        ORDER BY coalesce(next_job_at, created_at), round_id
        LIMIT $4
        """,
        grace, after[0], after[1], limit,
    )
    return [OverdueRound(r["round_id"], r["user_id"], r["due"]) for r in rows]


async def expect_job(conn: asyncpg.Connection, round_id: int, delay: float) -> None:
    """The round's next job is due in ``delay`` seconds (a job put off by a pause)."""
    await conn.execute(
        "UPDATE rounds SET next_job_at = now() + make_interval(secs => $2::float8) "
        "WHERE round_id = $1 AND (finished_at IS NULL) IS TRUE",  # by the key (see attempts._CLAIM)
        round_id, float(delay),
    )


FINISH_SQL = """
        WITH counts AS (
            SELECT count(*) FILTER (WHERE status = 'sent')::int AS sent,
                   count(*) FILTER (WHERE status = 'failed')::int AS failed,
                   count(*) FILTER (WHERE status = 'skipped')::int AS skipped,
                   count(*) FILTER (WHERE status = 'unknown')::int AS unknown,
                   count(*) FILTER (WHERE status IN ('pending', 'sending', 'flood_wait'))::int AS open
            FROM attempts WHERE round_id = $1
        ), fin AS (
            UPDATE rounds r
            SET finished_at = now(), status = $2, started_at = coalesce(r.started_at, now()),
                sent = counts.sent, failed = counts.failed, skipped = counts.skipped,
                unknown = counts.unknown
            FROM counts
            -- "(...) IS TRUE": by the primary key whatever the statistics (see attempts._CLAIM)
            WHERE r.round_id = $1 AND (r.finished_at IS NULL) IS TRUE AND counts.open = 0
            RETURNING r.round_id, r.user_id, r.account_id, r.status, r.total, r.sent, r.failed, r.skipped,
                      r.unknown, r.planned_at, r.started_at, r.finished_at
        ), camp AS (
            UPDATE campaigns c SET last_round_id = fin.round_id, updated_at = now()
            FROM fin WHERE c.user_id = fin.user_id AND c.account_id IS NOT DISTINCT FROM fin.account_id
        )
        SELECT * FROM fin
        """


async def finish_round(conn: asyncpg.Connection, round_id: int, status: str = "done") -> FinishedRound | None:
    """Close the round if no attempt is open: counters from the attempts, campaign.last_round_id.

    Returns None when the round is already finished or still has open attempts, so calling it
    twice (a duplicate job) finishes and notifies once.
    """
    row = await conn.fetchrow(FINISH_SQL, round_id, status)
    if row is None:
        return None
    return FinishedRound(
        round_id=row["round_id"], user_id=row["user_id"], status=row["status"], total=row["total"],
        sent=row["sent"], failed=row["failed"], skipped=row["skipped"], unknown=row["unknown"],
        planned_at=row["planned_at"], started_at=row["started_at"], finished_at=row["finished_at"],
    )
