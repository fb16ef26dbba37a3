"""The bot's update-dedupe keys (issue 14): an update id is handled once across replicas, and its key
lives DEDUPE_TTL (minutes: as long as Telegram may redeliver an unconfirmed update), not a day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiogram.types import Update, User

from roles.bot.middlewares import DEDUPE_TTL, GateMiddleware
from storage import keys

pytestmark = pytest.mark.integration


def update(update_id: int) -> Update:
    return Update.model_validate({"update_id": update_id, "message": {
        "message_id": 1, "date": 0, "chat": {"id": 42, "type": "private"},
        "from": {"id": 42, "is_bot": False, "first_name": "Ada"}, "text": "/start"}})


async def test_an_update_is_handled_once_and_its_key_expires_within_minutes(redis_client) -> None:
    gate = GateMiddleware(redis_client, rate=10)
    handled: list[int] = []

    async def handler(event: Any, data: dict[str, Any]) -> None:
        handled.append(event.update_id)

    data = {"event_from_user": User(id=42, is_bot=False, first_name="Ada")}
    await gate(handler, update(901), dict(data))
    await gate(handler, update(901), dict(data))  # redelivered (a takeover, a webhook retry)
    await gate(handler, update(902), dict(data))
    assert handled == [901, 902]
    ttl = await redis_client.ttl(keys.BOT_UPDATE_SEEN.format(update_id=901))
    assert DEDUPE_TTL - 5 <= ttl <= DEDUPE_TTL == 600


async def test_a_redelivery_after_the_key_expired_is_handled_again(redis_client) -> None:
    gate = GateMiddleware(redis_client, rate=10, dedupe_ttl=1)
    handled: list[int] = []

    async def handler(event: Any, data: dict[str, Any]) -> None:
        handled.append(event.update_id)

    await gate(handler, update(903), {})
    await redis_client.delete(keys.BOT_UPDATE_SEEN.format(update_id=903))  # what expiry does, without waiting
    await gate(handler, update(903), {})
    assert handled == [903, 903]


async def test_at_most_rate_updates_per_second_of_the_clock_pass(redis_client) -> None:
    now = [datetime(2026, 12, 6, 12, 0, 0, 300_000, tzinfo=UTC)]
    gate = GateMiddleware(redis_client, rate=3, now=lambda: now[0])
    handled: list[int] = []

    async def handler(event: Any, data: dict[str, Any]) -> None:
        handled.append(event.update_id)

    data = {"event_from_user": User(id=43, is_bot=False, first_name="Bo")}
    for update_id in range(910, 915):  # five in one second: three pass
        await gate(handler, update(update_id), dict(data))
    now[0] += timedelta(milliseconds=800)  # the next second of the clock: a new window
    await gate(handler, update(915), dict(data))
    assert handled == [910, 911, 912, 915]
    second = int(now[0].timestamp())
    assert await redis_client.get(keys.THROTTLE.format(user_id=43, second=second)) == b"1"
    assert 0 < await redis_client.ttl(keys.THROTTLE.format(user_id=43, second=second)) <= 2
