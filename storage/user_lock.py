"""The per-user lock (``keys.USER_LOCK``) on Redis leases: the one implementation the worker and
the services share (the port ``services.locks.AccountLock``).

The lease has a fencing token and is renewed while held (``Leases.keep``); it is released by
compare-and-delete, and expires on its own after ``ttl`` if its holder dies.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from domain.errors import Busy
from storage import keys
from storage.lease import HeldLease, Lease, LeaseBusy, Leases


class UserLock:
    """Acquire/keep the user's lock (the worker) or hold it with a bounded wait (the services)."""

    def __init__(self, leases: Leases, ttl: float) -> None:
        self.leases = leases
        self.ttl = ttl

    @staticmethod
    def name(user_id: int) -> str:
        return keys.USER_LOCK.format(user_id=user_id)

    async def try_acquire(self, user_id: int) -> Lease | None:
        """Take the lock if it is free (no wait); None when someone holds it."""
        return await self.leases.acquire(self.name(user_id), self.ttl)

    def keep(self, lease: Lease, release: bool = True) -> contextlib.AbstractAsyncContextManager[HeldLease]:
        """Renew an acquired lock while the block runs, release it at the end."""
        return self.leases.keep(lease, release)

    async def release(self, lease: Lease) -> bool:
        return await self.leases.release(lease)

    async def holder(self, user_id: int) -> int | None:
        """Fencing token of the current holder, None when the lock is free."""
        return await self.leases.holder(self.name(user_id))

    @contextlib.asynccontextmanager
    async def hold(self, user_id: int, wait: float) -> AsyncIterator[HeldLease]:
        """Hold the lock for the block, waiting up to ``wait`` seconds for it; raises ``Busy``."""
        async with contextlib.AsyncExitStack() as stack:
            try:
                held = await stack.enter_async_context(self.leases.hold(self.name(user_id), self.ttl, wait))
            except LeaseBusy:
                raise Busy(user_id) from None
            yield held
