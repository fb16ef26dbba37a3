"""A job's start in one Redis round trip (storage/job_locks.py): both leases with fencing tokens and
the account's pacing, each lease only when free; and the engine when the payload's Telegram account
is not the round's (it takes the right account's lock and puts the right id in the continuation)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from accounts.crypto import SessionCipher
from accounts.gateway import AccountRef, GroupRef
from services import engine
from storage import keys
from storage.db import Database
from storage.job_locks import JobLocks, PaceRead
from storage.lease import Leases
from storage.queue import Job
from storage.user_lock import UserLock
from tests.integration.engine_support import Engine, FakeSender, seed_user, settings_with

pytestmark = pytest.mark.integration


async def test_take_gets_both_leases_and_the_accounts_pacing(redis_client: aioredis.Redis) -> None:
    leases = Leases(redis_client)
    await redis_client.set(keys.ACCOUNT_NEXT_SEND.format(tg_user_id=777), 123456)
    await redis_client.hset(keys.ACCOUNT_GROUP_HINTS.format(tg_user_id=777), mapping={"5": 999, "6": 1000})
    earlier = await leases.acquire("user:42:account:4201", 30)
    assert earlier is not None and await leases.release(earlier)

    taken = await JobLocks(redis_client, 30).take(42, 4201, 777)

    assert taken.user is not None and taken.account is not None
    # the broadcast's lock: the user's and the round's account row's (U8), named by UserLock.name
    assert taken.user.name == "user:42:account:4201" == UserLock.name(42, 4201)
    assert taken.account.name == "tg-account:777"
    assert taken.user.token > earlier.token  # fencing tokens keep increasing across both scripts
    assert await leases.holder("user:42:account:4201") == taken.user.token
    assert await leases.holder("tg-account:777") == taken.account.token
    assert 0 < await redis_client.pttl(keys.LEASE.format(name="tg-account:777")) <= 30_000
    assert taken.pace == PaceRead(123456.0, {5: 999.0, 6: 1000.0})


async def test_take_leaves_a_held_lease_alone(redis_client: aioredis.Redis) -> None:
    leases, locks = Leases(redis_client), JobLocks(redis_client, 30)
    first = await locks.take(43, 4301, 778)
    assert first.user is not None and first.account is not None

    user_busy = await locks.take(43, 4301, 778)
    assert user_busy.user is None and user_busy.account is None and user_busy.pace is None

    # U8: the same user's other account row is another broadcast, with its own Telegram account
    second = await locks.take(43, 4302, 780)
    assert second.user is not None and second.account is not None
    assert await leases.holder(UserLock.name(43, 4302)) == second.user.token

    await leases.release(first.user)
    account_busy = await locks.take(43, 4301, 778)  # the broadcast is free now, the account is not
    assert account_busy.user is not None and account_busy.account is None and account_busy.pace is None
    assert await leases.holder(UserLock.name(43, 4301)) == account_busy.user.token
    assert await leases.holder("tg-account:778") == first.account.token

    other = await locks.take(44, 4401, 779)  # another user, another account: no pacing keys yet
    assert other.pace == PaceRead(None, {})


async def test_concurrent_takes_share_a_call_and_one_lease_goes_to_one_job(
    redis_client: aioredis.Redis,
) -> None:
    """Issue 14: jobs' starts made at once go in one script call, taken in call order: two jobs of one
    broadcast (a duplicate) get the lease once, jobs of different accounts each get theirs, and a
    job whose Telegram account is another's in the same call finds it busy."""
    leases, locks = Leases(redis_client), JobLocks(redis_client, 30)
    await locks.take(1, 101, 501)  # loads the script
    await redis_client.config_resetstat()
    asks = [(50 + i, 5000 + i, 900 + i) for i in range(10)]
    asks += [(50, 5000, 900), (70, 7000, 905)]  # a duplicate of the first; another user on account 905
    taken = await asyncio.gather(*(locks.take(*ask) for ask in asks))
    for (user_id, account_id, _), got in zip(asks[:10], taken[:10], strict=True):
        assert got.user is not None and got.account is not None
        assert await leases.holder(UserLock.name(user_id, account_id)) == got.user.token
    assert taken[10].user is None  # the duplicate: busy, nothing taken
    assert taken[11].user is not None and taken[11].account is None  # its broadcast's lock, not the account
    assert await leases.holder("tg-account:905") == taken[5].account.token  # type: ignore[union-attr]
    stats = await redis_client.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] <= 2  # not 12: the first alone, the rest together


