"""U12 beyond the contract cases: the stored language survives a restart of the bot and wins over a
later language_code, notifications speak the recipient's language, and the command list is set per
language."""

from __future__ import annotations

import asyncio

import pytest

from roles.bot import i18n
from roles.bot.role import COMMANDS
from services import notifications
from services.notifications import NotificationService
from tests.parity.harness import Harness

pytestmark = [pytest.mark.parity, pytest.mark.asyncio(loop_scope="module")]


async def _bot_texts(harness: Harness, uid: int) -> list[str]:
    return [m["text"] for m in await harness.client.chat(uid) if m["from"] == "bot"]


async def _send(harness: Harness, uid: int, text: str) -> None:
    harness.count_pushed()
    await harness.client.send_text(uid, text)
    await harness.settle()


async def _press(harness: Harness, uid: int, data: str) -> None:
    chat = await harness.client.chat(uid)
    message = next(m for m in reversed(chat) if m["from"] == "bot" and any(
        b.get("callback_data") == data for row in (m.get("reply_markup") or {}).get("inline_keyboard") or []
        for b in row))
    harness.count_pushed()
    await harness.client.press(uid, message["message_id"], data, timeout=5.0)
    await harness.settle()


async def test_the_chosen_language_survives_a_restart_and_a_new_language_code(harness: Harness) -> None:
    uid = await harness.new_user("Polyglot")
    await harness.client.create_user(uid, "Polyglot", username=f"user{uid}", language_code="ru")
    await _send(harness, uid, "/start")
    assert "Добро пожаловать" in (await _bot_texts(harness, uid))[-1]
    await _press(harness, uid, "set:menu")
    await _press(harness, uid, "set:lang:en")
    assert "The bot speaks English now" in (await _bot_texts(harness, uid))[-1]
    await harness.restart_bot()
    await _send(harness, uid, "/help")  # the app still says ru: the stored choice wins
    assert "How it works" in (await _bot_texts(harness, uid))[-1]
    assert await harness.fetchval("SELECT language FROM users WHERE user_id = $1", uid) == "en"


async def test_a_notification_speaks_the_recipients_language(harness: Harness) -> None:
    uid = await harness.new_user("Notified RU")
    await harness.client.create_user(uid, "Notified RU", username=f"user{uid}", language_code="ru")
    await _send(harness, uid, "/start")
    async with harness.db.transaction() as conn:
        note = await NotificationService.enqueue(conn, uid, notifications.GROUP_DISABLED,
                                                 {"group_id": 1, "title": "Alpha", "reason": "CHAT_WRITE_FORBIDDEN"})
    assert note is not None
    deadline = asyncio.get_running_loop().time() + 30
    while not await harness.fetchval(
            "SELECT delivered_at IS NOT NULL FROM notifications WHERE notification_id = $1", note):
        assert asyncio.get_running_loop().time() < deadline, "not delivered"
        await asyncio.sleep(0.05)
    shown = [t for t in await _bot_texts(harness, uid) if "Alpha" in t]
    assert shown == ["⚠️ Группа «Alpha» отключена: нельзя писать. С этого момента она пропускается."]


async def test_the_command_list_is_set_in_each_language(harness: Harness) -> None:
    commands = harness.sandbox.chats.commands
    assert [c["description"] for c in commands["default::"]] == [d for _, d in COMMANDS]
    russian = [c["description"] for c in commands["default::ru"]]
    assert russian == [i18n.translate(d, "ru") for _, d in COMMANDS] and "главное меню" in russian
