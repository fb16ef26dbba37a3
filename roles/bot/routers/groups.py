"""U3: import the account's groups, pages of 10, selection (edited in place)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiogram import Bot, flags
from aiogram.exceptions import TelegramAPIError
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup

from roles.bot import callbacks as cb
from roles.bot import keyboards as kb
from roles.bot import texts
from roles.bot.middlewares import mark
from roles.bot.routers import Routes
from roles.bot.ui import show
from services.campaigns import CampaignService
from services.group_import import GroupImportService, ImportProgress
from services.groups import GroupPage, GroupService, NotConnected
from services.login import LoginService
from services.topics import TopicPage, TopicService

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
    buttons = [kb.GroupButton(g.group_id, g.title, g.selected, g.status, g.reason, g.archived, g.is_forum)
               for g in page.items]
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
@flags.account_of_button
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
    if not isinstance(groups, GroupImportService):
        raise TypeError("the bot's groups service must be a GroupImportService")
    try:
        begun = await groups.begin(uid)
    except NotConnected:
        await _connect_first(bot, query)
        return
    if begun == "already":
        mark("U3.3", "already_importing")
        await show(bot, query, texts.IMPORT_ALREADY, kb.groups_menu())
        return
    await show(bot, query, texts.import_progress(0, 0, False), kb.import_running())
    job = asyncio.create_task(_run_import(bot, query, groups), name=f"group-import-{uid}")
    _RUNNING.add(job)
    job.add_done_callback(_RUNNING.discard)
    # A small account is done within the update (the reply is the page as before); a large one goes
    # on in the background, so this user's next updates (the stop button) aren't held behind it.
    await asyncio.wait([job], timeout=INLINE_WAIT)


# Import jobs running in the background (referenced so they are not garbage-collected). A job cut
# by a restart keeps its cursor in the database and is resumed by the user's next import.
_RUNNING: set[asyncio.Task[None]] = set()
INLINE_WAIT = 3.0  # seconds an import may run inside its update before going on in the background


async def _run_import(bot: Bot, query: CallbackQuery, groups: GroupImportService) -> None:
    uid = query.from_user.id
    try:
        final = await groups.run(uid, _progress_reporter(bot, query))
    except Exception:
        log.exception("group import failed user_id=%s", uid)
        await show(bot, query, texts.TELEGRAM_UNREACHABLE, kb.groups_menu())
        return
    if final.status == "done" and final.result is not None:
        mark("U3.3")
        result = final.result
        await _show_page(bot, query, groups, 0,
                         texts.imported(result.total, result.new, result.updated, result.gone))
    elif final.status == "session_dead":
        mark("U3.4", "session_dead")
        await show(bot, query, texts.SESSION_ENDED, kb.login_offer())
    elif final.status == "busy":
        # a broadcast batch is sending on the session: nothing was read or changed
        mark("U3.3", "busy")
        await show(bot, query, texts.BROADCAST_BUSY, kb.groups_menu())
    elif final.status == "cancelled":
        mark("U3.3", "cancelled")
        await show(bot, query, texts.import_cancelled(final.chats_read), kb.groups_menu())
    else:
        mark("U3.3", "unreachable")
        await show(bot, query, texts.TELEGRAM_UNREACHABLE, kb.groups_menu())


def _progress_reporter(bot: Bot, query: CallbackQuery) -> Callable[[ImportProgress], Awaitable[None]]:
    """Edits the progress message in place, at most every ``PROGRESS_EVERY`` seconds (waits always)."""
    last = [0.0]

    async def report(progress: ImportProgress) -> None:
        if progress.status not in ("running", "waiting"):
            return  # the end is shown by the handler
        now = asyncio.get_running_loop().time()
        if progress.status == "running" and now - last[0] < PROGRESS_EVERY:
            return
        last[0] = now
        text = texts.import_progress(progress.chats_read, progress.groups_found, progress.folder == 1,
                                     progress.wait_seconds, progress.resume_at)
        try:
            await show(bot, query, text, kb.import_running())
        except TelegramAPIError as exc:  # progress is best effort: the import goes on
            log.info("import progress not shown: %s", exc)

    return report


PROGRESS_EVERY = 1.5  # seconds between progress edits (Telegram limits edits per chat)


@routes.callback_query(cb.Grp.on(cb.GrpAction.import_stop))
async def stop_import(query: CallbackQuery, groups: GroupService) -> None:
    stopping = isinstance(groups, GroupImportService) and await groups.cancel(query.from_user.id)
    mark("U3.3", "import_cancel" if stopping else "import_cancel_idle")
    # the running import's handler shows the outcome in the progress message
    await query.answer(texts.IMPORT_STOPPING if stopping else texts.IMPORT_NOT_RUNNING)


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


# --- U11 forum topics ------------------------------------------------------------------------------


def _topic_view(page: TopicPage) -> tuple[str, InlineKeyboardMarkup]:
    reason = page.reason if page.status == "disabled" else ""
    text = texts.topic_page(page.title, page.chosen_title, page.page, page.pages, page.total, reason)
    buttons = [kb.TopicButton(t.topic_id, t.title, t.chosen, t.closed) for t in page.items]
    return text, kb.topic_page(page.group_id, buttons, page.page, page.pages, page.list_page)


async def _not_a_forum(bot: Bot, query: CallbackQuery, groups: GroupService) -> None:
    """A forged or stale group id (not the user's, or no forum any more): a notice, the list again."""
    mark("U11.2", "not_found")
    await query.answer(texts.TOPIC_NOT_FORUM)
    await _show_page(bot, query, groups, 0)


@routes.callback_query(cb.Grp.on(cb.GrpAction.topics, tid=None))
@routes.callback_query(cb.Grp.on(cb.GrpAction.topic_page))
async def topic_list(
    query: CallbackQuery, callback_data: cb.Grp, bot: Bot, groups: GroupService, topics: TopicService
) -> None:
    """U11.2: a forum's topics, paged; the chosen one marked."""
    wanted = callback_data.page
    if wanted is None:
        page = await topics.page(query.from_user.id, cb.need(callback_data.gid))
        if page is not None and page.pages > 1:  # open on the page that shows the chosen topic
            page = await topics.page_showing(query.from_user.id, page.group_id, page.chosen)
    else:
        page = await topics.page(query.from_user.id, cb.need(callback_data.gid), wanted)
    if page is None:
        await _not_a_forum(bot, query, groups)
        return
    if wanted is not None and page.page != wanted:
        mark("U11.2", "page_gone")
        await query.answer(texts.PAGE_GONE)
    else:
        mark("U11.2")
        await query.answer()
    await show(bot, query, *_topic_view(page))


@routes.callback_query(cb.Grp.on(cb.GrpAction.topics))
async def topic_choose(
    query: CallbackQuery, callback_data: cb.Grp, bot: Bot, groups: GroupService, topics: TopicService
) -> None:
    """U11.2: posts of the forum go to the pressed topic (a closed one is refused, nothing changes)."""
    outcome, page = await topics.choose(query.from_user.id, cb.need(callback_data.gid),
                                        cb.need(callback_data.tid))
    if outcome == "closed":
        mark("U11.2", "topic_closed")
        await query.answer(texts.TOPIC_CLOSED_ALERT, show_alert=True)
        return
    if page is None:
        await _not_a_forum(bot, query, groups)
        return
    if outcome == "not_found":  # a topic the forum doesn't have (any more): its topics as they are
        mark("U11.2", "topic_gone")
        await query.answer(texts.NOT_YOURS)
    else:
        mark("U11.2", "chosen")
        await query.answer(texts.topic_chosen(page.chosen_title))
    await show(bot, query, *_topic_view(page))
