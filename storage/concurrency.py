"""Two ways Redis work costs less under concurrency, for the storage modules that talk to Redis.

``Coalescer``: concurrent calls share one round trip (one script call). ``LaterTask``: a task that
only starts when its first run is due, for periodic work (renewing a lease, touching a job) that most
holders end before it is ever due.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """Concurrent calls go to Redis together: while one batch is on its way, the calls made
    meanwhile wait and go in the next round trip, as one script call (what a pipelining client
    such as ioredis does for BullMQ). A lone call goes at once, alone; at most ``limit`` calls share one."""

    def __init__(self, send: Callable[[list[T]], Awaitable[list[R]]], limit: int) -> None:
        self._send = send
        self._limit = limit
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        result: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, result))
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            self._task = loop.create_task(self._drain())
        return await result

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:self._limit], self._waiting[self._limit:]
                try:
                    results = await self._send([item for item, _ in batch])
                except Exception as exc:  # each caller gets the error its own call would have raised
                    for _, waiter in batch:
                        if not waiter.done():
                            waiter.set_exception(exc)
                    continue
                except BaseException:
                    self._waiting = batch + self._waiting
                    raise
                for (_, waiter), value in zip(batch, results, strict=True):
                    if not waiter.done():
                        waiter.set_result(value)
        finally:
            # cancelled (the loop is closing): nobody is left waiting forever
            waiting, self._waiting = self._waiting, []
            for _, waiter in waiting:
                waiter.cancel()


class LaterTask:
    """``work()`` run as a task from ``delay`` seconds on, unless ``stop`` comes first: until then
    it costs a timer, not a task created and cancelled."""

    def __init__(self, delay: float, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._work = work
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(delay, self._start)

    def _start(self) -> None:
        self._task = asyncio.create_task(self._work())

    async def stop(self) -> None:
        """Cancel the timer, or the task and wait for it (a cancellation of the caller still
        propagates: gather, unlike awaiting the task under suppress(CancelledError))."""
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
