"""Updates: long polling as Telegram does it, an aiogram Dispatcher on top, webhooks, callback queries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramBadRequest, TelegramConflictError
from aiogram.methods import SendMessage
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from aiohttp.test_utils import TestServer

from sandbox.chats import POLL_CONFLICT, WEBHOOK_CONFLICT
from tests.sandbox.conftest import USER, Sandbox
from tests.sandbox.conftest_world import FakeClock

QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"


def buttons(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=d, callback_data=d) for d in data]])


async def test_offset_confirms_earlier_updates(sandbox: Sandbox, bot: Bot) -> None:
    for text in ("one", "two", "three"):
        await sandbox.client.send_text(USER, text)

    first = await bot.get_updates()
    ids = [u.update_id for u in first]
    assert [u.message.text for u in first if u.message] == ["one", "two", "three"]
    assert ids == sorted(ids) and ids[2] - ids[0] == 2
    assert [u.update_id for u in await bot.get_updates(limit=1)] == ids[:1]
    # unconfirmed updates come again; an offset drops the ones below it for good
    assert [u.update_id for u in await bot.get_updates(offset=ids[1])] == ids[1:]
    assert [u.update_id for u in await bot.get_updates()] == ids[1:]
    assert [u.update_id for u in await bot.get_updates(offset=-1)] == ids[2:]
    assert [u.update_id for u in await bot.get_updates()] == ids[2:]
    assert await bot.get_updates(offset=ids[2] + 1) == []


async def test_long_poll_wakes_on_a_new_update_and_times_out_empty(sandbox: Sandbox, bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == []
    assert 0.9 <= time.monotonic() - started < 3

    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await sandbox.client.send_text(USER, "wake up")
    updates = await poll
    assert time.monotonic() - started < 1.0
    assert [u.message.text for u in updates if u.message] == ["wake up"]


async def test_a_second_get_updates_terminates_the_waiting_one(sandbox: Sandbox, bot: Bot) -> None:
    other = sandbox.bot()
    try:
        first = asyncio.create_task(bot.get_updates(timeout=10))
        await asyncio.sleep(0.1)
        second = asyncio.create_task(other.get_updates(timeout=0))
        with pytest.raises(TelegramConflictError) as info:
            await first
        assert await second == []
    finally:
        await other.session.close()
    assert info.value.message == POLL_CONFLICT
    events = [e for e in await sandbox.client.events() if e["method"] == "getUpdates"]
    assert sorted((e["ok"], e.get("error", "")) for e in events) == [(False, POLL_CONFLICT), (True, "")]


async def test_allowed_updates_filter_new_updates(sandbox: Sandbox, bot: Bot) -> None:
    sent = await bot.send_message(USER, "menu", reply_markup=buttons("go"))
    assert await bot.get_updates(allowed_updates=["callback_query"]) == []

    await sandbox.client.send_text(USER, "ignored")
    pressed = await sandbox.client.press(USER, sent.message_id, "go", timeout=0.05)
    updates = await bot.get_updates()

    assert pressed == {"answered": False}
    assert [u.event_type for u in updates] == ["callback_query"]
    # an empty list goes back to the default set
    assert await bot.get_updates(offset=updates[0].update_id + 1, allowed_updates=[]) == []
    await sandbox.client.send_text(USER, "seen")
    assert [u.event_type for u in await bot.get_updates()] == ["message"]


async def test_block_and_restart_send_my_chat_member(sandbox: Sandbox, bot: Bot) -> None:
    await sandbox.client.block(USER)
    await sandbox.client.unblock(USER)

    updates = await bot.get_updates()
    statuses = [(u.my_chat_member.old_chat_member.status, u.my_chat_member.new_chat_member.status)
                for u in updates if u.my_chat_member]
    assert statuses == [("member", "kicked"), ("kicked", "member")]


async def test_aiogram_echo_bot_answers_through_long_polling(sandbox: Sandbox, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}", reply_markup=buttons("again"))

    @dp.callback_query()
    async def pressed(query: CallbackQuery) -> None:
        await query.answer(f"pressed {query.data}", show_alert=True)

    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=5))
    try:
        asked = await sandbox.client.send_text(USER, "ping")
        reply = await sandbox.client.wait_for_bot_message(USER, after=asked, timeout=5)
        answer = await sandbox.client.press(USER, reply["message_id"], "again")
        asked_again = await sandbox.client.send_text(USER, "pong")
        second = await sandbox.client.wait_for_bot_message(USER, after=asked_again, timeout=5)
    finally:
        await dp.stop_polling()
        await polling

    assert reply["text"] == "echo: ping"
    assert reply["reply_markup"] == {"inline_keyboard": [[{"text": "again", "callback_data": "again"}]]}
    assert answer == {"answered": True, "text": "pressed again", "show_alert": True}
    assert second["text"] == "echo: pong"
    methods = {e["method"] for e in await sandbox.client.events()}
    assert {"getMe", "getUpdates", "sendMessage", "answerCallbackQuery"} <= methods


async def test_callback_answer_reaches_the_control_api(sandbox: Sandbox, bot: Bot) -> None:
    sent = await bot.send_message(USER, "menu", reply_markup=buttons("grp:list:0"))
    press = asyncio.create_task(sandbox.client.press(USER, sent.message_id, "grp:list:0"))
    updates = await bot.get_updates(timeout=5)
    query = updates[0].callback_query
    assert query is not None and query.data == "grp:list:0" and query.from_user.id == USER
    assert query.message is not None and query.message.message_id == sent.message_id

    assert await bot.answer_callback_query(query.id, text="Loading…") is True
    assert await press == {"answered": True, "text": "Loading…", "show_alert": False}
    with pytest.raises(TelegramBadRequest) as twice:
        await bot.answer_callback_query(query.id)
    with pytest.raises(TelegramBadRequest) as unknown:
        await bot.answer_callback_query("12345")
    assert twice.value.message == QUERY_TOO_OLD
    assert unknown.value.message == QUERY_TOO_OLD
    answered = [e for e in await sandbox.client.events() if e["method"] == "answerCallbackQuery"]
    assert [(e["ok"], e.get("user_id")) for e in answered] == [(True, USER), (False, None), (False, None)]


async def test_a_late_answer_is_too_old(sandbox: Sandbox, bot: Bot) -> None:
    clock = sandbox.chats.clock = FakeClock(time.monotonic())  # the answer window passes without waiting
    sent = await bot.send_message(USER, "menu", reply_markup=buttons("x"))

    result = await sandbox.client.press(USER, sent.message_id, "x", timeout=0.05)
    query = (await bot.get_updates())[0].callback_query
    clock.advance(sandbox.chats.callback_ttl + 0.001)
    assert query is not None
    with pytest.raises(TelegramBadRequest) as info:
        await query.answer("too late")

    assert result == {"answered": False}
    assert info.value.message == QUERY_TOO_OLD


async def test_pressing_a_missing_message_is_a_control_error(sandbox: Sandbox) -> None:
    from sandbox.client import SandboxError

    with pytest.raises(SandboxError) as info:
        await sandbox.client.press(USER, 77, "x")
    assert info.value.status == 404


# ---------------------------------------------------------------- webhooks


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, Any], str | None]] = []
        self.status = 200
        self.reply: dict[str, Any] | None = None
        self.got = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token")))
        self.got.set()
        if self.reply is not None:
            return web.Response(body=orjson.dumps(self.reply), content_type="application/json")
        return web.Response(status=self.status)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield hook, str(server.make_url("/hook"))
    await server.close()


async def test_webhook_receives_updates_with_the_secret_token(sandbox: Sandbox, bot: Bot,
                                                              receiver: tuple[Receiver, str]) -> None:
    hook, url = receiver
    await sandbox.client.send_text(USER, "before")  # pending, dropped below
    assert await bot.set_webhook(url, secret_token="s3cr3t", drop_pending_updates=True) is True

    with pytest.raises(TelegramConflictError) as conflict:
        await bot.get_updates()
    await sandbox.client.send_text(USER, "hello hook")
    await asyncio.wait_for(hook.got.wait(), 5)

    update, secret = hook.received[0]
    assert secret == "s3cr3t"
    assert Update.model_validate(update).message.text == "hello hook"  # type: ignore[union-attr]
    assert conflict.value.message == WEBHOOK_CONFLICT
    info = await bot.get_webhook_info()
    assert info.url == url and info.pending_update_count == 0 and info.last_error_message is None
    assert await bot.delete_webhook() is True
    assert (await bot.get_webhook_info()).url == ""
    assert await bot.get_updates() == []


async def test_webhook_failure_is_reported_and_retried(sandbox: Sandbox, bot: Bot,
                                                       receiver: tuple[Receiver, str]) -> None:
    hook, url = receiver
    hook.status = 500
    await bot.set_webhook(url)
    await sandbox.client.send_text(USER, "hello")
    await asyncio.wait_for(hook.got.wait(), 5)
    await asyncio.sleep(0.05)

    info = await bot.get_webhook_info()
    assert info.pending_update_count == 1
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
    hook.status = 200
    for _ in range(100):
        if (await bot.get_webhook_info()).pending_update_count == 0:
            break
        await asyncio.sleep(0.05)
    assert (await bot.get_webhook_info()).pending_update_count == 0
    assert len(hook.received) >= 2 and {u["update_id"] for u, _ in hook.received} == {
        hook.received[0][0]["update_id"]}
    await bot.delete_webhook(drop_pending_updates=True)


async def test_webhook_reply_method_is_executed(sandbox: Sandbox, bot: Bot,
                                                receiver: tuple[Receiver, str]) -> None:
    hook, url = receiver
    hook.reply = {"method": "sendMessage", "chat_id": USER, "text": "answered <b>inline</b>", "parse_mode": "HTML"}
    await bot.set_webhook(url)
    asked = await sandbox.client.send_text(USER, "hi")

    reply = await sandbox.client.wait_for_bot_message(USER, after=asked)
    assert reply["text"] == "answered inline" and reply["entities"][0]["type"] == "bold"
    await bot.delete_webhook()


async def test_aiogram_webhook_handler_reply_in_multipart(sandbox: Sandbox, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> SendMessage:
        return message.answer(f"via webhook: {message.text}")

    app = web.Application()
    SimpleRequestHandler(dp, bot, handle_in_background=False, secret_token="tok").register(app, path="/wh")
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        await bot.set_webhook(str(server.make_url("/wh")), secret_token="tok")
        asked = await sandbox.client.send_text(USER, "ping")
        reply = await sandbox.client.wait_for_bot_message(USER, after=asked)
        await bot.delete_webhook()
    finally:
        await server.close()
    assert reply["text"] == "via webhook: ping"
