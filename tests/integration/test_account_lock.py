"""The broadcast lock (per account row, U8) shared by the worker and the services that use the account's session
(group import, logout): never two users of one session at once (engine.md, "one send at a time
per account"; one client per account). Real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis

from accounts.crypto import SessionCipher
from accounts.gateway import AccountRef, GroupInfo
from config.settings import Settings
from roles.worker.loop import run_worker
from services.groups import GroupService
from services.locks import Busy
from services.login import LoginService
from storage.db import Database
from storage.lease import Leases
from storage.queue import Job
from storage.user_lock import UserLock
from tests.integration.engine_support import Engine, FakeSender, seed_user, settings_with
from tests.integration.services_support import group

pytestmark = pytest.mark.integration

UID = 5


@dataclass
class SessionUser(FakeSender):
    """A gateway whose sends, group listings and logouts all count as uses of the account's session."""

    listing: float = 0.05  # seconds a group listing takes
    groups: list[GroupInfo] = field(default_factory=lambda: [group(1, "A"), group(2, "B")])
    uses: list[tuple[str, float, float]] = field(default_factory=list)  # (what, started, ended)
    logged_out: list[str] = field(default_factory=list)

    async def _use(self, account: AccountRef, what: str, seconds: float) -> None:
        started = time.time()
        self.in_flight[account.account_id] += 1
        self.max_in_flight[account.account_id] = max(self.max_in_flight[account.account_id],
                                                      self.in_flight[account.account_id])
        try:
            await asyncio.sleep(seconds)
        finally:
            self.in_flight[account.account_id] -= 1
            self.uses.append((what, started, time.time()))

    async def list_groups(self, account: AccountRef) -> list[GroupInfo]:
        await self._use(account, "list", self.listing)
        return list(self.groups)

    async def log_out(self, account: AccountRef) -> None:
        self.logged_out.append(account.session)
        await self._use(account, "log_out", 0.01)

    def used(self, what: str) -> list[tuple[float, float]]:
        return [(s, e) for w, s, e in self.uses if w == what]


def _settings(**engine: float) -> Settings:
    return settings_with(lease_ttl=5.0, **engine)


def _lock(redis: aioredis.Redis, settings: Settings) -> UserLock:
    return UserLock(Leases(redis), settings.engine.lease_ttl)


async def _seed(db: Database, cipher: SessionCipher, groups: int = 2) -> int:
    async with db.connection() as conn:
        seeded = await seed_user(conn, cipher, UID, groups)
    return seeded.account_id


