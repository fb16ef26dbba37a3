"""Media sent once per account: upload the bytes the first time, then send the file by reference.

Telegram keeps a sent photo/document: a later ``messages.sendMedia`` may name it with
``inputMediaPhoto``/``inputMediaDocument`` (id, access hash, file reference) instead of uploading
the bytes again. A file reference expires after a while (FILE_REFERENCE_EXPIRED); as Telegram's
docs on file references say, the fix is to refetch the message the file was seen in (its
"origin") and use the fresh reference. If that refetch fails too, the bytes are uploaded again.

``SentFiles`` is per process and keyed by (account, media key): a round of 50 groups uploads a
15 MB video once instead of 50 times.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from telethon import functions, types

from accounts.gateway import AccountRef, GroupRef, Media

logger = logging.getLogger(__name__)

SENT_FILES_MAX = 4096


@dataclass(frozen=True)
class SentFile:
    """A photo or document the account has sent, and where it was seen (to refresh its reference)."""

    kind: str  # photo | document
    id: int
    access_hash: int
    file_reference: bytes
    group: GroupRef
    message_id: int

    def input_media(self) -> Any:
        if self.kind == "photo":
            return types.InputMediaPhoto(types.InputPhoto(self.id, self.access_hash, self.file_reference))
        return types.InputMediaDocument(types.InputDocument(self.id, self.access_hash, self.file_reference))


def sent_file(message: Any, group: GroupRef) -> SentFile | None:
    """The photo/document of a sent (or refetched) message, if it has one."""
    media = getattr(message, "media", None)
    photo = getattr(media, "photo", None)
    if isinstance(photo, types.Photo):
        return SentFile("photo", photo.id, photo.access_hash, bytes(photo.file_reference), group,
                        int(message.id))
    document = getattr(media, "document", None)
    if isinstance(document, types.Document):
        return SentFile("document", document.id, document.access_hash, bytes(document.file_reference), group,
                        int(message.id))
    return None


def _key(account: AccountRef, media: Media) -> tuple[int, int, str]:
    # The session too: an account connected again (maybe another Telegram user) starts afresh.
    return account.account_id, hash(account.session), media.key


class SentFiles:
    """What each account (session) has sent already, by media key (LRU, bounded)."""

    def __init__(self, max_items: int = SENT_FILES_MAX) -> None:
        self.max_items = max_items
        self._items: OrderedDict[tuple[int, int, str], SentFile] = OrderedDict()

    def get(self, account: AccountRef, media: Media) -> SentFile | None:
        if not media.key:
            return None
        found = self._items.get(_key(account, media))
        if found is not None:
            self._items.move_to_end(_key(account, media))
        return found

    def put(self, account: AccountRef, media: Media, file: SentFile | None) -> None:
        if not media.key or file is None:
            return
        self._items[_key(account, media)] = file
        self._items.move_to_end(_key(account, media))
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def drop(self, account: AccountRef, media: Media) -> None:
        self._items.pop(_key(account, media), None)


async def refetch(client: Any, file: SentFile) -> SentFile | None:
    """The file with a fresh reference, from its origin message (None if that is gone)."""
    message_id = [types.InputMessageID(file.message_id)]
    group = file.group
    try:
        if group.kind == "group":
            result = await client(functions.messages.GetMessagesRequest(id=message_id))
        else:
            channel = types.InputChannel(group.peer_id, group.access_hash)
            result = await client(functions.channels.GetMessagesRequest(channel=channel, id=message_id))
    except Exception as exc:  # the upload fallback covers it
        logger.info("refetch of message %s for a file reference failed: %s", file.message_id,
                    type(exc).__name__)
        return None
    for message in getattr(result, "messages", []):
        fresh = sent_file(message, group)
        if fresh is not None and fresh.id == file.id:
            return fresh
    return None


def input_media(media: Media, file: Any, thumb: Any = None) -> Any:
    """Uploaded ``file`` as the media Telegram should show, with the Bot API's attributes."""
    if media.kind == "photo":
        return types.InputMediaUploadedPhoto(file=file)
    name = types.DocumentAttributeFilename(media.filename)
    if media.kind == "document":
        return types.InputMediaUploadedDocument(file=file, mime_type=media.mime_type, attributes=[name],
                                                thumb=thumb, force_file=True)
    # 1x1 only when the Bot API said nothing (the fallback Telethon uses when it can't read a file)
    video = types.DocumentAttributeVideo(duration=float(media.duration), w=media.width or 1,
                                         h=media.height or 1, supports_streaming=True)
    mime = media.mime_type if media.mime_type.startswith(("video/", "image/gif")) else "video/mp4"
    attributes = [video, name] if media.kind == "video" else [types.DocumentAttributeAnimated(), video, name]
    return types.InputMediaUploadedDocument(file=file, mime_type=mime, attributes=attributes, thumb=thumb)
