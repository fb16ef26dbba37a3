"""U9.3: the album middleware hands an album's parts to the handlers as one update (injected clock)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiogram.types import Chat, Message, PhotoSize, Update

from roles.bot.album import ALBUM, AlbumMiddleware


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(0)  # let the other parts arrive meanwhile
        self.now += seconds


def _update(update_id: int, message_id: int, group: str | None, chat_id: int = 7) -> Update:
    message = Message(message_id=message_id, date=datetime.now(UTC), chat=Chat(id=chat_id, type="private"),
                      media_group_id=group, photo=[PhotoSize(file_id=f"f{message_id}", file_unique_id="u",
                                                             width=1, height=1)])
    return Update(update_id=update_id, message=message)


async def test_parts_of_an_album_reach_the_handler_once_with_every_part_in_order() -> None:
    clock = FakeClock()
    middleware = AlbumMiddleware(quiet=0.5, longest=5.0, clock=clock, sleep=clock.sleep)
    seen: list[list[int]] = []

    async def handler(event: Any, data: dict[str, Any]) -> None:
        seen.append([m.message_id for m in data[ALBUM]])

    first = asyncio.create_task(middleware(handler, _update(1, 12, "g1"), {}))
    await asyncio.sleep(0)
    for update_id, message_id in ((2, 11), (3, 13)):
        assert await middleware(handler, _update(update_id, message_id, "g1"), {}) is None
    await first
    assert seen == [[11, 12, 13]]
    assert clock.now >= 0.5  # it waited for the quiet window after the last part


async def test_a_plain_message_and_another_chats_album_pass_through_untouched() -> None:
    clock = FakeClock()
    middleware = AlbumMiddleware(clock=clock, sleep=clock.sleep)
    seen: list[Any] = []

    async def handler(event: Any, data: dict[str, Any]) -> None:
        seen.append(data.get(ALBUM))

    await middleware(handler, _update(1, 1, None), {})
    await asyncio.gather(middleware(handler, _update(2, 2, "g1", chat_id=1), {}),
                         middleware(handler, _update(3, 3, "g1", chat_id=2), {}))
    assert seen[0] is None
    assert sorted(len(parts) for parts in seen[1:]) == [1, 1]  # same group id, different chats: two albums
    assert clock.slept  # each waited its window


async def test_a_part_arriving_forever_is_cut_at_the_longest_wait() -> None:
    clock = FakeClock()
    middleware = AlbumMiddleware(quiet=1.0, longest=3.0, clock=clock, sleep=clock.sleep)
    handled: list[int] = []

    async def handler(event: Any, data: dict[str, Any]) -> None:
        handled.append(len(data[ALBUM]))

    first = asyncio.create_task(middleware(handler, _update(1, 1, "g"), {}))
    n = 2
    while not first.done():
        await middleware(handler, _update(n, n, "g"), {})
        n += 1
        await asyncio.sleep(0)
    assert handled and clock.now <= 3.0 + 1.0
