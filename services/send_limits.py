"""Send caps as admins set them (bot ``/limits``, admin API ``/api/limits``) and pacing as users see it.

Caps come from three layers: the ``SEND_LIMIT_*`` settings, an admin's global override, an admin's
per-user override (``domain.limits.CapsBook``). Every change is audit-logged in the transaction
that makes it; workers read the book again within ``SEND_LIMIT_REFRESH`` seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from config.settings import Settings
from domain import limits
from domain.limits import AccountPace, Caps, CapsBook, Policy
from domain.models import Clock, utc_now
from services.admin import Actor, AdminOutcome, AdminResult, AdminService
from storage.db import Database
from storage.repositories import accounts, audit, send_caps, users

log = logging.getLogger(__name__)


class LimiterReader(Protocol):
    """The limiter's state of one Telegram account (``storage.send_limiter.SendLimiter``)."""

    async def snapshot(self, account: int) -> AccountPace: ...

    def now(self) -> float | None: ...


async def load_book(db: Database, defaults: Caps) -> CapsBook:
    """The caps in force for everyone, in one connection (what the workers cache)."""
    async with db.connection() as conn:
        return CapsBook(defaults, await send_caps.global_caps(conn), await send_caps.all_user_caps(conn))


@dataclass(frozen=True)
class LimitsView:
    """The caps in force: defaults, global, and (for one user) their override and effective caps."""

    defaults: Caps
    global_caps: Caps
    user_id: int | None = None
    user_changes: Mapping[str, int | None] | None = None  # None: no override for this user
    effective: Caps | None = None


@dataclass(frozen=True)
class PacingView:
    """What the user sees of the limiter: "paced: 48/250 this hour, next send in 1 min 40 s"."""

    hour_count: int
    hour_cap: int
    next_send_in: float  # seconds (0: may send now)
    reason: str  # why the next send waits (domain.limits.REASONS)
    resting_until: datetime | None
    rest_after: int
    round_ends_at: datetime | None  # likely end of the current round, None when no round is open