async def test_a_payload_naming_another_account_sends_under_the_rounds_account(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    leases = Leases(redis_client)
    held_at_send: list[tuple[int | None, int | None]] = []

    async def check(sender: FakeSender, account: AccountRef, group: GroupRef) -> None:
        held_at_send.append((await leases.holder("tg-account:10001"), await leases.holder("tg-account:555")))

    gateway = FakeSender(before_send=check)
    eng = Engine(db, redis_client, gateway, settings_with(), cipher)
    async with db.connection() as conn:
        seeded = await seed_user(conn, cipher, 1, 7)  # Telegram account 10_001
    assert (await eng.jobs.tick()).created == 1
    [job] = await eng.queue.fetch(count=1, block_ms=100)
    assert job.payload["tg_user_id"] == 10_001
    assert job.payload["account_id"] == seeded.account_id
    # as if the user had connected another account since the job was made
    stale = Job(job.id, job.entry_id,
                engine.job_payload(job.payload["round_id"], 1, 555, account_id=seeded.account_id))

    result = await eng.executor.run(stale)

    assert result == engine.JobResult.CONTINUED
    assert [c.account_id for c in gateway.sent()] == [seeded.account_id] * 5  # a batch; 2 groups left
    assert held_at_send and all(ours is not None for ours, _ in held_at_send)
    # every lease of the job went with its settle, the wrong account's too
    assert await leases.holder("tg-account:555") is None
    assert await leases.holder("tg-account:10001") is None
    assert await leases.holder(UserLock.name(1, seeded.account_id)) is None
    await eng.queue.promote_due()
    [continuation] = await eng.queue.fetch(count=1, block_ms=2000)
    assert continuation.id == job.id and continuation.payload["tg_user_id"] == 10_001
    assert continuation.payload["account_id"] == seeded.account_id


async def test_a_batch_stops_when_the_telegram_accounts_lease_is_lost(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher, caplog: pytest.LogCaptureFixture
) -> None:
    """engine.md, one send at a time per account: once the Telegram account's lease is gone (expired
    during a stall and taken by another holder), the batch sends nothing more on that account, as
    when the job's own lock is lost; the other holder's lease is left alone."""
    caplog.set_level("WARNING", logger="services.engine.rounds")
    leases = Leases(redis_client)
    thief = "999999999999999999"
    account_lease = keys.LEASE.format(name="tg-account:10001")

    async def steal_then_wait(sender: FakeSender, account: AccountRef, group: GroupRef) -> None:
        if sender.sent():
            return
        await redis_client.set(account_lease, thief, px=30_000)
        for _ in range(400):  # the job's renewal (every ttl/3) finds the lease gone
            if any("lease was lost mid-batch" in r.getMessage() for r in caplog.records):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the engine never noticed the lost account lease")

    gateway = FakeSender(before_send=steal_then_wait)
    eng = Engine(db, redis_client, gateway, settings_with(), cipher)
    async with db.connection() as conn:
        seeded = await seed_user(conn, cipher, 1, 7)
    assert (await eng.jobs.tick()).created == 1
    [job] = await eng.queue.fetch(count=1, block_ms=100)

    result = await eng.executor.run(job)

    assert len(gateway.sent()) == 1  # the send in flight when the loss was noticed, nothing after it
    assert result == engine.JobResult.CONTINUED
    assert (await redis_client.get(account_lease)) in (thief, thief.encode())  # the other holder's
    assert await leases.holder(UserLock.name(1, seeded.account_id)) is None
