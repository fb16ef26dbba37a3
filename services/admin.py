"""Admin operations for the bot's admin flows (A1-A7) and the HTTP admin API.

Every call names its ``Actor``. A bot actor must be in ``settings.bot.admin_ids``; an API actor
is trusted (the HTTP layer has checked its token). Anyone else gets ``NotAllowed`` after a
``denied`` audit row, and nothing changes. Every admin action is written to ``audit_log`` with
actor, action, target and outcome, in the same transaction as the change it records.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from config.settings import Settings
from domain import rules
from domain.errors import AlreadyRunning
from domain.models import AccountRecord, AuditEntry, Clock, utc_now
from domain.retention import HistoryTotals
from services import notifications
from services.announcements import AnnouncementBusy, StartedAnnouncement
from services.locks import Busy
from services.login import LoginService
from storage.db import Connection, Database
from storage.repositories import accounts, announcements, audit, campaigns, groups, messages, users
from storage.repositories import retention as retention_repo
from storage.repositories import settings as settings_repo
from storage.repositories import status as status_repo
from storage.repositories.users import UserListRow

log = logging.getLogger(__name__)

AdminOutcome = Literal["ok", "not_found", "no_change"]


class NotAllowed(PermissionError):
    """The actor is not an admin (already audit-logged as ``denied``)."""


@dataclass(frozen=True)
class Actor:
    """Who performs an admin action: ``Actor.admin(uid)`` from the bot, ``Actor.api(name)`` from HTTP."""

    kind: Literal["admin", "api", "system"]
    user_id: int | None = None
    name: str = ""

    @classmethod
    def admin(cls, user_id: int) -> Actor:
        return cls("admin", user_id)

    @classmethod
    def api(cls, name: str = "api") -> Actor:
        return cls("api", None, name)

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls("system", None, name)


@dataclass(frozen=True)
class AdminResult:
    """``ok`` changed something, ``no_change`` found it already so, ``not_found`` no such user."""

    outcome: AdminOutcome
    user_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True)
class AdminOverview:
    """A1: counts and the switches' current state."""

    users: int
    connected: int
    running: int
    pending_requests: int
    access_mode: rules.AccessMode
    global_paused: bool


@dataclass(frozen=True)
class UserSummary:
    user_id: int
    name: str
    username: str
    access: str  # the decided access status (allowed, pending, banned, expired ...)
    access_status: str  # the stored one (none, pending, granted, rejected, revoked)
    expires_at: datetime | None
    banned: bool
    connected: bool
    running: bool
    requested_at: datetime | None


@dataclass(frozen=True)
class UserPage:
    items: list[UserSummary]
    page: int
    pages: int
    total: int


@dataclass(frozen=True)
class AccountLine:
    """A2 (U8): one of the user's Telegram accounts and its broadcast."""

    account_id: int
    phone_masked: str
    name: str
    connected: bool
    current: bool
    disconnected_reason: str
    running: bool
    interval: int | None
    next_run_at: datetime | None


@dataclass(frozen=True)
class UserCard:
    """A2: access, expiry, masked phone, groups, broadcast (of the current account), and every
    account of the user (U8)."""

    user: UserSummary
    phone_masked: str
    account_name: str
    disconnected_reason: str
    groups_total: int
    groups_selected: int
    groups_disabled: int
    message_version: int | None
    interval: int | None
    next_run_at: datetime | None
    paused_until: datetime | None
    created_at: datetime
    last_seen_at: datetime
    history: HistoryTotals = field(default_factory=HistoryTotals)  # summarised days + stored rounds
    accounts: tuple[AccountLine, ...] = ()  # connected first, then oldest first


@dataclass(frozen=True)
class RuntimeCounts:
    """A5, the part the database knows (queue depth and worker heartbeats come from Redis)."""

    running: int
    open_rounds: int
    sends_last_hour: dict[str, int]  # attempt status -> count, finished in the last hour
    flood_paused: int  # running campaigns paused until a future time
    scheduler_lag_seconds: float  # age of the oldest due, unpaused running campaign (0 if none)
    global_paused: bool


