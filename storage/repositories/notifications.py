"""SQL for ``notifications``: the outbox the bot delivers from."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from domain.models import Notification

ROUND_SUMMARY = "round_summary"


async def enqueue(
    conn: asyncpg.Connection,
    user_id: int,
    kind: str,
    payload: dict[str, Any],
    dedupe_key: str | None,
    now: datetime,
) -> int | None:
    """Insert unless the dedupe key exists, the user is unknown, or round summaries are off."""
    value = await conn.fetchval(
        """INSERT INTO notifications (user_id, kind, payload, dedupe_key, created_at)
           SELECT u.user_id, $2, $3::jsonb, $4, $5 FROM users u
           WHERE u.user_id = $1 AND ($2 <> $6 OR u.notify_rounds)
           ON CONFLICT (dedupe_key) DO NOTHING
           RETURNING notification_id""",
        user_id, kind, payload, dedupe_key, now, ROUND_SUMMARY,
    )
    return None if value is None else int(value)


async def pending(conn: asyncpg.Connection, limit: int, max_tries: int) -> list[Notification]:
    """Undelivered rows, oldest first, with what rendering needs: the recipient's zone and language
    and, for a payload naming an ``account_id`` of theirs (U8), that account and their count."""
    rows = await conn.fetch(
        """SELECT n.notification_id, n.user_id, n.kind, n.payload, n.dedupe_key, n.created_at, n.tries,
                  COALESCE(u.timezone, 'UTC') AS timezone, COALESCE(u.language, '') AS language,
                  COALESCE(a.first_name, '') AS account_name, COALESCE(a.phone, '') AS account_phone,
                  (SELECT count(*) FROM accounts o WHERE o.user_id = n.user_id
                     AND (o.status = 'connected' OR o.account_id = a.account_id))::int AS user_accounts
           FROM notifications n LEFT JOIN users u ON u.user_id = n.user_id
           LEFT JOIN accounts a ON a.user_id = n.user_id
                AND a.account_id = CASE WHEN jsonb_typeof(n.payload -> 'account_id') = 'number'
                                        THEN (n.payload ->> 'account_id')::numeric END
           WHERE n.delivered_at IS NULL AND n.tries < $2
           ORDER BY n.notification_id LIMIT $1""",
        limit, max_tries,
    )
    return [
        Notification(
            notification_id=r["notification_id"], user_id=r["user_id"], kind=r["kind"],
            payload=r["payload"], dedupe_key=r["dedupe_key"], created_at=r["created_at"],
            tries=r["tries"], timezone=r["timezone"], language=r["language"],
            account_name=r["account_name"], account_phone=r["account_phone"],
            user_accounts=r["user_accounts"],
        )
        for r in rows
    ]


async def mark_delivered(conn: asyncpg.Connection, ids: Sequence[int], now: datetime) -> int:
    status = await conn.execute(
        """UPDATE notifications SET delivered_at = $2, tries = tries + 1
           WHERE notification_id = ANY($1::bigint[]) AND delivered_at IS NULL""",
        list(ids), now,
    )
    return int(status.split()[-1])


async def mark_failed(conn: asyncpg.Connection, ids: Sequence[int]) -> int:
    status = await conn.execute(
        """UPDATE notifications SET tries = tries + 1
           WHERE notification_id = ANY($1::bigint[]) AND delivered_at IS NULL""",
        list(ids),
    )
    return int(status.split()[-1])


async def drop_for_user(conn: asyncpg.Connection, user_id: int, now: datetime) -> int:
    """Close a user's undelivered notifications (they blocked the bot): marked delivered, not sent."""
    status = await conn.execute(
        "UPDATE notifications SET delivered_at = $2 WHERE user_id = $1 AND delivered_at IS NULL", user_id, now
    )
    return int(status.split()[-1])
