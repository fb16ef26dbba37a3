"""The bot's runtime guarantees: flood throttling, update-id dedupe, state that survives a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiogram import Bot, Dispatcher
from aiogram.types import Update

import contract
from roles.bot import texts
from roles.bot.role import build_bot, build_dispatcher, build_services
from services import notifications
from services.notifications import NotificationService
from tests.parity.harness import Harness
from tests.parity.runner import CaseRunner

pytestmark = [pytest.mark.parity, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def second_bot(harness: Harness) -> AsyncIterator[tuple[Dispatcher, Bot]]:
    """Another bot process as far as state goes: new dispatcher, new services, same DB and Redis."""
    gateway = harness.new_gateway()  # through the same selection as the supervisor's
    services = build_services(harness.settings, harness.db, harness.redis, gateway, harness.cipher,
                              harness.clock)
    dp = build_dispatcher(harness.settings, harness.redis, services)
    bot = build_bot(harness.settings)
    yield dp, bot
    await bot.session.close()
    await gateway.close()


def _text_update(update_id: int, uid: int, text: str, message_id: int = 900_000) -> Update:
    user: dict[str, Any] = {"id": uid, "is_bot": False, "first_name": "Runtime"}
    return Update.model_validate({"update_id": update_id, "message": {
        "message_id": message_id, "date": 1_700_000_000, "chat": {"id": uid, "type": "private"},
        "from": user, "text": text}})


async def _bot_texts(harness: Harness, uid: int) -> list[str]:
    return [m["text"] for m in await harness.client.chat(uid) if m["from"] == "bot"]


async def test_a_flood_is_answered_once_with_slow_down(harness: Harness) -> None:
    uid = await harness.new_user("Flood")
    flood = harness.settings.bot.throttle_rate * 2
    # the bot's clock held still: the whole flood falls into one second of the throttle however long
    # a loaded machine takes to deliver it
    with harness.clock.frozen():
        results = await asyncio.gather(*(harness.client.send_text(uid, f"hello {i}") for i in range(int(flood))))
        harness.count_pushed(len(results))
        await harness.settle()
    replies = await _bot_texts(harness, uid)
    slow = [t for t in replies if t == texts.SLOW_DOWN]
    handled = [t for t in replies if "didn't understand" in t]
    assert len(slow) == 1, replies[-5:]
    assert 1 <= len(handled) <= harness.settings.bot.throttle_rate


async def test_an_update_delivered_twice_acts_once(harness: Harness, second_bot: tuple[Dispatcher, Bot]) -> None:
    dp, bot = second_bot
    uid = await harness.new_user("Twice")
    update = _text_update(2_000_000_001, uid, "/start")
    await dp.feed_update(bot, update)
    await dp.feed_update(bot, update)  # a polling takeover or a webhook retry delivers it again
    harness.count_pushed(2)  # both deliveries pass the bot's handler metric that settle() reads
    replies = await _bot_texts(harness, uid)
    assert len([t for t in replies if "Welcome" in t]) == 1, replies


async def test_a_login_survives_a_restart(harness: Harness, flow_contract: contract.Contract,
                                          second_bot: tuple[Dispatcher, Bot]) -> None:
    runner = CaseRunner(harness, flow_contract, contract.Case(id="restart"))
    runner.uid = await harness.new_user("Restart")
    for step in flow_contract.expand([{"given": "code_alice"}]):
        await runner.step(step)
    assert await harness.state(runner.uid) == "login_code"
    code = await harness.client.latest_code(flow_contract.accounts["alice"]["phone"])
    dp, bot = second_bot  # knows nothing of the first bot but what is in Redis and PostgreSQL
    await dp.feed_update(bot, _text_update(2_000_000_101, runner.uid, " ".join(code)))
    harness.count_pushed()
    assert await harness.state(runner.uid) == "idle"
    assert any("Connected as Alice" in t for t in await _bot_texts(harness, runner.uid))
    assert await harness.fetchval("SELECT status FROM accounts WHERE user_id = $1", runner.uid) == "connected"


async def _wait_for(predicate: Any, timeout: float = 8.0) -> None:  # noqa: ASYNC109
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _delivered(harness: Harness, note: int) -> None:
    """Wait until the bot's notifier has delivered outbox row ``note``."""

    async def delivered() -> bool:
        return bool(await harness.fetchval(
            "SELECT delivered_at IS NOT NULL FROM notifications WHERE notification_id = $1", note))

    await _wait_for(delivered)


