"""U1: /start, the main menu, /help, access requests; /cancel and Cancel in any input state."""

from __future__ import annotations

import contextlib
import logging

from aiogram import Bot, flags
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from roles.bot import callbacks as cb
from roles.bot import keyboards as kb
from roles.bot import texts
from roles.bot.middlewares import mark
from roles.bot.routers import Routes
from roles.bot.states import LOGIN_STATES
from roles.bot.ui import LOGIN_STATE_NAMES, leave_input, main_menu, show
from services.access import AccessService, AccessView
from services.login import LoginService, SessionCipherPort
from services.status import StatusService

log = logging.getLogger(__name__)
routes = Routes("start")


async def _cancelled(bot: Bot, chat_id: int, text: str) -> None:
    # a plain message that also takes away the "share my number" reply keyboard
    await bot.send_message(chat_id, text, reply_markup=kb.remove_reply())


@routes.message(CommandStart())
@flags.leave_input
async def start(
    message: Message,
    bot: Bot,
    status: StatusService,
    access_view: AccessView,
    left_input: str | None,
) -> None:
    if left_input is not None:
        # U2.23: /start inside a login says that the login was cancelled and how to begin again
        in_login = left_input in LOGIN_STATE_NAMES
        await _cancelled(bot, message.chat.id, texts.LOGIN_CANCELLED_START if in_login else texts.CANCELLED)
    mark("U1.1" if access_view.is_new else "U1.5")
    await main_menu(bot, message, status, head=texts.WELCOME)


@routes.callback_query(cb.Menu.on(cb.MenuAction.main))
@flags.leave_input("answer")
async def main(
    query: CallbackQuery,
    bot: Bot,
    status: StatusService,
) -> None:
    mark("U1.5")
    await main_menu(bot, query, status)


@routes.message(Command("help"))
async def help_(message: Message) -> None:
    mark("U1.6")
    await message.answer(texts.HELP, reply_markup=kb.main_only())


async def _leave_cancelled(
    bot: Bot, state: FSMContext, login: LoginService, cipher: SessionCipherPort
) -> tuple[str | None, str]:
    """Leave any input state; the state left and its "cancelled" text (U2.21 inside a login)."""
    left = await leave_input(state, login, cipher, bot)
    in_login = left in LOGIN_STATE_NAMES
    mark("U2.21" if in_login else "conv.cancel", "cancelled" if left else "idle")
    return left, texts.LOGIN_CANCELLED if in_login else texts.CANCELLED


def _cancel_text(message: Message, raw_state: str | None = None) -> bool:
    """The reply keyboard's Cancel button (or the word) while some input is expected."""
    text = message.text or ""
    return raw_state is not None and text.strip().lower() in texts.cancel_words()


@routes.message(Command("cancel"))
@routes.message(_cancel_text)
async def cancel_typed(
    message: Message,
    bot: Bot,
    state: FSMContext,
    login: LoginService,
    cipher: SessionCipherPort,
    status: StatusService,
) -> None:
    left, cancelled = await _leave_cancelled(bot, state, login, cipher)
    if left is not None:
        await _cancelled(bot, message.chat.id, cancelled)
    await main_menu(bot, message, status)


@routes.callback_query(cb.Acc.on(cb.AccAction.cancel))
async def cancel_pressed(
    query: CallbackQuery,
    bot: Bot,
    state: FSMContext,
    login: LoginService,
    cipher: SessionCipherPort,
    status: StatusService,
) -> None:
    if await state.get_state() is None:
        # U2.23: a Cancel left over from an input that is over (a login, a message): nothing to cancel
        mark("U2.23", "stale")
        await query.answer(texts.STALE)
        return
    left, cancelled = await _leave_cancelled(bot, state, login, cipher)
    await query.answer(cancelled)
    if left == LOGIN_STATES[0].state:
        # the phone step: a new message takes the "share my number" keyboard away
        await _cancelled(bot, query.from_user.id, cancelled)
        await main_menu(bot, query, status)
        return
    await main_menu(bot, query, status, head=cancelled if left else "")


@routes.callback_query(cb.Acc.on(cb.AccAction.request))
async def request_access(
    query: CallbackQuery, bot: Bot, access: AccessService, status: StatusService
) -> None:
    result = await access.request_access(query.from_user.id)
    mark("U1.2", result.outcome)
    await query.answer()
    if result.outcome == "already_allowed":
        await main_menu(bot, query, status)
        return
    text = {
        "requested": texts.ACCESS_REQUESTED,
        "already_pending": texts.ACCESS_PENDING,
        "not_allowed": texts.ACCESS_INVITATION_ONLY,
        "banned": texts.ACCESS_DENIED,
    }.get(result.outcome, texts.ACCESS_PENDING)
    await show(bot, query, text)
    user = query.from_user
    name = " ".join(part for part in (user.first_name, user.last_name or "") if part)
    for admin_id in result.notify_admins:
        with contextlib.suppress(TelegramAPIError):
            await bot.send_message(
                admin_id,
                texts.admin_access_request(user.id, name, user.username or ""),
                reply_markup=kb.admin_request_card(user.id),
            )
