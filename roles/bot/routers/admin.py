"""A1-A7: the admin flows, behind a router-wide admin filter (ids from ``settings.bot.admin_ids``).

Everyone else who sends /admin or presses any ``adm:*`` button (a forged one included) reaches
the refusal router instead: "not allowed", a ``denied`` audit row, and nothing changes. The
services check the actor again, so a handler bug can't turn into an action. Every admin action
is audit-logged by the service that performs it.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from aiogram import Bot, F, Router, flags
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, MessageEntity

from config.settings import Settings
from domain import rules
from roles.bot import callbacks as cb
from roles.bot import keyboards as kb
from roles.bot import texts
from roles.bot.announcer import Announcer
from roles.bot.middlewares import mark
from roles.bot.routers import Routes
from roles.bot.states import Input
from roles.bot.ui import Event, chat_id_of, main_menu, not_command, show, user_id_of
from services.access import AccessService
from services.admin import Actor, AdminResult, AdminService, NotAllowed, UserCard
from services.announcements import AnnouncementBusy
from services.locks import Busy
from services.runtime import RuntimeService
from services.status import StatusService

log = logging.getLogger(__name__)

only = Routes("admin-only")  # admins: behind the router-wide filter
guard = Routes("admin-refusal")  # everyone else

PENDING_SHOWN = 10
ANNOUNCE_TEXT = "announce_text"
ANNOUNCE_ENTITIES = "announce_entities"

# the service's action name of each admin action (the audit log's vocabulary) and its flows.md row
ACTIONS: dict[cb.AdmAction, tuple[str, str]] = {
    cb.AdmAction.menu: ("overview", "A1"),
    cb.AdmAction.users: ("users", "A2"),
    cb.AdmAction.user: ("user_card", "A2"),
    cb.AdmAction.grant: ("grant", "A2"),
    cb.AdmAction.revoke: ("revoke", "A2"),
    cb.AdmAction.ban: ("ban", "A2"),
    cb.AdmAction.unban: ("unban", "A2"),
    cb.AdmAction.stop: ("stop", "A2"),
    cb.AdmAction.logout: ("logout", "A2"),
    cb.AdmAction.pending: ("pending", "A3"),
    cb.AdmAction.approve: ("approve", "A3"),
    cb.AdmAction.reject: ("reject", "A3"),
    cb.AdmAction.mode: ("mode", "A4"),
    cb.AdmAction.runtime: ("runtime", "A5"),
    cb.AdmAction.pause: ("pause", "A6"),
    cb.AdmAction.resume: ("resume", "A6"),
    cb.AdmAction.announce: ("announce", "A7"),
}


def is_admin(event: Message | CallbackQuery, settings: Settings) -> bool:
    user = event.from_user
    return user is not None and user.id in settings.bot.admin_ids


def is_not_admin(event: Message | CallbackQuery, settings: Settings) -> bool:
    return not is_admin(event, settings)


class AdminRoutes:
    """Builds the admin router: the admin-only handlers first, then the refusal for the rest."""

    def build(self) -> Router:
        allowed = only.build()
        refused = guard.build()
        for router, check in ((allowed, is_admin), (refused, is_not_admin)):
            router.message.filter(check)
            router.callback_query.filter(check)
        router = Router(name="admin")
        router.include_routers(allowed, refused)
        return router


routes = AdminRoutes()


def _actor(event: Event) -> Actor:
    return Actor.admin(user_id_of(event))


async def _answer(event: Event, text: str | None = None) -> None:
    if isinstance(event, CallbackQuery):
        with contextlib.suppress(TelegramAPIError):
            await event.answer(text[:200] if text else None)


# --- everyone else ------------------------------------------------------------------------------


@guard.message(Command("admin"))
@guard.callback_query(F.data.startswith("adm:"))
async def refuse(event: Event, bot: Bot, admin: AdminService, status: StatusService) -> None:
    """Not an admin: "not allowed", a denied audit row (the service writes it), a fresh menu."""
    menu = cb.Adm(action=cb.AdmAction.menu)
    parsed = cb.parse(event.data or "") if isinstance(event, CallbackQuery) else menu
    if isinstance(parsed, cb.Adm):
        action, row = ACTIONS[parsed.action]
        target = parsed.uid
    else:
        action, row, target = "admin", "A1", None
    mark(row, "denied")
    with contextlib.suppress(NotAllowed):
        await admin.authorize(Actor.admin(user_id_of(event)), action, target)
    if isinstance(event, CallbackQuery):
        await _answer(event, texts.NOT_ALLOWED)
        await main_menu(bot, event, status)
        return
    await event.answer(texts.NOT_ALLOWED, reply_markup=kb.main_only())


# --- A1 the admin menu, A6 the global switch ----------------------------------------------------


async def show_menu(bot: Bot, event: Event, admin: AdminService, head: str = "") -> None:
    overview = await admin.overview(_actor(event))
    text = texts.admin_menu(
        users=overview.users,
        connected=overview.connected,
        running=overview.running,
        pending=overview.pending_requests,
        mode=overview.access_mode,
        paused=overview.global_paused,
        head=head,
    )
    await show(bot, event, text, kb.admin_menu(paused=overview.global_paused))


@only.message(Command("admin"))
@only.callback_query(cb.Adm.on(cb.AdmAction.menu))
@flags.leave_input
async def admin_menu(
    event: Event, bot: Bot,
    admin: AdminService,
) -> None:
    mark("A1")
    await _answer(event)
    await show_menu(bot, event, admin)


@only.callback_query(cb.Adm.on(cb.AdmAction.pause))
@only.callback_query(cb.Adm.on(cb.AdmAction.resume))
async def switch(query: CallbackQuery, callback_data: cb.Adm, bot: Bot,
                 admin: AdminService) -> None:
    pause = callback_data.action is cb.AdmAction.pause
    actor = _actor(query)
    result = await (admin.pause(actor) if pause else admin.resume(actor))
    mark("A6", f"{'pause' if pause else 'resume'}:{result.outcome}")
    if result.outcome == "ok":
        head = texts.PAUSED if pause else texts.RESUMED
    else:
        head = texts.ALREADY_PAUSED if pause else texts.ALREADY_RESUMED
    await _answer(query, head)
    await show_menu(bot, query, admin, head)


# --- A2 users and the user card -----------------------------------------------------------------


async def show_users(bot: Bot, event: Event, admin: AdminService, page: int) -> int:
    """The users page (clamped into range); returns the page shown."""
    result = await admin.users_page(_actor(event), page)
    buttons = [
        kb.UserButton(u.user_id, texts.user_button(u.name, u.user_id, u.access, u.running))
        for u in result.items
    ]
    await show(bot, event, texts.users_page(result.page, result.pages, result.total),
               kb.admin_users(buttons, result.page, result.pages))
    return result.page


def card_text(card: UserCard, head: str = "") -> str:
    user = card.user
    return texts.user_card(
        uid=user.user_id,
        name=user.name,
        username=user.username,
        access=user.access,
        access_status=user.access_status,
        expires_at=user.expires_at,
        phone_masked=card.phone_masked,
        account_name=card.account_name,
        disconnected_reason=card.disconnected_reason,
        groups_selected=card.groups_selected,
        groups_total=card.groups_total,
        groups_disabled=card.groups_disabled,
        running=user.running,
        interval=rules.format_interval(card.interval) if card.interval else None,
        next_run=card.next_run_at,
        last_seen=card.last_seen_at,
        head=head,
        accounts=[texts.admin_account_line(
            name=a.name, phone_masked=a.phone_masked, connected=a.connected, current=a.current,
            reason=a.disconnected_reason, running=a.running,
            interval=rules.format_interval(a.interval) if a.interval else None, next_run=a.next_run_at)
            for a in card.accounts],
    )


async def show_card(bot: Bot, event: Event, admin: AdminService, uid: int, head: str = "") -> bool:
    card = await admin.user_card(_actor(event), uid)
    if card is None:
        return False
    await show(bot, event, card_text(card, head), kb.admin_user_card(uid, banned=card.user.banned))
    return True


@only.callback_query(cb.Adm.on(cb.AdmAction.users))
async def users(query: CallbackQuery, callback_data: cb.Adm, bot: Bot, admin: AdminService) -> None:
    shown = await show_users(bot, query, admin, cb.need(callback_data.page))
    mark("A2", "users" if shown == callback_data.page else "page_gone")
    await _answer(query, texts.PAGE_GONE if shown != callback_data.page else None)


@only.callback_query(cb.Adm.on(cb.AdmAction.user))
async def user_card(query: CallbackQuery, callback_data: cb.Adm, bot: Bot, admin: AdminService) -> None:
    if await show_card(bot, query, admin, cb.need(callback_data.uid)):
        mark("A2", "card")
        await _answer(query)
        return
    mark("A2", "not_found")
    await _answer(query, texts.NOT_YOURS)
    await show_users(bot, query, admin, 0)


async def _perform(admin: AdminService, actor: Actor, data: cb.Adm) -> AdminResult:
    uid = cb.need(data.uid)
    match data.action:
        case cb.AdmAction.grant:
            return await admin.grant(actor, uid, cb.need(data.days))
        case cb.AdmAction.revoke:
            return await admin.revoke(actor, uid)
        case cb.AdmAction.ban:
            return await admin.ban(actor, uid)
        case cb.AdmAction.unban:
            return await admin.unban(actor, uid)
        case cb.AdmAction.stop:
            return await admin.stop_broadcast(actor, uid)
    return await admin.force_logout(actor, uid)


A = cb.AdmAction
USER_ACTIONS = (A.grant, A.revoke, A.ban, A.unban, A.stop, A.logout)


@only.callback_query(cb.Adm.on(*USER_ACTIONS))
async def user_action(query: CallbackQuery, callback_data: cb.Adm, bot: Bot, admin: AdminService) -> None:
    # a logout talks to Telegram, which may take longer than a callback may wait: answer first,
    # the outcome shows on the card
    uid = cb.need(callback_data.uid)
    early = callback_data.action is cb.AdmAction.logout
    if early:
        await _answer(query)
    try:
        result = await _perform(admin, _actor(query), callback_data)
    except Busy:
        # only a logout waits for the user's lock; its broadcast is stopped, the account still connected
        mark("A2", f"{callback_data.action}:busy")
        if not await show_card(bot, query, admin, uid, head=texts.ADMIN_LOGOUT_BUSY):
            await show_users(bot, query, admin, 0)
        return
    mark("A2", f"{callback_data.action}:{result.outcome}")
    if result.outcome == "not_found":
        if not early:
            await _answer(query, texts.NOT_YOURS)
        await show_users(bot, query, admin, 0)
        return
    note = texts.admin_action(callback_data.action, result.outcome, callback_data.days)
    if not early:
        await _answer(query, note)
    if not await show_card(bot, query, admin, uid, head=note):
        await show_users(bot, query, admin, 0)


# --- A3 access requests ---------------------------------------------------------------------------


async def show_pending(bot: Bot, event: Event, admin: AdminService, head: str = "") -> None:
    waiting = await admin.pending_requests(_actor(event), limit=100)
    shown = waiting[:PENDING_SHOWN]
    items = [(u.user_id, u.name, u.requested_at) for u in shown]
    await show(bot, event, texts.pending_list(items, len(waiting) - len(shown), head),
               kb.admin_pending([(u.user_id, u.name) for u in shown]))


@only.callback_query(cb.Adm.on(cb.AdmAction.pending))
async def pending(query: CallbackQuery, bot: Bot, admin: AdminService) -> None:
    mark("A3", "list")
    await _answer(query)
    await show_pending(bot, query, admin)


@only.callback_query(cb.Adm.on(cb.AdmAction.approve))
@only.callback_query(cb.Adm.on(cb.AdmAction.reject))
async def decide(query: CallbackQuery, callback_data: cb.Adm, bot: Bot,
                 admin: AdminService) -> None:
    """From the request card (U1.2) or the pending list; the requester is told through the outbox."""
    actor = _actor(query)
    uid = cb.need(callback_data.uid)
    approve = callback_data.action is cb.AdmAction.approve
    card = await admin.user_card(actor, uid)
    if card is None:
        mark("A3", "not_found")
        head = texts.admin_request_gone(uid)
    elif card.user.access_status in ("granted", "rejected"):
        # a card pressed twice, or by two admins: the first decision stands
        mark("A3", "no_change")
        head = texts.admin_decided(uid, card.user.access_status == "granted", already=True)
    elif card.user.access_status != "pending":
        mark("A3", "not_pending")
        head = texts.admin_request_gone(uid)
    else:
        result = await (admin.approve(actor, uid) if approve else admin.reject(actor, uid))
        mark("A3", result.outcome)
        head = texts.admin_decided(uid, approve, already=result.outcome == "no_change")
    await _answer(query, head)
    await show_pending(bot, query, admin, head)


# --- A4 access mode -----------------------------------------------------------------------------


@only.callback_query(cb.Adm.on(cb.AdmAction.mode, mode=None))
async def mode_menu(query: CallbackQuery, bot: Bot, access: AccessService) -> None:
    mark("A4", "menu")
    await _answer(query)
    current = await access.mode()
    await show(bot, query, texts.mode_menu(current), kb.admin_modes(current))


@only.callback_query(cb.Adm.filter((F.action == cb.AdmAction.mode) & F.mode.is_not(None)))
async def set_mode(query: CallbackQuery, callback_data: cb.Adm, bot: Bot, admin: AdminService) -> None:
    mode = cb.need(callback_data.mode)
    result = await admin.set_mode(_actor(query), mode)
    mark("A4", result.outcome)
    stopped = result.detail.get("stopped", 0)
    changed = result.outcome == "ok"
    head = texts.mode_set(mode, changed, stopped if isinstance(stopped, int) else 0)
    await _answer(query, head)
    await show(bot, query, texts.mode_menu(mode, head), kb.admin_modes(mode))


# --- A5 runtime -----------------------------------------------------------------------------------


@only.callback_query(cb.Adm.on(cb.AdmAction.runtime))
async def runtime_view(query: CallbackQuery, bot: Bot, runtime: RuntimeService) -> None:
    view = await runtime.snapshot(_actor(query))
    mark("A5")
    await _answer(query)
    counts = view.counts
    text = texts.runtime(
        ready=view.queue.ready,
        delayed=view.queue.delayed,
        in_progress=view.queue.pending,
        workers=[(w.consumer, w.age_seconds) for w in view.workers],
        running=counts.running,
        open_rounds=counts.open_rounds,
        sends=dict(sorted(counts.sends_last_hour.items())),
        flood_paused=counts.flood_paused,
        lag=counts.scheduler_lag_seconds,
        paused=counts.global_paused,
    )
    await show(bot, query, text, kb.admin_runtime())


# --- A7 announcement ------------------------------------------------------------------------------


def _entities(raw: list[MessageEntity] | None) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json", exclude_none=True) for e in raw or []]


@only.callback_query(cb.Adm.on(cb.AdmAction.announce, confirm=None))
@flags.leave_input
async def announce(
    query: CallbackQuery, bot: Bot, state: FSMContext,
    admin: AdminService,
) -> None:
    if await admin.announcing():
        mark("A7", "busy")
        await _answer(query, texts.ANNOUNCE_BUSY)
        return
    targets = await admin.announce_targets(_actor(query))
    mark("A7", "ask")
    await state.set_state(Input.announce_wait)
    await _answer(query)
    await show(bot, query, texts.announce_ask(len(targets)), kb.cancel_only())


@only.message(Input.announce_wait, not_command)
@only.message(Input.announce_confirm, not_command)
async def announce_text(message: Message, bot: Bot, state: FSMContext, admin: AdminService) -> None:
    if message.text is None:
        mark("A7", "unsupported")
        await state.set_state(Input.announce_wait)
        await message.answer(texts.ANNOUNCE_UNSUPPORTED, reply_markup=kb.cancel_only())
        return
    problem = rules.message_problem(message.text, has_media=False)
    if problem is not None:
        kind, length, limit = problem
        mark("A7", kind)
        await state.set_state(Input.announce_wait)
        text = texts.MSG_EMPTY if kind == "empty" else texts.msg_too_long(length, limit)
        await message.answer(text, reply_markup=kb.cancel_only())
        return
    entities = _entities(message.entities)
    targets = await admin.announce_targets(_actor(message))
    mark("A7", "preview")
    await state.set_state(Input.announce_confirm)
    await state.update_data({ANNOUNCE_TEXT: message.text, ANNOUNCE_ENTITIES: entities})
    await message.answer(f"{texts.ANNOUNCE_PREVIEW_HEAD}\n{texts.announce_confirm(len(targets))}")
    await bot.send_message(
        message.chat.id,
        message.text,
        entities=[MessageEntity.model_validate(e) for e in entities] or None,
        parse_mode=None,
        reply_markup=kb.announce_confirm(),
    )


@only.callback_query(cb.Adm.on(cb.AdmAction.announce, confirm="send"), Input.announce_confirm)
async def announce_send(
    query: CallbackQuery, bot: Bot, state: FSMContext, admin: AdminService, announcer: Announcer
) -> None:
    if await admin.announcing():
        mark("A7", "busy")
        await _answer(query, texts.ANNOUNCE_BUSY)
        return
    data = await state.get_data()
    await state.clear()
    text = data.get(ANNOUNCE_TEXT)
    raw_entities = data.get(ANNOUNCE_ENTITIES)
    if not isinstance(text, str) or not text:
        mark("A7", "no_draft")
        await _answer(query, texts.ANNOUNCE_NOTHING)
        await show_menu(bot, query, admin)
        return
    entities = [e for e in raw_entities if isinstance(e, dict)] if isinstance(raw_entities, list) else []
    try:
        # stored with all its targets; the leader's announcer delivers it (at once if that is this process)
        started = await admin.start_announcement(_actor(query), text, entities, report_to=query.from_user.id)
    except AnnouncementBusy:  # confirmed elsewhere a moment ago
        mark("A7", "busy")
        await _answer(query, texts.ANNOUNCE_BUSY)
        return
    announcer.wake()
    mark("A7", "started")
    await _answer(query)
    message = query.message
    if isinstance(message, Message):  # the preview keeps its look; only its buttons go
        with contextlib.suppress(TelegramAPIError):
            await bot.edit_message_reply_markup(chat_id=message.chat.id, message_id=message.message_id,
                                                reply_markup=None)
    await bot.send_message(
        chat_id_of(query), texts.announce_started(started.targets), reply_markup=kb.admin_only()
    )


@only.callback_query(cb.Adm.on(cb.AdmAction.announce, confirm="send"))
async def announce_stale(query: CallbackQuery, bot: Bot, admin: AdminService) -> None:
    mark("A7", "stale")
    await _answer(query, texts.ANNOUNCE_NOTHING)
    await show_menu(bot, query, admin)
