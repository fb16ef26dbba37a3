"""The round engine's waits run on the clock it is given: a test moves time instead of waiting."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from config.settings import EngineSettings
from services.engine.rounds import RoundEngine, _Batch
from storage.repositories.attempts import Outcome, RoundContext
from tests.clocks import StepClock


class DownUnit:
    """A database that is away: every write fails the way a cut connection does."""

    def __init__(self, back_after: int | None = None) -> None:
        self.writes = 0
        self.resets = 0
        self.back_after = back_after

    async def reset(self) -> None:
        self.resets += 1

    async def write_outcome(self, outcome: Outcome) -> bool:
        self.writes += 1
        if self.back_after is None or self.writes <= self.back_after:
            raise ConnectionResetError("the database is restarting")
        return True


class Held:
    def __init__(self) -> None:
        self.lost = asyncio.Event()


def batch(unwritten: Outcome | None) -> _Batch:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    ctx = RoundContext(round_id=1, user_id=2, message_id=3, planned_at=now, started_at=now,
                       finished=False, blocker=None, account_id=4, tg_user_id=None, account_status="connected",
                       session_enc=b"",
                       text="hi", entities=[], media_id=None, lost=0, account_hint=None, now=now, candidates=[])
    return _Batch(ctx, account=Any, message=Any, pace=None, held=Held(), unwritten=unwritten)  # type: ignore[arg-type]


def engine(clock: StepClock, lease_ttl: float = 30.0) -> RoundEngine:
    settings = EngineSettings(lease_ttl=lease_ttl)
    return RoundEngine(store=None, lock=None, gateway=None, cipher=None, settings=settings,  # type: ignore[arg-type]
                       pacing=None, account_lock=None, clock=clock)


async def test_the_rescue_of_an_outcome_gives_up_after_half_a_lease_of_the_engines_clock() -> None:
    clock = StepClock()
    unit = DownUnit()
    await engine(clock, lease_ttl=30.0)._rescue(batch(Outcome(7, "sent", sent_message_id=9)), unit)  # type: ignore[arg-type]

    assert 15.0 <= clock.now < 15.0 + 0.2 + 1e-9  # half the lease, in 0.2 s steps, and not one more
    assert unit.writes == len(clock.slept) and set(clock.slept) == {0.2}


async def test_the_rescue_stops_as_soon_as_the_outcome_is_written() -> None:
    clock = StepClock()
    unit = DownUnit(back_after=3)
    await engine(clock)._rescue(batch(Outcome(7, "sent", sent_message_id=9)), unit)  # type: ignore[arg-type]

    assert unit.writes == 4 and clock.slept == [0.2, 0.2, 0.2]


async def test_a_pacing_wait_runs_on_the_clock_and_a_stop_cuts_it_short() -> None:
    clock = StepClock()
    eng = engine(clock)
    unit: Any = DownUnit(back_after=0)

    async def release() -> None:
        return None

    unit.release = release
    assert await eng._pause(batch(None), 3600.0, unit) is True  # an hour of the engine's time, at once
    assert clock.slept == [3600.0]

    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def sleep_forever(seconds: float) -> None:
        await never

    clock.sleep = sleep_forever  # type: ignore[method-assign]
    eng.stopping.set()
    assert await asyncio.wait_for(eng._pause(batch(None), 3600.0, unit), 1) is False

