"""SQL for ``announcements`` and ``announcement_deliveries``: A7, durable until it is done."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from domain.errors import AlreadyRunning

DeliveryOutcome = Literal["delivered", "blocked", "failed"]
OUTCOMES: tuple[DeliveryOutcome, ...] = ("delivered", "blocked", "failed")


@dataclass(frozen=True)
class AnnouncementRow:
    announcement_id: int
    text: str
    entities: list[dict[str, Any]]
    created_by_kind: str
    created_by: int | None
    report_to: int | None
    status: str
    total: int
    delivered: int
    blocked: int
    failed: int
    retries: int
    created_at: datetime
    finished_at: datetime | None


COLUMNS = """announcement_id, text, entities, created_by_kind, created_by, report_to,
    status, total, delivered, blocked, failed, retries, created_at, finished_at"""


def _row(r: asyncpg.Record) -> AnnouncementRow:
    return AnnouncementRow(
        announcement_id=r["announcement_id"], text=r["text"], entities=r["entities"],
        created_by_kind=r["created_by_kind"], created_by=r["created_by"], report_to=r["report_to"],
        status=r["status"], total=r["total"], delivered=r["delivered"], blocked=r["blocked"],
        failed=r["failed"], retries=r["retries"], created_at=r["created_at"], finished_at=r["finished_at"],
    )


async def create(
    conn: asyncpg.Connection,
    *,
    text: str,
    entities: list[dict[str, Any]],
    created_by_kind: str,
    created_by: int | None,
    report_to: int | None,
    now: datetime,
) -> int:
    """Insert a running announcement; ``AlreadyRunning`` while another one is running."""
    try:
        return int(await conn.fetchval(
            """INSERT INTO announcements (text, entities, created_by_kind, created_by, report_to, created_at)
               VALUES ($1, $2::jsonb, $3, $4, $5, $6) RETURNING announcement_id""",
            text, entities, created_by_kind, created_by, report_to, now,
        ))
    except asyncpg.UniqueViolationError as exc:  # announcements_running_idx: one at a time
        raise AlreadyRunning("announcement") from exc


async def add_targets(conn: asyncpg.Connection, announcement_id: int, user_ids: Sequence[int],
                      now: datetime) -> int:
    """One pending delivery per user (duplicates ignored); the announcement's total is set to match."""
    total = int(await conn.fetchval(
        """WITH added AS (
               INSERT INTO announcement_deliveries (announcement_id, user_id, updated_at)
               SELECT $1, uid, $3 FROM unnest($2::bigint[]) AS t(uid)
               ON CONFLICT (announcement_id, user_id) DO NOTHING
               RETURNING 1)
           SELECT count(*) FROM added""",
        announcement_id, list(user_ids), now,
    ))
    await conn.execute("UPDATE announcements SET total = total + $2 WHERE announcement_id = $1",
                       announcement_id, total)
    return total


async def get(conn: asyncpg.Connection, announcement_id: int) -> AnnouncementRow | None:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM announcements WHERE announcement_id = $1",
                              announcement_id)
    return None if row is None else _row(row)


async def running(conn: asyncpg.Connection) -> list[int]:
    """Unfinished announcements, oldest first."""
    rows = await conn.fetch(
        "SELECT announcement_id FROM announcements WHERE status = 'running' ORDER BY announcement_id")
    return [int(r["announcement_id"]) for r in rows]


async def pending(conn: asyncpg.Connection, announcement_id: int, limit: int) -> list[int]:
    rows = await conn.fetch(
        """SELECT user_id FROM announcement_deliveries
           WHERE announcement_id = $1 AND status = 'pending' ORDER BY user_id LIMIT $2""",
        announcement_id, limit,
    )
    return [int(r["user_id"]) for r in rows]


async def claim(conn: asyncpg.Connection, announcement_id: int, user_id: int, now: datetime) -> bool:
    """pending -> sending (one more attempt); False if the target is not pending any more."""
    status = await conn.execute(
        """UPDATE announcement_deliveries SET status = 'sending', attempts = attempts + 1, updated_at = $3
           WHERE announcement_id = $1 AND user_id = $2 AND status = 'pending'""",
        announcement_id, user_id, now,
    )
    return str(status).split()[-1] == "1"


async def release(conn: asyncpg.Connection, announcement_id: int, user_id: int, now: datetime) -> None:
    """sending -> pending: Telegram refused the send with a 429, nothing reached the user."""
    await conn.execute(
        """UPDATE announcement_deliveries SET status = 'pending', updated_at = $3
           WHERE announcement_id = $1 AND user_id = $2 AND status = 'sending'""",
        announcement_id, user_id, now,
    )
    await conn.execute("UPDATE announcements SET retries = retries + 1 WHERE announcement_id = $1",
                       announcement_id)


async def settle(conn: asyncpg.Connection, announcement_id: int, user_id: int, outcome: DeliveryOutcome,
                 now: datetime) -> None:
    await conn.execute(
        """UPDATE announcement_deliveries SET status = $3, updated_at = $4
           WHERE announcement_id = $1 AND user_id = $2""",
        announcement_id, user_id, outcome, now,
    )


async def fail_in_flight(conn: asyncpg.Connection, announcement_id: int, now: datetime) -> list[int]:
    """sending -> failed for sends whose outcome was never written (a crash during the send)."""
    rows = await conn.fetch(
        """UPDATE announcement_deliveries SET status = 'failed', updated_at = $2
           WHERE announcement_id = $1 AND status = 'sending' RETURNING user_id""",
        announcement_id, now,
    )
    return [int(r["user_id"]) for r in rows]


async def counts(conn: asyncpg.Connection, announcement_id: int) -> dict[str, int]:
    """Deliveries per status (every status present, zero when none)."""
    rows = await conn.fetch(
        """SELECT status, count(*) AS n FROM announcement_deliveries
           WHERE announcement_id = $1 GROUP BY status""",
        announcement_id,
    )
    found = {str(r["status"]): int(r["n"]) for r in rows}
    return {s: found.get(s, 0) for s in ("pending", "sending", *OUTCOMES)}


async def finish(conn: asyncpg.Connection, announcement_id: int, delivered: int, blocked: int, failed: int,
                 now: datetime) -> AnnouncementRow | None:
    """running -> done with its counts; None if it was not running (finished by someone else)."""
    row = await conn.fetchrow(
        f"""UPDATE announcements
            SET status = 'done', delivered = $2, blocked = $3, failed = $4, finished_at = $5
            WHERE announcement_id = $1 AND status = 'running' RETURNING {COLUMNS}""",
        announcement_id, delivered, blocked, failed, now,
    )
    return None if row is None else _row(row)
