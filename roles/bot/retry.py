"""Bot API calls answered with 429 are retried after Telegram's ``retry_after`` until delivered.

Without this a burst of replies (a user tapping quickly, an announcement) loses the replies
Telegram throttled. The wait is Telegram's own hint, never a guess. A reply is never dropped for
being throttled: it is sent again until it goes through or fails otherwise (the chat is gone, the
user blocked the bot: those errors pass through at once). ``attempts`` bounds it where a caller
has a better plan (none in the bot today).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods.base import TelegramType

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response, TelegramMethod

log = logging.getLogger(__name__)


class RetryAfter(BaseRequestMiddleware):
    def __init__(self, attempts: int | None = None,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.attempts = attempts
        self.sleep = sleep

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if self.attempts is not None and attempt >= self.attempts:
                    raise
                log.info("bot api %s throttled, retrying in %ss (attempt %d)",
                         type(method).__name__, exc.retry_after, attempt)
                await self.sleep(exc.retry_after)
