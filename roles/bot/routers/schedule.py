"""U10: the schedule window (active hours, days) and the user's time zone."""

from __future__ import annotations

import logging

from aiogram import Bot, F, flags
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from domain import schedule as window_rules
from roles.bot import callbacks as cb
from roles.bot import keyboards as kb
from roles.bot import texts
from roles.bot.middlewares import mark
from roles.bot.routers import Routes
from roles.bot.states import Input
from roles.bot.ui import Event, not_command, show, user_id_of
from services.access import AccessService
from services.schedule import ScheduleService, ScheduleView

log = logging.getLogger(__name__)
routes = Routes("schedule")


def _menu_text(view: ScheduleView, schedule_service: ScheduleService) -> str:
    now = schedule_service.now()
    window = view.window
    return texts.schedule_menu(
        window_rules.zone_label(view.timezone, now),
        window_rules.format_hours(window) if window is not None else None,
        texts.days_text(window.days) if window is not None else None,
        view.opens_at,
        view.next_run_at,
        now,
    )


async def _show_menu(bot: Bot, event: Event, schedule_service: ScheduleService) -> None:
    view = await schedule_service.view(user_id_of(event))
    await show(bot, event, _menu_text(view, schedule_service), kb.schedule_menu(view.window is not None))


@routes.callback_query(cb.Sch.on(cb.SchAction.menu))
@flags.leave_input("answer")
async def schedule_menu(query: CallbackQuery, bot: Bot, schedule: ScheduleService) -> None:
    mark("U10.1")
    await _show_menu(bot, query, schedule)


@routes.callback_query(cb.Sch.on(cb.SchAction.tz))
@flags.leave_input
async def ask_timezone(query: CallbackQuery, bot: Bot, state: FSMContext) -> None:
    mark("U10.2", "ask")
    await state.set_state(Input.sch_tz)
    await query.answer()
    await show(bot, query, texts.SCH_TZ_ASK, kb.cancel_only())


@routes.message(Input.sch_tz, F.text, not_command)
async def timezone_typed(
    message: Message, state: FSMContext, schedule: ScheduleService, access: AccessService
) -> None:
    assert message.from_user is not None
    raw = message.text or ""
    change = await schedule.set_timezone_text(message.from_user.id, raw)
    if change.outcome != "ok" or change.view is None:
        mark("U10.2", "invalid")
        await message.answer(texts.sch_tz_bad(raw), reply_markup=kb.cancel_only())
        return
    mark("U10.2")
    # this replica's cached record is stale at once; the others hear it from the trigger (0014)
    access.cache.forget(message.from_user.id)
    await state.clear()
    zone_name = change.view.timezone
    texts.SHOWN_ZONE.set(zone_name)  # the reply already speaks the new zone
    await message.answer(texts.sch_tz_set(schedule_label(zone_name, schedule)) + "\n\n"
                         + _menu_text(change.view, schedule),
                         reply_markup=kb.schedule_menu(change.view.window is not None))


def schedule_label(zone_name: str, schedule_service: ScheduleService) -> str:
    return window_rules.zone_label(zone_name, schedule_service.now())


@routes.message(Input.sch_tz, not_command)
async def timezone_other(message: Message) -> None:
    mark("U10.2", "not_text")
    await message.answer(texts.sch_tz_bad(""), reply_markup=kb.cancel_only())


@routes.callback_query(cb.Sch.on(cb.SchAction.hours))
@flags.leave_input
async def ask_hours(query: CallbackQuery, bot: Bot, state: FSMContext, schedule: ScheduleService) -> None:
    mark("U10.3", "ask")
    await state.set_state(Input.sch_hours)
    await query.answer()
    zone_name = await schedule.timezone(query.from_user.id)
    await show(bot, query, texts.sch_hours_ask(schedule_label(zone_name, schedule)), kb.cancel_only())


@routes.message(Input.sch_hours, F.text, not_command)
async def hours_typed(message: Message, state: FSMContext, schedule: ScheduleService) -> None:
    assert message.from_user is not None
    raw = message.text or ""
    change = await schedule.set_hours_text(message.from_user.id, raw)
    if change.outcome != "ok" or change.view is None or change.view.window is None:
        mark("U10.3", "invalid")
        await message.answer(texts.sch_hours_bad(raw), reply_markup=kb.cancel_only())
        return
    mark("U10.3")
    await state.clear()
    view = change.view
    assert view.window is not None
    now = schedule.now()
    text = texts.sch_hours_set(window_rules.format_hours(view.window),
                               window_rules.zone_label(view.timezone, now), view.opens_at, now)
    await message.answer(text + "\n\n" + _menu_text(view, schedule), reply_markup=kb.schedule_menu(True))


@routes.message(Input.sch_hours, not_command)
async def hours_other(message: Message) -> None:
    mark("U10.3", "not_text")
    await message.answer(texts.sch_hours_bad(""), reply_markup=kb.cancel_only())


@routes.callback_query(cb.Sch.on(cb.SchAction.days))
@flags.leave_input
async def days_menu(query: CallbackQuery, bot: Bot, schedule: ScheduleService) -> None:
    view = await schedule.view(query.from_user.id)
    if view.window is None:
        mark("U10.1", "days_without_hours")
        await query.answer(texts.SCH_NO_HOURS, show_alert=True)
        return
    mark("U10.1", "days")
    await query.answer()
    await show(bot, query, texts.SCH_DAYS, kb.schedule_days(view.window.days))


@routes.callback_query(cb.Sch.on(cb.SchAction.day))
@flags.leave_input
async def toggle_day(
    query: CallbackQuery, callback_data: cb.Sch, bot: Bot, schedule: ScheduleService
) -> None:
    change = await schedule.toggle_day(query.from_user.id, cb.need(callback_data.n))
    if change.outcome != "ok" or change.view is None or change.view.window is None:
        mark("U10.1", change.outcome)
        await query.answer(texts.SCH_NO_HOURS if change.outcome == "no_hours" else texts.SCH_LAST_DAY,
                           show_alert=True)
        return
    mark("U10.1", "day")
    await query.answer(texts.sch_days_set(texts.days_text(change.view.window.days)))
    await show(bot, query, texts.SCH_DAYS, kb.schedule_days(change.view.window.days))


@routes.callback_query(cb.Sch.on(cb.SchAction.off))
@flags.leave_input
async def window_off(query: CallbackQuery, bot: Bot, schedule: ScheduleService) -> None:
    change = await schedule.clear(query.from_user.id)
    mark("U10.1", "off")
    await query.answer()
    assert change.view is not None
    text = texts.SCH_OFF + "\n\n" + _menu_text(change.view, schedule)
    await show(bot, query, text, kb.schedule_menu(False))
