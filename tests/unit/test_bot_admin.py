"""Admin flows without a server: callback ids of the A rows, the refusal's audit names, keyboards,
and the announcer's handling of Telegram's answers."""

from __future__ import annotations

import asyncio
import itertools
import re
from typing import Any, cast

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.filters.callback_data import MAX_CALLBACK_LENGTH
from aiogram.methods import SendMessage

import contract
from roles.bot import callbacks as cb
from roles.bot import keyboards as kb
from roles.bot.announcer import Announcement, Announcer
from roles.bot.routers.admin import ACTIONS
from services.admin import AdminService
from services.notifications import NotificationService

VALUES = {"<uid>": "42", "<days>": "30", "<p>": "3", "<open|approval|whitelist>": "approval"}


def admin_ids() -> list[str]:
    text = contract.FLOWS_MD.read_text(encoding="utf-8")
    section = text[text.index("## A Admin"):]
    ids = sorted(set(re.findall(r"`(adm:[^`\s]+)`", section)))
    out = []
    for raw in ids:
        for placeholder, value in VALUES.items():
            raw = raw.replace(placeholder, value)
        out.append(raw)
    return out


def test_the_a_rows_name_every_admin_action() -> None:
    ids = admin_ids()
    assert {"adm:menu", "adm:users:3", "adm:u:42", "adm:grant:42:30", "adm:mode:approval", "adm:announce",
            "adm:pause", "adm:resume", "adm:runtime", "adm:pending", "adm:approve:42"} <= set(ids)


@pytest.mark.parametrize("data", admin_ids())
def test_every_admin_id_of_flows_md_round_trips(data: str) -> None:
    parsed = cb.parse(data)
    assert isinstance(parsed, cb.Adm), data
    assert parsed.pack() == data


@pytest.mark.parametrize("forged", ["adm:mode:root", "adm:grant:42:-1", "adm:grant:42", "adm:u:0", "adm:users:-1",
                                    "adm:announce:now", "adm:ban:x", "adm:pause:1"])
def test_forged_admin_data_matches_nothing(forged: str) -> None:
    assert cb.parse(forged) is None


def test_every_admin_callback_has_an_audit_name_and_a_row() -> None:
    assert set(ACTIONS) == set(cb.AdmAction)
    assert {row for _, row in ACTIONS.values()} == {f"A{i}" for i in range(1, 8)}


def test_admin_keyboards_carry_admin_callbacks_within_telegrams_limit() -> None:
    markups = [
        kb.admin_menu(paused=False), kb.admin_menu(paused=True),
        kb.admin_users([kb.UserButton(2**63 - 1, "x" * 80)], page=5, pages=9),
        kb.admin_user_card(2**63 - 1, banned=False), kb.admin_user_card(7, banned=True),
        kb.admin_pending([(2**63 - 1, "Someone")]), kb.admin_modes("whitelist"), kb.admin_runtime(),
        kb.announce_confirm(),
    ]
    for markup in markups:
        for row in markup.inline_keyboard:
            for button in row:
                data = button.callback_data or ""
                assert len(data.encode()) <= MAX_CALLBACK_LENGTH
                assert cb.parse(data) is not None, data
    paused = [b.callback_data for row in kb.admin_menu(paused=True).inline_keyboard for b in row]
    assert "adm:resume" in paused and "adm:pause" not in paused


# --- the announcer -------------------------------------------------------------------------------


class FakeBot:
    """Answers each send from a script per chat: an exception to raise, or None for success."""

    def __init__(self, script: dict[int, list[BaseException | None]]) -> None:
        self.script = script
        self.calls: list[tuple[int, float]] = []

    async def send_message(self, chat_id: int, text: str, **_: Any) -> None:
        self.calls.append((chat_id, asyncio.get_running_loop().time()))
        outcomes = self.script.get(chat_id) or []
        outcome = outcomes.pop(0) if outcomes else None
        if outcome is not None:
            raise outcome


class FakeOutbox:
    def __init__(self) -> None:
        self.blocked: list[int] = []

    async def mark_bot_blocked(self, user_id: int) -> None:
        self.blocked.append(user_id)


def retry_after(seconds: int) -> TelegramRetryAfter:
    return TelegramRetryAfter(SendMessage(chat_id=1, text="x"), "Too Many Requests", seconds)


async def test_the_announcer_waits_what_a_429_names_and_counts_each_outcome() -> None:
    outbox = FakeOutbox()
    bot = FakeBot({
        2: [retry_after(1)],
        3: [TelegramForbiddenError(SendMessage(chat_id=3, text="x"), "Forbidden: bot was blocked by the user")],
        4: [TelegramBadRequest(SendMessage(chat_id=4, text="x"), "Bad Request: chat not found")],
        5: [retry_after(0)] * 3,  # more 429s in a row than allowed: counted as failed
    })
    announcer = Announcer(cast(NotificationService, outbox), cast(AdminService, None), rate=100.0, max_retries=2)
    report = await announcer.deliver(cast(Bot, bot), [1, 2, 3, 4, 5, 6], Announcement("Hello"))
    assert (report.delivered, report.blocked, report.failed, report.retries) == (3, 1, 2, 4)
    assert outbox.blocked == [3]
    times: dict[int, list[float]] = {}
    for chat_id, at in bot.calls:
        times.setdefault(chat_id, []).append(at)
    assert len(times[2]) == 2 and times[2][1] - times[2][0] >= 0.99  # retried after retry_after
    assert times[6][0] > times[2][1]  # nobody was sent to during the pause
    ordered = [at for _, at in bot.calls]
    assert all(b - a >= 0.0099 for a, b in itertools.pairwise(ordered))  # 100 a second at most
