"""U9.4-U9.6 against real PostgreSQL and Redis: the scheduler plans which message each group gets,
the engine posts it, and a restart (a fresh engine and scheduler) keeps "never twice in a row"."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
import redis.asyncio as aioredis

from accounts.crypto import SessionCipher
from services.messages import MessageDraft, MessageLimitReached, MessageService
from storage.db import Database
from tests.integration.engine_support import Engine, FakeSender, seed_user, settings_with

pytestmark = pytest.mark.integration


async def _messages(db: Database, uid: int, texts: list[str], mode: str) -> MessageService:
    service = MessageService(db, limit=5)
    for text in texts:
        await service.save(uid, MessageDraft(text), add=True)
    await service.set_rotation(uid, mode)
    return service


async def _round(db: Database, eng: Engine, sender: FakeSender) -> dict[int, str]:
    """Make the campaign due, plan and run one round: peer id -> text posted."""
    async with db.connection() as conn:
        await conn.execute("UPDATE campaigns SET next_run_at = now() - interval '1 second'")
    before = len(sender.sent())
    await eng.jobs.tick()
    await eng.run_until_done()
    return {c.peer_id: c.text for c in sender.sent()[before:]}


def _engine(db: Database, redis: aioredis.Redis, sender: FakeSender, cipher: SessionCipher, seed: int) -> Engine:
    eng = Engine(db, redis, sender, settings_with(lease_ttl=1.0), cipher)
    eng.jobs.rng = random.Random(seed)
    return eng


async def test_seq_posts_the_next_message_to_every_group_each_round(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    async with db.connection() as conn:
        seeded = await seed_user(conn, cipher, 1, 3, text="one")
    await _messages(db, 1, ["two", "three"], "seq")
    sender = FakeSender()
    eng = _engine(db, redis_client, sender, cipher, 1)
    seen = [set((await _round(db, eng, sender)).values()) for _ in range(4)]
    assert seen == [{"one"}, {"two"}, {"three"}, {"one"}]
    assert len(seeded.peer_ids) == 3


async def test_rnd_never_gives_a_group_the_same_message_twice_in_a_row_across_restarts(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 6, text="one")
    await _messages(db, 1, ["two", "three"], "rnd")
    sender = FakeSender()
    history: list[dict[int, str]] = []
    for seed in range(5):  # each round by a fresh scheduler and engine, as after a restart
        eng = _engine(db, redis_client, sender, cipher, seed)
        history.append(await _round(db, eng, sender))
    for before, after in itertools.pairwise(history):
        assert set(after) == set(before) and len(after) == 6
        assert all(after[peer] != before[peer] for peer in after)
    assert len({text for each in history for text in each.values()}) == 3
    # the status shows which message each group got
    async with db.connection() as conn:
        got = await conn.fetch("""SELECT a.group_id, m.text FROM attempts a JOIN messages m USING (message_id)
                                  WHERE a.round_id = (SELECT max(round_id) FROM rounds)""")
    assert len(got) == 6


async def test_deleting_a_message_keeps_the_broadcast_on_the_rest_and_the_last_one_stops_it(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 2, text="one")
    service = await _messages(db, 1, ["two"], "seq")
    sender = FakeSender()
    eng = _engine(db, redis_client, sender, cipher, 0)
    assert set((await _round(db, eng, sender)).values()) == {"one"}
    # a round planned with "two", then "two" deleted before it is sent: it posts "one" instead
    async with db.connection() as conn:
        await conn.execute("UPDATE campaigns SET next_run_at = now() - interval '1 second'")
    await eng.jobs.tick()
    deleted = await service.delete(1, 2)
    assert (deleted.outcome, deleted.remaining, deleted.stopped) == ("deleted", 1, False)
    before = len(sender.sent())
    await eng.run_until_done()
    assert {c.text for c in sender.sent()[before:]} == {"one"}
    assert await _campaign(db) == "running"
    last = await service.delete(1, 1)
    assert (last.outcome, last.remaining, last.stopped) == ("deleted", 0, True)
    assert await _campaign(db) == "stopped"
    assert (await service.delete(1, 1)).outcome == "not_found"


async def test_add_is_refused_at_the_limit_and_replace_keeps_the_others(db: Database, cipher: SessionCipher) -> None:
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 1, text="one")
    service = MessageService(db, limit=2)
    await service.save(1, MessageDraft("two"), add=True)
    with pytest.raises(MessageLimitReached):
        await service.save(1, MessageDraft("three"), add=True)
    await service.save(1, MessageDraft("one, edited"))
    assert [(m.number, m.text) for m in await service.active(1)] == [(1, "one, edited"), (2, "two")]


async def _campaign(db: Database) -> Any:
    async with db.connection() as conn:
        return await conn.fetchval("SELECT status FROM campaigns WHERE user_id = 1")


async def test_replacing_a_message_mid_round_changes_the_next_round_not_this_one(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 2, text="one")
    service = await _messages(db, 1, ["two"], "seq")
    sender = FakeSender()
    eng = _engine(db, redis_client, sender, cipher, 0)
    async with db.connection() as conn:
        await conn.execute("UPDATE campaigns SET next_run_at = now() - interval '1 second'")
    await eng.jobs.tick()  # planned with "one"
    await service.save(1, MessageDraft("one, edited"))  # U4.4: from the next round
    await eng.run_until_done()
    assert {c.text for c in sender.sent()} == {"one"}
    assert set((await _round(db, eng, sender)).values()) == {"two"}
    assert set((await _round(db, eng, sender)).values()) == {"one, edited"}
