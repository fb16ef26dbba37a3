"""U12: the settings menu (from the main menu) and the bot's language, ``set:lang:<code>``."""

from __future__ import annotations

from aiogram import Bot, flags
from aiogram.types import CallbackQuery

from roles.bot import callbacks as cb
from roles.bot import i18n, texts
from roles.bot import keyboards as kb
from roles.bot.middlewares import mark
from roles.bot.routers import Routes
from roles.bot.ui import show
from services.access import AccessService

routes = Routes("settings")


def _menu_text() -> str:
    return texts.settings_menu(i18n.LANGUAGE_NAMES[i18n.current()])


@routes.callback_query(cb.Set.on(cb.SetAction.menu))
@flags.leave_input("answer")
async def settings_menu(query: CallbackQuery, bot: Bot) -> None:
    mark("U12.2", "menu")
    await show(bot, query, _menu_text(), kb.settings_menu(i18n.current()))


@routes.callback_query(cb.Set.on(cb.SetAction.lang))
@flags.leave_input
async def set_language(query: CallbackQuery, callback_data: cb.Set, bot: Bot, access: AccessService) -> None:
    code = cb.need(callback_data.code)
    if code not in i18n.LANGUAGES:
        # bad input: a clear answer, nothing changed (a forged or outdated button)
        mark("U12.2", "unknown_language")
        await query.answer(texts.LANGUAGE_UNKNOWN, show_alert=True)
        return
    await access.set_language(query.from_user.id, code)
    mark("U12.2")
    i18n.set_locale(code)  # this very reply already speaks the new language
    await query.answer(texts.LANGUAGE_SET)
    await show(bot, query, f"{texts.LANGUAGE_SET}\n\n{_menu_text()}", kb.settings_menu(code))
