"""The ports the round engine works through; adapters in ``storage/`` and ``roles/worker/`` fill them.

The engine never sees a connection, a Redis client or a Telegram client: one job's database work
goes through a ``RoundUnit`` (one connection for the job, given back during waits), the user's
lock through ``RoundLock``, the Telegram account's through ``AccountLock``, pacing through
``Pacer`` and time through ``EngineClock``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from domain.limits import Verdict
from domain.models import UnknownHistory
from storage.repositories.attempts import Claimed, Outcome, RoundContext, Settled, StoredMessage
from storage.repositories.rounds import FinishedRound
from storage.round_store import StoredMedia


class RoundUnit(Protocol):
    """One job's database work: by-table reads and writes on the job's connection.

    Writes between ``transaction()``'s enter and exit commit together; the others commit one by
    one (a claim must be committed before its send).
    """

    def transaction(self) -> AbstractAsyncContextManager[None]: ...
    async def release(self) -> None:
        """Give the connection back (a long wait follows); the next call takes one again."""
    async def release_if_scarce(self) -> None:
        """Give the connection back during a send when no other is free."""
    async def reset(self) -> None:
        """Drop a broken connection (the database went away); the next call takes a new one."""

    async def round_user(self, round_id: int) -> int | None: ...
    async def start_batch(self, round_id: int, user_id: int, limit: int) -> RoundContext | None: ...
    async def media(self, media_id: int) -> StoredMedia | None: ...
    async def message(self, message_id: int) -> StoredMessage | None:
        """U9: a message an attempt posts other than the round's (rotation, albums)."""
        ...
    async def claim(self, round_id: int, attempt_id: int, message_id: int,
                    previous: Outcome | None) -> Claimed | None: ...
    async def claim_blocker(self, attempt_id: int) -> str: ...
    async def write_outcome(self, outcome: Outcome) -> bool: ...
    async def settle(self, round_id: int, last: Outcome | None, *, finish: bool,
                     summary_extra: dict[str, Any], wait_floor: float, jitter: float) -> Settled:
        """The job's last statement: the last outcome, what is left, and with ``finish`` the round's
        end (nothing left: counters, summary notification) or its next job's due time."""
    async def expect_job(self, round_id: int, delay: float) -> None:
        """Record that the round's next job is due in ``delay`` seconds (reconciliation reads it)."""
    async def defer(self, attempt_id: int, seconds: float) -> None: ...
    async def skip(self, attempt_id: int, code: str, detail: str) -> bool: ...
    async def skip_open(self, round_id: int, code: str, detail: str) -> int: ...
    async def migrate_group(self, round_id: int, user_id: int, attempt_id: int, group_id: int,
                            new_peer_id: int, new_access_hash: int) -> bool:
        """Re-point the group and the attempt at the supergroup (one transaction); False when the
        user already has that supergroup with its own attempt in this round (this one is skipped)."""
    async def unknown_error_history(self, round_id: int, user_id: int, group_id: int, attempt_id: int,
                                    code: str) -> UnknownHistory:
        """This round's and the previous round's attempts around an error no table knows."""
    async def restriction_told(self, account_id: int | None, code: str) -> bool:
        """Whether the user already heard of this account restriction (read before the new pause)."""
    async def disable_group(self, group_id: int, reason: str) -> str | None: ...
    # U8: a broadcast and its pauses belong to the round's account (``RoundContext.account_id``)
    async def pause_campaign(self, account_id: int | None, seconds: float,
                             reason: str) -> datetime | None: ...
    async def paused_until(self, account_id: int | None) -> tuple[datetime | None, datetime] | None: ...
    async def stop_campaign(self, account_id: int | None) -> None: ...
    async def disconnect_account(self, account_id: int | None, reason: str) -> None: ...
    async def finish_round(self, round_id: int, status: str) -> FinishedRound | None: ...
    async def notify(self, user_id: int, kind: str, payload: dict[str, Any], dedupe_key: str) -> None: ...


class RoundStore(Protocol):
    """Opens one ``RoundUnit`` per job and closes it (giving the connection back) at its end."""

    def unit(self) -> AbstractAsyncContextManager[RoundUnit]: ...


class HeldLock(Protocol):
    @property
    def lost(self) -> asyncio.Event: ...


class RoundLock(Protocol):
    """The per-user lock (``storage.user_lock.UserLock``): a try without waiting, kept while held."""

    async def try_acquire(self, user_id: int) -> Any | None: ...
    def keep(self, lease: Any, release: bool = True) -> AbstractAsyncContextManager[HeldLock]:
        """Renew while the block runs; release at its end unless ``release`` is False (then the
        job's settle releases it with the queue change, or ``release`` does)."""
    async def release(self, lease: Any) -> bool: ...


class AccountLock(Protocol):
    """The Telegram account's own lock (``storage.account_lock.TelegramAccountLock``), keyed by its
    Telegram user id: whoever uses the account's session holds it, whichever bot user's row it is."""

    async def try_acquire(self, tg_user_id: int) -> Any | None: ...
    def keep(self, lease: Any, release: bool = True) -> AbstractAsyncContextManager[HeldLock]: ...
    async def release(self, lease: Any) -> bool: ...


class Pacer(Protocol):
    """Per-account turns (keyed by the Telegram user id) and per-group hints
    (``roles.worker.pacing.Pacing``, with the account limiter ``storage.send_limiter`` behind it);
    ``state`` is its own."""

    async def load(self, tg_user_id: int, group_ids: Iterable[int], floor: float = 0.0) -> Any: ...
    def account_wait(self, state: Any) -> float: ...
    def group_wait(self, state: Any, group_id: int) -> float: ...
    async def reserve(self, state: Any, key: int, user_id: int) -> Verdict:
        """Ask the account limiter (keyed by ``key``, the Telegram user id) for a send now: reserved
        (counted, the gap or rest after it in the state) or when to ask again."""
    def report(self, state: Any) -> dict[str, float | int]:
        """The account's pacing for the round report (empty when nothing was reserved)."""
    def account_flood(self, state: Any, seconds: float, widen: bool) -> None: ...
    def group_flood(self, state: Any, group_id: int, seconds: float) -> None: ...
    async def save(self, state: Any) -> None: ...


class Cipher(Protocol):
    def decrypt(self, token: bytes) -> str: ...


class EngineClock(Protocol):
    """Monotonic time and sleeping, injected so tests move time instead of waiting for it."""

    def monotonic(self) -> float: ...
    async def sleep(self, seconds: float) -> None: ...


class LoopClock:
    """The event loop's clock: the engine's time in production."""

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
