"""SQL of the retention job (issue 14): bounded deletes of old history and the daily summaries.

Every delete picks its rows with ``LIMIT`` and ``FOR UPDATE SKIP LOCKED`` (oldest first, through an
index), so one statement touches at most a batch and never waits on a row the engine holds. The
caller owns the transaction; a round's attempts, the round and its summary row go in the same one.
Kept whatever their age: each user's newest round and the round ``campaigns.last_round_id`` names
(the status view shows them), the current message version and every version a kept round sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import asyncpg

from domain.retention import HistoryTotals

# tables whose size the retention job bounds (and the simulation measures)
MEASURED = ("rounds", "attempts", "messages", "media", "notifications", "announcement_deliveries",
            "audit_log", "round_summaries")


async def old_rounds(conn: asyncpg.Connection, cutoff: datetime, limit: int) -> list[tuple[int, int]]:
    """Finished rounds older than ``cutoff`` that may go, oldest first, locked: (round_id, attempts)."""
    rows = await conn.fetch(
        """
        SELECT r.round_id, r.total FROM rounds r
        WHERE r.finished_at < $1
          AND EXISTS (SELECT 1 FROM rounds n WHERE n.user_id = r.user_id
                      AND n.account_id IS NOT DISTINCT FROM r.account_id AND n.round_id > r.round_id)
          AND r.round_id NOT IN (SELECT c.last_round_id FROM campaigns c WHERE c.last_round_id IS NOT NULL)
        ORDER BY r.finished_at, r.round_id
        LIMIT $2
        FOR UPDATE OF r SKIP LOCKED
        """,
        cutoff, limit,
    )
    return [(int(r["round_id"]), int(r["total"])) for r in rows]


async def summarise_and_delete_rounds(conn: asyncpg.Connection, round_ids: Sequence[int]) -> tuple[int, int]:
    """Delete the rounds' attempts, then the rounds, adding their counters to ``round_summaries``
    (user, account, UTC day of finishing). Returns (attempts deleted, rounds deleted)."""
    if not round_ids:
        return 0, 0
    attempts = await conn.execute("DELETE FROM attempts WHERE round_id = ANY($1::bigint[])", list(round_ids))
    rounds = await conn.fetchval(
        """
        WITH gone AS (
            DELETE FROM rounds WHERE round_id = ANY($1::bigint[]) AND finished_at IS NOT NULL
            RETURNING user_id, account_id, finished_at, status, total, sent, failed, skipped, unknown
        ), per_day AS (
            SELECT user_id, account_id, (finished_at AT TIME ZONE 'UTC')::date AS day,
                   count(*)::int AS rounds,
                   (count(*) FILTER (WHERE status = 'cancelled'))::int AS cancelled,
                   sum(total) AS total, sum(sent) AS sent, sum(failed) AS failed, sum(skipped) AS skipped,
                   sum(unknown) AS unknown
            FROM gone GROUP BY 1, 2, 3
        ), summed AS (
            INSERT INTO round_summaries AS s (user_id, account_id, day, rounds, cancelled, total, sent,
                                              failed, skipped, unknown)
            SELECT user_id, account_id, day, rounds, cancelled, total, sent, failed, skipped, unknown
            FROM per_day
            ON CONFLICT ON CONSTRAINT round_summaries_user_id_account_id_day_key DO UPDATE
            SET rounds = s.rounds + EXCLUDED.rounds, cancelled = s.cancelled + EXCLUDED.cancelled,
                total = s.total + EXCLUDED.total, sent = s.sent + EXCLUDED.sent,
                failed = s.failed + EXCLUDED.failed, skipped = s.skipped + EXCLUDED.skipped,
                unknown = s.unknown + EXCLUDED.unknown, updated_at = now()
        )
        SELECT count(*) FROM gone
        """,
        list(round_ids),
    )
    return _count(attempts), int(rounds)


async def delete_old_messages(conn: asyncpg.Connection, cutoff: datetime, limit: int) -> int:
    """Message versions older than ``cutoff`` that are in no rotation any more (replaced by a newer
    version or deleted by the user: not ``active``) and that no stored round or attempt posted."""
    return _count(await conn.execute(
        """
        DELETE FROM messages WHERE message_id IN (
            SELECT m.message_id FROM messages m
            WHERE m.created_at < $1
              AND NOT m.active
              AND NOT EXISTS (SELECT 1 FROM rounds r WHERE r.message_id = m.message_id)
              AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.message_id = m.message_id)
            ORDER BY m.created_at, m.message_id
            LIMIT $2
            FOR UPDATE OF m SKIP LOCKED)
        """,
        cutoff, limit,
    ))


async def delete_unused_media(conn: asyncpg.Connection, cutoff: datetime, limit: int) -> int:
    """Media stored before ``cutoff`` that no message version uses, as its media or as an album's
    item (a draft's upload is newer)."""
    return _count(await conn.execute(
        """
        DELETE FROM media WHERE media_id IN (
            SELECT md.media_id FROM media md
            WHERE md.created_at < $1
              AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.media_id = md.media_id)
              AND NOT EXISTS (SELECT 1 FROM message_media mm WHERE mm.media_id = md.media_id)
            ORDER BY md.created_at, md.media_id
            LIMIT $2
            FOR UPDATE OF md SKIP LOCKED)
        """,
        cutoff, limit,
    ))


async def delete_delivered_notifications(conn: asyncpg.Connection, cutoff: datetime, limit: int) -> int:
    """Notifications delivered (or closed) before ``cutoff``; undelivered ones are the bot's to finish."""
    return _count(await conn.execute(
        """
        DELETE FROM notifications WHERE notification_id IN (
            SELECT notification_id FROM notifications
            WHERE delivered_at < $1
            ORDER BY delivered_at
            LIMIT $2
            FOR UPDATE SKIP LOCKED)
        """,
        cutoff, limit,
    ))


async def delete_announcement_deliveries(conn: asyncpg.Connection, cutoff: datetime, limit: int) -> int:
    """Per-user delivery rows of announcements finished before ``cutoff``; the announcement row keeps
    its delivered/blocked/failed totals."""
    return _count(await conn.execute(
        """
        DELETE FROM announcement_deliveries d USING (
            SELECT x.announcement_id, x.user_id
            FROM announcements a JOIN announcement_deliveries x USING (announcement_id)
            WHERE a.status = 'done' AND a.finished_at < $1
            LIMIT $2
            FOR UPDATE OF x SKIP LOCKED) old
        WHERE d.announcement_id = old.announcement_id AND d.user_id = old.user_id
        """,
        cutoff, limit,
    ))


async def delete_old_audit(conn: asyncpg.Connection, cutoff: datetime, limit: int) -> int:
    return _count(await conn.execute(
        """
        DELETE FROM audit_log WHERE audit_id IN (
            SELECT audit_id FROM audit_log WHERE at < $1
            ORDER BY at, audit_id
            LIMIT $2
            FOR UPDATE SKIP LOCKED)
        """,
        cutoff, limit,
    ))


async def history_totals(conn: asyncpg.Connection, user_id: int) -> HistoryTotals:
    """All finished rounds of a user: the summarised days plus the finished rounds still stored."""
    row = await conn.fetchrow(
        """
        WITH summed AS (
            SELECT coalesce(sum(rounds), 0) AS rounds, coalesce(sum(cancelled), 0) AS cancelled,
                   coalesce(sum(total), 0) AS total, coalesce(sum(sent), 0) AS sent,
                   coalesce(sum(failed), 0) AS failed, coalesce(sum(skipped), 0) AS skipped,
                   coalesce(sum(unknown), 0) AS unknown, min(day) AS since
            FROM round_summaries WHERE user_id = $1
        ), stored AS (
            SELECT count(*) AS rounds, count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                   coalesce(sum(total), 0) AS total, coalesce(sum(sent), 0) AS sent,
                   coalesce(sum(failed), 0) AS failed, coalesce(sum(skipped), 0) AS skipped,
                   coalesce(sum(unknown), 0) AS unknown,
                   min((finished_at AT TIME ZONE 'UTC')::date) AS since
            FROM rounds WHERE user_id = $1 AND finished_at IS NOT NULL
        )
        SELECT s.rounds + l.rounds AS rounds, s.cancelled + l.cancelled AS cancelled,
               s.total + l.total AS total, s.sent + l.sent AS sent, s.failed + l.failed AS failed,
               s.skipped + l.skipped AS skipped, s.unknown + l.unknown AS unknown,
               least(s.since, l.since) AS since
        FROM summed s, stored l
        """,
        user_id,
    )
    assert row is not None
    since: date | None = row["since"]
    return HistoryTotals(
        rounds=int(row["rounds"]), cancelled=int(row["cancelled"]), total=int(row["total"]),
        sent=int(row["sent"]), failed=int(row["failed"]), skipped=int(row["skipped"]),
        unknown=int(row["unknown"]), since=since,
    )


async def table_sizes(conn: asyncpg.Connection,
                      tables: Sequence[str] = MEASURED) -> dict[str, tuple[int, int]]:
    """table -> (rows, pg_total_relation_size in bytes: heap, indexes and TOAST)."""
    out: dict[str, tuple[int, int]] = {}
    for table in tables:
        if table not in MEASURED:
            raise ValueError(f"not a measured table: {table}")
        # the name comes from MEASURED above, never from input; identifiers can't be parameters
        rows = await conn.fetchval(f"SELECT count(*) FROM {table}")
        size = await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", table)
        out[table] = (int(rows), int(size))
    return out


def _count(status: str) -> int:
    """Rows from a command status such as ``DELETE 17``."""
    return int(status.rsplit(" ", 1)[-1])
