"""A login step that waits on Telegram shows "typing…" after a second, and a quick one sends nothing."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import SendChatAction

from roles.bot import ui
from roles.bot.ui import typing


class RecordingBot:
    id = 1  # ChatActionSender logs the bot id

    def __init__(self, fail_first: bool = False) -> None:
        self.actions: list[tuple[int, str]] = []
        self.fail_first = fail_first

    async def send_chat_action(self, chat_id: int, action: str, **_: Any) -> bool:
        if self.fail_first and not self.actions:
            self.actions.append((chat_id, "failed"))
            raise TelegramRetryAfter(SendChatAction(chat_id=chat_id, action=action), "Too Many Requests", 1)
        self.actions.append((chat_id, action))
        return True


@pytest.fixture(autouse=True)
def fast_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui, "TYPING_AFTER", 0.05)
    monkeypatch.setattr(ui, "TYPING_EVERY", 0.1)


async def test_a_quick_step_sends_no_chat_action() -> None:
    bot = RecordingBot()
    async with typing(cast(Bot, bot), 42):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # nothing left running that would send later
    assert bot.actions == []


async def test_a_slow_step_shows_typing_until_it_ends() -> None:
    bot = RecordingBot()
    async with typing(cast(Bot, bot), 42):
        await asyncio.sleep(0.4)  # actions due at 0.05, 0.15, 0.25 and 0.35 s
    sent = len(bot.actions)
    assert bot.actions[0] == (42, "typing") and 2 <= sent <= 5
    await asyncio.sleep(0.2)
    assert len(bot.actions) == sent  # stopped with the block


async def test_a_refused_chat_action_does_not_break_the_step() -> None:
    bot = RecordingBot(fail_first=True)
    async with typing(cast(Bot, bot), 7):
        await asyncio.sleep(0.2)
    # the step goes on (no exception leaves the block); aiogram's sender stops after a refusal
    assert bot.actions[0] == (7, "failed")
