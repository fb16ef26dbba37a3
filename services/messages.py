"""The messages to broadcast (U4, U9): validation, versions, rotation, albums, media in the database."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from accounts.gateway import MediaKind
from domain import rules
from domain.models import Clock, MessageRecord, utc_now
from domain.rotation import ROTATIONS
from storage.db import Connection, Database
from storage.repositories import campaigns, media, messages, rotation, users

log = logging.getLogger(__name__)

MEDIA_KINDS: tuple[MediaKind, ...] = ("photo", "video", "document", "animation")
ALBUM_KINDS: tuple[MediaKind, ...] = ("photo", "video")  # what Telegram mixes in one album
ALBUM_MIN = 2
ALBUM_MAX = 10


@dataclass(frozen=True)
class MessageDraft:
    """What the user sent in msg_wait (U4.3), kept in the bot's FSM until ``msg:save``.

    ``entities`` are Bot API MessageEntity dicts (offsets in UTF-16 units) and are kept as given.
    Media is stored first with ``MessageService.store_media`` and referenced by ``media_id``.
    """

    text: str = ""
    entities: list[dict[str, Any]] = field(default_factory=list)
    media_id: int | None = None
    album: list[int] = field(default_factory=list)  # U9.3: 2-10 media ids, the caption on the first

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "entities": list(self.entities), "media_id": self.media_id,
                "album": list(self.album)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MessageDraft:
        media = data.get("media_id")
        return cls(str(data.get("text", "")), list(data.get("entities") or []),
                   int(media) if media is not None else None, [int(m) for m in data.get("album") or []])


@dataclass(frozen=True)
class MessageProblem:
    """U4.6: "empty" or "too long: length/limit" (UTF-16 code units)."""

    kind: Literal["empty", "too_long"]
    length: int
    limit: int


class MessageInvalid(ValueError):
    """``save`` refused a draft; ``problem`` says why."""

    def __init__(self, problem: MessageProblem) -> None:
        self.problem = problem
        super().__init__(f"{problem.kind}: {problem.length}/{problem.limit}")


class MediaNotFound(LookupError):
    """The draft names a media id that does not exist."""


class MessageLimitReached(Exception):
    """U9.2: the user already has ``limit`` messages."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"at most {limit} messages")


@dataclass(frozen=True)
class DeleteResult:
    """U9.6: ``deleted`` (with how many are left, and whether the broadcast stopped for want of
    any) or ``not_found`` (no message n, e.g. a stale button)."""

    outcome: Literal["deleted", "not_found"]
    remaining: int = 0
    stopped: bool = False


@dataclass(frozen=True)
class SavedMessage:
    message_id: int
    version: int


@dataclass(frozen=True)
class MessageView:
    """U4.1 and the main card: the current version; ``preview`` is its first 50 characters."""

    message_id: int
    version: int
    text: str
    entities: list[dict[str, Any]]
    media_id: int | None
    media_kind: str | None
    media_filename: str
    media_bot_file_id: str
    preview: str
    created_at: datetime | None
    number: int = 1  # U9: its place in the rotation (message 1, 2, ...)
    album_kinds: tuple[str, ...] = ()  # U9.3: the kinds of an album's items
    album_file_ids: tuple[str, ...] = ()  # U9.3: their Bot API file ids (the preview's media group)

    @property
    def is_album(self) -> bool:
        return bool(self.album_kinds)


