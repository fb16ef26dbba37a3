"""Connected clients for sends: one per account per process, a bounded number, idle ones dropped.

Connecting a Telethon client costs a TCP handshake and an ``initConnection`` round trip, so
the worker keeps clients between sends. The pool bounds how many stay connected (least
recently used first out) and disconnects those idle longer than ``idle_timeout``. A client
that is leased is never evicted; the pool may then briefly hold more than ``max_size``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from accounts.gateway import AccountRef
from accounts.telethon.errors import is_session_dead

logger = logging.getLogger(__name__)


# Connecting again after the server closed the connection during the key exchange; Telethon retries
# on its own only when that surfaces as an OSError, while its readers raise IncompleteReadError.
CONNECT_ATTEMPTS = 3


async def connect(client: Any, attempts: int = CONNECT_ATTEMPTS) -> None:
    """``client.connect()``, again (up to ``attempts`` in all) when the server closed the connection
    before it was set up: Telegram may do so during the auth key exchange, and nothing was sent yet."""
    for attempt in range(1, attempts + 1):
        try:
            await client.connect()
            return
        except EOFError as exc:  # asyncio.IncompleteReadError: the connection ended mid-read
            await _disconnect_quietly(client)
            if attempt == attempts:
                raise
            logger.warning("connection closed while connecting (attempt %d of %d): %s",
                           attempt, attempts, exc)


@dataclass(eq=False)
class _Entry:
    client: Any
    session: str
    last_used: float
    in_use: int = 0


class ClientPool:
    """LRU pool of connected clients keyed by account id."""

    def __init__(
        self,
        create: Callable[[str], Any],
        *,
        max_size: int,
        idle_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._create = create
        self.max_size = max(1, max_size)
        self.idle_timeout = idle_timeout
        self._clock = clock
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        # One lock per account seen: a client is created (and connected) once, under its lock.
        self._locks: dict[int, asyncio.Lock] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, account_id: object) -> bool:
        return account_id in self._entries

    @contextlib.asynccontextmanager
    async def lease(self, account: AccountRef) -> AsyncIterator[Any]:
        """A connected client for ``account``; a session found dead on the way is evicted."""
        entry = await self._checkout(account)
        try:
            yield entry.client
        except Exception as exc:
            if is_session_dead(exc):
                await self.discard(account.account_id)
            raise
        finally:
            entry.in_use -= 1
            entry.last_used = self._clock()

    async def _checkout(self, account: AccountRef) -> _Entry:
        if self._closed:
            raise RuntimeError("client pool is closed")
        key = account.account_id
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self._entries.get(key)
            if entry is not None and entry.session != account.session:
                # The account connected again with a new session: the old client is stale.
                await self.discard(key)
                entry = None
            if entry is None:
                entry = await self._connect_new(account)
            else:
                # Reserved before any await so eviction can't disconnect it under our feet.
                entry.in_use += 1
                try:
                    if not entry.client.is_connected():
                        await connect(entry.client)
                except BaseException:
                    entry.in_use -= 1
                    raise
            entry.last_used = self._clock()
            self._entries.move_to_end(key)
        await self._evict_over_capacity()
        self._ensure_reaper()
        return entry

    async def _connect_new(self, account: AccountRef) -> _Entry:
        client = self._create(account.session)
        try:
            await connect(client)
        except BaseException:
            await _disconnect_quietly(client)
            raise
        entry = _Entry(client=client, session=account.session, last_used=self._clock(), in_use=1)
        self._entries[account.account_id] = entry
        logger.debug("client connected for account %s (%d in pool)", account.account_id, len(self._entries))
        return entry

    async def _evict_over_capacity(self) -> None:
        victims: list[tuple[int, _Entry]] = []
        excess = len(self._entries) - self.max_size
        for key, entry in self._entries.items():  # oldest first
            if excess <= 0:
                break
            if entry.in_use == 0:
                victims.append((key, entry))
                excess -= 1
        for key, entry in victims:
            del self._entries[key]
            logger.debug("client of account %s evicted (pool full)", key)
            await _disconnect_quietly(entry.client)

    async def reap_idle(self) -> int:
        """Disconnect clients unused for ``idle_timeout``; returns how many."""
        now = self._clock()
        idle = [
            (key, entry)
            for key, entry in self._entries.items()
            if entry.in_use == 0 and now - entry.last_used >= self.idle_timeout
        ]
        for key, entry in idle:
            if self._entries.get(key) is entry:
                del self._entries[key]
                await _disconnect_quietly(entry.client)
        if idle:
            logger.debug("%d idle clients disconnected", len(idle))
        return len(idle)

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap_forever(), name="telethon-pool-reaper")

    async def _reap_forever(self) -> None:
        period = max(0.01, self.idle_timeout / 4)
        while self._entries:
            await asyncio.sleep(period)
            await self.reap_idle()

    async def discard(self, account_id: int) -> None:
        """Drop and disconnect the account's client, if any (after log-out or a dead session)."""
        entry = self._entries.pop(account_id, None)
        if entry is not None:
            await _disconnect_quietly(entry.client)

    async def close(self) -> None:
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        entries = list(self._entries.values())
        self._entries.clear()
        await asyncio.gather(*(_disconnect_quietly(entry.client) for entry in entries))


async def _disconnect_quietly(client: Any) -> None:
    try:
        await client.disconnect()
    except Exception:  # a broken connection is as disconnected as it gets
        logger.debug("disconnect failed", exc_info=True)
