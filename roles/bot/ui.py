"""Shared handler helpers: show a view in place or as a new message, the main menu, leaving input.

The login attempt kept in the FSM data holds the temporary session (an auth key), so it is
stored encrypted with the session cipher; only its start time stays readable, for the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from domain import rules
from roles.bot import keyboards as kb
from roles.bot import pacing_texts, texts
from roles.bot.states import LOGIN_STATES
from services.login import LoginAttempt, LoginService, SessionCipherPort
from services.status import StatusService

log = logging.getLogger(__name__)

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None
Event = Message | CallbackQuery

LOGIN_KEY = "login"  # encrypted LoginAttempt
LOGIN_AT = "login_at"  # POSIX start time of the login (U2.18)
TYPED = "typed"  # digits typed on the keypad so far
LOGIN_STATE_NAMES = {s.state for s in LOGIN_STATES}


KNOWN_COMMANDS = frozenset({"start", "help", "cancel", "login", "status", "admin"})


def not_command(message: Message) -> bool:
    """Filter: anything but one of the bot's commands (those work in every input state)."""
    text = message.text or ""
    if not text.startswith("/") or len(text) < 2:
        return True
    name = text[1:].split(maxsplit=1)[0].split("@")[0].lower()
    return name not in KNOWN_COMMANDS


def chat_id_of(event: Event) -> int:
    if isinstance(event, CallbackQuery):
        return event.from_user.id
    return event.chat.id


def user_id_of(event: Event) -> int:
    user = event.from_user
    assert user is not None  # the access middleware drops updates without a sender
    return user.id


async def show(bot: Bot, event: Event, text: str, markup: Markup = None, **extra: Any) -> None:
    """Edit the pressed message in place (callbacks) or send a new message (typed input)."""
    if isinstance(event, CallbackQuery) and isinstance(markup, InlineKeyboardMarkup | None):
        message = event.message
        if isinstance(message, Message) and message.text is not None:
            try:
                await bot.edit_message_text(
                    text=text,
                    chat_id=message.chat.id,
                    message_id=message.message_id,
                    reply_markup=markup,
                    **extra,
                )
                return
            except TelegramBadRequest as exc:
                if "not modified" in exc.message:
                    return
                log.info("edit failed (%s); sending a new message", exc.message)
    await bot.send_message(chat_id_of(event), text, reply_markup=markup, **extra)


async def notice(event: Event, text: str, alert: bool = False) -> None:
    """A short notice on a callback (toast); for messages nothing (they get a full reply)."""
    if isinstance(event, CallbackQuery):
        with contextlib.suppress(TelegramAPIError):
            await event.answer(text=text[:200], show_alert=alert)


async def delete_input(bot: Bot, message: Message) -> None:
    """Remove what the user typed (codes, passwords) from the chat; best effort."""
    try:
        await bot.delete_message(message.chat.id, message.message_id)
    except TelegramAPIError as exc:
        log.info("could not delete a secret input message: %s", type(exc).__name__)


async def main_menu(bot: Bot, event: Event, status: StatusService, head: str = "") -> None:
    """U1.5: the summary card with the main menu buttons."""
    card = await status.main_card(user_id_of(event))
    body = texts.main_card(
        phone_masked=card.phone_masked if card.account_connected else None,
        account_name=card.account_name,
        selected=card.groups.selected,
        total=card.groups.total,
        message_snippet=(card.message_preview or f"[{card.message_media_kind}]")
        if card.message_set
        else None,
        interval=rules.format_interval(card.interval) if card.interval else None,
        running=card.running,
        next_run=card.next_run_at,
        paused_until=card.paused_until,
    )
    ends = pacing_texts.round_end_line(card.round_ends_at)
    if ends:
        body += "\n" + ends
    text = f"{head}\n\n{body}" if head else body
    await show(bot, event, text, kb.main_menu(running=card.running, admin=card.is_admin))


# --- the login attempt in the FSM data ------------------------------------------------------------


async def save_attempt(
    state: FSMContext, cipher: SessionCipherPort, attempt: LoginAttempt, **more: Any
) -> None:
    token = cipher.encrypt(orjson.dumps(attempt.to_dict()).decode()).decode("ascii")
    await state.update_data({LOGIN_KEY: token, LOGIN_AT: attempt.started_at, **more})


def load_attempt(data: dict[str, Any], cipher: SessionCipherPort) -> LoginAttempt | None:
    token = data.get(LOGIN_KEY)
    if not isinstance(token, str):
        return None
    try:
        return LoginAttempt.from_dict(orjson.loads(cipher.decrypt(token.encode("ascii"))))
    except Exception as exc:  # another key, corrupted data: the login can't continue
        log.warning("unreadable login attempt in FSM data: %s", type(exc).__name__)
        return None


async def leave_input(state: FSMContext, login: LoginService, cipher: SessionCipherPort) -> str | None:
    """Clear any input state (cancelling a pending login at Telegram); returns the state left."""
    current = await state.get_state()
    if current in LOGIN_STATE_NAMES:
        attempt = load_attempt(await state.get_data(), cipher)
        await login.cancel(attempt)
    if current is not None or await state.get_data():
        await state.clear()
    return current


async def leave_and_answer(
    query: CallbackQuery, state: FSMContext, login: LoginService, cipher: SessionCipherPort
) -> None:
    """A menu button: drop any input in progress, then stop the button's spinner."""
    await leave_input(state, login, cipher)
    await query.answer()


TYPING_AFTER = 1.0  # seconds of silence before the chat shows "typing…"
TYPING_EVERY = 4.5  # Telegram shows a chat action for about 5 s


@contextlib.asynccontextmanager
async def typing_while(bot: Bot, chat_id: int) -> AsyncIterator[None]:
    """"typing…" in the chat while the block waits on Telegram for more than a second (a login step
    behind retries can take several); nothing is sent for a quick block."""

    async def keep_typing() -> None:
        await asyncio.sleep(TYPING_AFTER)
        while True:
            with contextlib.suppress(TelegramAPIError):
                await bot.send_chat_action(chat_id=chat_id, action="typing")
            await asyncio.sleep(TYPING_EVERY)

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
