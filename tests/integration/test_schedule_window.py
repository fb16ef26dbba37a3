"""U10.4/U10.5 through the real services, scheduler and round engine, with injected clocks.

The database's clock decides what is due (the scheduler) and when a batch starts (the engine); the
services run on an injected clock and the engine on a fake monotonic clock that the fake gateway
moves past the window's close mid-round, so nothing here waits on wall-clock margins.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import redis.asyncio as aioredis

from accounts.crypto import SessionCipher
from accounts.gateway import AccountRef, GroupRef
from config.settings import Settings
from domain import schedule
from roles.worker.loop import caps_cache
from roles.worker.pacing import Pacing
from services import engine
from services.access import AccessService
from services.campaigns import CampaignService
from services.engine import JobResult
from services.engine.rounds import RoundEngine
from services.schedule import ScheduleService
from storage.account_lock import TelegramAccountLock
from storage.db import Database
from storage.lease import Leases
from storage.round_store import RoundStore
from storage.user_lock import UserLock
from tests.clocks import StepClock
from tests.integration.engine_support import (
    Engine,
    FakeSender,
    attempt_rows,
    db_now,
    seed_user,
    settings_with,
)

pytestmark = pytest.mark.integration




def minute_floor(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def hours_text(start: datetime, length: timedelta, zone_name: str) -> str:
    """``HH:MM-HH:MM`` on ``zone_name``'s clock from ``start`` for ``length``."""
    tz = schedule.zone(zone_name)
    a, b = start.astimezone(tz), (start + length).astimezone(tz)
    return f"{a:%H:%M}-{b:%H:%M}"


def round_engine(db: Database, redis: aioredis.Redis, gateway: FakeSender, cipher: SessionCipher,
                 settings: Settings, clock: StepClock) -> RoundEngine:
    """``roles.worker.loop.build_engine``'s engine, on the fake clock."""
    leases = Leases(redis)
    return RoundEngine(RoundStore(db), UserLock(leases, settings.engine.lease_ttl), gateway, cipher,
                       settings.engine, Pacing(redis, settings.engine, caps=caps_cache(db, settings)),
                       TelegramAccountLock(leases, settings.engine.lease_ttl), clock=clock)


async def test_a_round_due_outside_the_window_starts_at_its_opening(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    """U10.4: started while the window is closed, the first round is due at the opening; the
    scheduler creates it then (not before), and the round after it again waits for the window."""
    settings = settings_with()
    real = await db_now(db)
    opening = minute_floor(real) - timedelta(minutes=1)  # the window opened a minute ago (database clock)
    earlier = real - timedelta(hours=2)  # the person pressed start two hours before, outside the window
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 3, interval=4 * 3600, running=False)
    windows = ScheduleService(db, lambda: earlier)
    assert (await windows.set_timezone_text(1, "Asia/Kolkata")).outcome == "ok"
    change = await windows.set_hours_text(1, hours_text(opening, timedelta(hours=3), "Asia/Kolkata"))
    assert change.outcome == "ok" and change.view is not None and change.view.opens_at == opening
    campaigns = CampaignService(db, settings, AccessService(db, settings, lambda: earlier), lambda: earlier)

    started = await campaigns.start(1)

    assert started.outcome == "started" and started.waits_for_window
    assert started.next_run_at == opening
    eng = Engine(db, redis_client, FakeSender(), settings, cipher)
    result = await eng.jobs.tick()
    assert result.created == 1
    async with db.connection() as conn:
        planned = await conn.fetchval("SELECT planned_at FROM rounds WHERE user_id = 1")
        next_run = await conn.fetchval("SELECT next_run_at FROM campaigns WHERE user_id = 1")
    assert planned == opening
    # opening + 4 h is past the 3 h window: the next round waits for tomorrow's opening
    assert next_run == opening + timedelta(days=1)


async def test_a_round_due_before_the_opening_is_not_created(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    settings = settings_with()
    real = await db_now(db)
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 2, running=False)
    opening = minute_floor(real) + timedelta(hours=2)
    windows = ScheduleService(db, lambda: real)
    await windows.set_hours_text(1, hours_text(opening, timedelta(hours=1), "UTC"))
    started = await CampaignService(db, settings, AccessService(db, settings, lambda: real),
                                    lambda: real).start(1)
    assert started.waits_for_window and started.next_run_at == opening
    eng = Engine(db, redis_client, FakeSender(), settings, cipher)
    assert (await eng.jobs.tick()).created == 0
    # "post now" can't jump the window either
    assert await CampaignService(db, settings, AccessService(db, settings), lambda: real).post_now(1)
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT next_run_at FROM campaigns WHERE user_id = 1") == opening


