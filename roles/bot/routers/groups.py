"""U3: import the account's groups, pages of 10, selection (edited in place)."""

from __future__ import annotations

import logging

from aiogram import Bot, flags
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup

from domain import rules
from domain.errors import FloodWait, SessionDead, TransientError
from roles.bot import callbacks as cb
from roles.bot import keyboards as kb
from roles.bot import texts
from roles.bot.middlewares import mark
from roles.bot.routers import Routes
from roles.bot.ui import show
from services.campaigns import CampaignService
from services.groups import GroupPage, GroupService, NotConnected
from services.locks import Busy
from services.login import LoginService

log = logging.getLogger(__name__)
routes = Routes("groups")


async def _connected(login: LoginService, user_id: int) -> bool:
    view = await login.account(user_id)
    return view is not None and view.connected


async def _connect_first(bot: Bot, query: CallbackQuery) -> None:
    mark("U3.1", "not_connected")
    await show(bot, query, texts.CONNECT_FIRST, kb.login_offer())


def _page_view(page: GroupPage, head: str = "") -> tuple[str, InlineKeyboardMarkup]:
    body = texts.group_page(page.page, page.pages, page.selected, page.total)
    if not page.items:
        body += "\n" + texts.NO_GROUPS
    buttons = [kb.GroupButton(g.group_id, g.title, g.selected, g.status, g.reason) for g in page.items]
    return (f"{head}\n{body}" if head else body), kb.group_page(buttons, page.page, page.pages)


async def _show_page(
    bot: Bot, query: CallbackQuery, groups: GroupService, page_no: int, head: str = ""
) -> GroupPage:
    page = await groups.page(query.from_user.id, page_no)
    text, markup = _page_view(page, head)
    await show(bot, query, text, markup)
    return page


@routes.callback_query(cb.Grp.on(cb.GrpAction.menu))
@flags.leave_input("answer")
async def groups_menu(
    query: CallbackQuery,
    bot: Bot,
    login: LoginService,
    groups: GroupService,
    campaigns: CampaignService,
) -> None:
    uid = query.from_user.id
    if not await _connected(login, uid):
        await _connect_first(bot, query)
        return
    mark("U3.2")
    counts = await groups.counts(uid)
    follow: list[tuple[str, CallbackData]] = []
    if counts.selected:  # U7.2: groups chosen ("Done"), so offer what comes next
        follow = kb.follow_up(await campaigns.missing(uid), (await campaigns.view(uid)).running)
    text = texts.groups_menu(counts.selected, counts.total, counts.disabled)
    await show(bot, query, text, kb.groups_menu(follow))


@routes.callback_query(cb.Grp.on(cb.GrpAction.import_))
async def import_groups(query: CallbackQuery, bot: Bot, login: LoginService, groups: GroupService) -> None:
    uid = query.from_user.id
    # importing talks to Telegram; answer first so the button stops spinning within a second
    await query.answer(texts.IMPORTING)
    try:
        result = await groups.import_groups(uid)
    except NotConnected:
        await _connect_first(bot, query)
        return
    except SessionDead:
        mark("U3.4", "session_dead")
        await show(bot, query, texts.SESSION_ENDED, kb.login_offer())
        return
    except FloodWait as exc:
        mark("U3.3", "flood")
        await show(bot, query, texts.too_many_attempts(rules.human_duration(exc.seconds)), kb.groups_menu())
        return
    except TransientError:
        mark("U3.3", "unreachable")
        await show(bot, query, texts.TELEGRAM_UNREACHABLE, kb.groups_menu())
        return
    except Busy:
        # a broadcast batch is sending on the session: nothing was read or changed
        mark("U3.3", "busy")
        await show(bot, query, texts.BROADCAST_BUSY, kb.groups_menu())
        return
    mark("U3.3")
    await _show_page(
        bot, query, groups, 0, texts.imported(result.total, result.new, result.updated, result.gone)
    )


@routes.callback_query(cb.Grp.on(cb.GrpAction.list))
async def list_page(
    query: CallbackQuery, callback_data: cb.Grp, bot: Bot, login: LoginService, groups: GroupService
) -> None:
    if not await _connected(login, query.from_user.id):
        await query.answer()
        await _connect_first(bot, query)
        return
    page = await groups.page(query.from_user.id, cb.need(callback_data.page))
    if page.out_of_range:
        mark("U3.5", "page_gone")
        await query.answer(texts.PAGE_GONE)
    else:
        mark("U3.5")
        await query.answer()
    text, markup = _page_view(page)
    await show(bot, query, text, markup)


@routes.callback_query(cb.Grp.on(cb.GrpAction.toggle))
async def toggle(query: CallbackQuery, callback_data: cb.Grp, bot: Bot, groups: GroupService) -> None:
    page_no = cb.need(callback_data.page)
    result = await groups.toggle(query.from_user.id, cb.need(callback_data.gid))
    if result.outcome in ("selected", "unselected"):
        mark("U3.6", result.outcome)
        await query.answer()
        await _show_page(bot, query, groups, page_no)
    elif result.outcome == "disabled":
        mark("U3.7", "disabled")
        await query.answer(texts.group_disabled(result.reason), show_alert=True)
    elif result.outcome == "limit_reached":
        mark("U3.8", "limit_reached")
        await query.answer(texts.limit_reached(result.limit), show_alert=True)
    else:
        mark("U3.6", "not_found")
        await query.answer(texts.NOT_YOURS)
        await _show_page(bot, query, groups, page_no)


@routes.callback_query(cb.Grp.on(cb.GrpAction.all, cb.GrpAction.none))
async def bulk(
    query: CallbackQuery, callback_data: cb.Grp, bot: Bot, groups: GroupService
) -> None:
    uid = query.from_user.id
    page_no = cb.need(callback_data.page)
    if callback_data.action is cb.GrpAction.all:
        result = await groups.select_all(uid, page_no)
    else:
        result = await groups.select_none(uid, page_no)
    if result.outcome == "limit_reached":
        mark("U3.8", "limit_reached")
        await query.answer(texts.limit_reached(result.limit), show_alert=True)
    elif result.outcome == "not_found":
        mark("U3.5", "page_gone")
        await query.answer(texts.PAGE_GONE)
    else:
        mark("U3.6", "bulk")
        await query.answer()
    await _show_page(bot, query, groups, page_no)