async def test_import_waits_for_the_lock_then_gives_up_busy(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    settings = _settings()
    account_id = await _seed(db, cipher)
    gateway = SessionUser()
    lock = _lock(redis_client, settings)
    groups = GroupService(db, gateway, cipher, settings, lock=lock, lock_wait=0.6)
    lease = await lock.try_acquire(UID, account_id)  # as the worker takes it for a batch
    assert lease is not None
    async with lock.keep(lease):
        started = time.time()
        with pytest.raises(Busy) as caught:
            await groups.import_groups(UID)
        assert time.time() - started >= 0.6  # it waited before giving up
        assert caught.value.user_id == UID
        assert gateway.uses == []  # the session was never touched while the lock was held
        assert await lock.holder(UID, account_id) == lease.token  # and the holder keeps it
    assert await lock.holder(UID, account_id) is None
    result = await groups.import_groups(UID)
    assert (result.new, result.gone) == (2, 2)  # the listed ones are new, the seeded ones gone
    assert len(gateway.used("list")) == 1
    assert await lock.holder(UID, account_id) is None  # released after the import


async def test_import_proceeds_as_soon_as_the_lock_is_released(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    settings = _settings()
    account_id = await _seed(db, cipher)
    gateway = SessionUser(groups=[group(1, "A"), group(2, "B"), group(3, "C")])
    lock = _lock(redis_client, settings)
    groups = GroupService(db, gateway, cipher, settings, lock=lock, lock_wait=5.0)
    lease = await lock.try_acquire(UID, account_id)
    assert lease is not None
    importing = asyncio.create_task(groups.import_groups(UID))
    await asyncio.sleep(0.4)
    assert not importing.done()
    assert gateway.uses == []
    released_at = time.time()
    assert await lock.leases.release(lease)
    result = await asyncio.wait_for(importing, 3.0)
    assert result.new == 3
    [(listed_at, _)] = gateway.used("list")
    assert released_at <= listed_at < released_at + 1.0


async def test_worker_and_import_never_use_the_session_at_once(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 30 groups = 6 batches of 5 sends; the gaps between batches are where imports get in
    settings = _settings(gap_min=0.03, gap_max=0.05, worker_concurrency=4)
    account_id = await _seed(db, cipher, groups=30)
    gateway = SessionUser(latency=0.02, listing=0.03)
    engine = Engine(db, redis_client, gateway, settings, cipher)
    assert (await engine.jobs.tick()).created == 1
    groups = GroupService(db, gateway, cipher, settings, lock=_lock(redis_client, settings), lock_wait=5.0)
    # the interleaving, made certain rather than hoped for: once the first batch has handed its job back
    # (and its locks with it), the worker's next fetched job waits until an import has run
    queue, batch_done, imported = engine.queue, asyncio.Event(), asyncio.Event()
    real_settle, real_requeue, real_fetch = queue.settle, queue.requeue, queue.fetch

    async def settle(*args: Any, **kwargs: Any) -> None:
        await real_settle(*args, **kwargs)
        batch_done.set()

    async def requeue(*args: Any, **kwargs: Any) -> bool:
        requeued = await real_requeue(*args, **kwargs)
        batch_done.set()
        return requeued

    async def fetch(*args: Any, **kwargs: Any) -> list[Job]:
        jobs = await real_fetch(*args, **kwargs)
        if jobs and batch_done.is_set():
            await imported.wait()
        return jobs

    monkeypatch.setattr(queue, "settle", settle)
    monkeypatch.setattr(queue, "requeue", requeue)
    monkeypatch.setattr(queue, "fetch", fetch)
    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_worker(db, redis_client, gateway, settings, stop, "w1", cipher=cipher, queue=queue))
    imports = 0
    try:
        await asyncio.wait_for(batch_done.wait(), 30.0)
        first_batch = len(gateway.sent())
        await groups.import_groups(UID)  # the lock is free: the round's job is between batches
        imports += 1
        imported.set()
        while len(gateway.sent()) < 30:  # and more imports race the rest of the round for the lock
            await groups.import_groups(UID)
            imports += 1
            assert not worker.done()
            await asyncio.sleep(0.1)  # a person pressing the import button again
    finally:
        imported.set()
        stop.set()
        await asyncio.wait_for(worker, 10.0)
    assert 0 < first_batch < 30
    assert imports >= 2
    assert len(gateway.sent()) == 30
    assert gateway.max_in_flight[account_id] == 1
    # the first import ran while the round was in progress, between two of its batches
    sends = sorted(c.started for c in gateway.sent())
    first_listing = min(start for start, _ in gateway.used("list"))
    assert sends[first_batch - 1] < first_listing < sends[first_batch]


async def test_logout_stops_the_round_and_logs_out_under_the_lock(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    settings = _settings(gap_min=0.1, gap_max=0.15, worker_concurrency=2)
    account_id = await _seed(db, cipher, groups=40)
    gateway = SessionUser(latency=0.02)
    engine = Engine(db, redis_client, gateway, settings, cipher)
    assert (await engine.jobs.tick()).created == 1
    login = LoginService(db, gateway, cipher, settings, lock=_lock(redis_client, settings), lock_wait=2.0)
    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_worker(db, redis_client, gateway, settings, stop, "w1", cipher=cipher, queue=engine.queue))
    try:
        while len(gateway.sent()) < 3:  # noqa: ASYNC110 - waiting for the round to be under way
            await asyncio.sleep(0.01)
        assert await login.logout(UID) is True
        [(logged_out_at, _)] = gateway.used("log_out")
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10.0)
    assert gateway.max_in_flight[account_id] == 1
    assert all(c.ended <= logged_out_at for c in gateway.calls)  # nothing sent after the logout began
    assert len(gateway.sent()) < 40
    async with db.connection() as conn:
        campaign = await conn.fetchval("SELECT status FROM campaigns WHERE user_id = $1", UID)
        account = await conn.fetchval("SELECT session_enc FROM accounts WHERE user_id = $1", UID)
        open_rounds = await conn.fetchval("SELECT count(*) FROM rounds WHERE finished_at IS NULL")
    assert (campaign, account, open_rounds) == ("stopped", None, 0)


async def test_logout_busy_keeps_the_account_until_called_again(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    settings = _settings()  # gap_max 0: logout waits lock_wait + 1 s for a stopped batch
    account_id = await _seed(db, cipher)
    gateway = SessionUser()
    lock = _lock(redis_client, settings)
    login = LoginService(db, gateway, cipher, settings, lock=lock, lock_wait=0.2)
    assert login.logout_wait == pytest.approx(1.2)
    lease = await lock.try_acquire(UID, account_id)
    assert lease is not None
    async with lock.keep(lease):
        with pytest.raises(Busy):
            await login.logout(UID)
        assert gateway.logged_out == []
    async with db.connection() as conn:
        row = await conn.fetchrow(
            """SELECT c.status, a.session_enc IS NOT NULL AS has_session
               FROM campaigns c JOIN accounts a USING (user_id) WHERE c.user_id = $1""", UID)
    assert (row["status"], row["has_session"]) == ("stopped", True)  # stopped first, still connected
    assert await login.logout(UID) is True
    assert len(gateway.logged_out) == 1
    assert await login.logout(UID) is False

