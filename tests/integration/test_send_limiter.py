"""The account limiter in Redis (storage/send_limiter.py) against its rules (domain/limits.py), and
in the round engine: a send over a cap waits with the job re-queued, never dropped, never sent early."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
import redis.asyncio as aioredis

from accounts.crypto import SessionCipher
from domain import limits
from domain.limits import AccountPace, Caps, Policy
from services.engine import JobResult
from storage import keys
from storage.db import Database
from storage.send_limiter import SendLimiter
from storage.user_lock import UserLock
from tests.integration.engine_support import Engine, FakeSender, attempt_rows, seed_user, settings_with

pytestmark = pytest.mark.integration

# The limiter counts whole milliseconds of Redis's clock (TIME) and the fake gateway stamps this process's
# clock, so a gap the limiter enforced may look a millisecond or two short here (a 0.6 s break measured
# 0.5991 s once). Load only lengthens gaps; this is the two clocks' disagreement, not a timing margin.
CLOCKS = 0.005

POLICY = Policy(windows=(1.0, 5.0, 20.0), slack=0.05, gap_min=0.01, gap_max=0.2, break_after=10,
                break_min=2.0, break_max=4.0, widen_max=10.0, widen_recover=4)
CAPS = Caps(minute=3, hour=6, day=18)


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


async def test_the_lua_limiter_answers_exactly_like_the_rules(redis_client: aioredis.Redis) -> None:
    """800 random steps (reserve at random times, floods) on both: same verdicts, same state."""
    clock = Clock(1_700_000_000.0)
    limiter = SendLimiter(redis_client, POLICY, clock)
    model = AccountPace()
    rng = random.Random(17)
    refusals: set[str] = set()
    for step in range(800):
        clock.now = round(clock.now + rng.choice([0.0, 0.003, 0.05, 0.2, 0.7, 1.5, 3.0]), 3)
        if rng.random() < 0.04:
            seconds = rng.choice([0.1, 0.5, 2.0])
            got = await limiter.flood(42, seconds)
            limits.flood(model, clock.now, seconds, POLICY)
            assert got == pytest.approx(model.widen, rel=1e-5), step
            continue
        gap, rest = round(rng.uniform(0.01, 0.2), 3), round(rng.uniform(2.0, 4.0), 3)
        verdict = await limiter.reserve(42, CAPS, gap, rest)
        expected = limits.reserve(model, clock.now, CAPS, POLICY, gap, rest)
        assert (verdict.reserved, verdict.reason, verdict.counts) == (
            expected.reserved, expected.reason, expected.counts), step
        assert verdict.wait == pytest.approx(expected.wait, abs=0.002), step
        assert verdict.widen == pytest.approx(expected.widen, rel=1e-5), step
        assert verdict.rest_until == pytest.approx(expected.rest_until, abs=0.002), step
        if not verdict.reserved:
            refusals.add(verdict.reason)
    assert refusals == {"gap", "rest", "cap:minute", "cap:hour", "cap:day"}  # every rule was exercised
    snapshot = await limiter.snapshot(42)
    assert snapshot.sends == pytest.approx(model.sends)
    assert (snapshot.streak, snapshot.rest_after) == (model.streak, model.rest_after)


async def test_one_round_trip_per_send_and_its_server_side_cost(redis_client: aioredis.Redis) -> None:
    limiter = SendLimiter(redis_client, POLICY)  # the server's clock
    await limiter.reserve(7, Caps(0, 0, 0), 0.0, 0.0)  # loads the script
    await redis_client.config_resetstat()
    for _ in range(20):
        await limiter.reserve(7, Caps(0, 0, 0), 0.0, 0.0)
    stats = await redis_client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}
    assert calls.pop("evalsha") == 20  # one call, one round trip per send
    calls.pop("config|resetstat", None)
    calls.pop("config", None)
    inside = sum(calls.values())
    assert inside / 20 <= 12  # the commands the script runs inside that call


async def test_concurrent_reservations_share_a_call_and_each_answers_like_the_rules(
    redis_client: aioredis.Redis,
) -> None:
    """Issue 14: reservations of several accounts made at once go in one script call, and each one
    answers as it would alone (the model of ``domain.limits`` per account), caps included."""
    import asyncio

    clock = Clock(1_700_000_000.0)
    limiter = SendLimiter(redis_client, POLICY, clock)
    await limiter.reserve(999, CAPS, 0.0, 0.0)  # loads the script
    models = {account: AccountPace() for account in range(1, 9)}
    await redis_client.config_resetstat()
    seen: set[bool] = set()
    for burst in range(6):
        clock.now += 0.2
        verdicts = await asyncio.gather(*(limiter.reserve(a, CAPS, 0.01, 3.0) for a in models))
        for account, verdict in zip(models, verdicts, strict=True):
            expected = limits.reserve(models[account], clock.now, CAPS, POLICY, 0.01, 3.0)
            assert (verdict.reserved, verdict.reason, verdict.counts) == (
                expected.reserved, expected.reason, expected.counts), (burst, account)
            assert verdict.wait == pytest.approx(expected.wait, abs=0.002)
        assert len({v.reserved for v in verdicts}) == 1  # the accounts are alike
        seen.add(verdicts[0].reserved)
    assert seen == {True, False}  # sends reserved, and the caps refused some
    stats = await redis_client.info("commandstats")
    # 6 bursts of 8: the first call of a burst goes alone, the other 7 together
    assert stats["cmdstat_evalsha"]["calls"] <= 12


async def test_the_worker_reads_the_admin_set_caps_in_one_book(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    from datetime import UTC, datetime

    from services.send_limits import load_book
    from storage.repositories import send_caps

    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 1)
        await seed_user(conn, cipher, 2, 1)
        await send_caps.put_global(conn, {"hour": 120}, datetime.now(UTC))
        await send_caps.put_user(conn, 2, {"minute": 3, "day": 0}, datetime.now(UTC))
    book = await load_book(db, Caps(10, 200, 1500))
    assert book.for_user(1) == Caps(10, 120, 1500)
    assert book.for_user(2) == Caps(3, 120, 0)


async def _engine(db: Database, redis_client: aioredis.Redis, cipher: SessionCipher, groups: int,
                  **engine: Any) -> tuple[Engine, FakeSender, int]:
    gateway = FakeSender()
    eng = Engine(db, redis_client, gateway, settings_with(**engine), cipher)
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, groups)
    await eng.jobs.tick()
    async with db.connection() as conn:
        round_id = int(await conn.fetchval("SELECT round_id FROM rounds"))
    return eng, gateway, round_id


async def test_a_send_over_a_cap_is_requeued_with_the_wait_and_never_sent_early(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    # a "minute" of 1.2 s holding 3 sends, an "hour" of 72 s holding 7: 9 groups need two minutes' windows
    eng, gateway, round_id = await _engine(
        db, redis_client, cipher, 9, limit_minute=3, limit_hour=100, limit_day=0, limit_slack=0.05,
        limit_time_scale=0.02, break_after=0, batch_size=5)
    results: list[JobResult] = []
    held_while_waiting: list[bool] = []
    async with db.connection() as conn:
        account_id = await conn.fetchval("SELECT account_id FROM rounds WHERE round_id = $1", round_id)
    broadcast_lock = keys.LEASE.format(name=UserLock.name(1, account_id))
    while True:
        await eng.queue.promote_due()
        jobs = await eng.queue.fetch(count=1, block_ms=50)
        if not jobs:
            async with db.connection() as conn:
                if not await conn.fetchval("SELECT count(*) FROM rounds WHERE finished_at IS NULL"):
                    break
            held_while_waiting.append(bool(await redis_client.exists(broadcast_lock)))
            continue
        results.append(await eng.executor.run(jobs[0]))
    starts = sorted(c.started for c in gateway.calls)
    assert len(starts) == 9 and all(c.error is None for c in gateway.calls)
    window = 1.2 - CLOCKS  # never more than 3 in any 1.2 s window
    for i, t in enumerate(starts):
        assert sum(1 for u in starts if t - window < u <= t) <= 3, (i, starts)
    assert starts[3] - starts[0] >= window and starts[6] - starts[3] >= window
    assert JobResult.CONTINUED in results  # the waits went back to the queue ...
    assert held_while_waiting and not any(held_while_waiting)  # ... with the broadcast's lock released
    rows = await attempt_rows(db, round_id)
    assert {r["status"] for r in rows} == {"sent"} and all(r["tries"] == 1 for r in rows)


async def test_a_break_and_the_round_report_say_so(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    eng, gateway, round_id = await _engine(
        db, redis_client, cipher, 6, limit_minute=0, limit_hour=0, limit_day=0, break_after=4,
        break_min=30.0, break_max=30.0, limit_time_scale=0.02, batch_size=5)
    await eng.run_until_done([round_id], within=20)
    starts = sorted(c.started for c in gateway.calls)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # a 0.6 s rest after the 4th send only: every other gap is shorter than a rest (a loaded machine
    # may stretch an ordinary gap well past the limiter's, never to a rest's length by itself)
    assert gaps[3] >= 0.6 - CLOCKS and max(gaps[:3] + gaps[4:]) < 0.6 - CLOCKS
    async with db.connection() as conn:
        payload = await conn.fetchval("SELECT payload::text FROM notifications WHERE kind = 'round_summary'")
    assert '"pacing"' in payload and '"hour_cap": 0' in payload
