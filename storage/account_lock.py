"""The per-Telegram-account lock (``keys.ACCOUNT_LOCK``), keyed by the account's Telegram user id.

Whoever talks to Telegram with an account's session holds it: the worker for a batch of sends, a
service for a group import. Keyed by the Telegram account, so two database rows for one account
(two bot users over time) still share it. Same lease machinery as ``storage.user_lock``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from domain.errors import Busy
from storage import keys
from storage.lease import HeldLease, Lease, LeaseBusy, Leases


class TelegramAccountLock:
    def __init__(self, leases: Leases, ttl: float) -> None:
        self.leases = leases
        self.ttl = ttl

    @staticmethod
    def name(tg_user_id: int) -> str:
        return keys.ACCOUNT_LOCK.format(tg_user_id=tg_user_id)

    async def try_acquire(self, tg_user_id: int) -> Lease | None:
        return await self.leases.acquire(self.name(tg_user_id), self.ttl)

    def keep(self, lease: Lease, release: bool = True) -> contextlib.AbstractAsyncContextManager[HeldLease]:
        return self.leases.keep(lease, release)

    async def release(self, lease: Lease) -> bool:
        return await self.leases.release(lease)

    async def holder(self, tg_user_id: int) -> int | None:
        return await self.leases.holder(self.name(tg_user_id))

    @contextlib.asynccontextmanager
    async def hold(self, tg_user_id: int, wait: float) -> AsyncIterator[HeldLease]:
        """Hold the lock for the block, waiting up to ``wait`` seconds; raises ``Busy``."""
        async with contextlib.AsyncExitStack() as stack:
            try:
                lease = self.leases.hold(self.name(tg_user_id), self.ttl, wait)
                held = await stack.enter_async_context(lease)
            except LeaseBusy:
                raise Busy(tg_user_id) from None
            yield held
