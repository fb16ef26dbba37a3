"""The bot's webhook on the app role: ``POST /telegram/webhook``, the alternative to long polling.

Telegram sends each update with the secret token given to setWebhook in the
``X-Telegram-Bot-Api-Secret-Token`` header; it is compared in constant time with
``settings.app.webhook_secret`` and anything else gets 401 before the body is read. The update
goes through the bot's own dispatcher (``roles.bot.role.build_dispatcher``: the same routers,
middlewares and Redis FSM as polling), and the answer waits for the handler, so a replica that
dies mid-update leaves the update unacknowledged and Telegram delivers it again; the
dispatcher's update-id dedupe makes such a second delivery harmless. Every app replica serves
the webhook.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from aiogram import Bot, Dispatcher
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from roles.app.errors import error_response
from roles.bot.role import close_dispatcher

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024  # an update is a few KB; anything near this is not from Telegram


@dataclass(frozen=True)
class WebhookTarget:
    """What the webhook feeds: the bot's dispatcher and a Bot for its replies, and the secret."""

    bot: Bot
    dispatcher: Dispatcher
    secret: str


WEBHOOK = web.AppKey("webhook", WebhookTarget)


def secret_matches(presented: str, secret: str) -> bool:
    try:
        given = presented.encode()
    except UnicodeEncodeError:  # undecodable header bytes: never the secret
        return False
    return bool(secret) and hmac.compare_digest(given, secret.encode())


async def telegram_webhook(request: web.Request) -> web.Response:
    target = request.app[WEBHOOK]
    if not secret_matches(request.headers.get(SECRET_HEADER, ""), target.secret):
        log.warning("webhook call with a wrong or missing secret token refused")
        return error_response(401, "the secret token is not valid")
    if request.content_length is not None and request.content_length > MAX_UPDATE_BYTES:
        return error_response(413, "the update is too large")
    try:
        update = Update.model_validate(orjson.loads(await request.read()), context={"bot": target.bot})
    except (orjson.JSONDecodeError, ValidationError, TypeError):
        log.warning("webhook body is not a Telegram update")
        return error_response(400, "the body is not a Telegram update")
    result: TelegramMethod[Any] | None = await target.dispatcher.feed_webhook_update(target.bot, update)
    if isinstance(result, TelegramMethod):
        # no handler answers through the webhook reply today; if one does, send it as a normal call
        await target.dispatcher.silent_call_request(target.bot, result)
    return web.json_response({})


def setup_webhook(app: web.Application, target: WebhookTarget) -> None:
    """Mount the webhook route; the bot's session and a running announcement end with the app."""
    app[WEBHOOK] = target
    app.router.add_post(WEBHOOK_PATH, telegram_webhook)

    async def close(_: web.Application) -> None:
        await close_dispatcher(target.dispatcher)
        await target.bot.session.close()

    app.on_cleanup.append(close)
