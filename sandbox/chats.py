"""The bot's side of the sandbox: users, private chats, messages, updates, callback queries, files.

One bot world: every well-formed token talks to the same chats, as one bot would.
Messages are shaped like Bot API objects so aiogram parses them; the control API
reads the same records as "the chat as the user sees it".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import math
import random
import re
import secrets
import struct
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from config.settings import SandboxSettings
from sandbox import formatting
from sandbox.changes import Changes

Entity = dict[str, Any]
Json = dict[str, Any]
# what a chat user sent, as the world watches it pass: (chat user id, text, phone of a shared contact)
UserMessageHook = Callable[[int, str | None, str | None], None]

CAPTIONED = ("photo", "video", "document", "animation", "voice")
FILE_KINDS = ("photo", "video", "document", "animation", "sticker", "voice")
# Telegram's default when allowed_updates was never given: everything but these
NOT_BY_DEFAULT = {"chat_member", "message_reaction", "message_reaction_count"}
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
WEBHOOK_CONFLICT = ("Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first")
TOKEN_RE = re.compile(r"(\d{1,20}):([A-Za-z0-9_-]{1,100})")

# Telegram's published limits: about 1 message per second per chat (short bursts pass), 30 per second overall
CHAT_RATE, CHAT_BURST = 1.0, 3.0
GLOBAL_RATE, GLOBAL_BURST = 30.0, 30.0


class BotApiError(Exception):
    """A Bot API failure, worded as Telegram words it."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


def bad_request(text: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {text}")


class ControlError(Exception):
    """A malformed control API request (HTTP status + message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def now_ms() -> float:
    return round(time.time() * 1000, 3)


# ---------------------------------------------------------------- files

_FILE_PREFIX = {"photo": "AgACAgIAAxkBAA", "video": "BAACAgIAAxkBAA", "document": "BQACAgIAAxkBAA",
                "animation": "CgACAgIAAxkBAA", "sticker": "CAACAgIAAxkBAA", "voice": "AwACAgIAAxkBAA"}
_FOLDER = {"photo": "photos", "video": "videos", "document": "documents", "animation": "animations",
           "sticker": "stickers", "voice": "voice"}


@dataclass
class FileRecord:
    file_id: str
    file_unique_id: str
    kind: str
    data: bytes
    file_path: str
    mime_type: str
    file_name: str | None = None
    width: int = 0
    height: int = 0
    duration: int = 0
    url: str | None = None  # set when the bot sent a URL (the sandbox stores a placeholder)
    thumbnail: FileRecord | None = None  # videos, animations and documents made by the control API

    def base(self) -> Json:
        return {"file_id": self.file_id, "file_unique_id": self.file_unique_id, "file_size": len(self.data)}

    def photo_size(self) -> Json:
        return {**self.base(), "width": self.width or 320, "height": self.height or 320}

    def telegram(self, kind: str | None = None) -> Any:
        """The Bot API object for this file as ``kind`` (a list of sizes for photos)."""
        kind = kind or self.kind
        if kind == "photo":
            return [self.photo_size()]
        obj = self.base()
        if kind in ("video", "animation"):
            obj.update(width=self.width or 320, height=self.height or 240, duration=self.duration or 1)
        if kind == "sticker":
            obj.update(type="regular", width=512, height=512, is_animated=False, is_video=False, emoji="👍")
        if kind == "voice":
            obj["duration"] = self.duration or 1
        if kind != "sticker":
            obj["mime_type"] = self.mime_type
        if self.file_name and kind in ("document", "animation", "video"):
            obj["file_name"] = self.file_name
        if self.thumbnail is not None and kind in ("document", "animation", "video"):
            obj["thumbnail"] = self.thumbnail.photo_size()
        return obj

    def as_file(self) -> Json:
        return {**self.base(), "file_path": self.file_path}


class FileStore:
    def __init__(self) -> None:
        self._by_id: dict[str, FileRecord] = {}
        self._by_path: dict[str, FileRecord] = {}
        self._seq = itertools.count(1)

    def add(
        self, kind: str, data: bytes, *, mime_type: str, file_name: str | None = None, width: int = 0,
        height: int = 0, duration: int = 0, url: str | None = None, file_id: str | None = None,
    ) -> FileRecord:
        seq = next(self._seq)
        ext = _extension(file_name, mime_type)
        record = FileRecord(
            file_id=file_id or _FILE_PREFIX.get(kind, "BQACAgIAAxkBAA") + secrets.token_urlsafe(36),
            file_unique_id="AgAD" + secrets.token_urlsafe(9),
            kind=kind, data=data, file_path=f"{_FOLDER.get(kind, 'documents')}/file_{seq}{ext}",
            mime_type=mime_type, file_name=file_name, width=width, height=height, duration=duration, url=url,
        )
        self._by_id[record.file_id] = record
        self._by_path[record.file_path] = record
        return record

    def get(self, file_id: str) -> FileRecord | None:
        return self._by_id.get(file_id)

    def by_path(self, path: str) -> FileRecord | None:
        return self._by_path.get(path)

    def clear(self) -> None:
        self._by_id.clear()
        self._by_path.clear()


def _extension(file_name: str | None, mime_type: str) -> str:
    if file_name and "." in file_name:
        return "." + file_name.rsplit(".", 1)[1][:8]
    return {"image/png": ".png", "image/jpeg": ".jpg", "video/mp4": ".mp4", "audio/ogg": ".oga",
            "image/webp": ".webp", "image/gif": ".gif"}.get(mime_type, "")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
UPLOAD_LIMIT = 10 * 1024 * 1024  # Telegram's photo limit


def _decode_upload(raw: object) -> bytes:
    try:
        data = base64.b64decode(str(raw), validate=True)
    except binascii.Error as exc:
        raise ControlError(400, "photo.data_b64 is not base64") from exc
    if not data or len(data) > UPLOAD_LIMIT:
        raise ControlError(400, "photo.data_b64 must hold 1 byte to 10 MB")
    if image_size(data) is None:
        raise ControlError(400, "photo.data_b64 is not a PNG or JPEG image")
    return data


def make_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG (a real image the bot can download and decode)."""
    row = b"\x00" + bytes(rgb) * width
    raw = row * height

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG or JPEG, read from its header."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            length = struct.unpack(">H", data[i + 2:i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5:i + 9])
                return int(width), int(height)
            i += 2 + length
    return None


# ---------------------------------------------------------------- users and messages

@dataclass
class BotIdentity:
    id: int
    first_name: str = "Sandbox Bot"
    username: str = "sandbox_bot"

    def user(self) -> Json:
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}


