"""U5: the interval between rounds: presets within bounds, or typed (``45``, ``1h30m`` …)."""

from __future__ import annotations

import logging

from aiogram import Bot, F, flags
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from domain import rules
from roles.bot import callbacks as cb
from roles.bot import keyboards as kb
from roles.bot import texts
from roles.bot.middlewares import mark
from roles.bot.routers import Routes
from roles.bot.states import Input
from roles.bot.ui import Event, not_command, show
from services.campaigns import CampaignService, IntervalResult

log = logging.getLogger(__name__)
routes = Routes("interval")


def _bounds(campaigns: CampaignService) -> tuple[str, str]:
    low, high = campaigns.bounds
    return rules.format_interval(low), rules.format_interval(high)


@routes.callback_query(cb.Int.on(cb.IntAction.menu))
@flags.leave_input("answer")
async def interval_menu(
    query: CallbackQuery,
    bot: Bot,
    campaigns: CampaignService,
) -> None:
    mark("U5.1")
    await _show_menu(bot, query, campaigns)


async def _show_menu(bot: Bot, event: Event, campaigns: CampaignService) -> None:
    view = await campaigns.view(event.from_user.id if event.from_user else 0)
    current = rules.format_interval(view.interval) if view.interval else None
    await show(
        bot,
        event,
        texts.interval_menu(current, *_bounds(campaigns)),
        kb.interval_menu(campaigns.presets(), view.interval),
    )


@routes.callback_query(cb.Int.on(cb.IntAction.set))
@flags.leave_input
async def interval_preset(
    query: CallbackQuery,
    callback_data: cb.Int,
    bot: Bot,
    campaigns: CampaignService,
) -> None:
    result = await campaigns.set_interval(query.from_user.id, cb.need(callback_data.minutes) * 60)
    if result.outcome != "ok":
        # only a forged or outdated preset can be out of bounds
        mark("U5.2", result.outcome)
        await query.answer(texts.interval_bad(*_bounds(campaigns)), show_alert=True)
        await _show_menu(bot, query, campaigns)
        return
    mark("U5.2")
    await query.answer()
    await show(bot, query, _saved(result, campaigns), await _follow_up(query.from_user.id, result, campaigns))


def _saved(result: IntervalResult, campaigns: CampaignService) -> str:
    assert result.interval is not None
    return texts.interval_saved(
        rules.format_interval(result.interval),
        result.next_run_at if result.running else None,
        campaigns.now(),
    )


async def _follow_up(
    user_id: int, result: IntervalResult, campaigns: CampaignService
) -> InlineKeyboardMarkup:
    """U7.2: after "saved", the next step (what is still missing, or start / status)."""
    return kb.next_step(kb.follow_up(await campaigns.missing(user_id), result.running))


def _refusal(result: IntervalResult, raw: str) -> str:
    """U5.5: which way the typed interval is wrong."""
    low, high = rules.format_interval(result.minimum), rules.format_interval(result.maximum)
    if result.outcome == "unparsable" or result.requested is None:
        return texts.interval_not_understood(raw)
    seconds = result.requested
    # "90 s", not "1 min 30 s": the amount as the user is likely to have typed it
    value = f"{seconds} s" if seconds < 3600 and seconds % 60 else rules.format_interval(seconds)
    if result.requested < result.minimum:
        return texts.interval_below(value, low)
    return texts.interval_above(value, high)


@routes.callback_query(cb.Int.on(cb.IntAction.custom))
@flags.leave_input
async def interval_custom(
    query: CallbackQuery,
    bot: Bot,
    state: FSMContext,
    campaigns: CampaignService,
) -> None:
    mark("U5.3")
    await state.set_state(Input.int_wait)
    await query.answer()
    await show(bot, query, texts.interval_ask(*_bounds(campaigns)), kb.cancel_only())


@routes.message(Input.int_wait, F.text, not_command)
async def interval_typed(message: Message, state: FSMContext, campaigns: CampaignService) -> None:
    assert message.from_user is not None
    raw = message.text or ""
    result = await campaigns.set_interval_text(message.from_user.id, raw)
    if result.outcome != "ok":
        mark("U5.5", result.outcome)
        await message.answer(_refusal(result, raw), reply_markup=kb.cancel_only())
        return
    mark("U5.4")
    await state.clear()
    markup = await _follow_up(message.from_user.id, result, campaigns)
    await message.answer(_saved(result, campaigns), reply_markup=markup)


@routes.message(Input.int_wait, not_command)
async def interval_other(message: Message, campaigns: CampaignService) -> None:
    mark("U5.5", "not_text")
    low, high = _bounds(campaigns)
    await message.answer(texts.interval_bad(low, high), reply_markup=kb.cancel_only())
