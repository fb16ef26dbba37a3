"""The broadcast lock (``keys.USER_LOCK``) on Redis leases: the one implementation the worker and
the services share (the port ``services.locks.AccountLock``).

U8: a broadcast belongs to an account row, so the lock is keyed by ``(user_id, account_id)``: one
round at a time per account, and one user's accounts keep independent paces. Whoever uses that
account's session outside the worker (logout, group import) holds the same lock. Its metric label
stays ``user`` (``storage.lease.lease_kind``).

The lease has a fencing token and is renewed while held (``Leases.keep``); it is released by
compare-and-delete, and expires on its own after ``ttl`` if its holder dies.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from domain.errors import Busy
from storage import keys
from storage.lease import HeldLease, Lease, LeaseBusy, Leases


def lock_name(user_id: int, account_id: int | None) -> str:
    """The lease name of the broadcast of ``account_id`` (None: a round left without an account)."""
    return keys.USER_LOCK.format(user_id=user_id, account_id="none" if account_id is None else account_id)


class UserLock:
    """Acquire/keep a broadcast's lock (the worker) or hold it with a bounded wait (the services)."""

    def __init__(self, leases: Leases, ttl: float) -> None:
        self.leases = leases
        self.ttl = ttl

    @staticmethod
    def name(user_id: int, account_id: int | None) -> str:
        return lock_name(user_id, account_id)

    async def try_acquire(self, user_id: int, account_id: int | None) -> Lease | None:
        """Take the lock if it is free (no wait); None when someone holds it."""
        return await self.leases.acquire(self.name(user_id, account_id), self.ttl)

    def keep(self, lease: Lease, release: bool = True) -> contextlib.AbstractAsyncContextManager[HeldLease]:
        """Renew an acquired lock while the block runs, release it at the end."""
        return self.leases.keep(lease, release)

    async def release(self, lease: Lease) -> bool:
        return await self.leases.release(lease)

    async def holder(self, user_id: int, account_id: int | None) -> int | None:
        """Fencing token of the current holder, None when the lock is free."""
        return await self.leases.holder(self.name(user_id, account_id))

    @contextlib.asynccontextmanager
    async def hold(self, user_id: int, account_id: int | None, wait: float) -> AsyncIterator[HeldLease]:
        """Hold the lock for the block, waiting up to ``wait`` seconds for it; raises ``Busy``."""
        async with contextlib.AsyncExitStack() as stack:
            try:
                held = await stack.enter_async_context(
                    self.leases.hold(self.name(user_id, account_id), self.ttl, wait))
            except LeaseBusy:
                raise Busy(user_id) from None
            yield held
