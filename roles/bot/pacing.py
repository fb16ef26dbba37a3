"""The bot's send pacer: new messages are spread to Telegram's limits instead of being retried.

Telegram allows about one message per second in a chat (short bursts pass) and about 30 per
second across chats; past that it answers 429 "Too Many Requests" with ``retry_after``. The pacer
is a request middleware holding the same token buckets as Telegram: a send reserves a token in
its chat's bucket and in the bot's bucket and waits until both have it, so a burst leaves in
order, spaced, and Telegram never has to refuse it. A 429 that still comes (another process sent
to the chat, a stricter limit) moves the chat's bucket to Telegram's ``retry_after`` for every
send queued behind it; ``RetryAfter`` (``roles.bot.retry``) then sends the refused one again.

Only calls that post a new message count (``sendMessage``, ``send<media>``, ``copyMessage``...);
edits, answers and chat actions pass straight through. Time is injected (``clock``, ``sleep``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import CopyMessage, CopyMessages, ForwardMessage, ForwardMessages, SendChatAction
from aiogram.methods.base import TelegramType

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response, TelegramMethod

# Telegram's published limits (the sandbox's are the same), paced 10 % under: a send reaches Telegram
# a little after it leaves here, and a gap that shrinks in transit must not cost a refusal
CHAT_RATE, CHAT_BURST = 0.9, 3.0
BOT_RATE, BOT_BURST = 27.0, 27.0
IDLE_CHATS = 10_000  # chat buckets kept before full (idle) ones are dropped
_EPSILON = 1e-9  # a token short by a float rounding is there (else a wait of ~0 s forever)

_POSTING = (CopyMessage, CopyMessages, ForwardMessage, ForwardMessages)


def posts_message(method: object) -> bool:
    """The call posts a new message (counted by Telegram's per-chat limit)."""
    if isinstance(method, SendChatAction):
        return False
    return isinstance(method, _POSTING) or type(method).__name__.startswith("Send")


class Bucket:
    """A token bucket that lends: ``reserve`` takes a token now and says how long to wait for it."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.tokens, self.updated = rate, burst, burst, now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def wait_for(self, now: float) -> float:
        """Seconds until a token is free (nothing taken)."""
        self._refill(now)
        missing = 1 - self.tokens
        return 0.0 if missing <= _EPSILON else missing / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1

    def hold_until(self, now: float, until: float) -> None:
        """Telegram said wait: no token before ``until`` (and only one then)."""
        self._refill(now)
        self.tokens = min(self.tokens, 1 - (until - now) * self.rate)

    def full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.burst


class SendPacer(BaseRequestMiddleware):
    def __init__(
        self,
        chat_rate: float = CHAT_RATE,
        chat_burst: float = CHAT_BURST,
        bot_rate: float = BOT_RATE,
        bot_burst: float = BOT_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.chat_rate, self.chat_burst = chat_rate, chat_burst
        self.clock, self.sleep = clock, sleep
        self.bot = Bucket(bot_rate, bot_burst, clock())
        self.chats: dict[int | str, Bucket] = {}
        self._lock = asyncio.Lock()  # one reservation at a time: FIFO per chat

    def _chat(self, chat_id: int | str, now: float) -> Bucket:
        bucket = self.chats.get(chat_id)
        if bucket is None:
            if len(self.chats) >= IDLE_CHATS:
                for key in [k for k, b in self.chats.items() if b.full(now)]:
                    del self.chats[key]
            bucket = self.chats[chat_id] = Bucket(self.chat_rate, self.chat_burst, now)
        return bucket

    async def acquire(self, chat_id: int | str) -> None:
        """Wait until a new message may go to ``chat_id`` without Telegram refusing it."""
        while True:
            async with self._lock:
                now = self.clock()
                chat = self._chat(chat_id, now)
                wait = max(chat.wait_for(now), self.bot.wait_for(now))
                if wait <= 0:
                    chat.take(now)
                    self.bot.take(now)
                    return
            await self.sleep(wait)

    def refused(self, chat_id: int | str, retry_after: float) -> None:
        now = self.clock()
        self._chat(chat_id, now).hold_until(now, now + retry_after)

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        chat_id = getattr(method, "chat_id", None)
        if not isinstance(chat_id, int | str) or not posts_message(method):
            return await make_request(bot, method)
        await self.acquire(chat_id)
        try:
            return await make_request(bot, method)
        except TelegramRetryAfter as exc:
            self.refused(chat_id, float(exc.retry_after))
            raise
