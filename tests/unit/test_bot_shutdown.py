"""A stopping bot lets the updates it is handling finish, and cuts them only after the grace period."""

from __future__ import annotations

import asyncio
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.types import Message, Update

from roles.bot.middlewares import InFlightMiddleware
from roles.bot.role import close_dispatcher


def _update(update_id: int, text: str) -> Update:
    return Update.model_validate({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1_700_000_000, "chat": {"id": 7, "type": "private"},
        "from": {"id": 7, "is_bot": False, "first_name": "T"}, "text": text}})


def _dispatcher(release: asyncio.Event, started: asyncio.Event, done: list[str]) -> Dispatcher:
    dp = Dispatcher()
    dp["in_flight"] = in_flight = InFlightMiddleware()
    dp.update.outer_middleware(in_flight)

    @dp.message()
    async def slow(message: Message, **_: Any) -> None:
        started.set()
        await release.wait()
        done.append(message.text or "")

    return dp


async def _handling(text: str) -> tuple[Dispatcher, asyncio.Event, list[str], asyncio.Task[Any]]:
    """A dispatcher with one update in its handler, held there until the returned event is set."""
    release, started = asyncio.Event(), asyncio.Event()
    done: list[str] = []
    dp = _dispatcher(release, started, done)
    bot = Bot("123456:unused-no-requests-are-made")
    handling = asyncio.create_task(dp.feed_update(bot, _update(1, text)))
    await started.wait()
    return dp, release, done, handling


async def test_close_waits_for_a_handler_in_flight() -> None:
    dp, release, done, handling = await _handling("first")
    assert len(dp["in_flight"]) == 1

    closing = asyncio.create_task(close_dispatcher(dp, grace=5.0))
    await asyncio.sleep(0.05)
    assert not closing.done()  # still waiting for the handler
    release.set()
    await asyncio.wait_for(closing, 1.0)
    await handling
    assert done == ["first"]
    assert len(dp["in_flight"]) == 0


async def test_close_cancels_a_handler_past_the_grace_period() -> None:
    dp, _, done, handling = await _handling("stuck")
    in_flight: InFlightMiddleware = dp["in_flight"]
    assert await in_flight.drain(0.05) == 1
    assert handling.cancelled()
    assert done == []
    assert len(in_flight) == 0


async def test_an_idle_dispatcher_closes_at_once() -> None:
    dp = _dispatcher(asyncio.Event(), asyncio.Event(), [])
    in_flight: InFlightMiddleware = dp["in_flight"]
    assert await asyncio.wait_for(in_flight.drain(5.0), 0.5) == 0
