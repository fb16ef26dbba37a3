"""The control bot's Bot instances pace a burst to one chat and retry a 429 instead of losing the reply."""

from __future__ import annotations

import itertools

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramRetryAfter

from roles.bot.middlewares import install_request_middlewares


async def test_a_burst_to_one_chat_is_delivered_after_the_429_hints(sandbox_factory):
    server = await sandbox_factory(rate_limits=True)
    await server.client.create_user(2001, "Rita")
    plain = Bot("123:plain", session=AiohttpSession(api=TelegramAPIServer.from_base(server.url)))
    retrying = Bot("124:retry", session=AiohttpSession(api=TelegramAPIServer.from_base(server.url)))
    install_request_middlewares(retrying)
    try:
        # without the middleware the sandbox's per-chat limit answers 429 within a short burst
        throttled = False
        for i in range(8):
            try:
                await plain.send_message(2001, f"plain {i}")
            except TelegramRetryAfter:
                throttled = True
                break
        assert throttled, "the sandbox should throttle a burst to one chat"

        await server.client.create_user(2002, "Sam")
        for i in range(6):
            await retrying.send_message(2002, f"retried {i}")
        chat = await server.client.chat(2002)
        assert [m["text"] for m in chat if m["from"] == "bot"] == [f"retried {i}" for i in range(6)]
        events = [e for e in await server.client.events() if e.get("user_id") == 2002 and e["method"].lower() == "sendmessage"]
        # the send pacer spreads the burst, so Telegram refuses none of it (a refusal would be retried:
        # tests/unit/test_bot_pacing.py)
        assert [e for e in events if e.get("error")] == []
        gaps = [b["ts_ms"] - a["ts_ms"] for a, b in itertools.pairwise(events[2:])]
        assert gaps and min(gaps) >= 900, gaps
    finally:
        await plain.session.close()
        await retrying.session.close()
