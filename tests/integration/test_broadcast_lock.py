"""U8: the engine's job lock belongs to the broadcast, i.e. the account row ``(user, account)``, not to
the user (storage/user_lock.py). One user's two accounts run their batches at the same time (a job of
account A holding its lock, pacing gaps included, never makes account B's job BUSY), a service acting
on account A waits for A's job but not for B's, and a job queued by the previous release (no account
in its payload) still takes the round's own account's lock. Real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import contextlib

import orjson
import pytest
import redis.asyncio as aioredis

from accounts.crypto import SessionCipher
from accounts.gateway import AccountRef, GroupRef
from services import engine
from services.engine import JobResult
from services.groups import GroupService
from services.locks import Busy
from services.login import LoginService
from storage.db import Database
from storage.lease import Lease, Leases
from storage.queue import Job
from storage.user_lock import UserLock
from tests.integration.engine_support import Engine, FakeSender, seed_user, settings_with
from tests.integration.test_account_lock import SessionUser
from tests.integration.test_several_accounts_safety import UID, _second_account

pytestmark = pytest.mark.integration


async def _two_accounts(db: Database, cipher: SessionCipher) -> tuple[int, int]:
    """User ``UID`` with account A (current, groups 10001-10002) and account B (10001, 99001), both
    broadcasts running and due."""
    async with db.connection() as conn:
        await seed_user(conn, cipher, UID, 2, text="from a")
        b = await _second_account(conn, cipher)
        a = int(await conn.fetchval("SELECT account_id FROM accounts WHERE user_id = $1 AND account_id <> $2",
                                    UID, b))
        assert await conn.fetchval("SELECT current_account_id FROM users WHERE user_id = $1", UID) == a
    return a, b


async def _a_sends_once_released(eng: Engine, gateway: FakeSender, leases: Leases, held: Lease, job: Job,
                                 a: int) -> None:
    """Once ``held`` (A's lock) is let go, A's round runs to its end: both of A's groups get the post."""
    await leases.release(held)
    await eng.run_until_done([int(job.payload["round_id"])])
    assert sorted(c.peer_id for c in gateway.sent() if c.account_id == a) == [10001, 10002]


async def _jobs_by_account(eng: Engine) -> dict[int, Job]:
    assert (await eng.jobs.tick()).created == 2  # a round per account
    jobs = await eng.queue.fetch(count=2, block_ms=100)
    return {int(job.payload["account_id"]): job for job in jobs}


async def test_one_users_two_accounts_run_their_batches_at_the_same_time(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    leases = Leases(redis_client)
    a_parked, b_sent = asyncio.Event(), asyncio.Event()
    a_saw_b: list[bool] = []
    a_held_at_b_send: list[int | None] = []

    async def hook(sender: FakeSender, account: AccountRef, group: GroupRef) -> None:
        if account.account_id == b:
            # B sends while A's job holds A's lock (A is parked in its first send below)
            a_held_at_b_send.append(await leases.holder(UserLock.name(UID, a)))
            b_sent.set()
        elif not a_saw_b:
            # A's job holds its lock and waits here until B has sent: with one lock per user B's job
            # would be BUSY and this wait would end unset
            a_parked.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(b_sent.wait(), 10)
            a_saw_b.append(b_sent.is_set())

    gateway = FakeSender(before_send=hook)
    eng = Engine(db, redis_client, gateway, settings_with(), cipher)
    a, b = await _two_accounts(db, cipher)
    jobs = await _jobs_by_account(eng)
    assert set(jobs) == {a, b}

    run_a = asyncio.create_task(eng.executor.run(jobs[a]))
    await asyncio.wait_for(a_parked.wait(), 10)  # A's job is at its first send, its lock held
    result_b = await eng.executor.run(jobs[b])
    result_a = await run_a

    assert result_b == JobResult.DONE and result_a == JobResult.DONE  # neither was ever BUSY
    assert a_saw_b == [True]
    assert a_held_at_b_send and all(token is not None for token in a_held_at_b_send)
    assert sorted((c.account_id, c.peer_id) for c in gateway.sent()) == sorted(
        [(a, 10001), (a, 10002), (b, 10001), (b, 99001)])
    assert await leases.holder(UserLock.name(UID, a)) is None and await leases.holder(UserLock.name(UID, b)) is None


async def test_a_job_of_account_a_is_busy_while_as_lock_is_held_and_b_is_not(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    gateway = FakeSender()
    eng = Engine(db, redis_client, gateway, settings_with(), cipher)
    leases = Leases(redis_client)
    a, b = await _two_accounts(db, cipher)
    jobs = await _jobs_by_account(eng)
    held = await leases.acquire(UserLock.name(UID, a), 30)  # as A's job holds it for a batch
    assert held is not None

    assert await eng.executor.run(jobs[b]) == JobResult.DONE
    assert await eng.executor.run(jobs[a]) == JobResult.BUSY
    assert {c.account_id for c in gateway.sent()} == {b}  # nothing sent for A under another's lock
    assert await leases.holder(UserLock.name(UID, a)) == held.token
    assert await eng.queue.is_queued(engine.job_id(int(jobs[a].payload["round_id"])))

    await _a_sends_once_released(eng, gateway, leases, held, jobs[a], a)


async def test_a_job_of_the_previous_release_takes_its_rounds_account_lock(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    """A payload without ``account_id`` (queued before the change): the engine reads the round's
    owner and locks that account, so a holder of the account's lock (a job, a service) keeps it out,
    and it comes back from BUSY with the account in its payload."""
    leases = Leases(redis_client)
    held_at_send: list[int | None] = []

    async def hook(sender: FakeSender, account: AccountRef, group: GroupRef) -> None:
        held_at_send.append(await leases.holder(UserLock.name(UID, account.account_id)))

    gateway = FakeSender(before_send=hook)
    eng = Engine(db, redis_client, gateway, settings_with(), cipher)
    a, b = await _two_accounts(db, cipher)
    jobs = await _jobs_by_account(eng)
    legacy = {acc: Job(job.id, job.entry_id, {"round_id": job.payload["round_id"], "user_id": UID})
              for acc, job in jobs.items()}
    held = await leases.acquire(UserLock.name(UID, a), 30)
    assert held is not None

    assert await eng.executor.run(legacy[a]) == JobResult.BUSY  # A's lock, not a user-wide one
    assert await eng.executor.run(legacy[b]) == JobResult.DONE  # B's lock was free
    assert {c.account_id for c in gateway.sent()} == {b}
    assert len(held_at_send) == 2 and all(token is not None for token in held_at_send)  # under B's lock

    # the BUSY job went back to the delayed set with its account named
    raw = await redis_client.hget(eng.queue.payloads, jobs[a].id)
    assert raw is not None and orjson.loads(raw) == {"round_id": int(jobs[a].payload["round_id"]),
                                                     "user_id": UID, "account_id": a}
    await _a_sends_once_released(eng, gateway, leases, held, jobs[a], a)


async def test_a_service_acting_on_account_a_waits_for_as_job_but_not_for_bs(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    settings = settings_with(lease_ttl=5.0)
    a, b = await _two_accounts(db, cipher)  # A is the current account: the group menus act on it
    gateway = SessionUser()
    lock = UserLock(Leases(redis_client), settings.engine.lease_ttl)
    groups = GroupService(db, gateway, cipher, settings, lock=lock, lock_wait=0.3)
    login = LoginService(db, gateway, cipher, settings, lock=lock, lock_wait=0.3)

    lease_b = await lock.try_acquire(UID, b)  # B's job is in a batch
    assert lease_b is not None
    async with lock.keep(lease_b):
        result = await groups.import_groups(UID)  # on A: never waits for B's lock (it would be Busy)
        assert result.total == 2
        assert await lock.holder(UID, b) == lease_b.token
    assert len(gateway.used("list")) == 1

    lease_a = await lock.try_acquire(UID, a)  # A's job is in a batch
    assert lease_a is not None
    async with lock.keep(lease_a):
        with pytest.raises(Busy):
            await groups.import_groups(UID)  # on A: waits for A's lock, then gives up
        assert len(gateway.used("list")) == 1  # A's session was not used while A's job held it
        assert await login.logout(UID, "logout", account_id=b)  # B's logout does not wait for A
        assert gateway.logged_out == ["session-b"]
        assert await lock.holder(UID, a) == lease_a.token
    async with db.connection() as conn:
        statuses = dict(await conn.fetch("SELECT account_id, status FROM accounts WHERE user_id = $1", UID))
    assert statuses == {a: "connected", b: "disconnected"}


async def test_reconciliation_sees_a_live_holder_of_the_rounds_account_lock_only(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    """Redis lost: a round whose account's lock has a holder is left alone, the other account's round
    of the same user (its lock free, no job) is enqueued again once a lease has passed."""
    eng = Engine(db, redis_client, FakeSender(), settings_with(), cipher)
    a, b = await _two_accounts(db, cipher)
    assert (await eng.jobs.tick()).created == 2
    async with db.connection() as conn:
        rounds = dict(await conn.fetch("SELECT account_id, round_id FROM rounds WHERE user_id = $1", UID))
        await conn.execute("UPDATE rounds SET created_at = now() - interval '1 minute'")
    await redis_client.flushall()
    held = await eng.leases.acquire(UserLock.name(UID, a), 30)
    assert held is not None

    class Step:
        now = 0.0

        def __call__(self) -> float:
            return self.now

    clock = Step()
    eng.jobs.clock = clock
    assert await eng.jobs.reconcile() == 0  # first sighting
    clock.now += eng.settings.engine.lease_ttl
    assert await eng.jobs.reconcile() == 1
    assert await eng.queue.is_queued(engine.job_id(rounds[b]))
    assert not await eng.queue.is_queued(engine.job_id(rounds[a]))  # A's lock has a live holder
    [job] = await eng.queue.fetch(count=1, block_ms=100)
    assert job.payload["account_id"] == b  # reconciliation's job names the round's account

