"""Who may use the bot: access modes, requests, grants with expiry, bans (U1.1-U1.4)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
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
    timezone: str = "UTC"  # U10.6: the person's time zone, every time shown is in it
    language: str = ""  # the bot's language for this user (users.language, U12); "" when unknown

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


class AccessCache:
    """The access records of recently seen users and the access mode, kept between updates.

    Valid only while ``enabled``: the bot enables it while it listens to the database's change
    notifications (``storage.access_events``), which ``forget`` a user (ban, grant, request, a
    blocked bot) or ``clear`` everything (the access mode). Decisions are recomputed from the
    cached record at each update, so an expiry needs no notification. ``generation`` moves with
    every invalidation: a record read before one is not stored after it.
    """

    def __init__(self, max_users: int = 100_000) -> None:
        self.enabled = False
        self.generation = 0
        self.mode: rules.AccessMode | None = None
        self._users: OrderedDict[int, UserRecord] = OrderedDict()
        self._max_users = max_users

    def __len__(self) -> int:
        return len(self._users)

    def get(self, user_id: int) -> UserRecord | None:
        if not self.enabled:
            return None
        user = self._users.get(user_id)
        if user is not None:
            self._users.move_to_end(user_id)
        return user

    def store(self, user: UserRecord, mode: rules.AccessMode, generation: int) -> None:
        if not self.enabled or generation != self.generation:
            return  # something changed while the record was read: it may be stale
        self.mode = mode
        self._users[user.user_id] = user
        self._users.move_to_end(user.user_id)
        while len(self._users) > self._max_users:
            self._users.popitem(last=False)

    def forget(self, user_id: int) -> None:
        self.generation += 1
        self._users.pop(user_id, None)

    def clear(self) -> None:
        self.generation += 1
        self.mode = None
        self._users.clear()

    def set_enabled(self, enabled: bool) -> None:
        self.clear()
        self.enabled = enabled


def _unchanged(user: UserRecord, profile: UserProfile) -> bool:
    # the stored language is the bot's (first contact, then the user's choice), not Telegram's current one
    same_names = (user.first_name, user.last_name, user.username) == (
        profile.first_name, profile.last_name, profile.username)
    return same_names and (bool(user.language) or not profile.language)


class AccessService:
    """Access decisions for every update; admin operations live in ``services.admin``.

    Call ``touch`` once per update (it upserts the user's profile and returns the decision).
    A known user with an unchanged profile is decided from ``cache`` without a database write;
    ``last_seen_at`` is then refreshed at most every ``seen_every``.
    ``expire_due`` is meant for a periodic job (the worker's scheduler tick or the bot's notifier).
    """

    def __init__(self, db: Database, settings: Settings, now: Clock = utc_now,
                 cache: AccessCache | None = None, seen_every: timedelta = timedelta(minutes=15)) -> None:
        self.db = db
        self.settings = settings
        self.now = now
        self.cache = cache if cache is not None else AccessCache()
        self.seen_every = seen_every

    def is_admin(self, user_id: int) -> bool:
        """Admins come from settings (``ADMIN_IDS``) and always have access."""
        return user_id in self.settings.bot.admin_ids

    async def touch(self, profile: UserProfile) -> AccessView:
        """Upsert the user's profile (and last_seen_at) and decide their access."""
        now = self.now()
        cached, mode = self.cache.get(profile.user_id), self.cache.mode
        if (cached is not None and mode is not None and _unchanged(cached, profile) and not cached.bot_blocked
                and now - cached.last_seen_at < self.seen_every):
            return view_of(cached, profile.user_id, mode, self.is_admin(profile.user_id), now)
        generation = self.cache.generation
        async with self.db.transaction() as conn:
            user, is_new = await users.touch(conn, profile, now)
            mode = await self._mode(conn)
        self.cache.store(user, mode, generation)
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

    async def set_language(self, user_id: int, language: str) -> None:
        """U12.2: store the bot's language for ``user_id`` (one the bot speaks; checked by the caller)."""
        async with self.db.transaction() as conn:
            await users.ensure(conn, user_id)
            await users.set_language(conn, user_id, language, self.now())
        self.cache.forget(user_id)  # the next update reads the new language

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
    return AccessView(user_id, status, mode, is_admin, expires, timezone=user.timezone,
                      language=user.language)
