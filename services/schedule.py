"""The schedule window and the user's time zone (U10.1-U10.3).

The time zone belongs to the person (``users.timezone``), the window to the broadcast
(``campaigns.window_*``). Whenever either changes while the broadcast runs, ``next_run_at`` is
recomputed as the next due instant moved to the window's opening, so the scheduler's due scan
stays one range scan of ``next_run_at`` and never reads a window (U10.4).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from domain import rules, schedule
from domain.models import Clock, utc_now
from domain.schedule import Window
from storage.db import Connection, Database
from storage.repositories import campaigns, users
from storage.repositories import status as status_repo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScheduleView:
    """U10.1: the user's zone, the broadcast's window (None: any time) and when it next opens."""

    timezone: str
    window: Window | None
    running: bool
    next_run_at: datetime | None
    opens_at: datetime | None  # the window is closed now: its next opening


@dataclass(frozen=True)
class ScheduleChange:
    """What a change led to: ``ok`` with the new view, or why it was refused (nothing changed)."""

    outcome: Literal["ok", "invalid", "last_day", "no_hours"]
    view: ScheduleView | None = None


class ScheduleService:
    """U10.1-U10.3. Each change is one transaction that also moves a running broadcast's next run."""

    def __init__(self, db: Database, now: Clock = utc_now) -> None:
        self.db = db
        self.now = now

    async def timezone(self, user_id: int) -> str:
        async with self.db.connection() as conn:
            return await users.timezone(conn, user_id)

    async def view(self, user_id: int) -> ScheduleView:
        async with self.db.connection() as conn:
            return await self._view(conn, user_id)

    async def set_timezone_text(self, user_id: int, raw: str) -> ScheduleChange:
        """U10.2: an IANA name or an offset; anything else is refused and changes nothing."""
        name = schedule.parse_zone(raw)
        if name is None:
            return ScheduleChange("invalid")
        async with self.db.transaction() as conn:
            await users.ensure(conn, user_id)
            await users.set_timezone(conn, user_id, name)
            # the zone is the person's: every running broadcast of theirs moves with it (U8)
            for record in await campaigns.of_user(conn, user_id):
                if record.running and record.account_id is not None:
                    await self._reschedule(conn, user_id, record.account_id)
            view = await self._view(conn, user_id)
        log.info("time zone set user_id=%s zone=%s", user_id, name)
        return ScheduleChange("ok", view)

    async def set_hours_text(self, user_id: int, raw: str) -> ScheduleChange:
        """U10.3: active hours (``9-22``, ``09:00-22:30``, ``22-06``); the days are kept."""
        hours = schedule.parse_hours(raw)
        if hours is None:
            return ScheduleChange("invalid")
        async with self.db.transaction() as conn:
            current = await self._window(conn, user_id)
            days = current.days if current is not None else schedule.ALL_DAYS
            return await self._set(conn, user_id, Window(hours[0], hours[1], days))

    async def toggle_day(self, user_id: int, weekday: int) -> ScheduleChange:
        """A day of the week on or off; the hours must be set first, and one day always stays."""
        if not 0 <= weekday <= 6:
            return ScheduleChange("invalid")
        async with self.db.transaction() as conn:
            current = await self._window(conn, user_id)
            if current is None:
                return ScheduleChange("no_hours")
            toggled = current.toggled(weekday)
            if toggled is None:
                return ScheduleChange("last_day")
            return await self._set(conn, user_id, toggled)

    async def clear(self, user_id: int) -> ScheduleChange:
        """``sch:off``: no window, rounds at any time (the time zone stays)."""
        async with self.db.transaction() as conn:
            return await self._set(conn, user_id, None)

    async def _set(self, conn: Connection, user_id: int, window: Window | None) -> ScheduleChange:
        await users.ensure(conn, user_id)
        await campaigns.ensure(conn, user_id)
        await campaigns.set_window(conn, user_id, window, None, self.now())
        await self._reschedule(conn, user_id)
        log.info("schedule window set user_id=%s window=%s", user_id, window)
        return ScheduleChange("ok", await self._view(conn, user_id))

    async def _window(self, conn: Connection, user_id: int) -> Window | None:
        record = await campaigns.get(conn, user_id, for_update=True)
        return None if record is None else record.window

    async def _reschedule(self, conn: Connection, user_id: int, account_id: int | None = None) -> None:
        """A running broadcast's next run (of ``account_id``, default the current account): the last
        round's start + interval (or now), at the window's next opening."""
        record = await campaigns.get(conn, user_id, for_update=True, account_id=account_id)
        if record is None or not record.running or not record.interval_seconds:
            return
        now = self.now()
        last = await status_repo.last_planned_at(conn, user_id, account_id)
        wanted = rules.first_run_on_start(now, last, record.interval_seconds)
        zone_name = await users.timezone(conn, user_id)
        await campaigns.set_next_run(conn, user_id, schedule.due_at(record.window, zone_name, wanted), now,
                                     account_id)

    async def _view(self, conn: Connection, user_id: int) -> ScheduleView:
        record = await campaigns.get(conn, user_id)
        zone_name = await users.timezone(conn, user_id)
        window = record.window if record is not None else None
        now = self.now()
        running = record is not None and record.running
        next_run = record.next_run_at if record is not None and running else None
        return ScheduleView(zone_name, window, running, next_run, schedule.opens_at(window, zone_name, now))
