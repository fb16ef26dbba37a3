"""SQL the engine's safe defaults read: what happened before around an error (``services.engine``).

- ``unknown_error_history``: for an error no table knows, this round's and the previous round's
  attempts (``engine.judge_unknown`` decides from them);
- ``restriction_told``: whether the user was already told about this account restriction.
"""

from __future__ import annotations

import asyncpg

from services.engine import UnknownHistory

# A restriction met again within this long after the last pause for it ended is the same spell.
SAME_SPELL_SECONDS = 24 * 3600.0


async def unknown_error_history(
    conn: asyncpg.Connection, round_id: int, user_id: int, group_id: int, attempt_id: int, code: str
) -> UnknownHistory:
    row = await conn.fetchrow(
        """
        WITH this AS (
            SELECT count(*) FILTER (WHERE status = 'sent')::int AS sent,
                   count(*) FILTER (WHERE attempt_id <> $4
                                    AND NOT (status = 'failed' AND error_code = $5))::int AS others
            FROM attempts WHERE round_id = $1
        ), previous AS (
            SELECT round_id FROM rounds
            WHERE user_id = $2 AND round_id < $1 AND finished_at IS NOT NULL
            ORDER BY round_id DESC LIMIT 1
        ), before AS (
            SELECT coalesce(bool_or(group_id = $3 AND status = 'failed' AND error_code = $5), false) AS alike,
                   count(*) FILTER (WHERE status = 'sent')::int AS sent
            FROM attempts WHERE round_id = (SELECT round_id FROM previous)
        )
        SELECT this.sent, this.others, before.alike, before.sent AS sent_before FROM this, before
        """,
        round_id, user_id, group_id, attempt_id, code,
    )
    assert row is not None
    return UnknownHistory(
        sent_this_round=row["sent"],
        others_not_failed_alike=row["others"],
        group_failed_alike_last_round=row["alike"],
        sent_last_round=row["sent_before"],
    )


async def restriction_told(conn: asyncpg.Connection, user_id: int, code: str) -> bool:
    """True when the campaign's last pause was for ``code`` and ended less than a day ago (or
    lasts): the user heard about this restriction already. Read before the new pause is written."""
    told = await conn.fetchval(
        """
        SELECT pause_reason = $2 AND paused_until IS NOT NULL
               AND paused_until > now() - make_interval(secs => $3)
        FROM campaigns WHERE user_id = $1
        """,
        user_id, code, SAME_SPELL_SECONDS,
    )
    return bool(told)
