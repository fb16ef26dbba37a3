"""The bot's session keeps aiogram's response models through garbage collections (no rebuild per call)."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import orjson
from aiogram import Bot
from aiogram.methods import EditMessageText, SendMessage, SendPoll
from aiogram.methods.base import Response
from aiogram.types import Message

from roles.bot.session import BotSession

MESSAGE = {"message_id": 7, "date": 0, "chat": {"id": 1, "type": "private"}, "text": "hi"}
GENERIC: Any = Response


def _answer(session: BotSession, bot: Bot) -> Any:
    return session.check_response(bot, SendPoll(chat_id=1, question="q", options=["a", "b"]), 200,
                                  orjson.dumps({"ok": True, "result": MESSAGE}).decode())


async def test_a_response_model_survives_a_collection_and_is_not_built_again() -> None:
    session = BotSession()
    bot = Bot("1:test", session=session)
    try:
        answer = _answer(session, bot)
        assert isinstance(answer.result, Message) and answer.result.message_id == 7
        model = weakref.ref(type(answer))
        del answer
        gc.collect()
        # pydantic's cache of generic models is weak: without the session's reference it is gone now
        assert model() is not None and GENERIC[SendPoll.__returning__] is model()
        assert type(_answer(session, bot)) is model()
    finally:
        await session.close()


def test_without_the_session_pydantic_forgets_the_model() -> None:
    # the cause, shown on a parametrisation nobody keeps: a collection drops it
    model = weakref.ref(GENERIC[tuple[Message, int]])
    gc.collect()
    assert model() is None


def test_the_models_of_every_update_are_built_with_the_first_session() -> None:
    BotSession()
    gc.collect()
    for method in (SendMessage, EditMessageText):
        assert GENERIC[method.__returning__] is BotSession._models[method.__returning__]
