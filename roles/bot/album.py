"""U9.3: an album reaches a bot as one message per item, all with the same ``media_group_id``.

``AlbumMiddleware`` (an outer update middleware, before the FSM's per-user lock, so the parts are
not queued behind the first one) collects them: the first part waits until no new part came for
``quiet`` seconds (at most ``longest`` in all), then goes on to the handlers with every part,
ordered, in ``data["album"]``; the other parts end here as handled.

The collection lives in this process's memory and only for that window. On a graceful stop the
waiting first part is an update in flight, so the album is handled before the process ends; a
crash within the window loses it (the user sees no preview and sends the album again). Polling
hands all parts to the one leader; with webhooks behind several replicas, parts of one album may
reach different replicas, and each shows the parts it got (the preview then shows what is wrong).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject, Update

from roles.bot.middlewares import mark

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

QUIET = 0.5  # Telegram delivers an album's parts within a fraction of a second of each other
LONGEST = 5.0
ALBUM = "album"  # the handler data key: the parts, ordered by message id


@dataclass
class _Parts:
    started: float
    last: float
    messages: list[Message] = field(default_factory=list)


class AlbumMiddleware(BaseMiddleware):
    def __init__(self, quiet: float = QUIET, longest: float = LONGEST,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.quiet = quiet
        self.longest = longest
        self.clock = clock
        self.sleep = sleep
        self._albums: dict[tuple[int, str], _Parts] = {}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        message = event.message if isinstance(event, Update) else None
        if message is None or message.media_group_id is None:
            return await handler(event, data)
        key = (message.chat.id, message.media_group_id)
        now = self.clock()
        parts = self._albums.get(key)
        if parts is not None:
            parts.messages.append(message)
            parts.last = now
            mark("U9.3", "album_part")
            return None
        parts = self._albums[key] = _Parts(now, now, [message])
        try:
            while True:
                now = self.clock()
                wait = min(parts.last + self.quiet, parts.started + self.longest) - now
                if wait <= 0:
                    break
                await self.sleep(wait)
        finally:
            del self._albums[key]
        data[ALBUM] = sorted(parts.messages, key=lambda m: m.message_id)
        return await handler(event, data)
