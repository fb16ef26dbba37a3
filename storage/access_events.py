"""Access changes announced by PostgreSQL (migration 0008) keep the bot's ``AccessCache`` honest.

A trigger notifies ``ab_access`` at commit with the user id (or ``*`` for the access mode) of every
change that can alter an access decision, whoever makes it. The cache is enabled only while this
listener is connected and LISTENing: before that, or after the connection is lost, every update
reads the database as it would without a cache, so a missed notification can't keep a stale grant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

import asyncpg

from storage.db import Database

log = logging.getLogger(__name__)

CHANNEL = "ab_access"
HEALTH_EVERY = 5.0  # seconds between checks that the listening connection still answers


class AccessCachePort(Protocol):
    """What the listener needs of ``services.access.AccessCache``."""

    def forget(self, user_id: int) -> None: ...

    def clear(self) -> None: ...

    def set_enabled(self, enabled: bool) -> None: ...


class AccessChangeListener:
    def __init__(self, db: Database, cache: AccessCachePort, retry: float = 1.0) -> None:
        self.db = db
        self.cache = cache
        self.retry = retry
        self.listening = asyncio.Event()  # set while the cache is backed by a live LISTEN

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload.isdigit():
            self.cache.forget(int(payload))
        else:
            self.cache.clear()

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until ``stop`` is set, reconnecting after a lost connection (cache off meanwhile)."""
        while not stop.is_set():
            try:
                await self._listen(stop)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("access change listener: %s; cache off until reconnected", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.retry)

    async def _listen(self, stop: asyncio.Event) -> None:
        lost = asyncio.Event()

        def on_lost(_conn: object) -> None:
            self.cache.set_enabled(False)  # at once: notifications may be missed from now on
            lost.set()

        async with self.db.pool.acquire() as conn:
            conn.add_termination_listener(on_lost)
            await conn.add_listener(CHANNEL, self._on_notify)
            self.cache.set_enabled(True)  # cleared too: nothing read before LISTEN is kept
            self.listening.set()
            try:
                while not stop.is_set() and not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), HEALTH_EVERY)
                    if not stop.is_set():
                        await conn.fetchval("SELECT 1")
            finally:
                self.cache.set_enabled(False)
                self.listening.clear()
                with contextlib.suppress(Exception):
                    await conn.remove_listener(CHANNEL, self._on_notify)
