"""U7: the broadcast status, refresh, and the round-report toggle."""

from __future__ import annotations

import logging
from datetime import datetime

from aiogram import Bot, flags
from aiogram.filters import Command
from aiogram.types import CallbackQuery

from domain import rules
from roles.bot import callbacks as cb
from roles.bot import keyboards as kb
from roles.bot import pacing_texts, texts
from roles.bot.middlewares import mark
from roles.bot.routers import Routes
from roles.bot.ui import Event, show, user_id_of
from services.notifications import NotificationService
from services.status import StatusService, StatusView

log = logging.getLogger(__name__)
routes = Routes("status")


def render(view: StatusView, now: datetime | None = None) -> str:
    last = view.last_round
    last_dict: dict[str, object] | None = None
    if last is not None:
        last_dict = {
            "started_at": last.started_at or last.planned_at,
            "sent": last.sent,
            "failed": last.failed,
            "skipped": last.skipped,
            "pending": last.pending,
        }
    outcomes = [
        (
            g.title,
            texts.OUTCOME_WORDS.get(g.status, g.status)
            + (f" ({texts.reason_text(g.error_code)})" if g.error_code and g.status != "sent" else "")
            + (f" — {texts.status_message_no(g.message_no)}" if g.message_no is not None else ""),
        )
        for g in view.group_outcomes
    ]
    text = texts.status_card(
        running=view.running,
        interval=rules.format_interval(view.interval) if view.interval else None,
        next_run=view.next_run_at,
        last_round=last_dict,
        groups=outcomes,
        more=view.more_groups,
        paused_until=view.paused_until,
        disabled=[(g.title, g.reason) for g in view.disabled_groups],
        now=now,
        no_groups_left=view.no_groups_left,
        notify_on=view.notify_rounds,
        window_opens=view.window_opens_at,
        account=texts.account_label(*view.account) if view.account else None,
    )
    history = view.history
    if history is not None and history.rounds:
        text += "\n" + texts.history_line(history.rounds, history.sent, history.failed, history.skipped,
                                           history.since)
    if view.pacing is not None:
        text += "\n" + pacing_texts.pacing_line(view.pacing)
        ends = pacing_texts.round_end_line(view.pacing.round_ends_at)
        if ends:
            text += "\n" + ends
    if view.global_paused:
        text += "\n" + texts.GLOBAL_PAUSE
    return text


async def _show(bot: Bot, event: Event, status: StatusService) -> None:
    view = await status.status(user_id_of(event))
    await show(bot, event, render(view, status.now()), kb.status(view.notify_rounds, view.no_groups_left))


@routes.callback_query(cb.St.on(cb.StAction.show))
@routes.callback_query(cb.St.on(cb.StAction.refresh))
@routes.message(Command("status"))
@flags.leave_input
@flags.account_of_button
async def show_status(
    event: Event,
    bot: Bot,
    status: StatusService,
) -> None:
    mark("U7.1")
    if isinstance(event, CallbackQuery):
        await event.answer()
    await _show(bot, event, status)


@routes.callback_query(cb.St.on(cb.StAction.notify))
async def toggle_notify(
    query: CallbackQuery, bot: Bot, status: StatusService, notifications: NotificationService
) -> None:
    enabled = await notifications.toggle_round_summaries(query.from_user.id)
    mark("U7.1", "notify_on" if enabled else "notify_off")
    await query.answer(texts.NOTIFY_ON if enabled else texts.NOTIFY_OFF)
    await _show(bot, query, status)
