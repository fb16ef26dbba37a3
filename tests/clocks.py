"""A monotonic clock the test moves by hand, in the shape of the engine's ``EngineClock`` port
(``monotonic()`` and ``sleep()``): a sleep moves it at once and is recorded, never waited on."""

from __future__ import annotations

import asyncio


class StepClock:
    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.slept: list[float] = []  # what was waited through sleep(), in order

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # still yields to the loop once, as a real sleep would
