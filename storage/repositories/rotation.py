"""SQL for U9's rotation: what planning a round needs to know, and the message each attempt posts.

Read once per scheduler batch for every round it created (``plan_inputs``); written only for
users with two or more active messages (``assign``), so a one-message broadcast costs one read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg


@dataclass(frozen=True)
class PlanInput:
    """One new round: its mode, the active messages in order (id -> position), the previous round's
    message and position, each attempt's group, and what each group got in the previous round."""

    round_id: int
    user_id: int
    rotation: str
    active: list[int]
    positions: dict[int, int]
    previous_message: int | None
    attempts: dict[int, int] = field(default_factory=dict)  # group id -> attempt id
    last_round: dict[int, int] = field(default_factory=dict)  # group id -> message id


async def plan_inputs(conn: asyncpg.Connection, round_ids: Sequence[int]) -> list[PlanInput]:
    if not round_ids:
        return []
    rows = await conn.fetch(
        """
        WITH r AS (
            SELECT round_id, user_id, account_id, planned_at FROM rounds WHERE round_id = ANY($1::bigint[])
        )
        SELECT r.round_id, r.user_id, c.rotation,
               act.ids AS active, act.positions,
               prev.round_id AS prev_round, prev.message_id AS prev_message, pm.position AS prev_position
        FROM r
        JOIN campaigns c ON c.user_id = r.user_id AND c.account_id IS NOT DISTINCT FROM r.account_id
        CROSS JOIN LATERAL (
            SELECT array_agg(m.message_id ORDER BY m.position) AS ids,
                   array_agg(m.position ORDER BY m.position) AS positions
            FROM messages m WHERE m.user_id = r.user_id AND m.account_id IS NOT DISTINCT FROM r.account_id
                              AND m.active
        ) act
        LEFT JOIN LATERAL (
            SELECT p.round_id, p.message_id FROM rounds p
            WHERE p.user_id = r.user_id AND p.account_id IS NOT DISTINCT FROM r.account_id
              AND p.planned_at < r.planned_at
            ORDER BY p.planned_at DESC LIMIT 1
        ) prev ON true
        LEFT JOIN messages pm ON pm.message_id = prev.message_id
        """,
        list(round_ids),
    )
    inputs: dict[int, PlanInput] = {}
    previous_rounds: dict[int, int] = {}
    for row in rows:
        active = [int(m) for m in row["active"] or []]
        positions = dict(zip(active, [int(p) for p in row["positions"] or []], strict=True))
        if row["prev_message"] is not None and row["prev_position"] is not None:
            positions.setdefault(int(row["prev_message"]), int(row["prev_position"]))
        inputs[row["round_id"]] = PlanInput(row["round_id"], row["user_id"], row["rotation"], active,
                                            positions, row["prev_message"])
        if row["prev_round"] is not None and len(active) >= 2 and row["rotation"] == "rnd":
            previous_rounds[int(row["prev_round"])] = row["round_id"]
    wanted = [rid for rid, each in inputs.items() if len(each.active) >= 2 and each.rotation == "rnd"]
    if not wanted:
        return list(inputs.values())
    for row in await conn.fetch(
            "SELECT round_id, attempt_id, group_id FROM attempts WHERE round_id = ANY($1::bigint[])", wanted):
        inputs[row["round_id"]].attempts[row["group_id"]] = row["attempt_id"]
    if previous_rounds:
        got = await conn.fetch(
            """SELECT a.round_id, a.group_id, coalesce(a.message_id, p.message_id) AS message_id
               FROM attempts a JOIN rounds p ON p.round_id = a.round_id
               WHERE a.round_id = ANY($1::bigint[])""",
            list(previous_rounds),
        )
        for row in got:
            inputs[previous_rounds[row["round_id"]]].last_round[row["group_id"]] = row["message_id"]
    return list(inputs.values())


async def assign(conn: asyncpg.Connection, round_messages: dict[int, int],
                 attempt_messages: dict[int, int]) -> None:
    """Write the round's message (seq: the one every group gets) and each attempt's message."""
    if round_messages:
        await conn.execute(
            """UPDATE rounds r SET message_id = x.message_id
               FROM unnest($1::bigint[], $2::bigint[]) AS x(round_id, message_id)
               WHERE r.round_id = x.round_id""",
            list(round_messages), list(round_messages.values()),
        )
    if attempt_messages:
        await conn.execute(
            """UPDATE attempts t SET message_id = x.message_id
               FROM unnest($1::bigint[], $2::bigint[]) AS x(attempt_id, message_id)
               WHERE t.attempt_id = x.attempt_id""",
            list(attempt_messages), list(attempt_messages.values()),
        )


async def repoint_open(conn: asyncpg.Connection, user_id: int, old_message_id: int,
                       new_message_id: int) -> int:
    """U9.6: attempts not sent yet of the user's open round that would post ``old_message_id``
    post ``new_message_id`` instead (the message was deleted)."""
    result = await conn.execute(
        """UPDATE attempts t SET message_id = $3, updated_at = now()
           FROM rounds r
           WHERE r.user_id = $1 AND r.finished_at IS NULL AND t.round_id = r.round_id
             AND t.status IN ('pending', 'flood_wait') AND coalesce(t.message_id, r.message_id) = $2""",
        user_id, old_message_id, new_message_id,
    )
    return int(result.split()[-1])
