"""U6: start (with the checklist of what is missing) and stop the broadcast."""

from __future__ import annotations

import logging

from aiogram import Bot, flags
from aiogram.types import CallbackQuery

from domain import rules
from roles.bot import callbacks as cb
from roles.bot import keyboards as kb
from roles.bot import texts
from roles.bot.middlewares import mark
from roles.bot.routers import Routes
from roles.bot.ui import show
from services.campaigns import CampaignService

log = logging.getLogger(__name__)
routes = Routes("broadcast")


@routes.callback_query(cb.Bc.on(cb.BcAction.start))
@flags.leave_input("answer")
async def start(
    query: CallbackQuery,
    bot: Bot,
    campaigns: CampaignService,
) -> None:
    result = await campaigns.start(query.from_user.id)
    if result.outcome == "missing":
        mark("U6.1", ",".join(result.missing))
        await show(bot, query, texts.missing(list(result.missing)), kb.missing(result.missing))
    elif result.outcome == "already_running":
        mark("U6.3", "already_running")
        await show(bot, query, texts.ALREADY_RUNNING, kb.main_only())
    else:
        now = campaigns.now()
        later = result.next_run_at is not None and result.next_run_at > now
        if result.waits_for_window:
            mark("U10.4", "started_waiting")
        mark("U6.2", "started_later" if later else "started")
        text = texts.started(result.groups, rules.format_interval(result.interval), result.next_run_at, now,
                             result.waits_for_window)
        # "post now" can't go before the window opens (U10.5)
        offer_now = later and not result.waits_for_window
        await show(bot, query, text, kb.post_now() if offer_now else kb.main_only())


@routes.callback_query(cb.Bc.on(cb.BcAction.now, confirm=None))
@flags.leave_input("answer")
async def post_now_ask(query: CallbackQuery, bot: Bot, campaigns: CampaignService) -> None:
    if not (await campaigns.view(query.from_user.id)).running:
        mark("U6.5", "not_running")
        await show(bot, query, texts.NOT_RUNNING, kb.main_only())
        return
    mark("U6.2", "post_now_confirm")
    await show(bot, query, texts.POST_NOW_CONFIRM, kb.post_now_confirm())


@routes.callback_query(cb.Bc.on(cb.BcAction.now, confirm="yes"))
@flags.leave_input("answer")
async def post_now(query: CallbackQuery, bot: Bot, campaigns: CampaignService) -> None:
    if not await campaigns.post_now(query.from_user.id):
        mark("U6.5", "not_running")
        await show(bot, query, texts.NOT_RUNNING, kb.main_only())
        return
    mark("U6.2", "post_now")
    await show(bot, query, texts.POSTING_NOW, kb.main_only())


@routes.callback_query(cb.Bc.on(cb.BcAction.stop))
@flags.leave_input("answer")
async def stop(
    query: CallbackQuery,
    bot: Bot,
    campaigns: CampaignService,
) -> None:
    result = await campaigns.stop(query.from_user.id)
    if result.outcome == "not_running":
        mark("U6.5", "not_running")
        await show(bot, query, texts.NOT_RUNNING, kb.main_only())
        return
    mark("U6.4", "stopped")
    last = result.last_round
    if last is None:
        text = texts.stopped(None, None, None)
    else:
        text = texts.stopped(last.sent, last.failed, last.total)
    missing = await campaigns.missing(query.from_user.id)
    await show(bot, query, text, kb.next_step(kb.follow_up(missing, running=False)))
