"""The user's broadcast (U5, U6): interval, start with its checklist, stop."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from config.settings import Settings
from domain import rules, schedule
from domain.models import Clock, RoundCounts, utc_now
from services.access import AccessService
from storage.db import Connection, Database
from storage.repositories import accounts, campaigns, groups, messages, users
from storage.repositories import status as status_repo

log = logging.getLogger(__name__)

MissingItem = Literal["access", "account", "groups", "message", "interval"]
# the order the checklist is shown in (U6.1)
CHECKLIST: tuple[MissingItem, ...] = ("access", "account", "groups", "message", "interval")


@dataclass(frozen=True)
class IntervalResult:
    """U5.2/U5.4 ``ok`` (``next_run_at`` set when running) or U5.5 ``out_of_bounds``/``unparsable``."""

    outcome: Literal["ok", "out_of_bounds", "unparsable"]
    interval: int | None
    minimum: int
    maximum: int
    running: bool = False
    next_run_at: datetime | None = None
    requested: int | None = None  # the seconds asked for (U5.5 says below or above the bounds)


@dataclass(frozen=True)
class StartResult:
    """U6.1 ``missing`` (items in checklist order), U6.2 ``started``, U6.3 ``already_running``."""

    outcome: Literal["started", "already_running", "missing"]
    missing: tuple[MissingItem, ...] = ()
    groups: int = 0
    interval: int = 0
    next_run_at: datetime | None = None
    waits_for_window: bool = False  # U10.4: the first round starts at the window's next opening


@dataclass(frozen=True)
class StopResult:
    """U6.4 ``stopped`` with the last round's counts (None before any round), U6.5 ``not_running``."""

    outcome: Literal["stopped", "not_running"]
    last_round: RoundCounts | None = None


@dataclass(frozen=True)
class CampaignView:
    running: bool
    interval: int | None
    next_run_at: datetime | None
    paused_until: datetime | None
    pause_reason: str
    last_round_id: int | None