async def test_notifications_from_the_outbox_are_delivered(harness: Harness) -> None:
    uid = await harness.new_user("Notified")
    harness.count_pushed()
    await harness.client.send_text(uid, "/start")  # the outbox refers to known users
    await harness.settle()
    async with harness.db.transaction() as conn:
        note = await NotificationService.enqueue(conn, uid, notifications.GROUP_DISABLED,
                                                 {"group_id": 1, "title": "Alpha <Club>",
                                                  "reason": "CHAT_WRITE_FORBIDDEN"})
    assert note is not None
    await _delivered(harness, note)
    shown = [t for t in await _bot_texts(harness, uid) if "Alpha <Club>" in t]
    assert len(shown) == 1 and "can't write" in shown[0]


async def test_a_round_summary_names_the_account_of_a_two_account_user(
    harness: Harness, flow_contract: contract.Contract
) -> None:
    """U8: with Alice and Dana connected, a round summary of Alice's broadcast says it is hers."""
    await harness.free_accounts()
    runner = CaseRunner(harness, flow_contract, contract.Case(id="U8-notes"))
    runner.uid = uid = await harness.new_user("TwoAccounts")
    for step in flow_contract.expand([{"given": "two_accounts"}]):
        await runner.step(step)
    alice = await harness.fetchval("SELECT account_id FROM accounts WHERE user_id = $1 AND status = 'connected' "
                                   "AND first_name = 'Alice'", uid)
    assert alice is not None
    async with harness.db.transaction() as conn:  # as the engine's round end writes it
        note = await NotificationService.enqueue(
            conn, uid, notifications.ROUND_SUMMARY,
            {"round_id": 1, "total": 3, "sent": 3, "failed": 0, "skipped": 0, "unknown": 0, "account_id": alice},
            "round_summary:u8-notes")
    assert note is not None
    await _delivered(harness, note)
    shown = [t for t in await _bot_texts(harness, uid) if "Round finished: 3 sent" in t]
    assert len(shown) == 1, shown
    assert shown[0].startswith("👤 Account Alice (+1•••0001):"), shown[0]
    assert "Dana" not in shown[0]
    # its Status button is about Alice, though Dana (connected last) is the current account
    [message] = [m for m in await harness.client.chat(uid) if "Round finished: 3 sent" in (m.get("text") or "")]
    datas = [b.get("callback_data") for row in message["reply_markup"]["inline_keyboard"] for b in row]
    assert f"st:show:{alice}" in datas, datas

    async def current() -> int:
        return int(await harness.fetchval("SELECT current_account_id FROM users WHERE user_id = $1", uid))

    dana = await current()
    assert dana != alice
    # a forged or foreign account id: the stale answer, nothing changes
    foreign = await harness.fetchval("SELECT max(account_id) FROM accounts") + 1000
    stale = await harness.client.press(uid, message["message_id"], f"st:show:{foreign}")
    harness.count_pushed()
    await harness.settle()
    assert stale.get("text") == texts.STALE, stale
    assert await current() == dana
    await harness.client.press(uid, message["message_id"], f"st:show:{alice}")
    harness.count_pushed()
    await harness.settle()
    assert await current() == alice  # Alice is current now, so the status shown is hers
    assert await harness.state(uid) == "idle"
    # the status card, in place of the notification
    [card] = [m for m in await harness.client.chat(uid) if m["message_id"] == message["message_id"]]
    assert card["text"].startswith("📊 Status\n👤 Account: Alice (+1•••0001)\n"), card["text"]


