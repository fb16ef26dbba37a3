"""The message to broadcast (U4): validation, versions, media stored in the database."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from accounts.gateway import MediaKind
from domain import rules
from domain.models import Clock, utc_now
from storage.db import Database
from storage.repositories import media, messages, users

log = logging.getLogger(__name__)

MEDIA_KINDS: tuple[MediaKind, ...] = ("photo", "video", "document", "animation")


@dataclass(frozen=True)
class MessageDraft:
    """What the user sent in msg_wait (U4.3), kept in the bot's FSM until ``msg:save``.

    ``entities`` are Bot API MessageEntity dicts (offsets in UTF-16 units) and are kept as given.
    Media is stored first with ``MessageService.store_media`` and referenced by ``media_id``.
    """

    text: str = ""
    entities: list[dict[str, Any]] = field(default_factory=list)
    media_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "entities": list(self.entities), "media_id": self.media_id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MessageDraft:
        media = data.get("media_id")
        return cls(str(data.get("text", "")), list(data.get("entities") or []),
                   int(media) if media is not None else None)


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


class MessageService:
    """U4: each save is a new version; a running broadcast picks it up from its next round."""

    def __init__(self, db: Database, now: Clock = utc_now) -> None:
        self.db = db
        self.now = now

    @staticmethod
    def validate(draft: MessageDraft) -> MessageProblem | None:
        """Empty text without media, text over 4096 or caption over 1024 UTF-16 code units."""
        found = rules.message_problem(draft.text, draft.media_id is not None)
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

    async def save(self, user_id: int, draft: MessageDraft) -> SavedMessage:
        """U4.4: store a new version (previous + 1). Raises MessageInvalid / MediaNotFound."""
        problem = self.validate(draft)
        if problem is not None:
            raise MessageInvalid(problem)
        async with self.db.transaction() as conn:
            if draft.media_id is not None and await media.get(conn, draft.media_id) is None:
                raise MediaNotFound(draft.media_id)
            await users.lock(conn, user_id)
            message_id, version = await messages.insert_version(
                conn, user_id, draft.text, list(draft.entities), draft.media_id, self.now()
            )
        log.info("message saved user_id=%s version=%d", user_id, version)
        return SavedMessage(message_id, version)

    async def current(self, user_id: int) -> MessageView | None:
        """The latest version, or None when no message was ever saved."""
        async with self.db.connection() as conn:
            record = await messages.latest(conn, user_id)
        if record is None:
            return None
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
        )

    async def media_data(self, media_id: int) -> bytes | None:
        """The stored bytes of a media row (for a preview re-upload or a send)."""
        async with self.db.connection() as conn:
            return await media.data(conn, media_id)
