"""U2: connect a Telegram account (phone, code with keypad, 2FA password), show it, disconnect.

Secrets typed here (code, password) are deleted from the chat right after reading and never
logged; the login attempt (with the temporary session) stays encrypted in the FSM data.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from aiogram import Bot, F, flags
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from config.settings import Settings
from domain import rules
from roles.bot import callbacks as cb
from roles.bot import keyboards as kb
from roles.bot import texts
from roles.bot.middlewares import mark
from roles.bot.routers import Routes
from roles.bot.states import Input
from roles.bot.ui import (
    KEYPAD,
    LOGIN_AT,
    TYPED,
    Event,
    chat_id_of,
    delete_input,
    drop_buttons,
    load_attempt,
    main_menu,
    not_command,
    save_attempt,
    show,
    typing,
    user_id_of,
)
from services.locks import Busy
from services.login import AccountView, LoginAttempt, LoginService, LoginStep, SessionCipherPort
from services.status import StatusService

log = logging.getLogger(__name__)
routes = Routes("account")

MAX_TYPED = rules.CODE_MAX_DIGITS


async def _login_view(
    bot: Bot, event: Event, state: FSMContext, text: str, markup: InlineKeyboardMarkup
) -> None:
    """U2.22: a login step's message with buttons (keypad, resend, cancel) is the login's one live
    message: shown in place or as a new message, and a new one takes the buttons off the old one."""
    await _keep_login_view(bot, event, state, await show(bot, event, text, markup))


async def _keep_login_view(bot: Bot, event: Event, state: FSMContext, shown: int) -> None:
    old = (await state.get_data()).get(KEYPAD)
    if isinstance(old, int) and old != shown:
        await drop_buttons(bot, chat_id_of(event), old)
    await state.update_data({KEYPAD: shown})


async def _retire_keypad(bot: Bot, event: Event, state: FSMContext) -> None:
    """The login is over: its live message keeps its text but loses its buttons."""
    old = (await state.get_data()).get(KEYPAD)
    pressed = event.message.message_id if isinstance(event, CallbackQuery) and event.message else None
    if isinstance(old, int) and old != pressed:  # a pressed message is edited by the reply itself
        await drop_buttons(bot, chat_id_of(event), old)


# --- account menu (U2.1, U2.19, U8.1, U8.2) and logout (U2.20) ------------------------------------


@routes.callback_query(cb.Acc.on(cb.AccAction.menu))
@flags.leave_input("answer")
async def account_menu(
    query: CallbackQuery, bot: Bot, login: LoginService, status: StatusService
) -> None:
    uid = query.from_user.id
    view = await login.account(uid)
    connected = await login.connected_accounts(uid)
    if not connected:
        mark("U2.1")
        await show(bot, query, texts.ACC_NOT_CONNECTED, kb.login_offer())
        return
    mark("U8.1" if len(connected) > 1 else "U2.19")
    running = await status.running_accounts(uid)
    current = view.account_id if view is not None and view.connected else 0
    head = texts.acc_connected(view.first_name, view.phone_masked) if view is not None and current else ""
    listed = texts.accounts_list(
        [(a.first_name, a.phone_masked, a.account_id in running, a.account_id == current) for a in connected],
        login.accounts_limit)
    text = "\n\n".join(part for part in (head, listed, _hint(connected)) if part)
    buttons = [(a.account_id, texts.account_button(a.first_name, a.phone_masked, a.account_id == current),
                a.account_id == current) for a in connected]
    await show(bot, query, text, kb.accounts_menu(buttons, len(connected) < login.accounts_limit))


def _hint(connected: Sequence[AccountView]) -> str:
    return texts.ACCOUNTS_HINT if len(connected) > 1 else ""


@routes.callback_query(cb.Acc.on(cb.AccAction.select))
async def select_account(
    query: CallbackQuery, callback_data: cb.Acc, bot: Bot, login: LoginService, status: StatusService
) -> None:
    """U8.2: checked against the user: a forged, foreign or logged-out id changes nothing."""
    view = await login.select(query.from_user.id, cb.need(callback_data.aid))
    if view is None:
        mark("conv.stale", "account")
        await query.answer(texts.STALE)
        return
    await query.answer()
    mark("U8.2")
    running = view.account_id in await status.running_accounts(query.from_user.id)
    await show(bot, query, texts.account_selected(view.first_name, view.phone_masked, running),
               kb.account_card(view.account_id))


@routes.callback_query(cb.Acc.on(cb.AccAction.logout, confirm=None))
async def logout_ask(query: CallbackQuery, callback_data: cb.Acc, bot: Bot, login: LoginService) -> None:
    uid = query.from_user.id
    if callback_data.aid is not None:  # U8.2's card: a named account
        named = await login.owned(uid, callback_data.aid)
        if named is None:
            mark("conv.stale", "account")
            await query.answer(texts.STALE)
            return
        await query.answer()
        mark("U2.20", "confirm")
        await show(bot, query, texts.logout_confirm_named(named.first_name, named.phone_masked),
                   kb.logout_confirm(named.account_id))
        return
    await query.answer()
    view = await login.account(uid)
    if view is None or not view.connected:
        mark("U2.1", "not_connected")
        await show(bot, query, texts.ACC_NOT_CONNECTED, kb.login_offer())
        return
    mark("U2.20", "confirm")
    await show(bot, query, texts.LOGOUT_CONFIRM, kb.logout_confirm())


@routes.callback_query(cb.Acc.on(cb.AccAction.logout, confirm="yes"))
async def logout(
    query: CallbackQuery, callback_data: cb.Acc, bot: Bot, login: LoginService, status: StatusService
) -> None:
    await query.answer()
    try:
        disconnected = await login.logout(query.from_user.id, account_id=callback_data.aid)
    except Busy:
        # the broadcast is stopped already; the account stays connected until the next press
        mark("U2.20", "busy")
        await show(bot, query, texts.LOGOUT_BUSY, kb.connected_account())
        return
    if not disconnected:
        mark("U2.1", "not_connected")
        await show(bot, query, texts.ACC_NOT_CONNECTED, kb.login_offer())
        return
    mark("U2.20", "disconnected")
    await main_menu(bot, query, status, head=texts.DISCONNECTED)


# --- phone (U2.2-U2.9) -----------------------------------------------------------------------------


@routes.callback_query(cb.Acc.on(cb.AccAction.login))
@routes.message(Command("login"))
@flags.leave_input
async def login_begin(
    event: Event, bot: Bot, state: FSMContext, login: LoginService
) -> None:
    if isinstance(event, CallbackQuery):
        await event.answer()
    if await login.at_limit(user_id_of(event)):
        mark("U8.3")
        await show(bot, event, texts.accounts_limit(login.accounts_limit), kb.accounts_full())
        return
    mark("U2.2")
    await state.set_state(Input.login_phone)
    # a reply keyboard (request_contact) can only come with a new message
    await bot.send_message(user_id_of(event), texts.ASK_PHONE, reply_markup=kb.share_phone())


@routes.message(Input.login_phone, F.contact)
async def phone_contact(
    message: Message,
    bot: Bot,
    state: FSMContext,
    login: LoginService,
    cipher: SessionCipherPort,
    status: StatusService,
) -> None:
    contact = message.contact
    assert contact is not None and message.from_user is not None
    if contact.user_id != message.from_user.id:
        mark("U2.4", "not_own")
        await message.answer(texts.PHONE_NOT_OWN)
        return
    await _send_code(message, contact.phone_number, bot, state, login, cipher, status)


@routes.message(Input.login_phone, F.text, not_command)
async def phone_text(
    message: Message,
    bot: Bot,
    state: FSMContext,
    login: LoginService,
    cipher: SessionCipherPort,
    status: StatusService,
) -> None:
    await _send_code(message, message.text or "", bot, state, login, cipher, status)


@routes.message(Input.login_phone, not_command)
async def phone_other(message: Message) -> None:
    mark("U2.3", "not_text")
    await message.answer(texts.PHONE_INVALID_FORMAT)


async def _send_code(
    message: Message,
    raw: str,
    bot: Bot,
    state: FSMContext,
    login: LoginService,
    cipher: SessionCipherPort,
    status: StatusService,
) -> None:
    async with typing(bot, chat_id_of(message)):
        step = await login.send_code(user_id_of(message), raw)
    outcome = step.outcome
    if outcome == "code_sent" and step.attempt is not None:
        mark("U2.5", outcome)
        await state.set_state(Input.login_code)
        await save_attempt(state, cipher, step.attempt, **{TYPED: ""})
        # one new message per step (Telegram allows about one a second per chat): it takes the
        # share-phone keyboard away, and an edit puts the keypad on it (a message has one markup)
        sent = await message.answer(
            f"{texts.phone_accepted(rules.mask_phone(step.attempt.state.phone))}\n\n"
            f"{texts.login_code_prompt(0, step.attempt.state)}",
            reply_markup=kb.remove_reply(),
        )
        await bot.edit_message_reply_markup(chat_id=sent.chat.id, message_id=sent.message_id,
                                            reply_markup=kb.code_keypad())
        await _keep_login_view(bot, message, state, sent.message_id)
        return
    if outcome == "bad_phone":
        mark("U2.3", outcome)
        await message.answer(texts.PHONE_INVALID_FORMAT)
        return
    if outcome == "phone_invalid":
        mark("U2.6", outcome)
        await message.answer(texts.PHONE_REJECTED)
        return
    rows = {"phone_banned": "U2.7", "flood": "U2.8", "unreachable": "U2.9", "at_limit": "U8.3"}
    mark(rows.get(outcome, "U2.5"), outcome)
    await login.cancel(step.attempt)
    await state.clear()
    await message.answer(_ending_text(step), reply_markup=kb.remove_reply())
    await main_menu(bot, message, status)


def _ending_text(step: LoginStep) -> str:
    if step.outcome == "account_taken":
        return texts.ACCOUNT_TAKEN
    if step.outcome == "phone_banned":
        return texts.PHONE_BANNED
    if step.outcome == "flood":
        return texts.too_many_attempts(rules.human_duration(step.retry_after))
    if step.outcome == "unreachable":
        return texts.TELEGRAM_UNREACHABLE
    if step.outcome == "at_limit":
        return texts.accounts_limit(step.limit)
    if step.outcome == "too_many":
        return texts.LOGIN_TOO_MANY
    if step.outcome == "login_blocked":
        return texts.LOGIN_BLOCKED.get(step.reason) or texts.TELEGRAM_UNREACHABLE
    return texts.ERROR


# --- code (U2.10-U2.14, U2.17, U2.18) and password (U2.15, U2.16) ----------------------------------


async def _attempt_or_expire(
    event: Event,
    bot: Bot,
    state: FSMContext,
    login: LoginService,
    cipher: SessionCipherPort,
    settings: Settings,
) -> LoginAttempt | None:
    """The stored attempt, or None after telling the user the login expired (U2.18)."""
    data = await state.get_data()
    attempt = load_attempt(data, cipher)
    started = data.get(LOGIN_AT)
    fresh = isinstance(started, int | float) and login.now().timestamp() - started <= settings.bot.login_ttl
    if attempt is not None and fresh:
        return attempt
    mark("U2.18", "expired")
    await login.cancel(attempt)
    await _retire_keypad(bot, event, state)
    await state.clear()
    if isinstance(event, CallbackQuery):
        await event.answer(texts.LOGIN_EXPIRED)
    await show(bot, event, texts.LOGIN_EXPIRED, kb.login_offer())
    return None


async def _submit_typed(
    message: Message,
    submit: Callable[[int, LoginAttempt, str], Awaitable[LoginStep]],
    bot: Bot,
    state: FSMContext,
    login: LoginService,
    cipher: SessionCipherPort,
    settings: Settings,
    status: StatusService,
) -> None:
    """A typed code or password: deleted from the chat first, then given to ``submit``."""
    await delete_input(bot, message)
    attempt = await _attempt_or_expire(message, bot, state, login, cipher, settings)
    if attempt is None:
        return
    async with typing(bot, chat_id_of(message)):
        step = await submit(user_id_of(message), attempt, message.text or "")
    await _after_step(message, step, bot, state, cipher, status)


@routes.message(Input.login_code, F.text, not_command)
async def code_text(
    message: Message,
    bot: Bot,
    state: FSMContext,
    login: LoginService,
    cipher: SessionCipherPort,
    settings: Settings,
    status: StatusService,
) -> None:
    await _submit_typed(message, login.submit_code, bot, state, login, cipher, settings, status)


@routes.message(Input.login_code, not_command)
async def code_other(
    message: Message,
    bot: Bot,
    state: FSMContext,
    login: LoginService,
    cipher: SessionCipherPort,
    settings: Settings,
) -> None:
    if await _attempt_or_expire(message, bot, state, login, cipher, settings) is None:
        return
    mark("U2.10", "not_text")
    await _login_view(bot, message, state, texts.CODE_BAD_FORMAT, kb.code_keypad())


@routes.callback_query(cb.Acc.on(cb.AccAction.keypad), Input.login_code)
async def keypad(
    query: CallbackQuery,
    callback_data: cb.Acc,
    bot: Bot,
    state: FSMContext,
    login: LoginService,
    cipher: SessionCipherPort,
    settings: Settings,
    status: StatusService,
) -> None:
    data = await state.get_data()
    pressed = query.message.message_id if query.message is not None else None
    if data.get(KEYPAD) not in (None, pressed):
        await _outdated_keypad(query, bot)
        return
    attempt = await _attempt_or_expire(query, bot, state, login, cipher, settings)
    if attempt is None:
        return
    typed = str(data.get(TYPED, ""))
    key = cb.need(callback_data.key)
    if key == "ok":
        await query.answer()
        async with typing(bot, chat_id_of(query)):
            step = await login.submit_code(query.from_user.id, attempt, typed)
        await _after_step(query, step, bot, state, cipher, status)
        return
    typed = typed[:-1] if key == "del" else (typed + key)[:MAX_TYPED]
    await state.update_data({TYPED: typed})
    mark("U2.5", "keypad")
    await query.answer()
    await _login_view(bot, query, state, texts.login_code_prompt(len(typed), attempt.state),
                      kb.code_keypad())


@routes.callback_query(cb.Acc.on(cb.AccAction.keypad))
async def keypad_outside_login(query: CallbackQuery, bot: Bot) -> None:
    """A keypad of a login that ended (connected, cancelled, expired)."""
    await _outdated_keypad(query, bot)


async def _outdated_keypad(query: CallbackQuery, bot: Bot) -> None:
    """U2.22: no digit goes anywhere; the old keypad loses its buttons."""
    mark("U2.22", "outdated")
    await query.answer(texts.KEYPAD_OUTDATED)
    if query.message is not None:
        await drop_buttons(bot, query.from_user.id, query.message.message_id)


@routes.callback_query(cb.Acc.on(cb.AccAction.resend), Input.login_code)
async def resend(
    query: CallbackQuery,
    bot: Bot,
    state: FSMContext,
    login: LoginService,
    cipher: SessionCipherPort,
    settings: Settings,
    status: StatusService,
) -> None:
    attempt = await _attempt_or_expire(query, bot, state, login, cipher, settings)
    if attempt is None:
        return
    await query.answer()
    async with typing(bot, chat_id_of(query)):
        step = await login.resend(query.from_user.id, attempt)
    await _after_step(query, step, bot, state, cipher, status)


# no not_command filter here: a password may start with "/", and it must be read (and deleted) as one
@routes.message(Input.login_password, F.text)
async def password_text(
    message: Message,
    bot: Bot,
    state: FSMContext,
    login: LoginService,
    cipher: SessionCipherPort,
    settings: Settings,
    status: StatusService,
) -> None:
    await _submit_typed(message, login.submit_password, bot, state, login, cipher, settings, status)


@routes.message(Input.login_password)
async def password_other(
    message: Message,
    bot: Bot,
    state: FSMContext,
    login: LoginService,
    cipher: SessionCipherPort,
    settings: Settings,
) -> None:
    if await _attempt_or_expire(message, bot, state, login, cipher, settings) is None:
        return
    mark("U2.14", "not_text")
    await _login_view(bot, message, state, texts.PASSWORD_PROMPT, kb.cancel_only())


async def _after_step(
    event: Event,
    step: LoginStep,
    bot: Bot,
    state: FSMContext,
    cipher: SessionCipherPort,
    status: StatusService,
) -> None:
    """One reply and next state per login outcome (flows.md U2)."""
    outcome = step.outcome
    password_step = await state.get_state() == Input.login_password.state
    if outcome in ("connected", "reconnected") and step.account is not None:
        name, phone = step.account.first_name, step.account.phone_masked
        mark("U8.4" if outcome == "reconnected" else "U2.15" if password_step else "U2.11", outcome)
        await _retire_keypad(bot, event, state)
        await state.clear()
        head = texts.reconnected(name, phone) if outcome == "reconnected" else texts.connected(name, phone)
        await main_menu(bot, event, status, head=head)
        return
    if step.attempt is None:
        await _retire_keypad(bot, event, state)
        await state.clear()
        if outcome in ("expired", "session_dead"):
            mark("U2.18", outcome)
            await show(bot, event, texts.LOGIN_EXPIRED, kb.login_offer())
            return
        rows = {"too_many": "U2.16" if password_step else "U2.12", "flood": "U2.8", "unreachable": "U2.9",
                "account_taken": "U8.5", "at_limit": "U8.3"}
        mark(rows.get(outcome, "U2.11"), outcome)
        await main_menu(bot, event, status, head=_ending_text(step))
        return
    attempt = step.attempt
    if outcome == "password_needed":
        mark("U2.14", outcome)
        await state.set_state(Input.login_password)
        await save_attempt(state, cipher, attempt)
        await _login_view(bot, event, state, texts.PASSWORD_PROMPT, kb.cancel_only())
        return
    await save_attempt(state, cipher, attempt, **{TYPED: ""})
    if outcome == "wrong_password":
        mark("U2.16", outcome)
        await _login_view(bot, event, state, texts.wrong_password(step.attempts_left), kb.cancel_only())
    elif outcome == "wrong_code":
        mark("U2.12", outcome)
        text = texts.login_code_prompt(0, attempt.state, texts.wrong_code(step.attempts_left))
        await _login_view(bot, event, state, text, kb.code_keypad())
    elif outcome == "code_expired":
        voided = _sent_as_plain_digits(event)
        mark("U2.13", "voided" if voided else outcome)
        text = texts.CODE_VOIDED if voided else texts.CODE_EXPIRED
        await _login_view(bot, event, state, text, kb.resend_or_cancel())
    elif outcome == "code_sent":
        mark("U2.17", outcome)
        text = texts.login_code_prompt(0, attempt.state, texts.CODE_NEW_SENT)
        await _login_view(bot, event, state, text, kb.code_keypad())
    elif outcome == "resend_unavailable":
        mark("U2.17", outcome)
        text = texts.login_code_prompt(0, attempt.state, texts.RESEND_UNAVAILABLE)
        await _login_view(bot, event, state, text, kb.code_keypad())
    elif outcome == "bad_code":
        mark("U2.10", outcome)
        text = texts.login_code_prompt(0, attempt.state, texts.CODE_BAD_FORMAT)
        await _login_view(bot, event, state, text, kb.code_keypad())
    elif outcome == "unreachable":
        mark("U2.9", outcome)
        markup = kb.cancel_only() if password_step else kb.code_keypad()
        await _login_view(bot, event, state, texts.TELEGRAM_UNREACHABLE, markup)
    else:
        mark("U2.11", outcome)
        await _login_view(bot, event, state, texts.ERROR, kb.cancel_only())


def _sent_as_plain_digits(event: Event) -> bool:
    """U2.13: Telegram voids a login code that reaches any chat as plain digits (no spaces); a typed
    code like that, answered "expired", was voided by being typed so."""
    if not isinstance(event, Message):
        return False
    raw = (event.text or "").strip()
    return raw.isdigit()
