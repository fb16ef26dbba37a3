"""Issue 11 in the worker: account restrictions pause without disabling groups, told once; errors
nobody listed end safely by where they happen (real PostgreSQL and Redis)."""

from __future__ import annotations

from collections import Counter

import pytest
import redis.asyncio as aioredis

from accounts.crypto import SessionCipher
from accounts.errors import to_domain
from services import engine
from storage.db import Database
from tests.integration.engine_support import attempt_rows
from tests.integration.test_worker import fetchrow, fetchval, notifications, seeded_engine, start_round

pytestmark = pytest.mark.integration


async def next_round(eng: object, db: Database, redis_client: aioredis.Redis | None = None) -> int:
    """The next round now, as if any pause had ended (the pacing hint in Redis too)."""
    if redis_client is not None:
        for key in await redis_client.keys("ab:pace:*"):
            await redis_client.delete(key)
    async with db.connection() as conn:
        await conn.execute("UPDATE campaigns SET next_run_at = now(), paused_until = least(paused_until, now()) WHERE user_id = 1")
    [round_id] = await start_round(eng)  # type: ignore[arg-type]
    return round_id


async def group_states(db: Database) -> Counter[str]:
    async with db.connection() as conn:
        return Counter(r["status"] for r in await conn.fetch("SELECT status FROM groups WHERE user_id = 1"))


async def test_a_restricted_account_pauses_once_disables_no_group_and_is_told_once(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    eng, gateway, seeded, round_id = await seeded_engine(db, redis_client, cipher, peer_flood_pause=3600)
    restricted = to_domain("USER_BANNED_IN_CHANNEL", rpc_code=400, operation="send")
    for peer in seeded.peer_ids:
        gateway.faults[peer] = [restricted, restricted]

    await eng.run_until_done([round_id])
    assert len(gateway.calls) == 1  # paused at the first refusal: no group after it was tried
    assert await group_states(db) == {"active": 5}
    left = await fetchval(db, "SELECT extract(epoch FROM paused_until - now()) FROM campaigns WHERE user_id = 1")
    assert 3590 <= float(left) <= 3600
    [note] = await notifications(db, engine.ACCOUNT_RESTRICTED)
    assert note["payload"]["code"] == "USER_BANNED_IN_CHANNEL"

    # the pause ends, the restriction is still there: paused again, not told again
    second = await next_round(eng, db, redis_client)
    await eng.run_until_done([second])
    assert len(gateway.calls) == 2
    assert await group_states(db) == {"active": 5}
    assert len(await notifications(db, engine.ACCOUNT_RESTRICTED)) == 1
    assert Counter(r["status"] for r in await attempt_rows(db, second)) == {"skipped": 5}


async def test_an_unknown_error_in_two_rounds_in_a_row_disables_that_group_only(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    eng, gateway, seeded, round_id = await seeded_engine(db, redis_client, cipher, groups=3)
    odd = to_domain("SOME_NEW_REFUSAL", rpc_code=400, operation="send")
    gateway.faults[seeded.peer_ids[1]] = [odd, odd]

    await eng.run_until_done([round_id])
    row = {r["group_id"]: r for r in await attempt_rows(db, round_id)}[seeded.group_ids[1]]
    assert (row["status"], row["error_code"], row["tries"]) == ("failed", "SOME_NEW_REFUSAL", 1)
    assert await group_states(db) == {"active": 3}  # once is not enough
    assert await notifications(db, engine.GROUP_DISABLED) == []

    second = await next_round(eng, db)
    await eng.run_until_done([second])
    group = await fetchrow(db, "SELECT status, reason FROM groups WHERE group_id = $1", seeded.group_ids[1])
    assert tuple(group) == ("disabled", "SOME_NEW_REFUSAL")
    [note] = await notifications(db, engine.GROUP_DISABLED)
    assert note["payload"]["reason"] == "SOME_NEW_REFUSAL"
    assert len(gateway.sent()) == 4  # the other groups went on in both rounds
    assert await fetchval(db, "SELECT status FROM campaigns WHERE user_id = 1") == "running"


async def test_an_unknown_error_on_every_group_stops_the_broadcast_and_tells_the_user(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    eng, gateway, seeded, round_id = await seeded_engine(db, redis_client, cipher, groups=3)
    for peer in seeded.peer_ids:
        gateway.faults[peer] = [to_domain("SOME_NEW_BLOCK", rpc_code=403, operation="send")]

    await eng.run_until_done([round_id])
    assert len(gateway.calls) == 3 and gateway.sent() == []
    assert await fetchval(db, "SELECT status FROM campaigns WHERE user_id = 1") == "stopped"
    assert await fetchval(db, "SELECT status FROM accounts WHERE user_id = 1") == "connected"
    assert await group_states(db) == {"active": 3}
    [note] = await notifications(db, engine.BROADCAST_HALTED)
    assert note["payload"]["code"] == "SOME_NEW_BLOCK"
    assert Counter(r["status"] for r in await attempt_rows(db, round_id)) == {"failed": 3}
