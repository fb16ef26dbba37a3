"""The round executor and the worker loop against real PostgreSQL and Redis (engine.md guarantees)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from accounts.crypto import SessionCipher
from accounts.gateway import AccountRef, GroupRef, Media, OutgoingMessage
from accounts.sandbox_gateway import SandboxGateway
from config.settings import SandboxSettings
from domain.errors import (
    AccountThrottled,
    FloodWait,
    GroupClosed,
    GroupMigrated,
    MessageRejected,
    SessionDead,
    TransientError,
)
from roles.worker.loop import run_worker
from sandbox.client import SandboxClient
from sandbox.server import run_sandbox
from services import engine
from services.engine import JobResult
from services.engine.rounds import MIN_UPLOAD_RATE, RoundEngine
from storage import keys
from storage.account_lock import TelegramAccountLock
from storage.db import Database
from storage.user_lock import UserLock
from tests.integration.engine_sandbox import create_world_users
from tests.integration.engine_support import (
    Engine,
    FakeSender,
    attempt_rows,
    open_round_count,
    seed_user,
    settings_with,
)

pytestmark = pytest.mark.integration


async def start_round(eng: Engine) -> list[int]:
    result = await eng.jobs.tick()
    async with eng.db.connection() as conn:
        rows = await conn.fetch("SELECT round_id FROM rounds WHERE finished_at IS NULL ORDER BY round_id")
    assert result.created == len(rows)
    return [r["round_id"] for r in rows]


async def fetchval(db: Database, sql: str, *args: Any) -> Any:
    async with db.connection() as conn:
        return await conn.fetchval(sql, *args)


async def fetchrow(db: Database, sql: str, *args: Any) -> Any:
    async with db.connection() as conn:
        return await conn.fetchrow(sql, *args)


async def notifications(db: Database, kind: str) -> list[Any]:
    async with db.connection() as conn:
        return await conn.fetch("SELECT * FROM notifications WHERE kind = $1 ORDER BY notification_id", kind)


# --- the happy path ------------------------------------------------------------------------------


async def test_round_posts_once_to_each_group_in_micro_batches(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    gateway = FakeSender()
    eng = Engine(db, redis_client, gateway, settings_with(batch_size=5), cipher)
    async with db.connection() as conn:
        seeded = await seed_user(conn, cipher, 1, 12, text="the text")
    [round_id] = await start_round(eng)

    results = await eng.run_jobs()

    # 12 groups in batches of 5: two continuations, then done
    assert results == [JobResult.CONTINUED, JobResult.CONTINUED, JobResult.DONE]
    assert sorted(c.peer_id for c in gateway.sent()) == seeded.peer_ids
    assert {c.text for c in gateway.sent()} == {"the text"}
    rows = await attempt_rows(db, round_id)
    assert {r["status"] for r in rows} == {"sent"}
    assert all(r["sent_message_id"] and r["tries"] == 1 for r in rows)
    rnd = await fetchrow(db, "SELECT * FROM rounds WHERE round_id = $1", round_id)
    assert (rnd["status"], rnd["total"], rnd["sent"], rnd["failed"]) == ("done", 12, 12, 0)
    assert rnd["started_at"] is not None and rnd["finished_at"] is not None
    assert await fetchval(db, "SELECT last_round_id FROM campaigns WHERE user_id = 1") == round_id
    [summary] = await notifications(db, engine.ROUND_SUMMARY)
    assert summary["payload"]["sent"] == 12 if isinstance(summary["payload"], dict) else True
    assert not await eng.queue.is_queued(engine.job_id(round_id))
    assert await eng.leases.holder(UserLock.name(1, seeded.account_id)) is None


async def test_round_keeps_its_message_version_and_sends_media(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    gateway = FakeSender()
    eng = Engine(db, redis_client, gateway, settings_with(), cipher)
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 3, text="version one", media=b"\x89PNG-bytes")
    [round_id] = await start_round(eng)
    async with db.connection() as conn:  # saved while the round runs: used from the next round
        await conn.execute("INSERT INTO messages (user_id, version, text) VALUES (1, 2, 'version two')")

    await eng.run_until_done([round_id])

    assert [c.text for c in gateway.sent()] == ["version one"] * 3
    media = gateway.sent()[0].media
    assert media is not None and media.data == b"\x89PNG-bytes" and media.kind == "photo"
    async with db.connection() as conn:
        await conn.execute("UPDATE campaigns SET next_run_at = now() WHERE user_id = 1")
    [second] = await start_round(eng)
    await eng.run_until_done([second])
    assert [c.text for c in gateway.sent()[3:]] == ["version two"] * 3


async def test_a_media_send_that_times_out_is_retried_by_the_transient_rule(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    gateway = FakeSender()
    eng = Engine(db, redis_client, gateway, settings_with(), cipher)
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 2, text="clip", media=b"\x89PNG-bytes")
    [round_id] = await start_round(eng)
    eng.engine.send_timeout = 0.05
    stalls = [1.0]

    async def stall_once(sender: FakeSender, account: AccountRef, group: GroupRef) -> None:
        if stalls:
            await asyncio.sleep(stalls.pop())

    gateway.before_send = stall_once

    await eng.run_until_done([round_id])

    rows = await attempt_rows(db, round_id)
    assert [(r["status"], r["tries"]) for r in rows] == [("sent", 2), ("sent", 1)]
    assert rows[0]["error_code"] == "TIMEOUT"
    assert len(gateway.sent()) == 2


def test_the_send_timeout_grows_with_the_media_size() -> None:
    executor = RoundEngine.__new__(RoundEngine)
    executor.send_timeout = 30.0
    big = Media("video", b"\x00" * (15 * 1024 * 1024), "v.mp4", thumb=b"\x00" * 1024)
    assert executor.timeout_for(OutgoingMessage("text")) == 30.0
    assert executor.timeout_for(OutgoingMessage("", [], big)) == 30.0 + (15 * 1024 * 1024 + 1024) / MIN_UPLOAD_RATE


# --- at most one send per (round, group) -------------------------------------------------------


class GrantAll:
    """Leases that never refuse: lets several executors into one round at once (no user lock)."""

    def __init__(self, real: Any) -> None:
        self.real = real

    async def acquire(self, name: str, ttl: float) -> Any:
        from storage.lease import Lease

        return Lease(name, int(time.time() * 1e6), ttl)

    def keep(self, lease: Any, release: bool = True) -> Any:
        from contextlib import asynccontextmanager

        from storage.lease import HeldLease

        @asynccontextmanager
        async def held() -> AsyncIterator[HeldLease]:
            yield HeldLease(lease)

        return held()

    async def release(self, lease: Any) -> bool:
        return True


async def test_claims_alone_prevent_duplicates_when_executors_race_without_the_lock(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    from storage.queue import Job

    # sends long enough to overlap: each racer also makes its limiter call (a Redis round trip) before a claim
    gateway = FakeSender(latency=0.02)
    eng = Engine(db, redis_client, gateway, settings_with(batch_size=3), cipher)
    eng.engine.lock = UserLock(GrantAll(eng.leases), eng.settings.engine.lease_ttl)  # type: ignore[arg-type]
    # the Telegram account's lock would serialise the racers too: grant it alike
    eng.engine.account_lock = TelegramAccountLock(GrantAll(eng.leases), eng.settings.engine.lease_ttl)  # type: ignore[arg-type]
    async with db.connection() as conn:
        seeded = await seed_user(conn, cipher, 1, 40)
    [round_id] = await start_round(eng)
    job_id = engine.job_id(round_id)

    async def racer(n: int) -> None:
        while await open_round_count(db, [round_id]):
            job = Job(job_id, f"0-{n}", engine.job_payload(round_id, 1))
            # possible only without the lock; the worker loop retries such a job
            with contextlib.suppress(asyncpg.DeadlockDetectedError):
                await eng.executor.run(job)

    await asyncio.wait_for(asyncio.gather(*(racer(n) for n in range(6))), 30)

    per_peer = Counter(c.peer_id for c in gateway.sent())
    assert sorted(per_peer) == seeded.peer_ids
    assert set(per_peer.values()) == {1}
    assert max(gateway.max_in_flight.values()) > 1  # they really overlapped
    # without the lock a job also takes another's send in flight for a crashed one: it becomes
    # unknown (never re-sent), which is why the lock is still needed for accurate outcomes
    rows = await attempt_rows(db, round_id)
    assert {r["status"] for r in rows} <= {"sent", "unknown"}


async def test_duplicate_jobs_and_concurrent_workers_send_once_and_one_at_a_time_per_account(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    gateway = FakeSender(latency=0.002)
    settings = settings_with(batch_size=4, worker_concurrency=4)
    eng = Engine(db, redis_client, gateway, settings, cipher)
    seeded = []
    async with db.connection() as conn:
        for uid in range(1, 9):
            seeded.append(await seed_user(conn, cipher, uid, 10))
    round_ids = await start_round(eng)
    # three more instances of every job, as if the dedupe marker had been lost each time, with a
    # payload naming the wrong broadcast: the executor must still lock the round's own (user, account).
    # One names user 0 and no account (a job of the previous release), one user 0 and another user's
    # account, one the right user and another user's account
    for round_id in round_ids:
        owner = await fetchrow(db, "SELECT user_id, account_id FROM rounds WHERE round_id = $1", round_id)
        foreign = next(s.account_id for s in seeded if s.account_id != owner["account_id"])
        for payload in (engine.job_payload(round_id, 0), engine.job_payload(round_id, 0, account_id=foreign),
                        engine.job_payload(round_id, owner["user_id"], account_id=foreign)):
            await redis_client.hdel(eng.queue.dedupe, engine.job_id(round_id))
            assert await eng.queue.enqueue(engine.job_id(round_id), payload)

    stop = asyncio.Event()
    workers = [asyncio.create_task(run_worker(db, redis_client, gateway, settings, stop, f"w{n}", cipher=cipher))
               for n in range(3)]
    try:
        deadline = time.monotonic() + 30
        while await open_round_count(db, round_ids):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), 10)

    per_peer = Counter(c.peer_id for c in gateway.sent())
    assert sorted(per_peer) == sorted(p for s in seeded for p in s.peer_ids)
    assert set(per_peer.values()) == {1}
    assert set(gateway.max_in_flight.values()) == {1}  # one send at a time per account


async def test_an_attempt_left_in_sending_becomes_unknown_and_is_never_sent_again(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    gateway = FakeSender()
    eng = Engine(db, redis_client, gateway, settings_with(), cipher)
    async with db.connection() as conn:
        seeded = await seed_user(conn, cipher, 1, 4)
    [round_id] = await start_round(eng)
    async with db.connection() as conn:  # a worker claimed it and died during the send
        await conn.execute(
            "UPDATE attempts SET status = 'sending', tries = 1 WHERE round_id = $1 AND group_id = $2",
            round_id, seeded.group_ids[1])

    await eng.run_until_done([round_id])

    assert sorted(c.peer_id for c in gateway.sent()) == [seeded.peer_ids[i] for i in (0, 2, 3)]
    rows = {r["group_id"]: r for r in await attempt_rows(db, round_id)}
    assert rows[seeded.group_ids[1]]["status"] == "unknown"
    assert rows[seeded.group_ids[1]]["error_code"] == "INTERRUPTED"
    rnd = await fetchrow(db, "SELECT * FROM rounds WHERE round_id = $1", round_id)
    assert (rnd["status"], rnd["sent"], rnd["unknown"]) == ("done", 3, 1)


async def test_a_job_whose_user_lock_is_held_goes_back_to_the_queue_without_sending(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    gateway = FakeSender()
    eng = Engine(db, redis_client, gateway, settings_with(), cipher)
    async with db.connection() as conn:
        seeded = await seed_user(conn, cipher, 1, 2)
    [round_id] = await start_round(eng)
    other = await eng.leases.acquire(UserLock.name(1, seeded.account_id), 30)
    assert other is not None

    [job] = await eng.queue.fetch(count=1, block_ms=100)
    assert await eng.executor.run(job) == JobResult.BUSY
    assert gateway.calls == []
    assert await eng.queue.is_queued(engine.job_id(round_id))
    assert (await eng.queue.depth()).delayed == 1

    await eng.leases.release(other)
    await eng.run_until_done([round_id])
    assert len(gateway.sent()) == 2


async def test_a_job_whose_telegram_account_is_in_use_goes_back_to_the_queue_without_sending(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    """The account's lock is keyed by its Telegram user id (an import, another bot user's job)."""
    gateway = FakeSender()
    eng = Engine(db, redis_client, gateway, settings_with(), cipher)
    async with db.connection() as conn:
        seeded = await seed_user(conn, cipher, 1, 2)
    [round_id] = await start_round(eng)
    tg_user_id = await fetchval(db, "SELECT tg_user_id FROM accounts WHERE account_id = $1", seeded.account_id)
    other = await eng.leases.acquire(keys.ACCOUNT_LOCK.format(tg_user_id=tg_user_id), 30)
    assert other is not None

    [job] = await eng.queue.fetch(count=1, block_ms=100)
    assert await eng.executor.run(job) == JobResult.BUSY
    assert gateway.calls == []
    assert await eng.queue.is_queued(engine.job_id(round_id))
    assert (await eng.queue.depth()).delayed == 1
    assert await eng.leases.holder(UserLock.name(1, seeded.account_id)) is None  # the broadcast's lock given back

    await eng.leases.release(other)
    await eng.run_until_done([round_id])
    assert len(gateway.sent()) == 2


# --- stop and pause ------------------------------------------------------------------------------


async def test_stop_takes_effect_before_the_next_send(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    async def stop_on_third(gw: FakeSender, account: AccountRef, group: GroupRef) -> None:
        if len(gw.calls) == 2:  # the third send is in flight when the user presses stop
            async with db.connection() as conn:
                await conn.execute("UPDATE campaigns SET status = 'stopped', next_run_at = NULL WHERE user_id = 1")

    gateway = FakeSender(before_send=stop_on_third)
    eng = Engine(db, redis_client, gateway, settings_with(batch_size=5), cipher)
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 8)
    [round_id] = await start_round(eng)

    await eng.run_until_done([round_id])

    assert len(gateway.calls) == 3  # the one in flight, nothing after
    statuses = Counter(r["status"] for r in await attempt_rows(db, round_id))
    assert statuses == {"sent": 3, "skipped": 5}
    rnd = await fetchrow(db, "SELECT * FROM rounds WHERE round_id = $1", round_id)
    assert (rnd["status"], rnd["sent"], rnd["skipped"]) == ("cancelled", 3, 5)
    assert await notifications(db, engine.ROUND_SUMMARY) == []


async def test_a_round_of_an_earlier_run_is_cancelled_after_stop_and_start(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    gateway = FakeSender()
    eng = Engine(db, redis_client, gateway, settings_with(), cipher)
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 3)
    [round_id] = await start_round(eng)
    async with db.connection() as conn:  # stop and start again before any worker saw the round
        await conn.execute("UPDATE campaigns SET started_at = now(), next_run_at = now() WHERE user_id = 1")

    await eng.run_until_done([round_id])

    assert gateway.calls == []
    assert await fetchval(db, "SELECT status FROM rounds WHERE round_id = $1", round_id) == "cancelled"
    [new_round] = await start_round(eng)  # the new run's first round comes right after
    await eng.run_until_done([new_round])
    assert len(gateway.sent()) == 3


async def test_global_pause_holds_sends_and_resume_continues_the_round(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    async def pause_on_second(gw: FakeSender, account: AccountRef, group: GroupRef) -> None:
        if len(gw.calls) == 1:
            async with db.connection() as conn:
                await conn.execute("UPDATE settings SET value = 'true'::jsonb WHERE key = 'global_pause'")

    gateway = FakeSender(before_send=pause_on_second)
    eng = Engine(db, redis_client, gateway, settings_with(batch_size=5), cipher)
    async with db.connection() as conn:
        seeded = await seed_user(conn, cipher, 1, 6)
    [round_id] = await start_round(eng)

    results = await eng.run_jobs(idle=0.3)

    assert JobResult.WAITING in results
    assert len(gateway.calls) == 2  # the one in flight when the pause came, nothing after
    assert await open_round_count(db, [round_id]) == 1
    assert await eng.queue.is_queued(engine.job_id(round_id))  # waiting, not dropped
    assert (await eng.jobs.tick()).paused

    async with db.connection() as conn:
        await conn.execute("UPDATE settings SET value = 'false'::jsonb WHERE key = 'global_pause'")
    await eng.run_until_done([round_id], within=15)
    assert sorted(c.peer_id for c in gateway.sent()) == seeded.peer_ids


async def test_a_disconnected_account_ends_the_round_and_stops_the_campaign(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    gateway = FakeSender()
    eng = Engine(db, redis_client, gateway, settings_with(), cipher)
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 3)
    [round_id] = await start_round(eng)
    async with db.connection() as conn:
        await conn.execute("UPDATE accounts SET status = 'disconnected', session_enc = NULL WHERE user_id = 1")

    await eng.run_until_done([round_id])

    assert gateway.calls == []
    assert await fetchval(db, "SELECT status FROM campaigns WHERE user_id = 1") == "stopped"
    assert Counter(r["status"] for r in await attempt_rows(db, round_id)) == {"skipped": 3}
    assert len(await notifications(db, engine.SESSION_ENDED)) == 1


# --- errors from Telegram (engine.md's table) ----------------------------------------------------


async def seeded_engine(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher, groups: int = 5, **engine_settings: Any
) -> tuple[Engine, FakeSender, Any, int]:
    gateway = FakeSender()
    eng = Engine(db, redis_client, gateway, settings_with(**engine_settings), cipher)
    async with db.connection() as conn:
        seeded = await seed_user(conn, cipher, 1, groups)
    [round_id] = await start_round(eng)
    return eng, gateway, seeded, round_id


async def test_short_flood_wait_retries_after_the_hint_and_widens_the_gap(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    eng, gateway, seeded, round_id = await seeded_engine(db, redis_client, cipher, groups=6)
    gateway.faults[seeded.peer_ids[2]] = [FloodWait(1)]

    await eng.run_until_done([round_id])

    flood = next(c for c in gateway.calls if c.error)
    after = [c for c in gateway.calls if c.started > flood.ended]
    assert after and min(c.started for c in after) >= flood.ended + 1.0  # nothing before the hint
    assert sorted(c.peer_id for c in gateway.sent()) == seeded.peer_ids
    row = {r["group_id"]: r for r in await attempt_rows(db, round_id)}[seeded.group_ids[2]]
    assert (row["status"], row["tries"], row["error_code"]) == ("sent", 2, "FLOOD_WAIT")
    assert row["retry_after"] is not None
    limiter_state = keys.LIMIT_STATE.format(account=10_000 + seeded.user_id)  # keyed by the Telegram user id
    assert float(await redis_client.hget(limiter_state, "widen")) > 1


async def test_long_flood_wait_pauses_the_campaign_and_tells_the_user(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    eng, gateway, seeded, round_id = await seeded_engine(db, redis_client, cipher, flood_inline_max=2)
    gateway.faults[seeded.peer_ids[1]] = [FloodWait(300)]

    await eng.run_until_done([round_id])

    assert [c.peer_id for c in gateway.calls] == seeded.peer_ids[:2]  # nothing after the flood
    campaign = await fetchrow(db, "SELECT *, paused_until - now() AS left FROM campaigns WHERE user_id = 1")
    assert campaign["status"] == "running" and campaign["pause_reason"] == "FLOOD_WAIT"
    assert 290 <= campaign["left"].total_seconds() <= 300
    [note] = await notifications(db, engine.FLOOD_PAUSE)
    assert note["payload"]["seconds"] == 300
    statuses = Counter(r["status"] for r in await attempt_rows(db, round_id))
    assert statuses == {"sent": 1, "skipped": 4}
    assert (await eng.jobs.tick()).created == 0  # paused: no round until the hint
    await eng.jobs.tick()
    assert await fetchval(db, "SELECT count(*) FROM rounds") == 1


async def test_slow_mode_delays_one_group_while_the_others_go_on(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    eng, gateway, seeded, round_id = await seeded_engine(db, redis_client, cipher, groups=4)
    gateway.faults[seeded.peer_ids[0]] = [FloodWait(1, code="SLOWMODE_WAIT")]

    await eng.run_until_done([round_id])

    first, *others = gateway.calls
    assert first.error and first.peer_id == seeded.peer_ids[0]
    # the other groups did not wait for the slow mode
    assert all(c.started < first.ended + 0.9 for c in others if c.peer_id != seeded.peer_ids[0])
    retry = [c for c in gateway.sent() if c.peer_id == seeded.peer_ids[0]]
    assert len(retry) == 1 and retry[0].started >= first.ended + 1.0
    assert len(gateway.sent()) == 4


async def test_peer_flood_pauses_the_campaign_for_the_setting(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    eng, gateway, seeded, round_id = await seeded_engine(db, redis_client, cipher, peer_flood_pause=7200)
    gateway.faults[seeded.peer_ids[0]] = [AccountThrottled("PEER_FLOOD")]

    await eng.run_until_done([round_id])

    assert len(gateway.calls) == 1
    left = await fetchval(db, "SELECT extract(epoch FROM paused_until - now()) FROM campaigns WHERE user_id = 1")
    assert 7190 <= float(left) <= 7200
    [note] = await notifications(db, engine.FLOOD_PAUSE)
    assert note["payload"]["code"] == "PEER_FLOOD"
    assert Counter(r["status"] for r in await attempt_rows(db, round_id)) == {"skipped": 5}


async def test_closed_group_is_disabled_with_the_reason_and_the_user_told_once(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    eng, gateway, seeded, round_id = await seeded_engine(db, redis_client, cipher)
    gateway.faults[seeded.peer_ids[1]] = [GroupClosed("CHAT_WRITE_FORBIDDEN")]

    await eng.run_until_done([round_id])

    row = {r["group_id"]: r for r in await attempt_rows(db, round_id)}[seeded.group_ids[1]]
    assert (row["status"], row["error_code"]) == ("failed", "CHAT_WRITE_FORBIDDEN")
    group = await fetchrow(db, "SELECT status, reason FROM groups WHERE group_id = $1", seeded.group_ids[1])
    assert tuple(group) == ("disabled", "CHAT_WRITE_FORBIDDEN")
    [note] = await notifications(db, engine.GROUP_DISABLED)
    assert note["payload"]["group_id"] == seeded.group_ids[1]
    assert len(gateway.sent()) == 4  # the campaign goes on
    # the next round leaves the disabled group out
    async with db.connection() as conn:
        await conn.execute("UPDATE campaigns SET next_run_at = now() WHERE user_id = 1")
    [second] = await start_round(eng)
    await eng.run_until_done([second])
    assert len(await attempt_rows(db, second)) == 4
    assert len(gateway.sent_to(seeded.peer_ids[1])) == 0
    assert len(await notifications(db, engine.GROUP_DISABLED)) == 1


async def test_migrated_group_gets_its_new_id_and_the_post_in_the_same_round(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    eng, gateway, seeded, round_id = await seeded_engine(db, redis_client, cipher, groups=3)
    gateway.faults[seeded.peer_ids[1]] = [GroupMigrated(new_peer_id=-100777, new_access_hash=55)]

    await eng.run_until_done([round_id])

    assert [c.peer_id for c in gateway.sent()] == [seeded.peer_ids[0], -100777, seeded.peer_ids[2]]
    group = await fetchrow(db, "SELECT peer_id, access_hash, kind FROM groups WHERE group_id = $1",
                           seeded.group_ids[1])
    assert tuple(group) == (-100777, 55, "supergroup")
    row = {r["group_id"]: r for r in await attempt_rows(db, round_id)}[seeded.group_ids[1]]
    assert (row["status"], row["peer_id"], row["tries"]) == ("sent", -100777, 1)


async def test_dead_session_disconnects_the_account_and_stops_the_campaign(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    eng, gateway, seeded, round_id = await seeded_engine(db, redis_client, cipher)
    gateway.faults[seeded.peer_ids[1]] = [SessionDead("SESSION_REVOKED")]

    await eng.run_until_done([round_id])

    assert len(gateway.calls) == 2
    account = await fetchrow(db, "SELECT status, session_enc, disconnected_reason FROM accounts WHERE user_id = 1")
    assert tuple(account) == ("disconnected", None, "SESSION_REVOKED")
    assert await fetchval(db, "SELECT status FROM campaigns WHERE user_id = 1") == "stopped"
    statuses = Counter(r["status"] for r in await attempt_rows(db, round_id))
    assert statuses == {"sent": 1, "failed": 1, "skipped": 3}
    assert await fetchval(db, "SELECT status FROM rounds WHERE round_id = $1", round_id) == "cancelled"
    [note] = await notifications(db, engine.SESSION_ENDED)
    assert note["payload"]["reason"] == "SESSION_REVOKED"


async def test_transient_errors_are_retried_with_backoff_then_failed(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    eng, gateway, seeded, round_id = await seeded_engine(
        db, redis_client, cipher, groups=3, retry_base=0.2, retry_max=0.3, retry_tries=3)
    gateway.faults[seeded.peer_ids[0]] = [TransientError("NETWORK_ERROR"), TransientError("TIMEOUT")]
    gateway.faults[seeded.peer_ids[1]] = [TransientError("NETWORK_ERROR")] * 5

    await eng.run_until_done([round_id])

    rows = {r["group_id"]: r for r in await attempt_rows(db, round_id)}
    first, second = rows[seeded.group_ids[0]], rows[seeded.group_ids[1]]
    assert (first["status"], first["tries"]) == ("sent", 3)
    assert (second["status"], second["tries"], second["error_code"]) == ("failed", 3, "NETWORK_ERROR")
    tries = [c.started for c in gateway.calls if c.peer_id == seeded.peer_ids[0]]
    assert tries[1] - tries[0] >= 0.2 and tries[2] - tries[1] >= 0.3  # 0.2 doubling, capped at 0.3
    assert len(gateway.calls) == 3 + 3 + 1


async def test_an_auth_key_the_server_keeps_forgetting_ends_the_session_after_the_retries(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    eng, gateway, seeded, round_id = await seeded_engine(
        db, redis_client, cipher, groups=3, retry_base=0.05, retry_max=0.1, retry_tries=3)
    gateway.faults[seeded.peer_ids[0]] = [TransientError("AUTH_KEY_NOT_FOUND")]  # forgotten for a moment
    gateway.faults[seeded.peer_ids[1]] = [TransientError("AUTH_KEY_NOT_FOUND")] * 3  # and for good

    await eng.run_until_done([round_id])

    rows = {r["group_id"]: r for r in await attempt_rows(db, round_id)}
    assert (rows[seeded.group_ids[0]]["status"], rows[seeded.group_ids[0]]["tries"]) == ("sent", 2)
    second = rows[seeded.group_ids[1]]
    assert (second["status"], second["tries"], second["error_code"]) == ("failed", 3, "AUTH_KEY_NOT_FOUND")
    assert rows[seeded.group_ids[2]]["status"] == "sent"  # sent while the other one waited for its retries
    account = await fetchrow(db, "SELECT status, session_enc, disconnected_reason FROM accounts WHERE user_id = 1")
    assert tuple(account) == ("disconnected", None, "AUTH_KEY_NOT_FOUND")
    assert await fetchval(db, "SELECT status FROM campaigns WHERE user_id = 1") == "stopped"
    [note] = await notifications(db, engine.SESSION_ENDED)
    assert note["payload"]["reason"] == "AUTH_KEY_NOT_FOUND"


async def test_rejected_message_fails_the_attempt_tells_the_user_and_goes_on(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    eng, gateway, seeded, round_id = await seeded_engine(db, redis_client, cipher)
    gateway.faults[seeded.peer_ids[0]] = [MessageRejected("MESSAGE_TOO_LONG")]

    await eng.run_until_done([round_id])

    assert len(gateway.sent()) == 4
    row = {r["group_id"]: r for r in await attempt_rows(db, round_id)}[seeded.group_ids[0]]
    assert (row["status"], row["error_code"]) == ("failed", "MESSAGE_TOO_LONG")
    [note] = await notifications(db, engine.MESSAGE_REJECTED)
    assert note["payload"]["code"] == "MESSAGE_TOO_LONG"
    assert await fetchval(db, "SELECT status FROM campaigns WHERE user_id = 1") == "running"
    rnd = await fetchrow(db, "SELECT * FROM rounds WHERE round_id = $1", round_id)
    assert (rnd["status"], rnd["sent"], rnd["failed"]) == ("done", 4, 1)


# --- pacing and fairness -------------------------------------------------------------------------


async def test_the_account_gap_holds_across_jobs_and_workers(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    gateway = FakeSender()
    settings = settings_with(batch_size=2, gap_min=0.15, gap_max=0.25)
    async with db.connection() as conn:
        seeded = await seed_user(conn, cipher, 1, 7)
    first = Engine(db, redis_client, gateway, settings, cipher, consumer="a")
    second = Engine(db, redis_client, gateway, settings, cipher, consumer="b")
    [round_id] = await start_round(first)

    async def drive(eng: Engine) -> None:
        while await open_round_count(db, [round_id]):
            await eng.queue.promote_due()
            for job in await eng.queue.fetch(count=1, block_ms=20):
                await eng.executor.run(job)

    await asyncio.wait_for(asyncio.gather(drive(first), drive(second)), 20)

    starts = sorted(c.started for c in gateway.calls)
    assert len(starts) == 7
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.15 - 0.01, gaps
    assert await redis_client.exists(keys.LIMIT_STATE.format(account=10_000 + seeded.user_id))


async def test_many_small_users_are_not_starved_by_one_big_round(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    gateway = FakeSender()
    eng = Engine(db, redis_client, gateway, settings_with(batch_size=5), cipher)
    async with db.connection() as conn:
        big = await seed_user(conn, cipher, 1, 60, due_in=-10)  # due first: its job is first in line
        small = [await seed_user(conn, cipher, uid, 5) for uid in range(2, 8)]
    await start_round(eng)

    await eng.run_until_done(within=30)

    order = [c.account_id for c in gateway.sent()]
    assert len(order) == 60 + 6 * 5
    big_sends = [i for i, a in enumerate(order) if a == big.account_id]
    for user in small:
        last = max(i for i, a in enumerate(order) if a == user.account_id)
        # served round-robin: every small round ends before the big one is a fifth done
        assert last < big_sends[11], (user.user_id, last, big_sends[:12])


# --- the worker loop -----------------------------------------------------------------------------


async def test_worker_stop_hands_back_the_job_in_flight_and_heartbeats(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    gateway = FakeSender()
    settings = settings_with(batch_size=5, gap_min=0.4, gap_max=0.4)
    eng = Engine(db, redis_client, gateway, settings, cipher)
    async with db.connection() as conn:
        seeded = await seed_user(conn, cipher, 1, 6)
    [round_id] = await start_round(eng)

    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(db, redis_client, gateway, settings, stop, "w-stop", cipher=cipher))
    deadline = time.monotonic() + 10
    while len(gateway.calls) < 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    assert await redis_client.zscore(keys.WORKER_HEARTBEAT, "w-stop") is not None
    stop.set()
    await asyncio.wait_for(worker, 5)

    assert len(gateway.calls) == 2  # the gap wait was cut short, nothing sent after the stop
    statuses = Counter(r["status"] for r in await attempt_rows(db, round_id))
    assert statuses == {"sent": 2, "pending": 4}  # nothing left in sending
    assert await eng.queue.is_queued(engine.job_id(round_id))  # handed back
    assert await eng.leases.holder(UserLock.name(1, seeded.account_id)) is None
    assert await redis_client.zscore(keys.WORKER_HEARTBEAT, "w-stop") is None

    # another worker picks the round up
    stop2 = asyncio.Event()
    other = asyncio.create_task(run_worker(db, redis_client, gateway, settings, stop2, "w-next", cipher=cipher))
    try:
        deadline = time.monotonic() + 15
        while await open_round_count(db, [round_id]):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    finally:
        stop2.set()
        await asyncio.wait_for(other, 5)
    assert sorted(c.peer_id for c in gateway.sent()) == seeded.peer_ids


# --- end to end through the sandbox world ----------------------------------------------------------


async def test_sandbox_end_to_end_no_duplicates_and_one_send_at_a_time_per_phone(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    """Three workers, duplicated jobs, a 30 ms send latency: the sandbox's event log shows that the
    sends of one phone never overlap (each completes at least a latency after the previous one,
    which overlapping calls could not do) and every group's feed has exactly one post."""
    server = await run_sandbox(SandboxSettings(host="127.0.0.1", port=0, rate_limits=False, seed_file=""))
    client = SandboxClient(server.url)
    gateway = SandboxGateway(server.url)
    settings = settings_with(batch_size=3, worker_concurrency=4)
    latency = 0.03
    stop = asyncio.Event()
    workers: list[asyncio.Task[None]] = []
    try:
        async with db.connection() as conn:
            users = await create_world_users(client, gateway, conn, cipher, [1, 2, 3, 4], 7)
        for user in users:
            await client.add_fault("send_message", "latency", phone=user.phone, seconds=latency, times=-1)
        eng = Engine(db, redis_client, gateway, settings, cipher)
        round_ids = await start_round(eng)
        for round_id in round_ids:  # extra instances of every job make the workers contend for locks
            for _ in range(2):
                await redis_client.hdel(eng.queue.dedupe, engine.job_id(round_id))
                await eng.queue.enqueue(engine.job_id(round_id), engine.job_payload(round_id, 0))
        since = max((e["seq"] for e in await client.events()), default=0)
        workers = [asyncio.create_task(run_worker(db, redis_client, gateway, settings, stop, f"sw{n}",
                                                  cipher=cipher)) for n in range(3)]
        deadline = time.monotonic() + 30
        while await open_round_count(db, round_ids):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)

        sends = [e for e in await client.events(since) if e["method"] == "send_message"]
        assert len(sends) == 4 * 7 and all(e["ok"] for e in sends)
        for user in users:
            stamps = sorted(e["ts_ms"] for e in sends if e["phone"] == user.phone)
            assert len(stamps) == 7
            assert min(b - a for a, b in itertools.pairwise(stamps)) >= latency * 1000 * 0.95
            for peer in user.peer_ids:
                assert len(await client.group_messages(peer)) == 1
    finally:
        stop.set()
        await asyncio.gather(*workers, return_exceptions=True)
        await gateway.close()
        await client.close()
        await server.close()