class SendLimitsService:
    """Caps per user for admins, and the account's pacing for the user's status and main card."""

    def __init__(self, db: Database, settings: Settings, admin: AdminService,
                 reader: LimiterReader | None = None, now: Clock = utc_now) -> None:
        self.db = db
        self.settings = settings
        self.admin = admin
        self.reader = reader
        self.now = now
        self.defaults = Caps.from_settings(settings.engine)
        self.policy = Policy.from_settings(settings.engine)

    # --- admin ----------------------------------------------------------------------------------

    async def show(self, actor: Actor, user_id: int | None = None) -> LimitsView | None:
        """The caps in force (globally, or for one user); None: no such user."""
        await self.admin.authorize(actor, "limits", user_id)
        async with self.db.connection() as conn:
            book = CapsBook(self.defaults, await send_caps.global_caps(conn))
            if user_id is None:
                return LimitsView(self.defaults, book.global_caps)
            if await users.get(conn, user_id) is None:
                return None
            changes = await send_caps.user_caps(conn, user_id)
        return LimitsView(self.defaults, book.global_caps, user_id, changes or None,
                          book.global_caps.with_changes(changes))

    async def set_global(self, actor: Actor, raw: Mapping[str, Any]) -> AdminResult:
        """Change the global caps; ``ValueError`` (nothing changed) for a bad window or value."""
        await self.admin.authorize(actor, "limits")
        changes = limits.parse_caps(raw)
        if not changes:
            raise ValueError("name at least one window: minute, hour or day")
        async with self.db.transaction() as conn:
            previous = await send_caps.global_caps(conn)
            merged = {**previous, **changes}
            before = self.defaults.with_changes(previous).as_dict()
            after = self.defaults.with_changes(merged).as_dict()
            outcome: AdminOutcome = "no_change" if before == after else "ok"
            if outcome == "ok":
                await send_caps.put_global(conn, merged, self.now())
            return await self._done(conn, actor, None, outcome, {"before": before, "after": after})

    async def set_user(self, actor: Actor, user_id: int, raw: Mapping[str, Any]) -> AdminResult:
        """Change one user's caps (other windows keep following the global caps)."""
        await self.admin.authorize(actor, "limits", user_id)
        changes = limits.parse_caps(raw)
        if not changes:
            raise ValueError("name at least one window: minute, hour or day")
        async with self.db.transaction() as conn:
            if await users.get(conn, user_id) is None:
                return await self._done(conn, actor, user_id, "not_found")
            previous = await send_caps.user_caps(conn, user_id)
            if previous and all(previous.get(name) == value for name, value in changes.items()):
                return await self._done(conn, actor, user_id, "no_change", {"caps": previous})
            merged: dict[str, int | None] = {**previous, **changes}
            await send_caps.put_user(conn, user_id, merged, self.now())
            return await self._done(conn, actor, user_id, "ok", {"before": previous, "after": merged})

    async def reset_user(self, actor: Actor, user_id: int) -> AdminResult:
        """Drop one user's override: the global caps apply again."""
        await self.admin.authorize(actor, "limits", user_id)
        async with self.db.transaction() as conn:
            if await users.get(conn, user_id) is None:
                return await self._done(conn, actor, user_id, "not_found")
            previous = await send_caps.user_caps(conn, user_id)
            if not await send_caps.delete_user(conn, user_id):
                return await self._done(conn, actor, user_id, "no_change", {"reset": True})
            return await self._done(conn, actor, user_id, "ok", {"reset": True, "before": previous})

    async def _done(self, conn: Any, actor: Actor, user_id: int | None, outcome: AdminOutcome,
                    detail: dict[str, Any] | None = None) -> AdminResult:
        result = AdminResult(outcome, user_id, dict(detail or {}))
        audit_detail: dict[str, Any] = {**result.detail, "result": outcome}
        if actor.name:
            audit_detail.setdefault("actor_name", actor.name)
        await audit.write(conn, actor_kind=actor.kind, actor_id=actor.user_id, action="limits",
                          target_user_id=user_id, outcome="failed" if outcome == "not_found" else "ok",
                          detail=audit_detail, now=self.now())
        if outcome == "ok":
            log.info("send caps changed actor=%s user_id=%s detail=%s", actor.user_id or actor.name, user_id,
                     result.detail)
        return result

    # --- the user's view ------------------------------------------------------------------------

    async def pacing(self, user_id: int, open_sends: int) -> PacingView | None:
        """The account's pacing now, and when ``open_sends`` more sends will likely be done."""
        if self.reader is None:
            return None
        async with self.db.connection() as conn:
            account = await accounts.get(conn, user_id)
            changes = await send_caps.user_caps(conn, user_id)
            global_changes = await send_caps.global_caps(conn)
        if account is None or not account.connected:
            return None
        caps = self.defaults.with_changes(global_changes).with_changes(changes)
        state = await self.reader.snapshot(account.tg_user_id)
        wall = self.now()
        limiter_now = self.reader.now()
        now = limiter_now if limiter_now is not None else wall.timestamp()
        return pacing_view(state, now, wall, caps, self.policy, open_sends)


def pacing_view(state: AccountPace, now: float, wall: datetime, caps: Caps, policy: Policy,
                open_sends: int) -> PacingView:
    """The view from a limiter state (``now`` on the limiter's clock, ``wall`` the same moment)."""
    def at(moment: float) -> datetime:
        return wall + timedelta(seconds=moment - now)

    verdict = limits.check(state, now, caps, policy)
    resting = state.rest_until > now
    ends = None
    if open_sends > 0:
        ends = at(limits.estimate_finish(state, now, open_sends, caps, policy))
    return PacingView(
        hour_count=state.counts(now, policy)[1], hour_cap=caps.hour, next_send_in=verdict.wait,
        reason=verdict.reason, resting_until=at(state.rest_until).astimezone(UTC) if resting else None,
        rest_after=state.rest_after if resting else 0, round_ends_at=ends,
    )
