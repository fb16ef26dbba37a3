"""The control bot's Bot API session: aiogram's aiohttp session that keeps its response models.

aiogram validates every Bot API answer with the generic model ``Response[method.__returning__]``.
pydantic (2.13, installed) keeps the classes it builds for a generic's parameters only in a weak
cache, so a garbage collection drops them and the following call builds the model again: 3-4 ms of
CPU for an answer that takes 0.1 ms to check, ~20 ms for the first ``Message``. On a busy bot that
happens between most calls (profile of ``bench.bot_latency``: 62 rebuilds in 326 calls, the
largest single cost of an update). Holding each model once keeps it in that cache for good.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from aiogram import methods
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.methods.base import Response

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import TelegramMethod
    from aiogram.methods.base import TelegramType

# what every update of the control bot calls: built when the first session is made, not on an update
WARM = (methods.GetUpdates, methods.SendMessage, methods.EditMessageText, methods.AnswerCallbackQuery,
        methods.EditMessageReplyMarkup, methods.DeleteMessage, methods.SendChatAction)


class BotSession(AiohttpSession):
    """``AiohttpSession`` whose ``Response[...]`` models live as long as the process."""

    _models: ClassVar[dict[Any, Any]] = {}  # returning type -> Response[returning], shared by all sessions

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for method in WARM:
            self.keep(method.__returning__)

    @classmethod
    def keep(cls, returning: Any) -> None:
        if returning not in cls._models:
            cls._models[returning] = Response[returning]

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        self.keep(method.__returning__)
        return super().check_response(bot, method, status_code, content)
