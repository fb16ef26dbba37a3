"""The scheduler's due scan and reconciliation against real PostgreSQL and Redis (engine.md)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from accounts.crypto import SessionCipher
from scheduler.jobs import SchedulerJobs
from scheduler.runner import run_scheduler
from services import engine
from storage import keys
from storage.db import Database
from storage.lease import Leases
from storage.repositories import campaigns
from tests.integration.engine_support import Engine, FakeSender, seed_user, settings_with

pytestmark = pytest.mark.integration


@pytest.fixture
def eng(db: Database, redis_client: aioredis.Redis, cipher: SessionCipher) -> Engine:
    return Engine(db, redis_client, FakeSender(), settings_with(lease_ttl=1.0), cipher)


async def fetch(db: Database, sql: str, *args: Any) -> list[Any]:
    async with db.connection() as conn:
        return await conn.fetch(sql, *args)


async def fetchval(db: Database, sql: str, *args: Any) -> Any:
    async with db.connection() as conn:
        return await conn.fetchval(sql, *args)


async def execute(db: Database, sql: str, *args: Any) -> None:
    async with db.connection() as conn:
        await conn.execute(sql, *args)


async def test_a_due_campaign_gets_a_round_with_a_snapshot_and_a_job(
    db: Database, eng: Engine, cipher: SessionCipher
) -> None:
    async with db.connection() as conn:
        seeded = await seed_user(conn, cipher, 1, 4, interval=600)
        # an unselected and a disabled group stay out of the round
        await conn.execute("UPDATE groups SET selected = false WHERE group_id = $1", seeded.group_ids[0])
        await conn.execute("UPDATE groups SET status = 'disabled' WHERE group_id = $1", seeded.group_ids[1])
        await conn.execute("INSERT INTO messages (user_id, version, text) VALUES (1, 2, 'newest')")
    planned = await fetchval(db, "SELECT next_run_at FROM campaigns WHERE user_id = 1")

    result = await eng.jobs.tick()

    assert (result.due, result.created, result.enqueued) == (1, 1, 1)
    [rnd] = await fetch(db, "SELECT r.*, m.version FROM rounds r JOIN messages m USING (message_id)")
    assert (rnd["planned_at"], rnd["total"], rnd["version"], rnd["status"]) == (planned, 2, 2, "running")
    attempts = await fetch(db, "SELECT * FROM attempts WHERE round_id = $1 ORDER BY attempt_id", rnd["round_id"])
    assert [a["group_id"] for a in attempts] == seeded.group_ids[2:]
    assert [(a["peer_id"], a["access_hash"], a["kind"], a["status"]) for a in attempts] == [
        (p, p * 7, "supergroup", "pending") for p in seeded.peer_ids[2:]]
    assert await eng.queue.is_queued(f"round:{rnd['round_id']}")
    [job] = await eng.queue.fetch(count=5, block_ms=100)
    assert job.id == f"round:{rnd['round_id']}" and job.payload == {"round_id": rnd["round_id"], "user_id": 1}
    assert await fetchval(db, "SELECT next_run_at FROM campaigns WHERE user_id = 1") == planned + timedelta(
        seconds=600)


@pytest.mark.parametrize("change", [
    "UPDATE campaigns SET next_run_at = now() + interval '1 minute'",
    "UPDATE campaigns SET status = 'stopped'",
    "UPDATE campaigns SET paused_until = now() + interval '1 minute'",
    "UPDATE settings SET value = 'true'::jsonb WHERE key = 'global_pause'",
])
async def test_not_due_stopped_or_paused_campaigns_get_no_round(
    db: Database, eng: Engine, cipher: SessionCipher, change: str
) -> None:
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 2)
        await conn.execute(change)
    before = await fetchval(db, "SELECT next_run_at FROM campaigns")

    await eng.jobs.tick()

    assert await fetchval(db, "SELECT count(*) FROM rounds") == 0
    assert await fetchval(db, "SELECT next_run_at FROM campaigns") == before  # schedule kept


async def test_a_paused_campaign_resumes_when_the_pause_is_over(
    db: Database, eng: Engine, cipher: SessionCipher
) -> None:
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 2)
        await conn.execute("UPDATE campaigns SET paused_until = now() - interval '1 second'")
    assert (await eng.jobs.tick()).created == 1


async def test_one_round_at_a_time_per_user(db: Database, eng: Engine, cipher: SessionCipher) -> None:
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 2, interval=60)
    assert (await eng.jobs.tick()).created == 1
    # due again while the first round is still open: no second round, schedule untouched
    await execute(db, "UPDATE campaigns SET next_run_at = now() - interval '1 second'")
    before = await fetchval(db, "SELECT next_run_at FROM campaigns")
    assert (await eng.jobs.tick()).created == 0
    assert await fetchval(db, "SELECT next_run_at FROM campaigns") == before
    # the database refuses a second open round whatever the caller
    with pytest.raises(Exception, match="rounds_user_id_account_id_open_idx"):
        await execute(db, "INSERT INTO rounds (user_id, message_id, planned_at) "
                          "SELECT 1, message_id, now() FROM messages")
    # once it is finished, the late round comes and the schedule jumps past now
    await execute(db, "UPDATE attempts SET status = 'sent'")
    await execute(db, "UPDATE rounds SET finished_at = now(), status = 'done'")
    assert (await eng.jobs.tick()).created == 1


async def test_next_run_at_does_not_drift_and_missed_rounds_are_skipped(
    db: Database, eng: Engine, cipher: SessionCipher
) -> None:
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 1, interval=100)
        await seed_user(conn, cipher, 2, 1, interval=100)
        # user 1: due a little while ago (the tick is late): next = planned + interval, not now + interval
        await conn.execute("UPDATE campaigns SET next_run_at = now() - interval '3 seconds' WHERE user_id = 1")
        # user 2: 2.5 intervals late: one round now, then the next future multiple (no burst)
        await conn.execute("UPDATE campaigns SET next_run_at = now() - interval '250 seconds' WHERE user_id = 2")
    planned = {r["user_id"]: r["next_run_at"] for r in await fetch(db, "SELECT * FROM campaigns")}

    assert (await eng.jobs.tick()).created == 2

    after = {r["user_id"]: r["next_run_at"] for r in await fetch(db, "SELECT * FROM campaigns")}
    assert after[1] == planned[1] + timedelta(seconds=100)
    assert after[2] == planned[2] + timedelta(seconds=300)
    assert await fetchval(db, "SELECT count(*) FROM rounds WHERE user_id = 2") == 1
    rounds = {r["user_id"]: r["planned_at"] for r in await fetch(db, "SELECT * FROM rounds")}
    assert rounds == planned


def test_next_run_after_rule() -> None:
    from datetime import UTC, datetime

    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    step = timedelta(seconds=60)
    assert engine.next_run_after(t0, 60, t0 + timedelta(seconds=1)) == t0 + step
    assert engine.next_run_after(t0, 60, t0 + step) == t0 + 2 * step  # exactly due: next one
    assert engine.next_run_after(t0, 60, t0 + timedelta(seconds=150)) == t0 + 3 * step
    assert engine.next_run_after(t0, 60, t0 - timedelta(seconds=5)) == t0 + step


async def test_a_conflicting_round_for_the_same_due_time_is_skipped_not_raised(
    db: Database, eng: Engine, cipher: SessionCipher
) -> None:
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 2, interval=60)
        # a finished round already exists for exactly this due time (e.g. the interval was reset)
        await conn.execute(
            """INSERT INTO rounds (user_id, message_id, planned_at, finished_at, status)
               SELECT 1, message_id, (SELECT next_run_at FROM campaigns), now(), 'done' FROM messages""")
    result = await eng.jobs.tick()
    assert (result.due, result.created) == (1, 0)
    assert await fetchval(db, "SELECT next_run_at > now() FROM campaigns")


async def test_two_schedulers_never_create_two_rounds_for_one_due_time(
    db_url: str, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    dbs = [await Database.connect(db_url, max_size=10) for _ in range(3)]
    try:
        async with dbs[0].connection() as conn:
            for uid in range(1, 121):
                await seed_user(conn, cipher, uid, 2, interval=1, due_in=-(uid % 7))
        settings = settings_with()
        schedulers = [Engine(d, redis_client, FakeSender(), settings, cipher, consumer=f"s{n}").jobs
                      for n, d in enumerate(dbs)]

        async def hammer(jobs: SchedulerJobs) -> None:
            for _ in range(15):
                await jobs.tick()
                # finish every open round so the next due time can get its round
                async with jobs.db.connection() as conn:
                    await conn.execute("UPDATE attempts SET status = 'sent' WHERE status = 'pending'")
                    await conn.execute("UPDATE rounds SET finished_at = now(), status = 'done' "
                                       "WHERE finished_at IS NULL")
                await asyncio.sleep(0.07)

        await asyncio.gather(*(hammer(s) for s in schedulers))

        rows = await fetch(dbs[0], "SELECT user_id, planned_at, count(*) AS n FROM rounds GROUP BY 1, 2")
        assert len(rows) > 120  # several due times per user really were scheduled
        assert {r["n"] for r in rows} == {1}
        # and due times of one user are whole intervals apart (no double schedule shifted in time)
        per_user = await fetch(dbs[0], """
            SELECT user_id, array_agg(planned_at ORDER BY planned_at) AS times FROM rounds GROUP BY 1""")
        for row in per_user:
            gaps = {(b - a).total_seconds() % 1 for a, b in zip(row["times"], row["times"][1:], strict=False)}
            assert gaps <= {0.0}
    finally:
        for d in dbs:
            await d.close()


async def test_only_the_lease_holder_schedules_and_a_standby_takes_over(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    settings = settings_with(lease_ttl=1.0, tick=0.05)
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 2, interval=3600)
    queue = Engine(db, redis_client, FakeSender(), settings, cipher).queue
    first_stop, second_stop = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(run_scheduler(db, redis_client, queue, settings, first_stop))
    await asyncio.sleep(0.3)
    second = asyncio.create_task(run_scheduler(db, redis_client, queue, settings, second_stop))
    leases = Leases(redis_client)
    try:
        deadline = time.monotonic() + 10
        while await fetchval(db, "SELECT count(*) FROM rounds") == 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        leader = await leases.holder(keys.SCHEDULER_LEADER)
        assert leader is not None
        first_stop.set()  # the leader goes away (releases its lease on a clean stop)
        await asyncio.wait_for(first, 5)
        await execute(db, "UPDATE attempts SET status = 'sent'")
        await execute(db, "UPDATE rounds SET finished_at = now(), status = 'done'")
        await execute(db, "UPDATE campaigns SET next_run_at = now()")
        deadline = time.monotonic() + 10
        while await fetchval(db, "SELECT count(*) FROM rounds") < 2:
            assert time.monotonic() < deadline, "the standby did not take over"
            await asyncio.sleep(0.05)
        assert await leases.holder(keys.SCHEDULER_LEADER) not in (None, leader)
    finally:
        first_stop.set()
        second_stop.set()
        await asyncio.wait_for(asyncio.gather(first, second), 5)


# --- reconciliation ------------------------------------------------------------------------------


async def test_reconciliation_enqueues_a_lost_round_after_a_lease_only(
    db: Database, eng: Engine, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 2)
        await seed_user(conn, cipher, 2, 2)
    await eng.jobs.tick()
    [r1, r2] = [r["round_id"] for r in await fetch(db, "SELECT round_id FROM rounds ORDER BY round_id")]
    await execute(db, "UPDATE rounds SET created_at = now() - interval '1 minute'")

    await redis_client.flushall()  # Redis lost: jobs, locks, everything
    lock = await eng.leases.acquire(keys.USER_LOCK.format(user_id=2), 30)  # user 2 is being worked on
    assert lock is not None

    clock = StepClock()
    eng.jobs.clock = clock
    assert await eng.jobs.reconcile() == 0  # first sighting: not yet a lease without job and holder
    assert not await eng.queue.is_queued(engine.job_id(r1))
    clock.now += 1.0  # lease_ttl = 1 s
    assert await eng.jobs.reconcile() == 1
    assert await eng.queue.is_queued(engine.job_id(r1))
    assert not await eng.queue.is_queued(engine.job_id(r2))  # its lock has a live holder
    assert await eng.jobs.reconcile() == 0  # queued now: nothing more

    # and the recovered job really completes the round
    await eng.run_until_done([r1])


async def test_reconciliation_leaves_fresh_and_queued_rounds_alone(
    db: Database, eng: Engine, cipher: SessionCipher
) -> None:
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 2)
    await eng.jobs.tick()
    await execute(db, "UPDATE rounds SET created_at = now() - interval '1 minute'")
    clock = StepClock()
    eng.jobs.clock = clock
    for _ in range(3):
        assert await eng.jobs.reconcile() == 0
        clock.now += 0.4


async def test_due_scan_uses_the_status_next_run_at_index(db: Database) -> None:
    async with db.connection() as conn:
        await conn.execute("INSERT INTO users (user_id) SELECT g FROM generate_series(1, 20000) g")
        await conn.execute(
            """INSERT INTO campaigns (user_id, status, interval_seconds, next_run_at)
               SELECT g, 'running', 3600, now() + (g || ' seconds')::interval FROM generate_series(1, 20000) g""")
        await conn.execute("ANALYZE campaigns")
        await conn.execute("PREPARE due(int) AS " + campaigns.DUE_QUERY)
        plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN EXECUTE due(500)"))
    assert "campaigns_status_next_run_at_idx" in plan, plan


class StepClock:
    """Monotonic seconds moved by the test (reconciliation counts the lease on it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reconciler(eng: Engine, clock: StepClock) -> tuple[SchedulerJobs, list[int]]:
    """Scheduler jobs on ``clock`` whose Redis lookups are counted (pairs asked per pass)."""
    jobs = SchedulerJobs(eng.db, eng.queue, eng.leases, eng.settings.engine, eng.redis, clock=clock)
    asked: list[int] = []
    real = eng.queue.lost

    async def counted(pairs: Any) -> list[bool]:
        asked.append(len(pairs))
        return await real(pairs)

    eng.queue.lost = counted  # type: ignore[method-assign]
    return jobs, asked


async def test_reconciliation_looks_up_only_rounds_whose_next_job_is_overdue(
    db: Database, eng: Engine, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    async with db.connection() as conn:
        for user_id in (1, 2, 3):
            await seed_user(conn, cipher, user_id, 2)
    await eng.jobs.tick()
    r1, r2, r3 = [r["round_id"] for r in await fetch(db, "SELECT round_id FROM rounds ORDER BY round_id")]
    # rounds 1 and 2 wait for a continuation due in an hour; round 3 never got its first job
    await execute(db, "UPDATE rounds SET next_job_at = now() + interval '1 hour' WHERE round_id <> $1", r3)
    await execute(db, "UPDATE rounds SET created_at = now() - interval '1 minute' WHERE round_id = $1", r3)
    await redis_client.flushall()  # every job lost
    clock = StepClock()
    jobs, asked = reconciler(eng, clock)

    assert await jobs.reconcile() == 0  # first sighting
    clock.now += eng.settings.engine.lease_ttl
    assert await jobs.reconcile() == 1
    assert asked == [1, 1]  # only round 3 was looked up in Redis, twice
    assert await eng.queue.is_queued(engine.job_id(r3))
    assert not await eng.queue.is_queued(engine.job_id(r1))

    # round 1's continuation was due a minute ago and never came: found like any lost job
    await execute(db, "UPDATE rounds SET next_job_at = now() - interval '1 minute' WHERE round_id = $1", r1)
    assert await jobs.reconcile() == 0
    clock.now += eng.settings.engine.lease_ttl
    assert await jobs.reconcile() == 1
    assert await eng.queue.is_queued(engine.job_id(r1))
    assert not await eng.queue.is_queued(engine.job_id(r2))
    await eng.run_until_done([r1, r3])


async def test_reconciliation_goes_through_overdue_rounds_a_slice_per_pass(
    db: Database, eng: Engine, redis_client: aioredis.Redis, cipher: SessionCipher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import scheduler.jobs as scheduler_jobs

    monkeypatch.setattr(scheduler_jobs, "RECONCILE_SLICE", 2)
    async with db.connection() as conn:
        for user_id in range(1, 6):
            await seed_user(conn, cipher, user_id, 1)
    await eng.jobs.tick()
    await execute(db, "UPDATE rounds SET created_at = now() - interval '1 minute'")
    await redis_client.flushall()
    clock = StepClock()
    jobs, asked = reconciler(eng, clock)

    enqueued = 0
    for _ in range(8):
        enqueued += await jobs.reconcile()
        clock.now += eng.settings.engine.lease_ttl / 2
    assert enqueued == 5
    assert max(asked) <= 2  # bounded per pass, whatever the number of overdue rounds
    ids = [r["round_id"] for r in await fetch(db, "SELECT round_id FROM rounds")]
    assert all([await eng.queue.is_queued(engine.job_id(r)) for r in ids])


async def test_a_continued_round_records_when_its_next_job_is_due(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    eng = Engine(db, redis_client, FakeSender(), settings_with(lease_ttl=1.0, batch_size=2, gap_min=0.0,
                                                                gap_max=0.0), cipher)
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 5)
    await eng.jobs.tick()
    [job] = await eng.queue.fetch(count=1, block_ms=100)
    assert await fetchval(db, "SELECT next_job_at FROM rounds") is None
    await eng.executor.run(job)  # 2 of 5 sent, continued
    due = await fetchval(db, "SELECT next_job_at - now() FROM rounds WHERE finished_at IS NULL")
    assert due is not None and timedelta(seconds=-1) <= due <= timedelta(seconds=2)  # gap 0: due now
    await eng.run_until_done()
    row = (await fetch(db, "SELECT status, sent, total FROM rounds"))[0]
    assert (row["status"], row["sent"], row["total"]) == ("done", 5, 5)
    summaries = await fetch(db, "SELECT payload FROM notifications WHERE kind = 'round_summary'")
    assert [(s["payload"]["sent"], s["payload"]["total"]) for s in summaries] == [(5, 5)]
