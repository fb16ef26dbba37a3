"""The per-user lock as the services see it: one user's account is used by one holder at a time.

The worker holds this lock while it sends for the user (engine.md, "one client per account per
process, never the same session in two processes at once"). Services that use the account's
session outside the worker (group import, logout) take the same lock, so they never talk to
Telegram with the session while a broadcast batch does. The implementation lives in storage
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
    """Exclusive use of one user's account (its Telegram session)."""

    def hold(self, user_id: int, wait: float) -> AbstractAsyncContextManager[object]:
        """Hold the user's lock for the block, waiting up to ``wait`` seconds; raises ``Busy``."""
        ...


def holding(lock: AccountLock | None, user_id: int, wait: float) -> AbstractAsyncContextManager[object]:
    """``lock.hold(user_id, wait)``, or no locking at all when ``lock`` is None (unit tests only)."""
    return contextlib.nullcontext() if lock is None else lock.hold(user_id, wait)
