"""Read-only queries over ``rounds`` and ``attempts`` for the status views.

The engine owns writing these tables; the counts are taken from the attempts themselves so they
are right while a round is still running.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from domain.models import RoundCounts

_COUNTS = """
    SELECT r.round_id, r.planned_at, r.started_at, r.finished_at, r.status,
           count(a.attempt_id) AS total,
           count(a.attempt_id) FILTER (WHERE a.status = 'sent') AS sent,
           count(a.attempt_id) FILTER (WHERE a.status = 'failed') AS failed,
           count(a.attempt_id) FILTER (WHERE a.status = 'skipped') AS skipped,
           count(a.attempt_id) FILTER (WHERE a.status IN ('pending', 'sending', 'flood_wait')) AS pending,
           count(a.attempt_id) FILTER (WHERE a.status = 'unknown') AS unknown
    FROM rounds r LEFT JOIN attempts a ON a.round_id = r.round_id
"""


@dataclass(frozen=True)
class AttemptOutcome:
    group_id: int
    title: str
    status: str
    error_code: str
    message_no: int | None = None  # U9: with 2+ messages, the number of the one it got (0: deleted since)


def _counts(row: asyncpg.Record) -> RoundCounts:
    return RoundCounts(
        round_id=row["round_id"], planned_at=row["planned_at"], started_at=row["started_at"],
        finished_at=row["finished_at"], status=row["status"], total=row["total"], sent=row["sent"],
        failed=row["failed"], skipped=row["skipped"], pending=row["pending"], unknown=row["unknown"],
    )


async def last_round(conn: asyncpg.Connection, user_id: int) -> RoundCounts | None:
    row = await conn.fetchrow(
        _COUNTS + """ WHERE r.round_id = (SELECT round_id FROM rounds WHERE user_id = $1
                                          ORDER BY round_id DESC LIMIT 1)
                      GROUP BY r.round_id""",
        user_id,
    )
    return None if row is None else _counts(row)


async def last_planned_at(conn: asyncpg.Connection, user_id: int) -> datetime | None:
    value: datetime | None = await conn.fetchval(
        "SELECT planned_at FROM rounds WHERE user_id = $1 ORDER BY round_id DESC LIMIT 1", user_id
    )
    return value


async def round_outcomes(
    conn: asyncpg.Connection, round_id: int, limit: int
) -> tuple[list[AttemptOutcome], int]:
    """The first ``limit`` groups of a round by title, and how many attempts it has in all."""
    rows = await conn.fetch(
        """SELECT a.group_id, coalesce(g.title, '') AS title, a.status, a.error_code,
                  count(*) OVER () AS total,
                  CASE WHEN a.message_id IS NULL AND (SELECT count(*) FROM messages x
                                                      WHERE x.user_id = m.user_id AND x.active) < 2 THEN NULL
                       WHEN NOT m.active THEN 0
                       ELSE (SELECT count(*) FROM messages x
                             WHERE x.user_id = m.user_id AND x.active AND x.position <= m.position)::int
                  END AS message_no
           FROM attempts a LEFT JOIN groups g ON g.group_id = a.group_id
           JOIN rounds r ON r.round_id = a.round_id
           LEFT JOIN messages m ON m.message_id = coalesce(a.message_id, r.message_id)
           WHERE a.round_id = $1
           ORDER BY g.title, a.group_id LIMIT $2""",
        round_id, limit,
    )
    total = int(rows[0]["total"]) if rows else 0
    return [AttemptOutcome(r["group_id"], r["title"], r["status"], r["error_code"], r["message_no"])
            for r in rows], total


async def open_rounds(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM rounds WHERE finished_at IS NULL"))


async def sends_since(conn: asyncpg.Connection, since: datetime) -> dict[str, int]:
    """Finished attempts by status since ``since`` (admin runtime: sends in the last hour)."""
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM attempts WHERE finished_at >= $1 GROUP BY status", since
    )
    return {str(r["status"]): int(r["n"]) for r in rows}