async def test_a_group_hint_left_by_an_earlier_round_is_respected(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    eng, gateway, seeded, round_id = await seeded_engine(db, redis_client, cipher, groups=4, flood_inline_max=30)
    now_ms = int(time.time() * 1000)
    # slow mode seen in an earlier round: group 0 is busy for 1 s, group 1 for 10 min
    hints = keys.ACCOUNT_GROUP_HINTS.format(tg_user_id=10_000 + seeded.user_id)  # seed_user's account
    await redis_client.hset(hints, mapping={str(seeded.group_ids[0]): now_ms + 1000,
                                            str(seeded.group_ids[1]): now_ms + 600_000})

    await eng.run_until_done([round_id])

    assert gateway.calls[-1].peer_id == seeded.peer_ids[0]  # put off, then sent
    assert gateway.calls[-1].started >= now_ms / 1000 + 1.0
    assert gateway.sent_to(seeded.peer_ids[1]) == []
    rows = {r["group_id"]: r for r in await attempt_rows(db, round_id)}
    assert (rows[seeded.group_ids[1]]["status"], rows[seeded.group_ids[1]]["error_code"]) == (
        "skipped", "SLOWMODE_WAIT")
    assert len(gateway.sent()) == 3


async def test_the_last_outcome_is_rescued_when_the_database_drops_mid_batch(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage.repositories import attempts as attempts_repo

    eng, gateway, _seeded, round_id = await seeded_engine(db, redis_client, cipher, groups=3)
    real_claim = attempts_repo.claim
    calls = 0

    async def flaky_claim(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # the connection breaks while the first send's outcome is still unwritten
            raise ConnectionResetError("connection lost")
        return await real_claim(*args, **kwargs)

    monkeypatch.setattr(attempts_repo, "claim", flaky_claim)
    [job] = await eng.queue.fetch(count=1, block_ms=100)
    with pytest.raises(ConnectionResetError):
        await eng.executor.run(job)

    rows = await attempt_rows(db, round_id)
    assert [r["status"] for r in rows] == ["sent", "pending", "pending"]  # recorded, not left sending
    assert rows[0]["sent_message_id"] == gateway.sent()[0].message_id


async def test_a_round_put_off_before_its_first_claim_is_counted_started_once(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    """The round's first claim starts it (its opening statement writes nothing): a first job that claims
    nothing (its only group busy past the inline wait) must not count the round as started, the job
    that claims does, once, with its lag."""
    from metrics import REGISTRY

    eng, gateway, seeded, round_id = await seeded_engine(db, redis_client, cipher, groups=1)
    hints = keys.ACCOUNT_GROUP_HINTS.format(tg_user_id=10_000 + seeded.user_id)  # seed_user's account
    busy_for = eng.engine.max_inline_wait + 0.5  # longer than a job waits inline: put off to a later job
    await redis_client.hset(hints, mapping={str(seeded.group_ids[0]): int((time.time() + busy_for) * 1000)})

    def counted() -> tuple[float, float]:
        return (REGISTRY.get_sample_value("broadcast_rounds_total", {"event": "started"}) or 0.0,
                REGISTRY.get_sample_value("broadcast_round_lag_seconds_count") or 0.0)

    before = counted()
    results = []
    async with asyncio.timeout(30):
        while await open_round_count(db, [round_id]):
            await eng.queue.promote_due()
            jobs = await eng.queue.fetch(count=1, block_ms=100)
            if jobs:
                results.append(await eng.executor.run(jobs[0]))
    assert len(results) >= 2 and results[0] == JobResult.CONTINUED  # the first job sent nothing
    assert len(gateway.sent()) == 1
    started, lag = counted()
    assert (started - before[0], lag - before[1]) == (1, 1)
