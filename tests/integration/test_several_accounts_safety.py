"""U8: one user with two Telegram accounts gets two broadcasts and two independent paces, each sent
with its own session; one Telegram account is never run twice, whichever bot user's row names it."""

from __future__ import annotations

import asyncpg
import pytest
import redis.asyncio as aioredis

from accounts.crypto import SessionCipher
from roles.worker.pacing import Pacing
from storage.account_lock import TelegramAccountLock
from storage.db import Database
from storage.lease import Leases
from storage.round_store import RoundStore
from tests.integration.engine_support import Engine, FakeSender, seed_user, settings_with

pytestmark = pytest.mark.integration

UID = 1
TG_A, TG_B = 10_000 + UID, 77_002  # seed_user's Telegram id for the user's first account, then a second


async def _second_account(conn: asyncpg.Connection, cipher: SessionCipher) -> int:
    """A second Telegram account of user 1 with its own two groups (one chat both are in), message and
    running broadcast, due now."""
    account_id = int(await conn.fetchval(
        """INSERT INTO accounts (user_id, phone, tg_user_id, first_name, session_enc)
           VALUES ($1, '+15550077002', $2, 'B', $3) RETURNING account_id""",
        UID, TG_B, cipher.encrypt("session-b")))
    await conn.execute(
        """INSERT INTO groups (user_id, account_id, peer_id, access_hash, kind, title, selected)
           VALUES ($1, $2, 10001, 1, 'supergroup', 'shared', true), ($1, $2, 99001, 1, 'supergroup', 'b', true)""",
        UID, account_id)
    await conn.execute("INSERT INTO messages (user_id, account_id, version, text) VALUES ($1, $2, 2, 'from b')",
                       UID, account_id)
    await conn.execute(
        """INSERT INTO campaigns (user_id, account_id, status, interval_seconds, next_run_at, started_at)
           VALUES ($1, $2, 'running', 3600, now() - interval '1 second', now() - interval '1 day')""",
        UID, account_id)
    return account_id


async def test_two_accounts_of_one_user_get_a_round_each_sent_with_their_own_session(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    sender = FakeSender()
    eng = Engine(db, redis_client, sender, settings_with(), cipher)
    async with db.connection() as conn:
        seeded = await seed_user(conn, cipher, UID, 2, text="from a")  # peers 10001, 10002
        b = await _second_account(conn, cipher)
        a = int(await conn.fetchval("SELECT account_id FROM accounts WHERE tg_user_id = $1", TG_A))

    assert (await eng.jobs.tick()).created == 2  # one due scan, a round per account
    async with db.connection() as conn:
        rounds = dict(await conn.fetch("SELECT account_id, round_id FROM rounds WHERE user_id = $1", UID))
    assert set(rounds) == {a, b}

    # each round's context names its own account: its Telegram id keys the pace and the lock
    store = RoundStore(db)
    async with store.unit() as unit:
        ctx_a = await unit.start_batch(rounds[a], UID, 10)
        ctx_b = await unit.start_batch(rounds[b], UID, 10)
    assert ctx_a is not None and ctx_b is not None
    assert (ctx_a.account_id, ctx_a.tg_user_id, cipher.decrypt(ctx_a.session_enc or b"")) == (a, TG_A, "session-1")
    assert (ctx_b.account_id, ctx_b.tg_user_id, cipher.decrypt(ctx_b.session_enc or b"")) == (b, TG_B, "session-b")

    await eng.run_until_done(list(rounds.values()))
    by_account = {(c.account_id, c.peer_id, c.text) for c in sender.sent()}
    assert by_account == {(a, 10001, "from a"), (a, 10002, "from a"), (b, 10001, "from b"), (b, 99001, "from b")}
    assert len(seeded.group_ids) == 2


async def test_two_accounts_pace_independently_and_one_telegram_account_is_never_run_twice(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    settings = settings_with(gap_min=600.0, gap_max=601.0)  # a gap no test run outlasts
    pacing = Pacing(redis_client, settings.engine)

    first_a = await pacing.load(TG_A, [])
    assert (await pacing.reserve(first_a, TG_A, UID)).reserved
    # the same Telegram account again, from any row (another account of the user, another bot user
    # before it): the limiter keyed by its Telegram id makes it wait out its gap
    again_a = await pacing.load(TG_A, [])
    verdict = await pacing.reserve(again_a, TG_A, 2)
    assert not verdict.reserved and verdict.wait >= 599
    assert pacing.account_wait(again_a) >= 599
    # the user's other Telegram account has a pace of its own: it may send at once
    first_b = await pacing.load(TG_B, [])
    assert (await pacing.reserve(first_b, TG_B, UID)).reserved

    lock = TelegramAccountLock(Leases(redis_client), ttl=30.0)
    held_a = await lock.try_acquire(TG_A)
    assert held_a is not None
    assert await lock.try_acquire(TG_A) is None  # never two holders of one Telegram account
    held_b = await lock.try_acquire(TG_B)
    assert held_b is not None  # the other account is not held up by it
    await lock.release(held_a)
    await lock.release(held_b)

    # nor two connected rows of it: not for the same user, nor for another one (migration 0010)
    async with db.connection() as conn:
        await seed_user(conn, cipher, UID, 1)
        await conn.execute("INSERT INTO users (user_id) VALUES (2)")
        for uid in (UID, 2):
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute(
                    "INSERT INTO accounts (user_id, phone, tg_user_id, session_enc) VALUES ($1, '+1', $2, $3)",
                    uid, TG_A, cipher.encrypt("again"))
