"""The engine's statements stay on the primary keys once ``rounds`` and ``attempts`` have history
(issue 14), ``rounds`` and ``attempts`` alike: checked on PostgreSQL's generic plans, the ones prepared statements settle on, with
statistics gathered when history was large and no round was open."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from accounts.crypto import SessionCipher
from storage.db import Database
from storage.repositories import attempts, rounds
from tests.integration.engine_support import seed_user

pytestmark = pytest.mark.integration

USERS, GROUPS, HISTORY = 20, 5, 100


async def with_history(conn: asyncpg.Connection, cipher: SessionCipher) -> None:
    for user_id in range(1, USERS + 1):
        await seed_user(conn, cipher, user_id, GROUPS)
    await conn.execute(
        """INSERT INTO rounds (user_id, message_id, planned_at, started_at, finished_at, status, total, sent)
           SELECT m.user_id, m.message_id, now() - make_interval(hours => h + 1),
                  now() - make_interval(hours => h + 1), now() - make_interval(hours => h), 'done', $2, $2
           FROM messages m, generate_series(1, $1) h""", HISTORY, GROUPS)
    await conn.execute(
        """INSERT INTO attempts (round_id, group_id, peer_id, access_hash, kind, status, finished_at)
           SELECT r.round_id, g.group_id, g.peer_id, g.access_hash, g.kind, 'sent', r.finished_at
           FROM rounds r JOIN groups g USING (user_id)""")
    await conn.execute("ANALYZE")
    # then the open rounds, as the scheduler makes them
    await conn.execute(
        """INSERT INTO rounds (user_id, message_id, planned_at, total)
           SELECT user_id, message_id, now(), $1 FROM messages""", GROUPS)
    await conn.execute(
        """INSERT INTO attempts (round_id, group_id, peer_id, access_hash, kind)
           SELECT r.round_id, g.group_id, g.peer_id, g.access_hash, g.kind
           FROM rounds r JOIN groups g USING (user_id) WHERE r.finished_at IS NULL""")


async def generic_plan(conn: asyncpg.Connection, sql: str, *args: Any) -> str:
    await conn.execute("SET plan_cache_mode = force_generic_plan")
    await conn.execute(f"PREPARE stmt AS {sql}")
    try:
        literals = ", ".join("NULL" if a is None else f"'{a}'" for a in args)
        return "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN EXECUTE stmt({literals})"))
    finally:
        await conn.execute("DEALLOCATE stmt")
        await conn.execute("RESET plan_cache_mode")


async def test_claim_start_and_settle_reach_rounds_by_key_after_history(
    db: Database, cipher: SessionCipher
) -> None:
    async with db.connection() as conn:
        await with_history(conn, cipher)
        round_id, message_id, user_id, account_id = await conn.fetchrow(
            "SELECT round_id, message_id, user_id, account_id FROM rounds WHERE finished_at IS NULL "
            "ORDER BY round_id LIMIT 1")
        attempt_id = await conn.fetchval("SELECT min(attempt_id) FROM attempts WHERE round_id = $1", round_id)
        outcome = [attempt_id, "sent", "", "", 1, None, False]
        plans = {
            "claim": await generic_plan(conn, attempts._CLAIM, attempt_id, *outcome, message_id, round_id),
            "start": await generic_plan(conn, attempts._START, round_id, 5, user_id, account_id),
            "settle": await generic_plan(conn, attempts._SETTLE, round_id, *outcome, True, "{}", 0.0, 0.0),
            "finish": await generic_plan(conn, rounds.FINISH_SQL, round_id, "done"),
        }
    for name, plan in plans.items():
        assert "rounds_open_idx" not in plan, (name, plan)
        assert "Seq Scan on rounds" not in plan and "Seq Scan on attempts" not in plan, (name, plan)
        assert "rounds_pkey" in plan, (name, plan)
        # an attempt named by its id is reached by the primary key: the open attempts' partial index
        # (round_id, attempt_id) scanned without its round is every open attempt of every round, and
        # the planner chose it once the statistics said few attempts were open (issue 14: history
        # halved throughput); a scan of that index must name the round
        assert open_index_scans_without_round(plan) == [], (name, plan)


def open_index_scans_without_round(plan: str) -> list[str]:
    lines = plan.splitlines()
    bad = []
    for i, line in enumerate(lines):
        if "using attempts_round_id_open_idx" in line:
            cond = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if not (cond.startswith("Index Cond:") and "round_id" in cond):
                bad.append(line.strip() + " / " + cond)
    return bad
