"""Whatever no flow handled: unknown text gets a hint, stale or forged buttons a notice and a fresh menu.

Included last, so it only sees what every other router let through.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.types import CallbackQuery, Message

from roles.bot import keyboards as kb
from roles.bot import texts
from roles.bot.middlewares import mark
from roles.bot.routers import Routes
from roles.bot.ui import main_menu
from services.status import StatusService

log = logging.getLogger(__name__)
routes = Routes("fallback")


@routes.message()
async def unknown_message(message: Message) -> None:
    mark("conv.unknown_text")
    await message.answer(texts.UNKNOWN_TEXT, reply_markup=kb.main_only())


@routes.callback_query()
async def stale_callback(query: CallbackQuery, bot: Bot, status: StatusService) -> None:
    # never echo the data back: it may be forged, and it is not ours to log in full
    mark("conv.stale_callback", "stale")
    log.info("stale or unknown callback from user=%s (%d bytes)", query.from_user.id, len(query.data or ""))
    await query.answer(texts.STALE)
    await main_menu(bot, query, status)