class CampaignService:
    """U5/U6. Start is one guarded UPDATE (``WHERE status = 'stopped'``): never two schedules."""

    def __init__(self, db: Database, settings: Settings, access: AccessService, now: Clock = utc_now) -> None:
        self.db = db
        self.settings = settings
        self.access = access
        self.now = now

    @property
    def bounds(self) -> tuple[int, int]:
        """(min, max) interval in seconds."""
        return self.settings.bot.interval_min, self.settings.bot.interval_max

    def presets(self) -> list[int]:
        """U5.1: preset intervals in minutes (15, 30, 60, 120, 360, 720, 1440) within bounds."""
        return rules.interval_presets(*self.bounds)

    async def view(self, user_id: int) -> CampaignView:
        async with self.db.connection() as conn:
            record = await campaigns.get(conn, user_id)
        if record is None:
            return CampaignView(False, None, None, None, "", None)
        return CampaignView(record.running, record.interval_seconds, record.next_run_at,
                            record.paused_until, record.pause_reason, record.last_round_id)

    async def set_interval(self, user_id: int, seconds: int) -> IntervalResult:
        """U5.2/U5.4: store the interval; while running, next run = max(now, last round + interval)."""
        low, high = self.bounds
        if not rules.interval_within(seconds, low, high):
            return IntervalResult("out_of_bounds", None, low, high, requested=seconds)
        now = self.now()
        async with self.db.transaction() as conn:
            await users.ensure(conn, user_id)
            await campaigns.ensure(conn, user_id)
            record = await campaigns.get(conn, user_id, for_update=True)
            assert record is not None
            next_run = None
            if record.running:
                last = await status_repo.last_planned_at(conn, user_id)
                next_run = rules.next_run_after_interval_change(now, last, record.next_run_at, seconds)
                next_run = schedule.due_at(record.window, await users.timezone(conn, user_id), next_run)
            record = await campaigns.set_interval(conn, user_id, seconds, next_run, now)
        log.info("interval set user_id=%s seconds=%d running=%s", user_id, seconds, record.running)
        return IntervalResult("ok", seconds, low, high, record.running,
                              record.next_run_at if record.running else None)

    async def set_interval_text(self, user_id: int, raw: str) -> IntervalResult:
        """U5.4/U5.5: parse what the user typed (``rules.parse_interval``), then ``set_interval``."""
        seconds = rules.parse_interval(raw)
        if seconds is None:
            low, high = self.bounds
            return IntervalResult("unparsable", None, low, high)
        return await self.set_interval(user_id, seconds)

    async def missing(self, user_id: int) -> tuple[MissingItem, ...]:
        """What start would complain about (U6.1), in checklist order."""
        async with self.db.connection() as conn:
            return await self._missing(conn, user_id)

    async def start(self, user_id: int) -> StartResult:
        """U6.1-U6.3: checklist, then running; the first round is due now, or at the last round's
        start + interval when that is still ahead (a quick stop/start must not post early)."""
        now = self.now()
        async with self.db.transaction() as conn:
            await users.ensure(conn, user_id)
            await campaigns.ensure(conn, user_id)
            current = await campaigns.get(conn, user_id)
            if current is not None and current.running:
                return StartResult("already_running")
            missing = await self._missing(conn, user_id)
            if missing:
                return StartResult("missing", missing)
            # the guard in the UPDATE is what makes a double start impossible, not the read above
            last = await status_repo.last_planned_at(conn, user_id)
            interval = current.interval_seconds if current is not None else None
            first = rules.first_run_on_start(now, last, interval or 0)
            # U10.4: outside the window the first round waits for its next opening
            window = current.window if current is not None else None
            first = schedule.due_at(window, await users.timezone(conn, user_id), first)
            started = await campaigns.start(conn, user_id, now, first)
            if started is None:
                return StartResult("already_running")
            selected = await groups.count_selected(conn, user_id)
        log.info("broadcast started user_id=%s groups=%d", user_id, selected)
        return StartResult("started", (), selected, started.interval_seconds or 0, started.next_run_at,
                           waits_for_window=first > rules.first_run_on_start(now, last, interval or 0))

    async def post_now(self, user_id: int) -> bool:
        """U6.2 ``bc:now``: a running broadcast's next round is due now; False when not running."""
        async with self.db.transaction() as conn:
            current = await campaigns.get(conn, user_id)
            window = current.window if current is not None else None
            # outside the window "now" is its next opening: no send starts outside it (U10.5)
            due = schedule.due_at(window, await users.timezone(conn, user_id), self.now())
            record = await campaigns.due_now(conn, user_id, due)
        if record is not None:
            log.info("broadcast set to post now user_id=%s", user_id)
        return record is not None

    async def stop(self, user_id: int) -> StopResult:
        """U6.4/U6.5: stopped; the worker re-checks the status before each send."""
        async with self.db.transaction() as conn:
            stopped = await campaigns.stop(conn, user_id, self.now())
            if stopped is None:
                return StopResult("not_running")
            last = await status_repo.last_round(conn, user_id)
        log.info("broadcast stopped user_id=%s", user_id)
        return StopResult("stopped", last)

    async def _missing(self, conn: Connection, user_id: int) -> tuple[MissingItem, ...]:
        found: set[MissingItem] = set()
        if not (await self.access.check_in(conn, user_id)).allowed:
            found.add("access")
        account = await accounts.get(conn, user_id)
        if account is None or not account.connected:
            found.add("account")
        if await groups.count_selected(conn, user_id) == 0:
            found.add("groups")
        if await messages.current_version(conn, user_id) is None:
            found.add("message")
        campaign = await campaigns.get(conn, user_id)
        interval = campaign.interval_seconds if campaign is not None else None
        if interval is None or not rules.interval_within(interval, *self.bounds):
            found.add("interval")
        return tuple(item for item in CHECKLIST if item in found)
