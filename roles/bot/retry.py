"""Bot API calls answered with 429 are retried after Telegram's ``retry_after``, a bounded number of times.

Without this a burst of replies (a user tapping quickly, an announcement) loses the
replies Telegram throttled. The wait is Telegram's own hint, never a guess.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods.base import TelegramType

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response, TelegramMethod

log = logging.getLogger(__name__)


class RetryAfter(BaseRequestMiddleware):
    def __init__(self, attempts: int = 3, max_wait: float = 60.0) -> None:
        self.attempts = attempts
        self.max_wait = max_wait

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        for attempt in range(1, self.attempts + 1):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if attempt == self.attempts or exc.retry_after > self.max_wait:
                    raise
                log.info("bot api %s throttled, retrying in %ss (attempt %d)",
                         type(method).__name__, exc.retry_after, attempt)
                await asyncio.sleep(exc.retry_after)
        raise AssertionError("unreachable")  # the loop either returns or raises