async def test_a_running_round_stops_at_the_close_and_goes_on_at_the_opening(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    """U10.5: the window closes after the first send; no send starts after it, the job goes back
    to the queue until the next opening, and the rest of the round is posted then, once each."""
    settings = settings_with()
    real = await db_now(db)
    async with db.connection() as conn:
        seeded = await seed_user(conn, cipher, 1, 3)
    # open for the first half hour from now (database clock), every day, on UTC+03:00's clock
    start = minute_floor(real) - timedelta(hours=1)
    windows = ScheduleService(db, lambda: real)
    await windows.set_timezone_text(1, "+3")
    await windows.set_hours_text(1, hours_text(start, timedelta(minutes=90), "UTC+03:00"))
    close = start + timedelta(minutes=90)
    eng = Engine(db, redis_client, FakeSender(), settings, cipher)
    assert (await eng.jobs.tick()).created == 1
    clock = StepClock()

    async def an_hour_passes(sender: FakeSender, account: AccountRef, group: GroupRef) -> None:
        if not sender.calls:
            clock.now += 3600  # the first send takes us past the close

    gateway = FakeSender(before_send=an_hour_passes)
    async with db.connection() as conn:
        round_id = await conn.fetchval("SELECT round_id FROM rounds WHERE user_id = 1")

    outcome = await round_engine(db, redis_client, gateway, cipher, settings, clock).run(
        engine.job_id(round_id), engine.job_payload(round_id, 1))

    assert [c.peer_id for c in gateway.sent()] == seeded.peer_ids[:1]
    assert outcome.result == JobResult.WAITING
    # requeued until tomorrow's opening, seen from an hour after the batch began
    expected = (start + timedelta(days=1) - (real + timedelta(hours=1))).total_seconds()
    assert expected - 60 <= outcome.delay <= expected + 60 + 1.0, (outcome.delay, expected)
    assert close < real + timedelta(hours=1)
    statuses = [r["status"] for r in await attempt_rows(db, round_id)]
    assert statuses == ["sent", "pending", "pending"]

    # the next opening (on the database clock the window is open again): the rest goes out, once each
    later = FakeSender()
    outcome = await round_engine(db, redis_client, later, cipher, settings, StepClock()).run(
        engine.job_id(round_id), engine.job_payload(round_id, 1))
    assert outcome.result == JobResult.DONE
    assert [c.peer_id for c in later.sent()] == seeded.peer_ids[1:]
    assert [r["status"] for r in await attempt_rows(db, round_id)] == ["sent"] * 3


async def test_a_job_that_starts_outside_the_window_sends_nothing(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    settings = settings_with()
    real = await db_now(db)
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 2)
    eng = Engine(db, redis_client, FakeSender(), settings, cipher)
    assert (await eng.jobs.tick()).created == 1
    opening = minute_floor(real) + timedelta(hours=5)
    await ScheduleService(db, lambda: real).set_hours_text(1, hours_text(opening, timedelta(hours=2), "UTC"))
    async with db.connection() as conn:
        round_id = await conn.fetchval("SELECT round_id FROM rounds WHERE user_id = 1")
    gateway = FakeSender()

    outcome = await round_engine(db, redis_client, gateway, cipher, settings, StepClock()).run(
        engine.job_id(round_id), engine.job_payload(round_id, 1))

    assert gateway.sent() == []
    assert outcome.result == JobResult.WAITING
    expected = (opening - real).total_seconds()
    assert expected - 60 <= outcome.delay <= expected + 61


async def test_changes_move_a_running_broadcasts_next_run_and_bad_input_changes_nothing(
    db: Database, cipher: SessionCipher
) -> None:
    real = await db_now(db)
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 2)  # running, due now, no window, UTC
    windows = ScheduleService(db, lambda: real)
    opens_utc = minute_floor(real) - timedelta(minutes=30)
    change = await windows.set_hours_text(1, hours_text(opens_utc, timedelta(hours=1), "UTC"))
    assert change.view is not None and change.view.opens_at is None  # open now: still due now
    assert change.view.next_run_at == real

    # the same hours on a clock 12 h ahead are closed now: the next run moves to their opening there
    change = await windows.set_timezone_text(1, "+12")
    assert change.view is not None and change.view.opens_at is not None
    assert change.view.next_run_at == change.view.opens_at > real
    assert schedule.is_open(change.view.window, "UTC+12:00", change.view.opens_at)

    before = await windows.view(1)
    for refused in (await windows.set_timezone_text(1, "Atlantis/Capital"), await windows.set_hours_text(1, "x"),
                    await windows.toggle_day(1, 7)):
        assert refused.outcome == "invalid" and refused.view is None
    assert await windows.view(1) == before

    # any time again: due now
    cleared = await windows.clear(1)
    assert cleared.view is not None and cleared.view.window is None and cleared.view.next_run_at == real
