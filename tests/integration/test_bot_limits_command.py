"""/limits in the bot: admins read and change the send caps (audit-logged), others are refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from aiogram.filters import CommandObject

from config.settings import BotSettings, Settings
from roles.bot import pacing_texts, texts
from roles.bot.routers.limits import limits_command
from services.admin import AdminService
from services.send_limits import SendLimitsService
from storage.db import Database

ADMIN, OTHER = 7, 8


@dataclass
class FakeUser:
    id: int


@dataclass
class FakeMessage:
    from_user: FakeUser
    answers: list[str] = field(default_factory=list)

    async def answer(self, text: str, **_: Any) -> None:
        self.answers.append(text)


async def say(service: SendLimitsService, user: int, args: str) -> str:
    message = FakeMessage(FakeUser(user))
    await limits_command(cast(Any, message), CommandObject(command="limits", args=args or None), service)
    [answer] = message.answers
    return answer


async def test_admins_change_the_caps_others_are_refused_bad_input_changes_nothing(db: Database) -> None:
    settings = Settings(bot=BotSettings(admin_ids=(ADMIN,)))
    service = SendLimitsService(db, settings, AdminService(db, settings, cast(Any, None)))
    async with db.connection() as conn:
        await conn.execute("INSERT INTO users (user_id, access_status) VALUES (42, 'granted')")

    shown = await say(service, ADMIN, "")
    assert "Global: 10/minute, 200/hour, 1500/day" in shown
    saved = await say(service, ADMIN, "hour=120 day=0")
    assert saved.startswith(pacing_texts.LIMITS_SAVED) and "Global: 10/minute, 120/hour, no cap/day" in saved
    user = await say(service, ADMIN, "42 minute=3")
    assert "In force for this user: 3/minute, 120/hour, no cap/day" in user
    assert (await say(service, ADMIN, "42 minute=3")).startswith(pacing_texts.LIMITS_UNCHANGED)
    assert "follows the global caps" in await say(service, ADMIN, "42 reset")
    assert await say(service, ADMIN, "999 hour=1") == pacing_texts.LIMITS_NO_USER

    for bad in ("hour=ten", "week=3", "reset", "hour=100001"):
        assert (await say(service, ADMIN, bad)).startswith(pacing_texts.LIMITS_USAGE)
    assert await say(service, OTHER, "hour=1") == texts.NOT_ALLOWED

    async with db.connection() as conn:
        caps = await conn.fetchval("SELECT value::text FROM settings WHERE key = 'send_caps'")
        rows = await conn.fetch("SELECT actor_kind, actor_id, outcome FROM audit_log WHERE action = 'limits' "
                                "ORDER BY audit_id")
    assert orjson.loads(caps) == {"hour": 120, "day": 0}  # only the valid change was stored
    assert ("user", OTHER, "denied") in [tuple(r) for r in rows]
    assert [tuple(r) for r in rows].count(("admin", ADMIN, "ok")) == 4  # global, user, no change, reset