@dataclass
class ChatUser:
    user_id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str = "en"
    blocked: bool = False
    keyboard: Json | None = None  # the reply keyboard the user sees now
    chat_action: str | None = None
    chat_action_ms: float | None = None
    # the clock of the person's device (an IANA name): the web page shows the chat's times on it.
    # Telegram never tells a bot this; the bot asks for it (U10.2) and the page lets you compare.
    time_zone: str = "UTC"

    def telegram_user(self) -> Json:
        user: Json = {"id": self.user_id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        user["language_code"] = self.language_code
        return user

    def telegram_chat(self) -> Json:
        chat: Json = {"id": self.user_id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            chat["last_name"] = self.last_name
        if self.username:
            chat["username"] = self.username
        return chat

    def view(self) -> Json:
        return {"user_id": self.user_id, "first_name": self.first_name, "username": self.username,
                "last_name": self.last_name, "blocked": self.blocked, "keyboard": self.keyboard,
                "chat_action": self.chat_action, "chat_action_ms": self.chat_action_ms,
                "time_zone": self.time_zone}


@dataclass
class ChatMessage:
    message_id: int
    chat_id: int
    from_bot: bool
    # text | photo | video | document | animation | sticker | voice | contact | location | poll
    kind: str = "text"
    text: str = ""  # the caption for media
    entities: list[Entity] = field(default_factory=list)
    content: Any = None  # the Bot API field for non-text kinds
    reply_markup: Json | None = None  # as sent: inline keyboard, reply keyboard, remove or force reply
    media_group_id: str | None = None
    reply_to: int | None = None
    date: int = field(default_factory=lambda: int(time.time()))
    ts_ms: float = field(default_factory=now_ms)
    edit_date: int | None = None
    deleted: bool = False

    @property
    def inline_markup(self) -> Json | None:
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            return self.reply_markup
        return None

    def telegram(self, sender: Json, chat: Json, reply_to: Json | None = None) -> Json:
        message: Json = {"message_id": self.message_id, "from": sender, "chat": chat, "date": self.date}
        if self.edit_date is not None:
            message["edit_date"] = self.edit_date
        if self.media_group_id:
            message["media_group_id"] = self.media_group_id
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        if self.kind == "text":
            message["text"] = self.text
            if self.entities:
                message["entities"] = self.entities
        else:
            message[self.kind] = self.content
            if self.kind == "animation":
                message["document"] = self.content  # as Telegram does, for old clients
            if self.text:
                message["caption"] = self.text
                if self.entities:
                    message["caption_entities"] = self.entities
        if self.inline_markup:
            message["reply_markup"] = self.inline_markup
        return message

    def view(self) -> Json:
        return {
            "message_id": self.message_id, "from": "bot" if self.from_bot else "user", "text": self.text,
            "entities": self.entities, "media": self.media_view(), "reply_markup": self.reply_markup,
            "edited": self.edit_date is not None, "deleted": self.deleted, "date": self.date,
            "ts_ms": self.ts_ms, "media_group_id": self.media_group_id, "reply_to": self.reply_to,
        }

    def media_view(self) -> Json | None:
        if self.kind == "text":
            return None
        content = self.content
        if self.kind == "photo":
            content = content[-1]
        view: Json = {"kind": self.kind}
        if isinstance(content, dict):
            view.update(content)
        if "file_id" in view:
            view["file_url"] = f"/sandbox/api/files/{view['file_id']}"
        return view


@dataclass
class PendingCallback:
    query_id: str
    user_id: int
    message_id: int
    data: str
    created: float
    answer: asyncio.Future[Json]


@dataclass
class WebhookConfig:
    url: str
    secret_token: str | None = None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None


class _Bucket:
    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate, self.capacity, self.tokens, self.updated = rate, capacity, capacity, now

    def wait_time(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class Chats:
    """All chat state of the sandbox bot; the Bot API and the control API both act on it."""

    def __init__(self, settings: SandboxSettings, on_user_message: UserMessageHook | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        # the rate buckets and the callback-answer window read this clock; tests inject one
        self.clock = clock
        self.changes = Changes()  # users and messages as the control API shows them
        self.rate_limits = settings.rate_limits
        self.callback_ttl = 15.0  # Telegram stops accepting an answer after about 15 s
        self._on_user_message = on_user_message
        self.files = FileStore()
        self.bot = BotIdentity(id=0)
        self._tokens: dict[int, str] = {}
        self.commands: dict[str, list[Json]] = {}
        self.webhook: WebhookConfig | None = None
        self._update_seq = random.randint(100_000_000, 800_000_000)
        self._allowed: set[str] | None = None
        self._poll: asyncio.Future[bool] | None = None
        self._waiters: set[asyncio.Future[None]] = set()
        self._media_groups = itertools.count(13_000_000_000_000_000)
        self._query_seq = itertools.count(random.randint(10**17, 9 * 10**17))
        self._callbacks: dict[str, PendingCallback] = {}
        self.reset()

    def reset(self) -> None:
        """Forget users, chats, updates, callbacks, files and tokens; a webhook stays set.

        Update ids keep increasing, so a bot that keeps polling across a reset loses nothing.
        """
        self._tokens.clear()
        self.users: dict[int, ChatUser] = {}
        self._messages: dict[int, dict[int, ChatMessage]] = {}
        self._next_id: dict[int, int] = {}
        self._updates: deque[tuple[int, Json]] = deque()
        for pending in self._callbacks.values():
            if not pending.answer.done():
                pending.answer.cancel()  # the control API call waiting for it answers answered: false
        self._callbacks = {}
        self.files.clear()
        self._chat_buckets: dict[int, _Bucket] = {}
        self._global_bucket = _Bucket(GLOBAL_RATE, GLOBAL_BURST, self.clock())
        self.changes.notify()

    # ------------------------------------------------------------ the bot

    def authorize(self, token: str) -> BotIdentity:
        """The bot behind ``token``; the first secret seen for a bot id is the only valid one."""
        match = TOKEN_RE.fullmatch(token)
        if match is None:
            raise BotApiError(404, "Not Found")
        bot_id, secret = int(match.group(1)), match.group(2)
        known = self._tokens.setdefault(bot_id, secret)
        if known != secret:
            raise BotApiError(401, "Unauthorized")
        if self.bot.id != bot_id:
            self.bot = BotIdentity(id=bot_id)
        return self.bot

    # ------------------------------------------------------------ users

    def add_user(self, user_id: int, first_name: str, username: str | None = None,
                 last_name: str | None = None, language_code: str = "en",
                 time_zone: str | None = None) -> ChatUser:
        user = self.users.get(user_id)
        if user is None:
            user = ChatUser(user_id, first_name, username, last_name, language_code)
            self.users[user_id] = user
            self._messages[user_id] = {}
            self._next_id[user_id] = 1
        else:
            user.first_name, user.username, user.last_name = first_name, username, last_name
            user.language_code = language_code
        if time_zone is not None:
            user.time_zone = time_zone
        self.changes.notify()
        return user

    def user(self, user_id: int) -> ChatUser:
        user = self.users.get(user_id)
        if user is None:
            raise ControlError(404, f"unknown user {user_id}")
        return user

    def set_blocked(self, user_id: int, blocked: bool) -> None:
        user = self.user(user_id)
        if user.blocked == blocked:
            return
        user.blocked = blocked
        self.changes.notify()
        old, new = ("member", "kicked") if blocked else ("kicked", "member")
        self.push_update("my_chat_member", {
            "chat": user.telegram_chat(), "from": user.telegram_user(), "date": int(time.time()),
            "old_chat_member": self._member(old), "new_chat_member": self._member(new),
        })

    def _member(self, status: str) -> Json:
        member: Json = {"status": status, "user": self.bot.user()}
        if status == "kicked":
            member["until_date"] = 0
        return member

    def chat_view(self, user_id: int) -> list[Json]:
        self.user(user_id)
        return [message.view() for message in self._messages[user_id].values()]

    # ------------------------------------------------------------ messages

    def chat_for_bot(self, chat_id: int | None, *, writing: bool = True) -> ChatUser:
        """The chat a bot call addresses: unknown -> chat not found, blocked -> 403 (when writing)."""
        if chat_id is None:
            raise bad_request("chat_id is empty")
        user = self.users.get(chat_id)
        if user is None:
            raise bad_request("chat not found")
        if writing and user.blocked:
            raise BotApiError(403, "Forbidden: bot was blocked by the user")
        return user

    def message(self, chat_id: int, message_id: int) -> ChatMessage | None:
        message = self._messages.get(chat_id, {}).get(message_id)
        return None if message is None or message.deleted else message

    def check_rate(self, chat_id: int) -> None:
        """Telegram's flood control for sends: 429 with retry_after past the per-chat or global rate."""
        if not self.rate_limits:
            return
        now = self.clock()
        bucket = self._chat_buckets.get(chat_id)
        if bucket is None:
            bucket = self._chat_buckets[chat_id] = _Bucket(CHAT_RATE, CHAT_BURST, now)
        wait = max(bucket.wait_time(now), self._global_bucket.wait_time(now))
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise BotApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        bucket.tokens -= 1
        self._global_bucket.tokens -= 1

    def _store(self, message: ChatMessage) -> ChatMessage:
        self._messages[message.chat_id][message.message_id] = message
        self.changes.notify()
        return message

    def new_media_group_id(self) -> str:
        return str(next(self._media_groups))

    def _new_id(self, chat_id: int) -> int:
        message_id = self._next_id[chat_id]
        self._next_id[chat_id] = message_id + 1
        return message_id

    def bot_send(
        self, user: ChatUser, *, kind: str = "text", text: str = "", entities: list[Entity] | None = None,
        content: Any = None, reply_markup: Json | None = None, reply_to: int | None = None,
        media_group_id: str | None = None,
    ) -> ChatMessage:
        message = self._store(ChatMessage(
            self._new_id(user.user_id), user.user_id, True, kind, text, entities or [], content, reply_markup,
            reply_to=reply_to, media_group_id=media_group_id,
        ))
        if reply_markup is not None:
            if "keyboard" in reply_markup:
                user.keyboard = reply_markup
            elif reply_markup.get("remove_keyboard"):
                user.keyboard = None
        user.chat_action = None
        return message

    def telegram_message(self, message: ChatMessage, *, with_reply: bool = True) -> Json:
        user = self.users[message.chat_id]
        sender = self.bot.user() if message.from_bot else user.telegram_user()
        reply = None
        if with_reply and message.reply_to is not None:
            original = self.message(message.chat_id, message.reply_to)
            if original is not None:
                reply = self.telegram_message(original, with_reply=False)
        return message.telegram(sender, user.telegram_chat(), reply)

    # ------------------------------------------------------------ user side (control API)

    def user_sends(self, user_id: int, body: Json) -> list[int]:
        """A message from the user to the bot; the bot receives each as an update."""
        user = self.user(user_id)
        if user.blocked:
            # a user writing to a bot they blocked restarts it first, as the "Restart" button does
            self.set_blocked(user_id, False)
        drafts = _drafts_from_body(body, self.files, user)
        group_id = self.new_media_group_id() if "media_group" in body else None
        ids = []
        for draft in drafts:
            message = self._store(ChatMessage(self._new_id(user_id), user_id, False, media_group_id=group_id,
                                              **draft))
            ids.append(message.message_id)
            if self._on_user_message is not None:
                contact = message.content.get("phone_number") if message.kind == "contact" else None
                if message.text or contact:
                    self._on_user_message(user_id, message.text or None, contact)
            self.push_update("message", self.telegram_message(message))
        if user.keyboard and user.keyboard.get("one_time_keyboard"):
            user.keyboard = None
        return ids

    async def press(self, user_id: int, message_id: int, data: str, wait: float = 5.0) -> Json:
        """The user presses an inline button; waits up to ``wait`` seconds for the bot's answer."""
        user = self.user(user_id)
        message = self.message(user_id, message_id)
        if message is None or not message.from_bot:
            raise ControlError(404, f"no bot message {message_id} in the chat of {user_id}")
        self._prune_callbacks()
        query_id = str(next(self._query_seq))
        future: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        created = self.clock()
        self._callbacks[query_id] = PendingCallback(query_id, user_id, message_id, data, created, future)
        self.push_update("callback_query", {
            "id": query_id, "from": user.telegram_user(), "message": self.telegram_message(message),
            "chat_instance": str(user_id * 7919 + 104729), "data": data,
        })
        try:
            answer = await asyncio.wait_for(asyncio.shield(future), wait)
        except TimeoutError:
            return {"answered": False}
        except asyncio.CancelledError:
            if future.cancelled():  # a reset dropped the query
                return {"answered": False}
            raise
        return {"answered": True, **answer}

    def answer_callback(self, query_id: str, answer: Json) -> PendingCallback:
        pending = self._callbacks.get(query_id)
        if (pending is None or pending.answer.done()
                or self.clock() - pending.created > self.callback_ttl):
            raise bad_request(QUERY_TOO_OLD)
        pending.answer.set_result(answer)
        return pending

    def _prune_callbacks(self) -> None:
        limit = self.clock() - max(self.callback_ttl, 60.0)
        for query_id in [q for q, p in self._callbacks.items() if p.created < limit]:
            self._callbacks.pop(query_id)

    # ------------------------------------------------------------ updates

    def set_allowed_updates(self, allowed: list[str] | None) -> None:
        if allowed is not None:
            self._allowed = set(allowed) if allowed else None

    @property
    def allowed_updates(self) -> list[str] | None:
        return sorted(self._allowed) if self._allowed is not None else None

    def push_update(self, kind: str, payload: Json) -> int | None:
        # Telegram does not create updates of a type the bot did not ask for
        if self._allowed is not None and kind not in self._allowed:
            return None
        if self._allowed is None and kind in NOT_BY_DEFAULT:
            return None
        self._update_seq += 1
        self._updates.append((self._update_seq, {"update_id": self._update_seq, kind: payload}))
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
        return self._update_seq

    @property
    def pending_update_count(self) -> int:
        return len(self._updates)

    def confirm(self, offset: int) -> None:
        """``offset`` confirms every update below it; a negative one keeps only the last ``-offset``."""
        if offset > 0:
            while self._updates and self._updates[0][0] < offset:
                self._updates.popleft()
        elif offset < 0:
            while len(self._updates) > -offset:
                self._updates.popleft()

    def drop_pending(self) -> None:
        self._updates.clear()

    async def wait_for_update(self, wait: float | None) -> bool:
        """Wait until an update is pending; False on timeout."""
        if self._updates:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter, wait)
        except TimeoutError:
            return False
        finally:
            self._waiters.discard(waiter)
        return bool(self._updates)

    def terminate_polls(self, *, shutdown: bool = False) -> None:
        """End a waiting getUpdates: with 409 (another poll, a webhook) or empty (shutdown)."""
        if self._poll is not None and not self._poll.done():
            self._poll.set_result(not shutdown)

    def close(self) -> None:
        self.terminate_polls(shutdown=True)
        for pending in self._callbacks.values():
            if not pending.answer.done():
                pending.answer.cancel()

    async def get_updates(self, offset: int, limit: int, wait: float) -> list[Json]:
        """Long polling; a newer call terminates a waiting one with 409, as on Telegram."""
        if self.webhook is not None:
            raise BotApiError(409, WEBHOOK_CONFLICT)
        self.terminate_polls()
        loop = asyncio.get_running_loop()
        me: asyncio.Future[bool] = loop.create_future()
        self._poll = me
        try:
            self.confirm(offset)
            deadline = loop.time() + wait
            while not self._updates and (remaining := deadline - loop.time()) > 0:
                waiter = asyncio.ensure_future(self.wait_for_update(remaining))
                await asyncio.wait({waiter, me}, return_when=asyncio.FIRST_COMPLETED)
                if me.done():
                    waiter.cancel()
                    if self.webhook is not None:
                        raise BotApiError(409, WEBHOOK_CONFLICT)
                    if me.result():
                        raise BotApiError(409, POLL_CONFLICT)
                    return []
                if not waiter.result():
                    break
            return [update for _, update in itertools.islice(self._updates, limit)]
        finally:
            if self._poll is me:
                self._poll = None

    def first_update(self) -> tuple[int, Json] | None:
        return self._updates[0] if self._updates else None


# ---------------------------------------------------------------- control API message bodies

_MEDIA_DEFAULTS: dict[str, tuple[str, str]] = {
    "video": ("video/mp4", "video.mp4"), "document": ("application/pdf", "document.pdf"),
    "animation": ("video/mp4", "animation.mp4"), "voice": ("audio/ogg", "voice.oga"),
    "sticker": ("image/webp", "sticker.webp"),
}
_VIDEO_BYTES = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64


def _drafts_from_body(body: Json, files: FileStore, sender: ChatUser) -> list[Json]:
    if not isinstance(body, dict):
        raise ControlError(400, "a message body must be an object")
    if "media_group" in body:
        items = body["media_group"]
        if not isinstance(items, list) or not 2 <= len(items) <= 10:
            raise ControlError(400, "media_group needs 2 to 10 items")
        for item in items:
            if not isinstance(item, dict) or not set(item) & {"photo", "video", "document", "animation"}:
                raise ControlError(400, "media_group items are photos, videos, documents or animations")
        return [_draft(item, files, sender) for item in items]
    return [_draft(body, files, sender)]


def _draft(body: Any, files: FileStore, sender: ChatUser) -> Json:
    if not isinstance(body, dict):
        raise ControlError(400, "a message body must be an object")
    if "text" in body:
        text = str(body["text"])
        raw_entities = body.get("entities")
        try:
            entities = formatting.normalize_entities(raw_entities, text) if raw_entities else []
        except formatting.EntityParseError as exc:
            raise ControlError(400, str(exc)) from exc
        return {"text": text, "entities": formatting.detect_entities(text, entities)}
    if "contact" in body:
        contact = body["contact"] or {}
        phone = contact.get("phone") or contact.get("phone_number")
        if not phone:
            raise ControlError(400, "contact.phone is required")
        return {"kind": "contact", "content": _contact(contact, str(phone), sender)}
    if "location" in body:
        location = body["location"] or {}
        return {"kind": "location", "content": {"latitude": float(location.get("latitude", 55.75)),
                                                "longitude": float(location.get("longitude", 37.62))}}
    if "poll" in body:
        return {"kind": "poll", "content": _poll(body["poll"] or {})}
    for kind in ("photo", "video", "document", "animation", "sticker", "voice"):
        if kind in body:
            return _media_draft(kind, body[kind] or {}, files)
    raise ControlError(400, "send text, contact, photo, video, document, animation, sticker, voice, "
                            "location, poll or media_group")


def _contact(contact: Json, phone: str, sender: ChatUser) -> Json:
    # "share my number" sends the sender's own contact; a forwarded one carries someone else's id
    user_id = contact.get("user_id", sender.user_id)
    own = user_id == sender.user_id
    first_name = contact.get("first_name") or (sender.first_name if own else "Contact")
    result: Json = {"phone_number": phone, "first_name": str(first_name)}
    last_name = contact.get("last_name") or (sender.last_name if own else None)
    if last_name:
        result["last_name"] = str(last_name)
    if user_id is not None:
        result["user_id"] = int(user_id)
    return result


def _poll(poll: Json) -> Json:
    options = [
        {"persistent_id": str(i), "text": str(text), "voter_count": 0}
        for i, text in enumerate(poll.get("options") or ["Yes", "No"])
    ]
    return {
        "id": str(random.randint(10**17, 10**18)), "question": str(poll.get("question") or "Poll?"),
        "options": options, "total_voter_count": 0, "is_closed": False,
        "is_anonymous": bool(poll.get("is_anonymous", True)), "type": str(poll.get("type") or "regular"),
        "allows_multiple_answers": False, "allows_revoting": False, "members_only": False,
    }


def _media_draft(kind: str, spec: Json, files: FileStore) -> Json:
    caption = str(spec.get("caption") or "")
    raw_entities = spec.get("entities") or spec.get("caption_entities")
    try:
        entities = formatting.normalize_entities(raw_entities, caption) if raw_entities else []
    except formatting.EntityParseError as exc:
        raise ControlError(400, str(exc)) from exc
    entities = formatting.detect_entities(caption, entities)
    if kind in ("sticker",) and caption:
        raise ControlError(400, "stickers have no caption")
    content: Any
    if kind == "photo" and spec.get("data_b64"):
        # a photo the person chose on the page: its own bytes, so what is posted is what they sent
        data = _decode_upload(spec["data_b64"])
        width, height = image_size(data) or (0, 0)
        mime = "image/png" if data.startswith(PNG_SIGNATURE) else "image/jpeg"
        record = files.add("photo", data, mime_type=mime, width=width, height=height)
        content = [record.photo_size()]
    elif kind == "photo":
        shade = random.randint(40, 215)
        rgb = (shade, 255 - shade, (shade * 3) % 256)
        small = files.add("photo", make_png(90, 90, rgb), mime_type="image/png", width=90, height=90)
        big = files.add("photo", make_png(320, 320, rgb), mime_type="image/png", width=320, height=320)
        content = [small.photo_size(), big.photo_size()]
    else:
        mime, name = _MEDIA_DEFAULTS[kind]
        data = _VIDEO_BYTES if mime == "video/mp4" else f"sandbox {kind}".encode() + b"\x00" * 32
        size = int(spec.get("size") or 0)  # a bigger file on demand (benchmarks, upload tests)
        if size > len(data):
            data += secrets.token_bytes(size - len(data))
        width, height = int(spec.get("width") or 320), int(spec.get("height") or 240)
        record = files.add(kind, data, mime_type=str(spec.get("mime_type") or mime),
                           file_name=str(spec.get("file_name") or name), width=width, height=height,
                           duration=int(spec.get("duration") or 3))
        if kind in ("video", "animation", "document"):
            # Telegram makes a thumbnail (at most 320 px) for videos, GIFs and many documents
            thumb_height = max(1, 90 * height // max(1, width))
            record.thumbnail = files.add("photo", make_png(90, thumb_height, (90, 90, 90)),
                                         mime_type="image/png", width=90, height=thumb_height)
        content = record.telegram()
    return {"kind": kind, "content": content, "text": caption, "entities": entities}
