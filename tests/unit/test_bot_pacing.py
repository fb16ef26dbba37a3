"""The send pacer spreads bursts to Telegram's limits; throttled replies are retried until delivered.

Time is a fake clock: ``sleep`` moves it, so nothing here waits on the wall clock.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage, SendPhoto, TelegramMethod

from roles.bot.pacing import SendPacer, posts_message
from roles.bot.retry import RetryAfter


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


class Telegram:
    """The far side: notes when each call arrived; may refuse the first ones with 429 or 403."""

    def __init__(self, clock: FakeTime, refuse: int = 0, retry_after: int = 5, forbidden: bool = False) -> None:
        self.clock, self.refuse, self.retry_after, self.forbidden = clock, refuse, retry_after, forbidden
        self.delivered: list[tuple[float, Any]] = []
        self.refused = 0

    async def __call__(self, _bot: Any, method: TelegramMethod[Any]) -> Any:
        if self.forbidden:
            raise TelegramForbiddenError(method, "Forbidden: bot was blocked by the user")
        if self.refused < self.refuse:
            self.refused += 1
            raise TelegramRetryAfter(method, "Too Many Requests", self.retry_after)
        self.delivered.append((self.clock(), getattr(method, "chat_id", None)))
        return True


def send(chat_id: int, text: str = "hi") -> SendMessage:
    return SendMessage(chat_id=chat_id, text=text)


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


def pacer(clock: FakeTime, **limits: float) -> SendPacer:
    """Telegram's own figures here, to read the times; the bot's defaults are 10 % under them."""
    figures = {"chat_rate": 1.0, "chat_burst": 3.0, "bot_rate": 30.0, "bot_burst": 30.0, **limits}
    return SendPacer(**figures, clock=clock, sleep=clock.sleep)


async def test_a_burst_to_one_chat_leaves_three_at_once_then_one_a_second(clock: FakeTime) -> None:
    tg, pace = Telegram(clock), pacer(clock)
    for i in range(6):
        await pace(tg, None, send(1, f"m{i}"))  # type: ignore[arg-type]
    assert [t for t, _ in tg.delivered] == pytest.approx([0, 0, 0, 1, 2, 3])


async def test_chats_do_not_wait_for_each_other_but_share_the_bot_limit(clock: FakeTime) -> None:
    tg, pace = Telegram(clock), pacer(clock, bot_rate=30.0, bot_burst=30.0)
    for chat in range(35):
        await pace(tg, None, send(chat))  # type: ignore[arg-type]
    times = [t for t, _ in tg.delivered]
    assert times[:30] == [0.0] * 30
    assert times[30:] == pytest.approx([i / 30 for i in range(1, 6)])


async def test_edits_and_answers_are_not_paced(clock: FakeTime) -> None:
    tg, pace = Telegram(clock), pacer(clock)
    for i in range(5):
        await pace(tg, None, EditMessageText(chat_id=1, message_id=1, text=f"v{i}"))  # type: ignore[arg-type]
        await pace(tg, None, AnswerCallbackQuery(callback_query_id=str(i)))  # type: ignore[arg-type]
    assert [t for t, _ in tg.delivered] == [0.0] * 10
    assert posts_message(SendPhoto(chat_id=1, photo="x")) and not posts_message(EditMessageText(text="x"))


async def test_a_refused_send_is_retried_after_retry_after_and_holds_its_chat(clock: FakeTime) -> None:
    tg, pace = Telegram(clock, refuse=1, retry_after=5), pacer(clock)
    retry = RetryAfter(sleep=clock.sleep)

    async def paced(bot: Any, method: TelegramMethod[Any]) -> Any:
        return await pace(tg, bot, method)

    await retry(paced, None, send(1, "first"))  # type: ignore[arg-type]
    assert tg.delivered == [(5.0, 1)]
    await retry(paced, None, send(1, "second"))  # type: ignore[arg-type]
    assert tg.delivered[1][0] >= 5.0 and tg.refused == 1  # not refused again
    await retry(paced, None, send(2, "other chat"))  # type: ignore[arg-type]
    assert tg.delivered[2] == (clock(), 2)


async def test_a_reply_is_retried_until_delivered_not_dropped_after_three(clock: FakeTime) -> None:
    tg = Telegram(clock, refuse=7, retry_after=2)
    await RetryAfter(sleep=clock.sleep)(tg, None, send(1))  # type: ignore[arg-type]
    assert tg.refused == 7 and tg.delivered == [(14.0, 1)]


async def test_a_gone_chat_fails_at_once(clock: FakeTime) -> None:
    tg = Telegram(clock, forbidden=True)
    with pytest.raises(TelegramForbiddenError):
        await RetryAfter(sleep=clock.sleep)(tg, None, send(1))  # type: ignore[arg-type]
    assert clock() == 0.0
