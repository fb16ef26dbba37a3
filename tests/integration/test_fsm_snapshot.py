"""The user's lock and FSM read in one round trip: isolation across replicas, reads that stay right."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.exceptions import LockError

from roles.bot.fsm import SnapshotIsolation
from roles.bot.role import FSM_TTL, SharedRedisStorage, fsm_key, fsm_key_builder
from roles.bot.states import Input

pytestmark = pytest.mark.integration


def replica(redis_client: aioredis.Redis, **lock: float) -> tuple[SharedRedisStorage, SnapshotIsolation]:
    """A bot replica's FSM storage and isolation (each replica builds its own on one Redis)."""
    storage = SharedRedisStorage(redis_client, key_builder=fsm_key_builder(), state_ttl=FSM_TTL, data_ttl=FSM_TTL)
    return storage, SnapshotIsolation(redis_client, fsm_key_builder(), sleep=0.001, **lock)


async def test_two_replicas_handle_one_users_updates_one_at_a_time(redis_client) -> None:
    key = fsm_key(1, 70)
    inside: list[str] = []
    order: list[str] = []

    async def update(name: str, isolation: SnapshotIsolation, storage: SharedRedisStorage) -> None:
        async with isolation.lock(key):
            inside.append(name)
            assert len(inside) == 1, inside  # never two updates of one user at once
            counter = int((await storage.get_data(key)).get("n", 0))
            await asyncio.sleep(0.01)  # a read-modify-write that would lose an increment if interleaved
            await storage.set_data(key, {"n": counter + 1})
            order.append(name)
            inside.remove(name)

    first, second = replica(redis_client), replica(redis_client)
    await asyncio.gather(*(update(f"u{i}", *(first if i % 2 else second)[::-1]) for i in range(10)))
    assert len(order) == 10
    assert await first[0].get_data(key) == {"n": 10}
    assert await redis_client.exists(fsm_key_builder().build(key, "lock")) == 0  # released


async def test_reads_under_the_lock_come_from_its_snapshot_until_the_update_writes(redis_client) -> None:
    storage, isolation = replica(redis_client)
    key = fsm_key(1, 71)
    await storage.set_state(key, Input.msg_wait)
    await storage.set_data(key, {"draft": "x"})
    calls: list[str] = []
    original = redis_client.execute_command

    async def counted(*args, **kwargs):
        calls.append(str(args[0]))
        return await original(*args, **kwargs)

    redis_client.execute_command = counted
    try:
        async with isolation.lock(key):
            assert calls == ["EVALSHA"]  # the lock, the state and the data in one call
            assert await storage.get_state(key) == Input.msg_wait.state
            assert await storage.get_data(key) == {"draft": "x"}
            assert calls == ["EVALSHA"]  # served from the snapshot
            await storage.set_state(key, None)
            await storage.set_data(key, {})
            assert await storage.get_state(key) is None and await storage.get_data(key) == {}
            assert calls.count("GET") == 2  # after its own writes the update reads Redis again
    finally:
        del redis_client.execute_command
    # outside any lock nothing is cached: a write made elsewhere is seen at once
    await redis_client.set(fsm_key_builder().build(key, "state"), Input.login_code.state)
    assert await storage.get_state(key) == Input.login_code.state


async def test_the_snapshot_ends_with_the_lock(redis_client) -> None:
    storage, isolation = replica(redis_client)
    key = fsm_key(1, 72)
    await storage.set_state(key, Input.msg_wait)
    leftover: asyncio.Task[str | None] | None = None
    release = asyncio.Event()

    async def later() -> str | None:
        await release.wait()
        return await storage.get_state(key)  # a task the handler left behind, after the update ended

    async with isolation.lock(key):
        assert await storage.get_state(key) == Input.msg_wait.state
        leftover = asyncio.create_task(later())
    await storage.set_state(key, Input.login_code)  # the next update changes it
    release.set()
    assert await leftover == Input.login_code.state


async def test_a_lock_held_too_long_is_refused_and_only_its_owner_releases_it(redis_client) -> None:
    _, holder = replica(redis_client)
    _, waiter = replica(redis_client, blocking_timeout=0.05)
    key = fsm_key(1, 73)
    async with holder.lock(key):
        with pytest.raises(LockError):
            async with waiter.lock(key):
                pass
        assert await redis_client.exists(fsm_key_builder().build(key, "lock")) == 1  # the waiter took nothing
    assert await redis_client.exists(fsm_key_builder().build(key, "lock")) == 0
