"""storage.concurrency: calls that share a round trip, and a task that starts only when due."""

from __future__ import annotations

import asyncio

import pytest

from storage.concurrency import Coalescer, LaterTask


async def test_calls_made_while_a_batch_is_out_go_together_up_to_the_limit() -> None:
    batches: list[list[int]] = []
    gate = asyncio.Event()

    async def send(items: list[int]) -> list[int]:
        batches.append(items)
        await gate.wait()
        return [i * 10 for i in items]

    coalescer: Coalescer[int, int] = Coalescer(send, limit=2)
    calls = [asyncio.create_task(coalescer.submit(i)) for i in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*calls) == [0, 10, 20, 30, 40]
    assert batches == [[0, 1], [2, 3], [4]]  # the first call goes at once with what came meanwhile


async def test_each_caller_of_a_failed_batch_gets_its_error() -> None:
    async def send(items: list[int]) -> list[int]:
        raise ConnectionError("down")

    coalescer: Coalescer[int, int] = Coalescer(send, limit=10)
    results = await asyncio.gather(coalescer.submit(1), coalescer.submit(2), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]


async def test_a_later_task_stopped_before_it_is_due_never_runs() -> None:
    ran: list[str] = []

    async def work() -> None:
        ran.append("ran")

    later = LaterTask(0, work)  # due at the loop's next turn
    await later.stop()
    for _ in range(3):  # a turn to start it, one to run it, one spare
        await asyncio.sleep(0)
    assert ran == []


async def test_a_later_task_runs_when_due_and_stop_cancels_it() -> None:
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.sleep(3600)

    later = LaterTask(0, work)
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(later.stop(), 5)  # returns at once: the hour-long wait was cancelled


async def test_stop_lets_the_callers_own_cancellation_through() -> None:
    winding_down = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            winding_down.set()
            await asyncio.sleep(0.05)  # a slow end: the caller is cancelled while it waits for it

    later = LaterTask(0, work)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    stopping = asyncio.create_task(later.stop())
    await asyncio.wait_for(winding_down.wait(), 5)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
