"""A tiny bot for the page tests: long-polls the sandbox's Bot API and answers a few fixed inputs.

| input | answer |
|---|---|
| ``/start`` | a formatted greeting with inline buttons ``ping`` (toast + edit), ``alert`` (alert), ``forget`` (delete) |
| ``contact please`` | a reply keyboard with "Share my number" |
| a contact | "Thanks, <phone>" and the reply keyboard removed |
| a photo | "Nice photo: <caption>" |
| other text | "echo: <text> [entity types]" |
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

TOKEN = "4242:tiny-test-bot"
SHARE = "📱 Share my number"
Json = dict[str, Any]


class TinyBot:
    def __init__(self, base_url: str) -> None:
        self.api = f"{base_url}/bot{TOKEN}"
        self.received: list[Json] = []
        self._http: aiohttp.ClientSession | None = None

    async def call(self, method: str, **params: Any) -> Any:
        assert self._http is not None
        async with self._http.post(f"{self.api}/{method}", json=params) as response:
            answer = await response.json()
        if not answer.get("ok"):
            raise RuntimeError(f"{method} failed: {answer}")
        return answer["result"]

    async def run(self) -> None:
        self._http = aiohttp.ClientSession()
        try:
            offset = 0
            while True:
                for update in await self.call("getUpdates", offset=offset, timeout=1):
                    offset = update["update_id"] + 1
                    await self.handle(update)
        finally:
            await self._http.close()

    async def handle(self, update: Json) -> None:
        if "callback_query" in update:
            await self.on_callback(update["callback_query"])
        elif "message" in update:
            message = update["message"]
            self.received.append(message)
            await self.on_message(message["chat"]["id"], message)

    async def on_message(self, chat: int, message: Json) -> None:
        text = message.get("text")
        if text == "/start":
            await self.call("sendMessage", chat_id=chat, parse_mode="HTML",
                            text="<b>Hello</b>, <i>tester</i>! Pick one:",
                            reply_markup={"inline_keyboard": [
                                [{"text": "Ping", "callback_data": "ping"},
                                 {"text": "Alert", "callback_data": "alert"}],
                                [{"text": "Forget", "callback_data": "forget"}]]})
        elif text == "contact please":
            await self.call("sendMessage", chat_id=chat, text="Share your number, please.",
                            reply_markup={"keyboard": [[{"text": SHARE, "request_contact": True}]],
                                          "one_time_keyboard": True, "resize_keyboard": True})
        elif "contact" in message:
            await self.call("sendMessage", chat_id=chat, text=f"Thanks, {message['contact']['phone_number']}",
                            reply_markup={"remove_keyboard": True})
        elif "photo" in message:
            await self.call("sendMessage", chat_id=chat, text=f"Nice photo: {message.get('caption', '')}")
        elif text is not None:
            kinds = ",".join(e["type"] for e in message.get("entities", []))
            await self.call("sendMessage", chat_id=chat, text=f"echo: {text} [{kinds}]")

    async def on_callback(self, query: Json) -> None:
        data = query["data"]
        chat, message_id = query["message"]["chat"]["id"], query["message"]["message_id"]
        if data == "ping":
            await self.call("answerCallbackQuery", callback_query_id=query["id"], text="pong")
            await self.call("editMessageText", chat_id=chat, message_id=message_id, text="Pinged ✅")
        elif data == "alert":
            await self.call("answerCallbackQuery", callback_query_id=query["id"], text="Careful!",
                            show_alert=True)
        elif data == "forget":
            await self.call("answerCallbackQuery", callback_query_id=query["id"])
            await self.call("deleteMessage", chat_id=chat, message_id=message_id)


@contextlib.asynccontextmanager
async def running_bot(base_url: str) -> AsyncIterator[TinyBot]:
    bot = TinyBot(base_url)
    task = asyncio.create_task(bot.run())
    try:
        yield bot
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
