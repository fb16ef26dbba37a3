"""The Bot API emulator: ``/bot<token>/<method>`` and ``/file/bot<token>/<path>``.

Requests come as JSON, form-urlencoded or multipart bodies (aiogram sends files
as ``attach://<field>`` references, Telegram also accepts the file in the field
itself); answers and errors are worded as Telegram words them. Every call is
recorded in the event log. With a webhook set, updates are POSTed to it with
the secret token header, and a method in the webhook's reply is executed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from sandbox import formatting
from sandbox.chats import (
    CAPTIONED,
    BotApiError,
    ChatMessage,
    Chats,
    ChatUser,
    FileRecord,
    Json,
    WebhookConfig,
    bad_request,
    image_size,
    make_png,
    now_ms,
)
from sandbox.events import EventLog

logger = logging.getLogger(__name__)

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)
BAD_MARKUP = "can't parse reply keyboard markup JSON object"
MEDIA_GROUP_MIN, MEDIA_GROUP_MAX = 2, 10  # items of one album (sendMediaGroup)
CHAT_ACTIONS = {
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
}
_INLINE_ACTIONS = (
    "callback_data", "url", "switch_inline_query", "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat", "copy_text", "web_app", "login_url", "pay", "callback_game",
)
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


class Params:
    """A method's parameters from any body type; typed getters parse form strings as Telegram does."""

    def __init__(self, values: dict[str, Any], uploads: dict[str, Upload] | None = None) -> None:
        self.values = values
        self.uploads = uploads or {}

    def has(self, name: str) -> bool:
        return self.values.get(name) is not None or name in self.uploads

    def string(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict | list):
            return orjson.dumps(value).decode()
        return str(value)

    def integer(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise bad_request(f"invalid {name} specified")
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            try:
                number = float(str(value))
            except ValueError:
                raise bad_request(f"invalid {name} specified") from None
            if not number.is_integer():
                raise bad_request(f"invalid {name} specified") from None
            return int(number)

    def chat_id(self, name: str = "chat_id") -> int | None:
        """Private chats are numeric; an @username names no chat the sandbox has."""
        if self.values.get(name) in (None, ""):
            return None
        try:
            return self.integer(name)
        except BotApiError:
            raise bad_request("chat not found") from None

    def flag(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes")
        return bool(value)

    def json(self, name: str, error: str) -> Any:
        value = self.values.get(name)
        if isinstance(value, str):
            if not value.strip():
                return None
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:
                raise bad_request(error) from None
        return value

    def file(self, name: str) -> Upload | str | None:
        if name in self.uploads:
            return self.uploads[name]
        value = self.string(name)
        if value and value.startswith("attach://"):
            upload = self.uploads.get(value[len("attach://"):])
            if upload is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
            return upload
        return value or None


async def read_multipart(
    reader: aiohttp.MultipartReader, values: dict[str, Any], uploads: dict[str, Upload]
) -> None:
    while True:
        part = await reader.next()
        if part is None:
            return
        if not isinstance(part, aiohttp.BodyPartReader) or not part.name:
            continue
        if part.filename is not None:
            data = bytes(await part.read(decode=False))
            ctype = part.headers.get(aiohttp.hdrs.CONTENT_TYPE, "application/octet-stream")
            uploads[part.name] = Upload(part.filename, ctype, data)
        else:
            values[part.name] = await part.text()


async def read_params(request: web.Request) -> Params:
    values: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.can_read_body:
        ctype = request.content_type
        if ctype == "application/json":
            try:
                body = orjson.loads(await request.read() or b"{}")
            except orjson.JSONDecodeError:
                raise bad_request("can't parse JSON request body") from None
            if isinstance(body, dict):
                values.update(body)
        elif ctype.startswith("multipart/"):
            await read_multipart(await request.multipart(), values, uploads)
        else:
            form = await request.post()
            values.update({key: value for key, value in form.items() if isinstance(value, str)})
    return Params(values, uploads)


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


def error_response(exc: BotApiError) -> web.Response:
    return json_response({"ok": False, "error_code": exc.code, "description": exc.description}, exc.code)


@dataclass
class Call:
    params: Params
    user_id: int | None = None


Handler = Callable[[Call], Awaitable[Any]]


class BotApi:
    """Bot API methods over the sandbox chats."""

    def __init__(self, chats: Chats, events: EventLog) -> None:
        self.chats = chats
        self.events = events
        self.webhook = WebhookSender(self)
        methods: dict[str, Handler] = {
            "getMe": self.get_me, "getUpdates": self.get_updates, "setWebhook": self.set_webhook,
            "deleteWebhook": self.delete_webhook, "getWebhookInfo": self.get_webhook_info,
            "setMyCommands": self.set_my_commands, "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands, "sendMessage": self.send_message,
            "editMessageText": self.edit_message_text, "editMessageCaption": self.edit_message_caption,
            "editMessageReplyMarkup": self.edit_message_reply_markup, "deleteMessage": self.delete_message,
            "deleteMessages": self.delete_messages, "answerCallbackQuery": self.answer_callback_query,
            "sendPhoto": self._sender("photo"), "sendVideo": self._sender("video"),
            "sendDocument": self._sender("document"), "sendAnimation": self._sender("animation"),
            "sendMediaGroup": self.send_media_group,
            "copyMessage": self.copy_message, "getFile": self.get_file,
            "sendChatAction": self.send_chat_action, "getChat": self.get_chat,
        }
        for name in ("setMyDescription", "setMyShortDescription", "setMyName", "setChatMenuButton", "logOut",
                     "close"):
            methods[name] = self.accept
        self._methods = {name.lower(): (name, handler) for name, handler in methods.items()}

    # ------------------------------------------------------------ transport

    async def handle(self, request: web.Request) -> web.Response:
        try:
            self.chats.authorize(request.match_info["token"])
            params = await read_params(request)
        except BotApiError as exc:
            return error_response(exc)
        status, payload = await self.execute(request.match_info["method"], params)
        return json_response(payload, status)

    async def handle_file(self, request: web.Request) -> web.Response:
        try:
            self.chats.authorize(request.match_info["token"])
        except BotApiError as exc:
            return error_response(exc)
        record = self.chats.files.by_path(request.match_info["path"])
        if record is None:
            return json_response({"ok": False, "error_code": 404, "description": "Not Found"}, 404)
        return web.Response(body=record.data, content_type=record.mime_type)

    async def execute(self, method: str, params: Params) -> tuple[int, Json]:
        """Run one method; returns the HTTP status and the Bot API answer, and records the call."""
        entry = self._methods.get(method.lower())
        if entry is None:
            self.events.record("bot", method, ok=False, error="Not Found")
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        name, handler = entry
        call = Call(params)
        try:
            call.user_id = params.chat_id()
        except BotApiError:
            call.user_id = None
        try:
            try:
                result = await handler(call)
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                # a malformed parameter the handlers did not foresee: a 400, not a crash
                logger.warning("sandbox %s failed on its parameters: %r", name, exc)
                raise bad_request(f"invalid parameters for {name}") from exc
        except BotApiError as exc:
            self.events.record("bot", name, ok=False, user_id=call.user_id, error=exc.description,
                               retry_after=exc.retry_after)
            payload: Json = {"ok": False, "error_code": exc.code, "description": exc.description}
            if exc.retry_after is not None:
                payload["parameters"] = {"retry_after": exc.retry_after}
            return exc.code, payload
        self.events.record("bot", name, ok=True, user_id=call.user_id)
        return 200, {"ok": True, "result": result}

    # ------------------------------------------------------------ bot and updates

    async def get_me(self, call: Call) -> Json:
        return {**self.chats.bot.user(), "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False, "can_connect_to_business": False, "has_main_web_app": False}

    async def accept(self, call: Call) -> bool:
        return True

    async def get_updates(self, call: Call) -> list[Json]:
        p = call.params
        limit = min(max(p.integer("limit") or 100, 1), 100)
        timeout = min(max(p.integer("timeout") or 0, 0), 50)
        allowed = p.json("allowed_updates", "can't parse allowed updates")
        if self.chats.webhook is None:
            self.chats.set_allowed_updates(allowed if isinstance(allowed, list) else None)
        return await self.chats.get_updates(p.integer("offset") or 0, limit, timeout)

    async def set_webhook(self, call: Call) -> bool:
        p = call.params
        url = (p.string("url") or "").strip()
        if not url:
            return await self.delete_webhook(call)
        if not url.startswith(("http://", "https://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.string("secret_token")
        if secret is not None and not _SECRET_RE.fullmatch(secret):
            raise bad_request("bad webhook: secret token contains unallowed characters")
        allowed = p.json("allowed_updates", "can't parse allowed updates")
        self.chats.set_allowed_updates(allowed if isinstance(allowed, list) else None)
        if p.flag("drop_pending_updates"):
            self.chats.drop_pending()
        self.chats.webhook = WebhookConfig(url, secret, min(max(p.integer("max_connections") or 40, 1), 100))
        self.chats.terminate_polls()
        self.webhook.restart()
        return True

    async def delete_webhook(self, call: Call) -> bool:
        if call.params.flag("drop_pending_updates"):
            self.chats.drop_pending()
        self.chats.webhook = None
        self.webhook.stop()
        return True

    async def get_webhook_info(self, call: Call) -> Json:
        hook = self.chats.webhook
        info: Json = {"url": hook.url if hook else "", "has_custom_certificate": False,
                      "pending_update_count": self.chats.pending_update_count}
        if hook is not None:
            info.update(max_connections=hook.max_connections, ip_address="127.0.0.1")
            if hook.last_error_date is not None:
                info.update(last_error_date=hook.last_error_date, last_error_message=hook.last_error_message)
            if self.chats.allowed_updates is not None:
                info["allowed_updates"] = self.chats.allowed_updates
        return info

    # ------------------------------------------------------------ commands

    @staticmethod
    def _commands_key(p: Params) -> str:
        scope = p.json("scope", "can't parse BotCommandScope JSON object")
        if not isinstance(scope, dict):
            scope = {}
        return f"{scope.get('type', 'default')}:{scope.get('chat_id', '')}:{p.string('language_code') or ''}"

    async def set_my_commands(self, call: Call) -> bool:
        p = call.params
        commands = p.json("commands", "can't parse commands JSON object")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        cleaned = []
        for item in commands:
            if not isinstance(item, dict) or not _COMMAND_RE.fullmatch(str(item.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            description = str(item.get("description", ""))
            if not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": item["command"], "description": description})
        self.chats.commands[self._commands_key(p)] = cleaned
        return True

    async def get_my_commands(self, call: Call) -> list[Json]:
        return self.chats.commands.get(self._commands_key(call.params), [])

    async def delete_my_commands(self, call: Call) -> bool:
        self.chats.commands.pop(self._commands_key(call.params), None)
        return True

    # ------------------------------------------------------------ content helpers

    @staticmethod
    def _formatted(p: Params, field: str, entities_field: str, *, limit: int, too_long: str,
                   empty: str | None) -> tuple[str, list[Json]]:
        raw = p.string(field) or ""
        parse_mode = p.string("parse_mode") or None
        raw_entities = p.json(entities_field, "can't parse entities JSON object")
        try:
            text, entities = formatting.parse(raw, parse_mode, raw_entities)
        except formatting.UnsupportedParseMode:
            raise bad_request("unsupported parse_mode") from None
        except formatting.EntityParseError as exc:
            raise bad_request(f"can't parse entities: {exc}") from None
        if not text and empty is not None:
            raise bad_request(empty)
        if formatting.utf16_len(text) > limit:  # Telegram counts UTF-16 code units, as entities do
            raise bad_request(too_long)
        return text, entities

    def _text(self, p: Params) -> tuple[str, list[Json]]:
        return self._formatted(p, "text", "entities", limit=formatting.TEXT_LIMIT,
                               too_long="message is too long", empty="message text is empty")

    def _caption(self, p: Params) -> tuple[str, list[Json]]:
        return self._formatted(p, "caption", "caption_entities", limit=formatting.CAPTION_LIMIT,
                               too_long="message caption is too long", empty=None)

    @staticmethod
    def _markup(p: Params, *, inline_only: bool = False) -> Json | None:
        raw = p.json("reply_markup", BAD_MARKUP)
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise bad_request(BAD_MARKUP)
        markup = {key: value for key, value in raw.items() if value is not None}
        if "inline_keyboard" in markup:
            markup["inline_keyboard"] = [_inline_row(row) for row in _rows(markup["inline_keyboard"])]
            return markup
        if inline_only:
            raise bad_request("inline keyboard expected")
        if "keyboard" in markup:
            markup["keyboard"] = [[_reply_button(b) for b in row] for row in _rows(markup["keyboard"])]
            return markup
        if markup.get("remove_keyboard") or markup.get("force_reply"):
            return markup
        raise bad_request(BAD_MARKUP)

    def _reply_to(self, p: Params, user: ChatUser) -> int | None:
        parameters = p.json("reply_parameters", "can't parse reply parameters JSON object")
        if isinstance(parameters, dict):
            message_id = parameters.get("message_id")
            allow = bool(parameters.get("allow_sending_without_reply"))
        else:
            message_id, allow = p.integer("reply_to_message_id"), p.flag("allow_sending_without_reply")
        if message_id is None:
            return None
        if self.chats.message(user.user_id, int(message_id)) is None:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return int(message_id)

    def _media_content(self, kind: str, value: Upload | str, p: Params) -> Any:
        files = self.chats.files
        if isinstance(value, Upload):
            record = self._store_upload(kind, value, p)
        elif value.startswith(("http://", "https://")):
            record = self._placeholder(kind, url=value)
        else:
            found = files.get(value)
            if found is None:
                record = self._placeholder(kind, file_id=value)  # a file_id from an earlier sandbox run
            else:
                if found.kind != kind and not {found.kind, kind} <= {"document", "animation", "video"}:
                    have, want = found.kind.capitalize(), kind.capitalize()
                    raise bad_request(f"can't use file of type {have} as {want}")
                record = found
        return record.telegram(kind)

    def _store_upload(self, kind: str, upload: Upload, p: Params) -> FileRecord:
        ctype = upload.content_type
        if ctype in ("", "application/octet-stream"):
            ctype = mimetypes.guess_type(upload.filename)[0] or ctype or "application/octet-stream"
        width, height = p.integer("width") or 0, p.integer("height") or 0
        if kind == "photo":
            width, height = image_size(upload.data) or (320, 320)
            ctype = "image/png" if upload.data.startswith(b"\x89PNG") else "image/jpeg"
        return self.chats.files.add(kind, upload.data, mime_type=ctype, file_name=upload.filename,
                                    width=width, height=height, duration=p.integer("duration") or 0)

    def _placeholder(self, kind: str, *, url: str | None = None, file_id: str | None = None) -> FileRecord:
        if kind == "photo":
            return self.chats.files.add("photo", make_png(320, 320, (200, 200, 200)), mime_type="image/png",
                                        width=320, height=320, url=url, file_id=file_id)
        mime = {"video": "video/mp4", "animation": "video/mp4"}.get(kind, "application/octet-stream")
        name = (url or "").rsplit("/", 1)[-1] or f"{kind}.bin"
        data = f"sandbox placeholder for {url or file_id}".encode()
        return self.chats.files.add(kind, data, mime_type=mime, file_name=name, url=url, file_id=file_id)

    # ------------------------------------------------------------ sending

    async def send_message(self, call: Call) -> Json:
        p = call.params
        user = self.chats.chat_for_bot(p.chat_id())
        text, entities = self._text(p)
        markup = self._markup(p)
        reply_to = self._reply_to(p, user)
        self.chats.check_rate(user.user_id)
        message = self.chats.bot_send(user, text=text, entities=entities, reply_markup=markup,
                                      reply_to=reply_to)
        return self.chats.telegram_message(message)

    def _sender(self, kind: str) -> Handler:
        async def send_media(call: Call) -> Json:
            p = call.params
            user = self.chats.chat_for_bot(p.chat_id())
            value = p.file(kind)
            if value is None:
                raise bad_request(f"there is no {kind} in the request")
            caption, entities = self._caption(p)
            markup = self._markup(p)
            reply_to = self._reply_to(p, user)
            self.chats.check_rate(user.user_id)
            content = self._media_content(kind, value, p)
            message = self.chats.bot_send(user, kind=kind, text=caption, entities=entities, content=content,
                                          reply_markup=markup, reply_to=reply_to)
            return self.chats.telegram_message(message)

        return send_media

    async def send_media_group(self, call: Call) -> list[Json]:
        """2-10 photos/videos (or documents only, or audio only) shown as one album: every message
        carries the same media_group_id; captions are per item (a client shows the first one under
        the album). Media groups take no reply_markup."""
        p = call.params
        user = self.chats.chat_for_bot(p.chat_id())
        items = p.json("media", "can't parse media JSON object")
        if items is None:
            raise bad_request('parameter "media" is required')
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise bad_request("can't parse media JSON object")
        if not MEDIA_GROUP_MIN <= len(items) <= MEDIA_GROUP_MAX:
            raise bad_request("wrong number of media specified: send 2-10 media")
        kinds = {str(item.get("type", "")) for item in items}
        if not (kinds <= {"photo", "video"} or kinds == {"document"} or kinds == {"audio"}):
            raise bad_request("media of this type can't be sent together in an album")
        reply_to = self._reply_to(p, user)
        prepared = []
        for item in items:
            kind = str(item["type"])
            value = Params(item, p.uploads).file("media")  # a file_id, a URL or attach://<part>
            if value is None:
                raise bad_request("media to send are not specified")
            spec = Params(item, p.uploads)
            caption, entities = self._caption(spec)
            prepared.append((kind, self._media_content(kind, value, spec), caption, entities))
        self.chats.check_rate(user.user_id)
        group = self.chats.new_media_group_id()
        sent = [self.chats.bot_send(user, kind=kind, text=caption, entities=entities, content=content,
                                    reply_to=reply_to, media_group_id=group)
                for kind, content, caption, entities in prepared]
        return [self.chats.telegram_message(message) for message in sent]

    async def copy_message(self, call: Call) -> Json:
        p = call.params
        user = self.chats.chat_for_bot(p.chat_id())
        source_chat, source_id = p.chat_id("from_chat_id"), p.integer("message_id")
        source = None
        if source_chat is not None and source_id is not None:
            source = self.chats.message(source_chat, source_id)
        if source is None:
            raise bad_request("message to copy not found")
        text, entities = source.text, source.entities
        if p.has("caption") and source.kind != "text":
            text, entities = self._caption(p)
        markup = self._markup(p) if p.has("reply_markup") else source.inline_markup
        reply_to = self._reply_to(p, user)
        self.chats.check_rate(user.user_id)
        copy = self.chats.bot_send(user, kind=source.kind, text=text, entities=list(entities),
                                   content=orjson.loads(orjson.dumps(source.content)), reply_markup=markup,
                                   reply_to=reply_to)
        return {"message_id": copy.message_id}

    async def send_chat_action(self, call: Call) -> bool:
        p = call.params
        user = self.chats.chat_for_bot(p.chat_id())
        action = p.string("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        user.chat_action, user.chat_action_ms = action, now_ms()
        self.chats.changes.notify()
        return True

    # ------------------------------------------------------------ edits and deletes

    def _editable(self, p: Params) -> tuple[ChatUser, ChatMessage]:
        if p.has("inline_message_id") and not p.has("chat_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        user = self.chats.chat_for_bot(p.chat_id())
        message_id = p.integer("message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        message = self.chats.message(user.user_id, message_id)
        if message is None:
            raise bad_request("message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return user, message

    @staticmethod
    def _new_markup(message: ChatMessage, markup: Json | None) -> Json | None:
        # an edit without reply_markup removes an inline keyboard; a reply keyboard stays as it was
        if markup is None and message.reply_markup is not None and message.inline_markup is None:
            return message.reply_markup
        return markup

    def _apply_edit(self, message: ChatMessage, text: str, entities: list[Json], markup: Json | None) -> Json:
        if text == message.text and entities == message.entities and markup == message.reply_markup:
            raise bad_request(NOT_MODIFIED)
        message.text, message.entities, message.reply_markup = text, entities, markup
        message.edit_date = int(time.time())
        self.chats.changes.notify()
        return self.chats.telegram_message(message)

    async def edit_message_text(self, call: Call) -> Json:
        p = call.params
        _, message = self._editable(p)
        if message.kind != "text":
            raise bad_request("there is no text in the message to edit")
        text, entities = self._text(p)
        markup = self._new_markup(message, self._markup(p, inline_only=True))
        return self._apply_edit(message, text, entities, markup)

    async def edit_message_caption(self, call: Call) -> Json:
        p = call.params
        _, message = self._editable(p)
        if message.kind not in CAPTIONED:
            raise bad_request("there is no caption in the message to edit")
        text, entities = self._caption(p)
        markup = self._new_markup(message, self._markup(p, inline_only=True))
        return self._apply_edit(message, text, entities, markup)

    async def edit_message_reply_markup(self, call: Call) -> Json:
        p = call.params
        _, message = self._editable(p)
        markup = self._new_markup(message, self._markup(p, inline_only=True))
        return self._apply_edit(message, message.text, message.entities, markup)

    async def delete_message(self, call: Call) -> bool:
        p = call.params
        user = self.chats.chat_for_bot(p.chat_id(), writing=False)
        message_id = p.integer("message_id")
        message = self.chats.message(user.user_id, message_id) if message_id is not None else None
        if message is None:
            raise bad_request("message to delete not found")
        message.deleted = True
        self.chats.changes.notify()
        return True

    async def delete_messages(self, call: Call) -> bool:
        p = call.params
        user = self.chats.chat_for_bot(p.chat_id(), writing=False)
        ids = p.json("message_ids", "can't parse message identifiers JSON object")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message identifiers are not specified")
        for message_id in ids:
            message = self.chats.message(user.user_id, int(message_id))
            if message is not None:
                message.deleted = True
        self.chats.changes.notify()
        return True

    # ------------------------------------------------------------ callbacks, files, chats

    async def answer_callback_query(self, call: Call) -> bool:
        p = call.params
        query_id = p.string("callback_query_id")
        if not query_id:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        text = p.string("text")
        if text is not None and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        answer: Json = {"show_alert": p.flag("show_alert")}
        if text:
            answer["text"] = text
        if p.string("url"):
            answer["url"] = p.string("url")
        pending = self.chats.answer_callback(query_id, answer)
        call.user_id = pending.user_id
        return True

    async def get_file(self, call: Call) -> Json:
        file_id = call.params.string("file_id")
        record = self.chats.files.get(file_id) if file_id else None
        if record is None:
            raise bad_request("invalid file_id")
        return record.as_file()

    async def get_chat(self, call: Call) -> Json:
        user = self.chats.chat_for_bot(call.params.chat_id(), writing=False)
        gifts = dict.fromkeys(("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription",
                               "gifts_from_channels"), False)
        return {**user.telegram_chat(), "accent_color_id": 0, "max_reaction_count": 11,
                "accepted_gift_types": gifts}

    async def close(self) -> None:
        await self.webhook.close()


def _rows(raw: Any) -> list[list[Any]]:
    if not isinstance(raw, list) or not all(isinstance(row, list) for row in raw):
        raise bad_request(BAD_MARKUP)
    return raw


def _inline_row(row: list[Any]) -> list[Json]:
    buttons = []
    for raw in row:
        if not isinstance(raw, dict) or not isinstance(raw.get("text"), str):
            raise bad_request(BAD_MARKUP)
        button = {key: value for key, value in raw.items() if value is not None}
        if not any(action in button for action in _INLINE_ACTIONS):
            raise bad_request("text buttons are unallowed in the inline keyboard")
        if "callback_data" in button:
            data = button["callback_data"]
            if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
                raise bad_request("BUTTON_DATA_INVALID")
        if "url" in button and not str(button["url"]).startswith(("http://", "https://", "tg://")):
            raise bad_request("BUTTON_URL_INVALID")
        buttons.append(button)
    return buttons


def _reply_button(raw: Any) -> Json:
    if isinstance(raw, str):
        return {"text": raw}
    if not isinstance(raw, dict) or not isinstance(raw.get("text"), str):
        raise bad_request(BAD_MARKUP)
    return {key: value for key, value in raw.items() if value is not None}


class WebhookSender:
    """Delivers pending updates to the webhook one at a time, in order, retrying with backoff."""

    def __init__(self, api: BotApi) -> None:
        self.api = api
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def restart(self) -> None:
        self.stop()
        hook = self.api.chats.webhook
        if hook is not None:
            self._task = asyncio.create_task(self._run(hook), name="sandbox-webhook")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self, hook: WebhookConfig) -> None:
        chats = self.api.chats
        backoff = 0.1
        while True:
            await chats.wait_for_update(None)
            first = chats.first_update()
            if first is None:
                continue
            update_id, update = first
            if await self._deliver(hook, update):
                chats.confirm(update_id + 1)
                backoff = 0.1
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _deliver(self, hook: WebhookConfig, update: Json) -> bool:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        try:
            async with self._session.post(hook.url, data=orjson.dumps(update), headers=headers) as resp:
                if not 200 <= resp.status < 300:
                    return self._failed(hook, f"Wrong response from the webhook: {resp.status} {resp.reason}")
                try:
                    await self._run_reply(resp)
                except (ValueError, aiohttp.ClientError) as exc:
                    # the update was delivered; Telegram ignores a reply it cannot read
                    logger.warning("unreadable webhook reply ignored: %s", exc)
                return True
        except TimeoutError:
            return self._failed(hook, "Read timeout expired")
        except aiohttp.ClientError as exc:
            logger.debug("webhook delivery failed: %s", exc)
            return self._failed(hook, "Connection refused")

    @staticmethod
    def _failed(hook: WebhookConfig, message: str) -> bool:
        hook.last_error_date, hook.last_error_message = int(time.time()), message
        return False

    async def _run_reply(self, resp: aiohttp.ClientResponse) -> None:
        """A webhook may answer with a method call, which Telegram then executes."""
        values: dict[str, Any] = {}
        uploads: dict[str, Upload] = {}
        if resp.content_type == "application/json":
            body = await resp.read()
            data = orjson.loads(body) if body.strip() else None
            if isinstance(data, dict):
                values.update(data)
        elif resp.content_type.startswith("multipart/"):
            await read_multipart(aiohttp.MultipartReader(resp.headers, resp.content), values, uploads)
        method = values.pop("method", None)
        if isinstance(method, str) and method:
            await self.api.execute(method, Params(values, uploads))


def setup_botapi_routes(app: web.Application, chats: Chats, events: EventLog) -> BotApi:
    api = BotApi(chats, events)
    app.router.add_route("GET", "/bot{token}/{method}", api.handle)
    app.router.add_route("POST", "/bot{token}/{method}", api.handle)
    app.router.add_get("/file/bot{token}/{path:.+}", api.handle_file)

    async def on_shutdown(_app: web.Application) -> None:
        chats.close()
        await api.close()

    app.on_shutdown.append(on_shutdown)
    return api