class AdminService:
    """A1-A7 for both the bot (``Actor.admin``) and the HTTP admin API (``Actor.api``)."""

    def __init__(self, db: Database, settings: Settings, login: LoginService, now: Clock = utc_now) -> None:
        self.db = db
        self.settings = settings
        self.login = login
        self.now = now

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.settings.bot.admin_ids

    async def authorize(self, actor: Actor, action: str, target_user_id: int | None = None) -> None:
        """Raise ``NotAllowed`` (after writing a ``denied`` audit row) unless the actor is an admin."""
        if actor.kind in ("api", "system") or (actor.user_id is not None and self.is_admin(actor.user_id)):
            return
        async with self.db.transaction() as conn:
            await audit.write(conn, actor_kind="user", actor_id=actor.user_id, action=action,
                              target_user_id=target_user_id, outcome="denied", detail=None, now=self.now())
        log.warning("admin action denied actor_id=%s action=%s", actor.user_id, action)
        raise NotAllowed(action)

    async def overview(self, actor: Actor) -> AdminOverview:
        await self.authorize(actor, "overview")
        async with self.db.connection() as conn:
            return AdminOverview(
                users=await users.count(conn),
                connected=await accounts.count_connected(conn),
                running=await campaigns.count_running(conn),
                pending_requests=await users.count_pending(conn),
                access_mode=await settings_repo.access_mode(conn),
                global_paused=await settings_repo.global_pause(conn),
            )

    async def users_page(self, actor: Actor, page: int, size: int = 10) -> UserPage:
        """A2: users ordered by newest first; out-of-range pages are clamped."""
        await self.authorize(actor, "users")
        async with self.db.connection() as conn:
            total = await users.count(conn)
            current = rules.clamp_page(page, total, size)
            rows = await users.page(conn, current * size, size)
            mode = await settings_repo.access_mode(conn)
        return UserPage([self._summary(r, mode) for r in rows], current, rules.page_count(total, size), total)

    async def user_card(self, actor: Actor, user_id: int) -> UserCard | None:
        await self.authorize(actor, "user_card", user_id)
        async with self.db.connection() as conn:
            row = await users.list_row(conn, user_id)
            if row is None:
                return None
            mode = await settings_repo.access_mode(conn)
            account = await accounts.get(conn, user_id)
            counts = await groups.counts(conn, user_id)
            version = await messages.current_version(conn, user_id)
            campaign = await campaigns.get(conn, user_id)
            history = await retention_repo.history_totals(conn, user_id)
            lines = await self._account_lines(conn, user_id, account)
        return UserCard(
            user=self._summary(row, mode),
            phone_masked=rules.mask_phone(account.phone) if account is not None else "",
            account_name=account.first_name if account is not None else "",
            disconnected_reason=account.disconnected_reason if account is not None else "",
            groups_total=counts.total,
            groups_selected=counts.selected,
            groups_disabled=counts.disabled,
            message_version=version,
            interval=campaign.interval_seconds if campaign is not None else None,
            next_run_at=campaign.next_run_at if campaign is not None else None,
            paused_until=campaign.paused_until if campaign is not None else None,
            created_at=row.user.created_at,
            last_seen_at=row.user.last_seen_at,
            history=history,
            accounts=lines,
        )

    @staticmethod
    async def _account_lines(conn: Connection, user_id: int, current: AccountRecord | None
                             ) -> tuple[AccountLine, ...]:
        records = await accounts.all_of(conn, user_id)
        broadcasts = {c.account_id: c for c in await campaigns.of_user(conn, user_id)}
        lines = []
        for record in records:
            c = broadcasts.get(record.account_id)
            running = c is not None and c.running
            lines.append(AccountLine(
                account_id=record.account_id, phone_masked=rules.mask_phone(record.phone),
                name=record.first_name, connected=record.connected,
                current=current is not None and current.account_id == record.account_id,
                disconnected_reason=record.disconnected_reason, running=running,
                interval=c.interval_seconds if c is not None else None,
                next_run_at=c.next_run_at if c is not None and running else None,
            ))
        return tuple(lines)

    async def pending_requests(self, actor: Actor, limit: int = 50) -> list[UserSummary]:
        """A3: users whose access request waits, oldest first."""
        await self.authorize(actor, "pending")
        async with self.db.connection() as conn:
            rows = await users.pending_requests(conn, limit)
            mode = await settings_repo.access_mode(conn)
        return [self._summary(r, mode) for r in rows]

    async def approve(self, actor: Actor, user_id: int, days: int = 0) -> AdminResult:
        """A3: grant a pending request (``days`` 0 = no expiry); the requester is told."""
        return await self._grant(actor, "approve", user_id, days, notifications.ACCESS_APPROVED)

    async def reject(self, actor: Actor, user_id: int) -> AdminResult:
        """A3: reject a pending request; the requester is told."""
        await self.authorize(actor, "reject", user_id)
        now = self.now()
        async with self.db.transaction() as conn:
            user = await users.get(conn, user_id, for_update=True)
            if user is None:
                return await self._done(conn, actor, "reject", user_id, "not_found")
            if user.access_status != "pending":
                return await self._done(conn, actor, "reject", user_id, "no_change",
                                        {"access_status": user.access_status})
            await users.set_access(conn, user_id, "rejected", None, now)
            await notifications.NotificationService.enqueue(conn, user_id, notifications.ACCESS_REJECTED, {},
                                                            now=now)
            return await self._done(conn, actor, "reject", user_id, "ok")

    async def grant(self, actor: Actor, user_id: int, days: int) -> AdminResult:
        """A2 ``adm:grant:<uid>:<days>``: 7, 30 or 0 (no expiry). Unknown users are created
        (a whitelist invitation may come before their first /start)."""
        return await self._grant(actor, "grant", user_id, days, notifications.ACCESS_GRANTED)

    async def revoke(self, actor: Actor, user_id: int) -> AdminResult:
        """A2: take access away; a running broadcast stops unless the mode is open."""
        await self.authorize(actor, "revoke", user_id)
        now = self.now()
        async with self.db.transaction() as conn:
            user = await users.get(conn, user_id, for_update=True)
            if user is None:
                return await self._done(conn, actor, "revoke", user_id, "not_found")
            if user.access_status == "revoked":
                return await self._done(conn, actor, "revoke", user_id, "no_change")
            await users.set_access(conn, user_id, "revoked", None, now)
            stopped = False
            if await settings_repo.access_mode(conn) != "open" and not self.is_admin(user_id):
                stopped = await campaigns.stop(conn, user_id, now, every=True) is not None
            await notifications.NotificationService.enqueue(
                conn, user_id, notifications.ACCESS_REVOKED, {"broadcast_stopped": stopped}, now=now
            )
            return await self._done(conn, actor, "revoke", user_id, "ok", {"broadcast_stopped": stopped})

    async def ban(self, actor: Actor, user_id: int) -> AdminResult:
        """A2: banned users get "access denied" for anything; their broadcast stops."""
        await self.authorize(actor, "ban", user_id)
        now = self.now()
        async with self.db.transaction() as conn:
            await users.ensure(conn, user_id)
            user = await users.get(conn, user_id, for_update=True)
            assert user is not None
            if user.banned:
                return await self._done(conn, actor, "ban", user_id, "no_change")
            await users.set_banned(conn, user_id, True, now)
            stopped = await campaigns.stop(conn, user_id, now, every=True) is not None
            return await self._done(conn, actor, "ban", user_id, "ok", {"broadcast_stopped": stopped})

    async def unban(self, actor: Actor, user_id: int) -> AdminResult:
        await self.authorize(actor, "unban", user_id)
        now = self.now()
        async with self.db.transaction() as conn:
            user = await users.get(conn, user_id, for_update=True)
            if user is None:
                return await self._done(conn, actor, "unban", user_id, "not_found")
            if not user.banned:
                return await self._done(conn, actor, "unban", user_id, "no_change")
            await users.set_banned(conn, user_id, False, now)
            return await self._done(conn, actor, "unban", user_id, "ok")

    async def stop_broadcast(self, actor: Actor, user_id: int) -> AdminResult:
        """A2 ``adm:stop``: stop the user's broadcasts (every account's); they are told."""
        await self.authorize(actor, "stop", user_id)
        now = self.now()
        async with self.db.transaction() as conn:
            if await users.get(conn, user_id) is None:
                return await self._done(conn, actor, "stop", user_id, "not_found")
            if await campaigns.stop(conn, user_id, now, every=True) is None:
                return await self._done(conn, actor, "stop", user_id, "no_change")
            await notifications.NotificationService.enqueue(
                conn, user_id, notifications.BROADCAST_STOPPED, {"by": "admin"}, now=now
            )
            return await self._done(conn, actor, "stop", user_id, "ok")

    async def force_logout(self, actor: Actor, user_id: int) -> AdminResult:
        """A2 ``adm:logout``: as the user's own logout (broadcast stopped, session deleted) of every
        account of the user; they are told."""
        await self.authorize(actor, "logout", user_id)
        try:
            disconnected = await self.login.logout_every(user_id, reason="admin") > 0
        except Busy:
            # the broadcast is stopped already; the session is still in use by a send
            async with self.db.transaction() as conn:
                await self._audit(conn, actor, "logout", user_id, "failed", {"result": "busy"})
            raise
        now = self.now()
        async with self.db.transaction() as conn:
            if not disconnected:
                known = await users.get(conn, user_id) is not None
                return await self._done(conn, actor, "logout", user_id, "no_change" if known else "not_found")
            await notifications.NotificationService.enqueue(
                conn, user_id, notifications.SESSION_ENDED, {"reason": "admin"}, now=now
            )
            return await self._done(conn, actor, "logout", user_id, "ok")

    async def set_mode(self, actor: Actor, mode: str) -> AdminResult:
        """A4: persist the access mode; broadcasts of users who lose access under it stop.

        Raises ``ValueError`` for a mode other than open, approval, whitelist.
        """
        await self.authorize(actor, "mode")
        if mode not in rules.ACCESS_MODES:
            raise ValueError(f"unknown access mode {mode!r}")
        now = self.now()
        async with self.db.transaction() as conn:
            previous = await settings_repo.access_mode_for_update(conn, now)  # racing changes queue here
            if previous == mode:
                return await self._done(conn, actor, "mode", None, "no_change", {"mode": mode})
            await settings_repo.put(conn, settings_repo.ACCESS_MODE, mode, now)
            losing = await users.without_access(conn, mode, now, list(self.settings.bot.admin_ids))
            stopped = await campaigns.stop_many(conn, losing, now)
            for uid in stopped:
                payload = {"broadcast_stopped": True, "mode": mode}
                await notifications.NotificationService.enqueue(
                    conn, uid, notifications.ACCESS_REVOKED, payload, now=now
                )
            return await self._done(conn, actor, "mode", None, "ok",
                                    {"mode": mode, "previous": previous, "stopped": len(stopped)})

    async def pause(self, actor: Actor) -> AdminResult:
        """A6: global kill switch on (no send starts; schedules are kept)."""
        return await self._set_pause(actor, True)

    async def resume(self, actor: Actor) -> AdminResult:
        return await self._set_pause(actor, False)

    async def global_paused(self) -> bool:
        async with self.db.connection() as conn:
            return await settings_repo.global_pause(conn)

    async def runtime(self, actor: Actor) -> RuntimeCounts:
        """A5: the database's share of the runtime view."""
        await self.authorize(actor, "runtime")
        now = self.now()
        async with self.db.connection() as conn:
            oldest = await campaigns.oldest_due(conn, now)
            return RuntimeCounts(
                running=await campaigns.count_running(conn),
                open_rounds=await status_repo.open_rounds(conn),
                sends_last_hour=await status_repo.sends_since(conn, now - timedelta(hours=1)),
                flood_paused=await campaigns.count_paused(conn, now),
                scheduler_lag_seconds=max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0,
                global_paused=await settings_repo.global_pause(conn),
            )

    async def announce_targets(self, actor: Actor) -> list[int]:
        """A7: user ids to send an announcement to (not banned, not known to have blocked the bot)."""
        await self.authorize(actor, "announce")
        async with self.db.connection() as conn:
            return await users.announce_targets(conn)

    async def start_announcement(
        self, actor: Actor, text: str, entities: list[dict[str, Any]], report_to: int | None
    ) -> StartedAnnouncement:
        """A7 confirmed: the announcement and one pending delivery per target, written in one transaction
        with its ``started`` audit row; the bot's leader delivers it (``services.announcements``).

        Raises ``AnnouncementBusy`` while another announcement is still being sent.
        """
        await self.authorize(actor, "announce")
        now = self.now()
        try:
            async with self.db.transaction() as conn:
                targets = await users.announce_targets(conn)
                announcement_id = await announcements.create(
                    conn, text=text, entities=entities, created_by_kind=actor.kind, created_by=actor.user_id,
                    report_to=report_to, now=now,
                )
                total = await announcements.add_targets(conn, announcement_id, targets, now)
                await self._audit(conn, actor, "announce", None, "ok",
                                  {"announcement_id": announcement_id, "targets": total, "state": "started"})
        except AlreadyRunning as exc:
            raise AnnouncementBusy from exc
        log.info("announcement=%s to %d users started by actor=%s", announcement_id, total,
                 actor.user_id or actor.name)
        return StartedAnnouncement(announcement_id, total)

    async def announcing(self) -> bool:
        """Whether an announcement is still being sent (a new one would be refused as busy)."""
        async with self.db.connection() as conn:
            return bool(await announcements.running(conn))

    async def record(
        self, actor: Actor, action: str, target_user_id: int | None = None,
        outcome: Literal["ok", "denied", "failed"] = "ok", detail: dict[str, Any] | None = None,
    ) -> None:
        """Write an audit row for an action performed outside this service."""
        await self.authorize(actor, action, target_user_id)
        async with self.db.transaction() as conn:
            await self._audit(conn, actor, action, target_user_id, outcome, detail)

    async def audit_log(
        self, actor: Actor, limit: int = 50, before_id: int | None = None
    ) -> list[AuditEntry]:
        """Newest audit rows first (HTTP admin API)."""
        await self.authorize(actor, "audit_log")
        async with self.db.connection() as conn:
            return await audit.recent(conn, limit, before_id)

    # --- internals ------------------------------------------------------------------------------

    async def _grant(self, actor: Actor, action: str, user_id: int, days: int, kind: str) -> AdminResult:
        await self.authorize(actor, action, user_id)
        if days < 0:
            raise ValueError("days must be 0 (no expiry) or positive")
        now = self.now()
        expires = rules.grant_expiry(now, days)
        async with self.db.transaction() as conn:
            await users.ensure(conn, user_id)
            await users.get(conn, user_id, for_update=True)
            await users.set_access(conn, user_id, "granted", expires, now)
            payload = {"days": days, "expires_at": expires.isoformat() if expires else None}
            await notifications.NotificationService.enqueue(conn, user_id, kind, payload, now=now)
            return await self._done(conn, actor, action, user_id, "ok", payload)

    async def _set_pause(self, actor: Actor, paused: bool) -> AdminResult:
        action = "pause" if paused else "resume"
        await self.authorize(actor, action)
        async with self.db.transaction() as conn:
            if await settings_repo.global_pause_for_update(conn, self.now()) == paused:
                return await self._done(conn, actor, action, None, "no_change")
            await settings_repo.put(conn, settings_repo.GLOBAL_PAUSE, paused, self.now())
            log.warning("global pause %s by actor=%s", "on" if paused else "off", actor.user_id or actor.name)
            return await self._done(conn, actor, action, None, "ok")

    async def _done(
        self, conn: Connection, actor: Actor, action: str, user_id: int | None, outcome: AdminOutcome,
        detail: dict[str, Any] | None = None,
    ) -> AdminResult:
        result = AdminResult(outcome, user_id, dict(detail or {}))
        audit_detail = {**result.detail, "result": outcome}
        audit_outcome: Literal["ok", "failed"] = "failed" if outcome == "not_found" else "ok"
        await self._audit(conn, actor, action, user_id, audit_outcome, audit_detail)
        return result

    async def _audit(
        self, conn: Connection, actor: Actor, action: str, user_id: int | None,
        outcome: Literal["ok", "denied", "failed"], detail: dict[str, Any] | None,
    ) -> None:
        merged = dict(detail or {})
        if actor.name:
            merged.setdefault("actor_name", actor.name)
        await audit.write(conn, actor_kind=actor.kind, actor_id=actor.user_id, action=action,
                          target_user_id=user_id, outcome=outcome, detail=merged, now=self.now())

    def _summary(self, row: UserListRow, mode: rules.AccessMode) -> UserSummary:
        user = row.user
        decided = rules.decide_access(mode, is_admin=self.is_admin(user.user_id), banned=user.banned,
                                      access_status=user.access_status, expires_at=user.access_expires_at,
                                      now=self.now())
        return UserSummary(
            user_id=user.user_id,
            name=user.display_name,
            username=user.username,
            access=decided,
            access_status=user.access_status,
            expires_at=user.access_expires_at,
            banned=user.banned,
            connected=row.connected,
            running=row.running,
            requested_at=user.access_requested_at,
        )
