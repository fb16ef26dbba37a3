"""U10's steps, templates and checks for the parity runner (schedule window and time zone).

``run_round: <seconds>`` runs one job of the user's open round through the real round engine on
the harness's gateway, with an engine clock that moves ``<seconds>`` on after the first send (the
window closes mid-round, U10.5) instead of waiting for it. The templates give windows relative to
the moment the case runs, on the user's own clock: ``{hours_closed}`` opens in two hours (for an
hour) and ``{opens_at}`` is its opening, ``{hours_closing}`` is open now and closes in 30 minutes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from accounts.gateway import AccountGateway, AccountRef, GroupRef, OutgoingMessage
from domain import schedule
from roles.worker.loop import caps_cache
from roles.worker.pacing import Pacing
from services import engine
from services.engine.outcome import JobOutcome
from services.engine.rounds import RoundEngine
from storage.account_lock import TelegramAccountLock
from storage.lease import Leases
from storage.round_store import RoundStore
from storage.user_lock import UserLock
from tests.clocks import StepClock
from tests.parity.harness import Harness

TEMPLATES = frozenset({"hours_closed", "opens_at", "hours_closing", "zone"})




class ClockMovingGateway:
    """The harness's gateway; after the first send of the job the clock moves on ``seconds``."""

    def __init__(self, inner: AccountGateway, clock: StepClock, seconds: float) -> None:
        self.inner = inner
        self.clock = clock
        self.seconds = seconds
        self.sends = 0

    async def send_message(self, account: AccountRef, group: GroupRef, message: OutgoingMessage) -> int:
        sent = await self.inner.send_message(account, group, message)
        self.sends += 1
        if self.sends == 1:
            self.clock.now += self.seconds
        return sent

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def run_round(h: Harness, uid: int, seconds: float) -> JobOutcome:
    round_id = await h.fetchval("SELECT round_id FROM rounds WHERE user_id = $1 AND finished_at IS NULL", uid)
    if round_id is None:
        raise AssertionError("run_round: the user has no open round (add a scheduler_tick step)")
    outcome, _ = await run_job(h, int(round_id), uid, seconds)
    return outcome


async def run_job(h: Harness, round_id: int, uid: int, seconds: float) -> tuple[JobOutcome, ClockMovingGateway]:
    """One job of round ``round_id`` through the real engine; the engine clock moves ``seconds`` on
    after the job's first send. Returns the outcome and the gateway (``sends``: how many it made)."""
    # as the round step: this job stands for one an interval (or a window's opening) after the posts
    # before it, which ran seconds ago, so the groups' slow-mode waits are over (U10.5 after U9's rounds)
    h.sandbox.world.forget_slow_mode()
    clock = StepClock()
    gateway = ClockMovingGateway(h.gateway, clock, seconds)
    # no gaps, caps or breaks: without the window the job would post to every group at once, so
    # what stops it is the window alone (and no real-time pacing wait meets the moved clock)
    settings = replace(h.settings, engine=replace(h.settings.engine, gap_min=0.0, gap_max=0.0, limit_minute=0,
                                                  limit_hour=0, limit_day=0, break_after=0))
    leases = Leases(h.redis)
    round_engine = RoundEngine(
        RoundStore(h.db), UserLock(leases, settings.engine.lease_ttl), gateway,  # type: ignore[arg-type]
        h.cipher, settings.engine, Pacing(h.redis, settings.engine, caps=caps_cache(h.db, settings)),
        TelegramAccountLock(leases, settings.engine.lease_ttl), clock=clock)
    outcome = await round_engine.run(engine.job_id(round_id), engine.job_payload(round_id, uid))
    return outcome, gateway


async def template_values(h: Harness, uid: int, now: datetime) -> dict[str, str]:
    """The window templates relative to ``now``: one instant per case (the runner keeps it), so a
    window set in a given step and the opening expected later agree across a minute boundary."""
    zone_name = await h.fetchval("SELECT timezone FROM users WHERE user_id = $1", uid) or "UTC"
    local = now.astimezone(schedule.zone(zone_name)).replace(second=0, microsecond=0)
    opens = local + timedelta(hours=2)
    since = local - timedelta(hours=1)
    return {
        "hours_closed": f"{opens:%H:%M}-{opens + timedelta(hours=1):%H:%M}",
        "opens_at": f"{opens:%H:%M}",
        "hours_closing": f"{since:%H:%M}-{local + timedelta(minutes=30):%H:%M}",
        "zone": schedule.short_zone(zone_name, now),
    }


async def fact(h: Harness, uid: int, name: str) -> Any:
    """``timezone``, ``window`` (``09:00-22:00``, "" for none), ``window_days``, ``attempts`` (the
    statuses of the user's latest round, in order), ``rounds`` (how many the user has)."""
    if name == "timezone":
        return await h.fetchval("SELECT timezone FROM users WHERE user_id = $1", uid)
    if name in ("window", "window_days"):
        async with h.db.connection() as conn:
            row = await conn.fetchrow("SELECT window_start, window_end, window_days FROM campaigns "
                                      "WHERE user_id = $1", uid)
        window = None if row is None else schedule.window_of(row["window_start"], row["window_end"],
                                                              row["window_days"])
        if window is None:
            return ""
        return schedule.format_hours(window) if name == "window" else schedule.format_days(window.days)
    if name == "attempts":
        async with h.db.connection() as conn:
            rows = await conn.fetch(
                "SELECT t.status FROM attempts t WHERE t.round_id = (SELECT max(round_id) FROM rounds "
                "WHERE user_id = $1) ORDER BY t.attempt_id", uid)
        return ",".join(r["status"] for r in rows)
    if name == "rounds":
        return await h.fetchval("SELECT count(*) FROM rounds WHERE user_id = $1", uid)
    raise AssertionError(f"unknown check {name}")


CHECKS = frozenset({"timezone", "window", "window_days", "attempts", "rounds"})
