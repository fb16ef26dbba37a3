"""Who may use the bot: access modes, requests, grants with expiry, bans (U1.1-U1.4)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from config.settings import Settings
from domain import rules
from domain.models import Clock, UserProfile, UserRecord, utc_now
from storage.db import Connection, Database
from storage.repositories import campaigns, notifications, users
from storage.repositories import settings as settings_repo

log = logging.getLogger(__name__)

RequestOutcome = Literal["requested", "already_pending", "already_allowed", "not_allowed", "banned"]


@dataclass(frozen=True)
class AccessView:
    """What the bot needs to decide the first reply (U1.1-U1.5).

    ``status``: allowed | needs_approval (show ``acc:request``) | pending (request sent) |
    invitation_only (whitelist, no request button) | banned ("access denied", nothing else) |
    expired (a grant ran out; in approval mode the user may request again).
    """

    user_id: int
    status: rules.AccessStatus
    mode: rules.AccessMode
    is_admin: bool
    expires_at: datetime | None = None
    is_new: bool = False  # first time this user is seen (touch only)

    @property
    def allowed(self) -> bool:
        return self.status == "allowed"

    @property
    def can_request(self) -> bool:
        return self.mode == "approval" and self.status in ("needs_approval", "expired")


@dataclass(frozen=True)
class RequestResult:
    """``requested``: admins in ``notify_admins`` should get the approve/reject card (U1.2)."""

    outcome: RequestOutcome
    notify_admins: tuple[int, ...] = ()


class AccessService:
    """Access decisions for every update; admin operations live in ``services.admin``.

    Call ``touch`` once per update (it upserts the user's profile and returns the decision).
    ``expire_due`` is meant for a periodic job (the worker's scheduler tick or the bot's notifier).
    """

    def __init__(self, db: Database, settings: Settings, now: Clock = utc_now) -> None:
        self.db = db
        self.settings = settings
        self.now = now

    def is_admin(self, user_id: int) -> bool:
        """Admins come from settings (``ADMIN_IDS``) and always have access."""
        return user_id in self.settings.bot.admin_ids

    async def touch(self, profile: UserProfile) -> AccessView:
        """Upsert the user's profile (and last_seen_at) and decide their access."""
        now = self.now()
        async with self.db.transaction() as conn:
            user, is_new = await users.touch(conn, profile, now)
            mode = await self._mode(conn)
        view = view_of(user, profile.user_id, mode, self.is_admin(profile.user_id), now)
        return replace(view, is_new=is_new)

    async def check(self, user_id: int) -> AccessView:
        """The access decision without writing anything (unknown users are treated as new)."""
        async with self.db.connection() as conn:
            return await self.check_in(conn, user_id)

    async def check_in(self, conn: Connection, user_id: int) -> AccessView:
        """``check`` inside the caller's transaction (used by start's checklist)."""
        user = await users.get(conn, user_id)
        mode = await self._mode(conn)
        return view_of(user, user_id, mode, self.is_admin(user_id), self.now())

    async def request_access(self, user_id: int) -> RequestResult:
        """``acc:request`` (approval mode): mark the request pending once."""
        async with self.db.transaction() as conn:
            await users.ensure(conn, user_id)
            user = await users.get(conn, user_id, for_update=True)
            mode = await self._mode(conn)
            view = view_of(user, user_id, mode, self.is_admin(user_id), self.now())
            if view.status == "banned":
                return RequestResult("banned")
            if view.allowed:
                return RequestResult("already_allowed")
            if view.status == "pending":
                return RequestResult("already_pending")
            if not view.can_request:
                return RequestResult("not_allowed")
            await users.request_access(conn, user_id, self.now())
        log.info("access requested user_id=%s", user_id)
        return RequestResult("requested", self.settings.bot.admin_ids)

    async def mode(self) -> rules.AccessMode:
        async with self.db.connection() as conn:
            return await self._mode(conn)

    async def expire_due(self, limit: int = 500) -> list[int]:
        """Stop the broadcasts of users whose grant ran out and queue an ``access_expired`` notice.

        Handles each expiry once (``users.access_expiry_handled_at``); returns the user ids handled.
        Does nothing in ``open`` mode, where grants do not matter. Admins keep their broadcast.
        """
        now = self.now()
        async with self.db.transaction() as conn:
            if await self._mode(conn) == "open":
                return []
            due = await users.due_expiries(conn, now, limit)
            if not due:
                return []
            affected = [(uid, expired) for uid, expired in due if not self.is_admin(uid)]
            stopped = set(await campaigns.stop_many(conn, [uid for uid, _ in affected], now))
            for uid, expired in affected:
                await notifications.enqueue(
                    conn, uid, "access_expired", {"broadcast_stopped": uid in stopped},
                    f"access_expired:{uid}:{int(expired.timestamp())}", now,
                )
            await users.mark_expiry_handled(conn, [uid for uid, _ in due], now)
        log.info("access expired for %d users, %d broadcasts stopped", len(affected), len(stopped))
        return [uid for uid, _ in affected]

    @staticmethod
    async def _mode(conn: Connection) -> rules.AccessMode:
        return await settings_repo.access_mode(conn)


def view_of(user: UserRecord | None, user_id: int, mode: rules.AccessMode, is_admin: bool,
            now: datetime) -> AccessView:
    """The access decision for a stored user (or an unknown one)."""
    if user is None:
        status = rules.decide_access(mode, is_admin=is_admin, banned=False, access_status="none",
                                     expires_at=None, now=now)
        return AccessView(user_id, status, mode, is_admin, None, is_new=True)
    status = rules.decide_access(mode, is_admin=is_admin, banned=user.banned,
                                 access_status=user.access_status, expires_at=user.access_expires_at,
                                 now=now)
    expires = user.access_expires_at if user.access_status == "granted" else None
    return AccessView(user_id, status, mode, is_admin, expires)
