"""Admin entry point (A rows come later): ``/admin`` and ``adm:menu`` for admins only.

Everyone else gets "not allowed" and nothing changes.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.filters import Command
from aiogram.types import CallbackQuery

from roles.bot import callbacks as cb
from roles.bot import keyboards as kb
from roles.bot import texts
from roles.bot.middlewares import mark
from roles.bot.routers import Routes
from roles.bot.ui import Event, show, user_id_of
from services.access import AccessService
from services.admin import Actor, AdminService, NotAllowed

log = logging.getLogger(__name__)
routes = Routes("admin")


@routes.message(Command("admin"))
@routes.callback_query(cb.AdmMenu.filter())
async def admin_menu(event: Event, bot: Bot, access: AccessService) -> None:
    uid = user_id_of(event)
    if not access.is_admin(uid):
        mark("A1", "denied")
        log.warning("admin menu refused for user=%s", uid)
        if isinstance(event, CallbackQuery):
            await event.answer(texts.NOT_ALLOWED, show_alert=True)
        else:
            await event.answer(texts.NOT_ALLOWED, reply_markup=kb.main_only())
        return
    mark("A1", "pending")
    if isinstance(event, CallbackQuery):
        await event.answer()
    await show(bot, event, texts.ADMIN_MENU_SOON, kb.main_only())


@routes.callback_query(cb.AdmApprove.filter())
@routes.callback_query(cb.AdmReject.filter())
async def admin_decision(
    query: CallbackQuery, callback_data: cb.AdmApprove | cb.AdmReject, bot: Bot, admin: AdminService
) -> None:
    """A3 from the access-request card (U1.2); the requester is told through the outbox."""
    actor = Actor.admin(query.from_user.id)
    approve = isinstance(callback_data, cb.AdmApprove)
    try:
        if approve:
            result = await admin.approve(actor, callback_data.uid)
        else:
            result = await admin.reject(actor, callback_data.uid)
    except NotAllowed:
        mark("A3", "denied")
        await query.answer(texts.NOT_ALLOWED, show_alert=True)
        return
    mark("A3", result.outcome)
    if result.outcome == "not_found":
        await query.answer(texts.NOT_YOURS)
        return
    await query.answer()
    await show(bot, query, texts.admin_decided(callback_data.uid, approve, result.outcome == "no_change"))
