"""Shared handler helpers: show a view in place or as a new message, the main menu, leaving input.

The login attempt kept in the FSM data holds the temporary session (an auth key), so it is
stored encrypted with the session cipher; only its start time stays readable, for the TTL.
"""

from __future__ import annotations

import contextlib
import logging
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
from aiogram.utils.chat_action import ChatActionSender

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
KEYPAD = "keypad"  # id of the login's one live message with buttons (the keypad), U2.22
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


async def show(bot: Bot, event: Event, text: str, markup: Markup = None, **extra: Any) -> int:
    """Edit the pressed message in place (callbacks) or send a new message (typed input); returns
    the id of the message shown."""
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
                return message.message_id
            except TelegramBadRequest as exc:
                if "not modified" in exc.message:
                    return message.message_id
                log.info("edit failed (%s); sending a new message", exc.message)
    sent = await bot.send_message(chat_id_of(event), text, reply_markup=markup, **extra)
    return sent.message_id


async def drop_buttons(bot: Bot, chat_id: int, message_id: int) -> None:
    """Take the inline buttons off a message (an outdated keypad); best effort."""
    try:
        await bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id, reply_markup=None)
    except TelegramAPIError as exc:
        log.info("could not drop the buttons of an old message: %s", type(exc).__name__)


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
    now = status.now()
    accounts = [texts.account_line(
        name=a.first_name, phone_masked=rules.mask_phone(a.phone), current=a.current, selected=a.selected,
        messages=a.messages, interval=rules.format_interval(a.interval) if a.interval else None,
        running=a.running, next_run=a.next_run_at, now=now) for a in card.accounts]
    body = texts.main_card(
        phone_masked=card.phone_masked if card.account_connected else None,
        account_name=card.account_name,
        selected=card.groups.selected,
        total=card.groups.total,
        message_snippet=(card.message_preview or None) if card.message_set else None,
        media_kind=(card.message_media_kind or None) if card.message_set else None,
        interval=rules.format_interval(card.interval) if card.interval else None,
        running=card.running,
        next_run=card.next_run_at,
        paused_until=card.paused_until,
        now=now,
        no_groups_left=card.no_groups_left,
        accounts=accounts,
    )
    ends = pacing_texts.round_end_line(card.round_ends_at)
    if ends:
        body += "\n" + ends
    text = f"{head}\n\n{body}" if head else body
    await show(
        bot,
        event,
        text,
        kb.main_menu(running=card.running, admin=card.is_admin, choose_groups=card.no_groups_left),
    )


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


async def leave_input(
    state: FSMContext, login: LoginService, cipher: SessionCipherPort, bot: Bot | None = None
) -> str | None:
    """Clear any input state (cancelling a pending login at Telegram, and with ``bot`` taking the
    buttons off its keypad); returns the state left."""
    current = await state.get_state()
    if current in LOGIN_STATE_NAMES:
        data = await state.get_data()
        await login.cancel(load_attempt(data, cipher))
        keypad = data.get(KEYPAD)
        if bot is not None and isinstance(keypad, int):
            await drop_buttons(bot, state.key.chat_id, keypad)
    if current is not None or await state.get_data():
        await state.clear()
    return current


TYPING_AFTER = 1.0  # seconds of silence before the chat shows "typing…"
TYPING_EVERY = 4.5  # Telegram shows a chat action for about 5 s


def typing(bot: Bot, chat_id: int) -> ChatActionSender:
    """"typing…" in the chat while the block waits on Telegram for more than a second (a login step
    behind retries can take several); nothing is sent for a quick block."""
    return ChatActionSender.typing(
        chat_id=chat_id, bot=bot, initial_sleep=TYPING_AFTER, interval=TYPING_EVERY
    )