class MessageService:
    """U4: each save is a new version; a running broadcast picks it up from its next round."""

    def __init__(self, db: Database, now: Clock = utc_now, limit: int = 5) -> None:
        self.db = db
        self.now = now
        self.limit = limit  # MESSAGES_PER_ACCOUNT

    @staticmethod
    def validate(draft: MessageDraft) -> MessageProblem | None:
        """Empty text without media, text over 4096 or caption over 1024 UTF-16 code units."""
        found = rules.message_problem(draft.text, draft.media_id is not None or bool(draft.album))
        return None if found is None else MessageProblem(*found)

    async def store_media(
        self, data: bytes, kind: MediaKind, filename: str = "", mime_type: str = "application/octet-stream",
        bot_file_id: str = "", *, width: int = 0, height: int = 0, duration: float = 0.0,
        thumb: bytes | None = None,
    ) -> int:
        """Keep the media bytes with the Bot API's attributes (width, height, duration, thumbnail);
        the same bytes, kind and name reuse the stored row. Returns media_id."""
        if kind not in MEDIA_KINDS:
            raise ValueError(f"unsupported media kind {kind!r}")
        if not data:
            raise ValueError("empty media")
        digest = hashlib.sha256(data).hexdigest()
        async with self.db.transaction() as conn:
            found = await media.find(conn, digest, kind, filename)
            if found is not None:
                return found
            return await media.insert(conn, digest, kind, filename, mime_type or "application/octet-stream",
                                      bot_file_id, data, width=max(0, width), height=max(0, height),
                                      duration=max(0.0, duration), thumb=thumb or None)

    async def save(self, user_id: int, draft: MessageDraft, *, add: bool = False) -> SavedMessage:
        """U4.4: store a new version (previous + 1) that replaces message 1 (or is the first one);
        U9.2 ``add``: a new message after the others, refused at the limit (MessageLimitReached).
        Raises MessageInvalid / MediaNotFound."""
        problem = self.validate(draft)
        if problem is not None:
            raise MessageInvalid(problem)
        if draft.album and not ALBUM_MIN <= len(draft.album) <= ALBUM_MAX:
            raise ValueError(f"an album has {ALBUM_MIN}-{ALBUM_MAX} items")
        async with self.db.transaction() as conn:
            for media_id in [*([draft.media_id] if draft.media_id is not None else []), *draft.album]:
                if await media.get(conn, media_id) is None:
                    raise MediaNotFound(media_id)
            await users.lock(conn, user_id)
            replaced = None
            if add:
                if await messages.count_active(conn, user_id) >= self.limit:
                    raise MessageLimitReached(self.limit)
                position = await messages.next_position(conn, user_id)
            else:
                replaced = await messages.latest(conn, user_id)
                position = 1
                if replaced is not None:
                    position = await messages.deactivate(conn, replaced.message_id) or 1
            first = draft.album[0] if draft.album else draft.media_id
            message_id, version = await messages.insert_version(
                conn, user_id, draft.text, list(draft.entities), first, self.now(), position
            )
            if draft.album:
                await messages.insert_album(conn, message_id, list(draft.album))
        log.info("message saved user_id=%s version=%d position=%d album=%d", user_id, version, position,
                 len(draft.album))
        return SavedMessage(message_id, version)

    async def current(self, user_id: int) -> MessageView | None:
        """Message 1, or None when there is no message to broadcast."""
        found = await self.active(user_id)
        return found[0] if found else None

    async def active(self, user_id: int) -> list[MessageView]:
        """U9.1: the active messages in rotation order, numbered from 1."""
        async with self.db.connection() as conn:
            records = await messages.active(conn, user_id)
            albums = {r.message_id: await self._album(conn, r.message_id) for r in records}
        return [self._view(r, n, albums[r.message_id]) for n, r in enumerate(records, start=1)]

    async def get(self, user_id: int, number: int) -> MessageView | None:
        """Message ``number`` (1-based) of the user's rotation; None if there is none."""
        found = await self.active(user_id)
        return found[number - 1] if 1 <= number <= len(found) else None

    async def count(self, user_id: int) -> int:
        async with self.db.connection() as conn:
            return await messages.count_active(conn, user_id)

    async def delete(self, user_id: int, number: int) -> DeleteResult:
        """U9.6: message ``number`` leaves the rotation; a running broadcast goes on with the rest
        (its open round's unsent posts of that message take the next one), and stops when it was
        the last one."""
        async with self.db.transaction() as conn:
            await users.lock(conn, user_id)
            records = await messages.active(conn, user_id)
            if not 1 <= number <= len(records):
                return DeleteResult("not_found", len(records))
            gone = records[number - 1]
            await messages.deactivate(conn, gone.message_id)
            rest = [r for r in records if r.message_id != gone.message_id]
            stopped = False
            if rest:
                successor = rest[(number - 1) % len(rest)].message_id
                await rotation.repoint_open(conn, user_id, gone.message_id, successor)
            else:
                stopped = await campaigns.stop(conn, user_id, self.now()) is not None
        log.info("message deleted user_id=%s number=%d left=%d stopped=%s", user_id, number, len(rest),
                 stopped)
        return DeleteResult("deleted", len(rest), stopped)

    async def rotation(self, user_id: int) -> str:
        async with self.db.connection() as conn:
            return await campaigns.rotation(conn, user_id)

    async def set_rotation(self, user_id: int, mode: str) -> None:
        """U9.1: ``seq`` or ``rnd``; anything else is a ValueError (a forged callback)."""
        if mode not in ROTATIONS:
            raise ValueError(f"unknown rotation {mode!r}")
        async with self.db.transaction() as conn:
            await campaigns.set_rotation(conn, user_id, mode, self.now())

    @staticmethod
    async def _album(conn: Connection, message_id: int) -> list[tuple[str, str]]:
        items = []
        for media_id in await messages.album(conn, message_id):
            record = await media.get(conn, media_id)
            if record is not None:
                items.append((record.kind, record.bot_file_id))
        return items

    @staticmethod
    def _view(record: MessageRecord, number: int, album: list[tuple[str, str]]) -> MessageView:
        return MessageView(
            message_id=record.message_id,
            version=record.version,
            text=record.text,
            entities=record.entities,
            media_id=record.media_id,
            media_kind=record.media_kind,
            media_filename=record.media_filename,
            media_bot_file_id=record.media_bot_file_id,
            preview=rules.preview(record.text),
            created_at=record.created_at,
            number=number,
            album_kinds=tuple(k for k, _ in album),
            album_file_ids=tuple(f for _, f in album),
        )

    async def media_data(self, media_id: int) -> bytes | None:
        """The stored bytes of a media row (for a preview re-upload or a send)."""
        async with self.db.connection() as conn:
            return await media.data(conn, media_id)
