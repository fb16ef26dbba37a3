"""Admin: send caps per Telegram account (issue 17), with ``/limits`` in the bot.

``/limits`` shows the global caps; ``/limits 123`` one user's; ``/limits [123] hour=100 day=800``
changes them; ``/limits 123 reset`` drops a user's caps. Not an admin: the service writes a denied
audit row and the user is told so. Bad input changes nothing and says how to write it.
"""

from __future__ import annotations

from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from roles.bot import keyboards as kb
from roles.bot import pacing_texts, texts
from roles.bot.middlewares import mark
from roles.bot.routers import Routes
from services.admin import Actor, AdminResult, NotAllowed
from services.send_limits import SendLimitsService

routes = Routes("limits")
ROW = "A8"  # not a flows.md row yet: the admin's send caps


class Usage(ValueError):
    """The command's arguments cannot be read."""


def parse_args(raw: str) -> tuple[int | None, dict[str, int] | None]:
    """``[user id] [name=N ...] | [user id] reset`` -> (user id, caps to set; None = reset, {} = show)."""
    words = raw.split()
    user_id: int | None = None
    if words and words[0].isdigit():
        user_id = int(words.pop(0))
    if words == ["reset"]:
        if user_id is None:
            raise Usage("reset needs a user id")
        return user_id, None
    changes: dict[str, int] = {}
    for word in words:
        name, sep, value = word.partition("=")
        if not sep or not value.isdigit() or name in changes:
            raise Usage(word)
        changes[name] = int(value)
    return user_id, changes


@routes.message(Command("limits"))
async def limits_command(message: Message, command: CommandObject, limits: SendLimitsService) -> None:
    actor = Actor.admin(message.from_user.id if message.from_user else 0)
    try:
        user_id, changes = parse_args(command.args or "")
    except Usage:
        mark(ROW, "bad_input")
        await message.answer(pacing_texts.LIMITS_USAGE, reply_markup=kb.main_only())
        return
    try:
        result: AdminResult | None = None
        if changes is None and user_id is not None:
            result = await limits.reset_user(actor, user_id)
        elif changes:
            if user_id is None:
                result = await limits.set_global(actor, changes)
            else:
                result = await limits.set_user(actor, user_id, changes)
        view = await limits.show(actor, user_id)
    except NotAllowed:
        mark(ROW, "denied")
        await message.answer(texts.NOT_ALLOWED, reply_markup=kb.main_only())
        return
    except ValueError as exc:
        mark(ROW, "bad_input")
        text = f"{pacing_texts.LIMITS_USAGE}\n{texts.esc(str(exc))}"
        await message.answer(text, reply_markup=kb.main_only())
        return
    if view is None or (result is not None and result.outcome == "not_found"):
        mark(ROW, "not_found")
        await message.answer(pacing_texts.LIMITS_NO_USER, reply_markup=kb.main_only())
        return
    head = ""
    if result is not None:
        head = (pacing_texts.LIMITS_SAVED if result.ok else pacing_texts.LIMITS_UNCHANGED) + "\n\n"
    mark(ROW, result.outcome if result is not None else "show")
    await message.answer(head + pacing_texts.limits_card(view), reply_markup=kb.main_only())
