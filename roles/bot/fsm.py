"""Per-user event isolation that reads the user's FSM state and data in the same round trip.

aiogram's ``RedisEventIsolation`` takes the user's lock (SET NX), then its FSM middleware reads the
state (GET) and the handlers read the data (GET, often twice): three or four round trips to Redis
before a handler can answer. Here one script takes the lock and returns the state and the data,
and the storage serves the update's reads from that snapshot until the update writes the key.

Why a snapshot taken under the lock stays current: FSM state and data are written only by updates,
each under its user's lock (one update per user at a time, across replicas), so nobody else changes
them while the lock is held. The snapshot lives in the update's context only while the lock is
held; a write through the storage drops the key from it first, so the next read goes to Redis.
The lock itself is the one aiogram takes (a key with a random token and an expiry, polled while
busy, released only by its owner), under the same key.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

import redis.asyncio as aioredis
from aiogram.fsm.storage.base import BaseEventIsolation, KeyBuilder, StateType, StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from redis.exceptions import LockError

log = logging.getLogger(__name__)

# the lock taken, then the state and the data read, atomically; {0} when another update holds it
_LOCK_AND_READ = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3])}
end
return {0}
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Redis key -> raw value read under the lock; one dict per held lock, shared with the tasks it spawns
_snapshot: ContextVar[dict[str, Any] | None] = ContextVar("fsm_snapshot", default=None)


class SnapshotIsolation(BaseEventIsolation):
    """One update per user at a time (across replicas); the lock's round trip also reads the FSM."""

    def __init__(self, redis: aioredis.Redis, key_builder: KeyBuilder, *, timeout: float = 60.0,
                 sleep: float = 0.02, blocking_timeout: float = 30.0) -> None:
        self.key_builder = key_builder
        self.timeout_ms = int(timeout * 1000)
        self.sleep = sleep
        self.blocking_timeout = blocking_timeout
        self._acquire = redis.register_script(_LOCK_AND_READ)
        self._release = redis.register_script(_RELEASE)

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        lock_key = self.key_builder.build(key, "lock")
        state_key, data_key = self.key_builder.build(key, "state"), self.key_builder.build(key, "data")
        token = uuid.uuid4().hex
        deadline = time.monotonic() + self.blocking_timeout
        while True:
            reply = await self._acquire(keys=[lock_key, state_key, data_key], args=[token, self.timeout_ms])
            if int(reply[0]) == 1:
                break
            if time.monotonic() >= deadline:
                raise LockError("Unable to acquire lock within the time specified")
            await asyncio.sleep(self.sleep)
        snapshot = {state_key: reply[1], data_key: reply[2]}
        context = _snapshot.set(snapshot)
        try:
            yield None
        finally:
            snapshot.clear()  # a task the handler left running reads Redis from now on
            _snapshot.reset(context)
            if not await self._release(keys=[lock_key], args=[token]):
                log.warning("FSM lock %s expired before its update ended", lock_key)

    async def close(self) -> None:
        return None


def _text(raw: Any) -> str | None:
    return raw.decode("utf-8") if isinstance(raw, bytes) else raw


class SnapshotReads(RedisStorage):
    """RedisStorage whose reads come from the snapshot taken with the user's lock, while it is valid."""

    def _cached(self, name: str) -> tuple[bool, Any]:
        snapshot = _snapshot.get()
        if snapshot is None or name not in snapshot:
            return False, None
        return True, snapshot[name]

    @staticmethod
    def _forget(name: str) -> None:
        snapshot = _snapshot.get()
        if snapshot is not None:
            snapshot.pop(name, None)

    async def get_state(self, key: StorageKey) -> str | None:
        found, raw = self._cached(self.key_builder.build(key, "state"))
        return _text(raw) if found else await super().get_state(key)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        found, raw = self._cached(self.key_builder.build(key, "data"))
        if not found:
            return await super().get_data(key)
        if raw is None:
            return {}
        loaded: dict[str, Any] = self.json_loads(_text(raw))
        return loaded

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        self._forget(self.key_builder.build(key, "state"))
        await super().set_state(key, state)

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        self._forget(self.key_builder.build(key, "data"))
        await super().set_data(key, data)
