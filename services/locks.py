"""The broadcast lock as the services see it: one account is used by one holder at a time.

The worker holds this lock while it sends for an account's broadcast (engine.md, "one client per
account per process, never the same session in two processes at once"); U8 keys it by the account
row ``(user_id, account_id)``, so one user's accounts send side by side. Services that use an
account's session outside the worker (group import, logout) take that account's lock, so they never
talk to Telegram with the session while a broadcast batch does. The implementation lives in storage
(``storage.user_lock.UserLock``, a lease in Redis); this module is the port.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from domain.errors import Busy as Busy  # the error lives in the domain; re-exported for the adapters

# How long a service waits for the lock before giving up with ``Busy``: a broadcast batch
# releases it between batches, so a short wait often finds a gap.
LOCK_WAIT = 5.0


class AccountLock(Protocol):
    """Exclusive use of one of the user's accounts (its Telegram session)."""

    def hold(self, user_id: int, account_id: int | None, wait: float) -> AbstractAsyncContextManager[object]:
        """Hold the account's lock for the block, waiting up to ``wait`` seconds; raises ``Busy``."""
        ...


def holding(lock: AccountLock | None, user_id: int, account_id: int | None,
            wait: float) -> AbstractAsyncContextManager[object]:
    """``lock.hold(user_id, account_id, wait)``, or no locking at all when ``lock`` is None (unit
    tests only)."""
    return contextlib.nullcontext() if lock is None else lock.hold(user_id, account_id, wait)