async def test_a_user_who_blocked_the_bot_is_remembered(harness: Harness) -> None:
    uid = await harness.new_user("Blocker")
    harness.count_pushed()
    await harness.client.send_text(uid, "/start")
    await harness.settle()
    await harness.client.block(uid)
    async with harness.db.transaction() as conn:
        await NotificationService.enqueue(conn, uid, notifications.SESSION_ENDED, {"reason": "SESSION_REVOKED"})

    async def blocked() -> bool:
        return bool(await harness.fetchval("SELECT bot_blocked FROM users WHERE user_id = $1", uid))

    await _wait_for(blocked)
    assert await harness.fetchval("SELECT count(*) FROM notifications WHERE user_id = $1 "
                                  "AND delivered_at IS NULL", uid) == 0


async def test_status_shows_the_last_round_group_by_group(harness: Harness, flow_contract: contract.Contract) -> None:
    runner = CaseRunner(harness, flow_contract, contract.Case(id="status"))
    runner.uid = uid = await harness.new_user("Status")
    for step in flow_contract.expand([{"given": "boris_imported"}, {"given": "message_set"}]):
        await runner.step(step)
    # a round as the engine writes it: 12 attempts, 9 sent, 1 failed, 2 still pending
    async with harness.db.transaction() as conn:
        message_id = await conn.fetchval("SELECT max(message_id) FROM messages WHERE user_id = $1", uid)
        round_id = await conn.fetchval(
            "INSERT INTO rounds (user_id, message_id, planned_at, started_at) VALUES ($1, $2, now(), now()) "
            "RETURNING round_id", uid, message_id)
        await conn.execute(
            """INSERT INTO attempts (round_id, group_id, peer_id, access_hash, kind, status, error_code)
               SELECT $1, group_id, peer_id, access_hash, kind,
                      CASE WHEN n <= 9 THEN 'sent' WHEN n = 10 THEN 'failed' ELSE 'pending' END,
                      CASE WHEN n = 10 THEN 'USER_BANNED_IN_CHANNEL' ELSE '' END
               FROM (SELECT g.*, row_number() OVER (ORDER BY title, group_id) AS n
                     FROM groups g WHERE user_id = $2) AS numbered""", round_id, uid)
        # a group the user chose that Telegram then closed to them (the engine disables it)
        await conn.execute(
            """UPDATE groups SET selected = true, status = 'disabled', reason = 'USER_BANNED_IN_CHANNEL'
               WHERE group_id = (SELECT group_id FROM groups WHERE user_id = $1 AND status = 'active'
                                 ORDER BY title, group_id LIMIT 1)""", uid)
    await runner.step({"send": "/status"})
    shown = (await _bot_texts(harness, uid))[-1]
    assert "9 sent, 1 failed, 0 skipped, 2 pending" in shown
    assert shown.count("✅ sent") == 9 and "and 2 more" in shown
    # only groups the user chose are listed as disabled: the read-only supergroup was never selected
    assert "Selected groups that are disabled:" in shown and "(banned)" in shown
    assert "(can't write)" not in shown


async def test_a_slow_login_step_shows_typing(harness: Harness, flow_contract: contract.Contract) -> None:
    runner = CaseRunner(harness, flow_contract, contract.Case(id="typing"))
    runner.uid = uid = await harness.new_user("Typing")
    for step in flow_contract.expand([{"given": "login_phone"}, {"login_as": "alice"}]):
        await runner.step(step)
    phone = flow_contract.accounts["alice"]["phone"]
    # Telegram takes 1.5 s to send the code: past the second after which the chat shows "typing…"
    await harness.client.add_fault("send_code", "latency", phone=phone, seconds=1.5, times=1)
    mark = harness.sandbox.events.since(0)[-1].seq
    await runner.step({"send": phone})
    actions = [e for e in harness.sandbox.events.since(mark) if e.method == "sendChatAction" and e.ok]
    assert actions and all(e.user_id in (None, uid) for e in actions)
    assert await harness.state(uid) == "login_code"
    # a quick step sends none: the code itself, answered at once
    mark = harness.sandbox.events.since(0)[-1].seq
    code = await harness.client.latest_code(phone)
    await runner.step({"send": " ".join(code)})
    assert await harness.state(uid) == "idle"
    assert [e for e in harness.sandbox.events.since(mark) if e.method == "sendChatAction"] == []
