"""Posting the broadcast message (text with entities, media with a caption, or an album)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from telethon import errors, functions, types, utils

from accounts.gateway import AccountRef, GroupRef, OutgoingMessage
from accounts.telethon.client import GatewayBase
from accounts.telethon.errors import MIGRATION_SUSPECTS, ChatMigratedError, mapped
from accounts.telethon.media import SentFiles, input_media, refetch, sent_file
from domain.errors import MessageRejected

logger = logging.getLogger(__name__)

# Bot API entity type -> Telethon class taking only (offset, length).
_PLAIN_ENTITIES: dict[str, Any] = {
    "bold": types.MessageEntityBold,
    "italic": types.MessageEntityItalic,
    "underline": types.MessageEntityUnderline,
    "strikethrough": types.MessageEntityStrike,
    "spoiler": types.MessageEntitySpoiler,
    "code": types.MessageEntityCode,
    "url": types.MessageEntityUrl,
    "mention": types.MessageEntityMention,
    "hashtag": types.MessageEntityHashtag,
    "cashtag": types.MessageEntityCashtag,
    "bot_command": types.MessageEntityBotCommand,
    "email": types.MessageEntityEmail,
    "phone_number": types.MessageEntityPhone,
    "blockquote": types.MessageEntityBlockquote,
}


def to_telethon_entity(entity: Mapping[str, Any]) -> Any | None:
    """One Bot-API-style entity as a Telethon ``MessageEntity*``; ``None`` when it can't be sent.

    Offsets and lengths are UTF-16 code units in both APIs, so they carry over unchanged.
    ``text_mention`` is dropped (the text stays): sending it needs the user's access hash,
    which Bot API entities don't carry, and Telegram would refuse the whole message.
    """
    kind = str(entity.get("type", ""))
    offset, length = int(entity.get("offset", 0)), int(entity.get("length", 0))
    if length <= 0 or offset < 0:
        return None
    plain = _PLAIN_ENTITIES.get(kind)
    if plain is not None:
        return plain(offset, length)
    if kind == "pre":
        return types.MessageEntityPre(offset, length, language=str(entity.get("language") or ""))
    if kind == "text_link" and entity.get("url"):
        return types.MessageEntityTextUrl(offset, length, url=str(entity["url"]))
    if kind == "expandable_blockquote":
        return types.MessageEntityBlockquote(offset, length, collapsed=True)
    if kind == "custom_emoji" and entity.get("custom_emoji_id"):
        return types.MessageEntityCustomEmoji(offset, length, document_id=int(entity["custom_emoji_id"]))
    return None


def to_telethon_entities(entities: Sequence[Mapping[str, Any]]) -> list[Any]:
    converted = []
    for entity in entities:
        telethon_entity = to_telethon_entity(entity)
        if telethon_entity is None:
            logger.debug("entity of type %r not sent", entity.get("type"))
        else:
            converted.append(telethon_entity)
    return converted


def input_peer(group: GroupRef) -> Any:
    """The input peer for a group as stored by ``list_groups`` (raw id + kind)."""
    if group.kind == "group":
        return types.InputPeerChat(group.peer_id)
    return types.InputPeerChannel(group.peer_id, group.access_hash)


async def _migration_target(client: Any, group: GroupRef) -> tuple[int, int] | None:
    """The supergroup a basic group was upgraded to, if that is why the send failed."""
    if group.kind != "group":
        return None
    try:
        result = await client(functions.messages.GetChatsRequest(id=[group.peer_id]))
    except Exception:  # the original error stands; this was only a closer look
        logger.debug("migration check failed for chat %s", group.peer_id, exc_info=True)
        return None
    for chat in getattr(result, "chats", []):
        moved = getattr(chat, "migrated_to", None)
        if getattr(chat, "id", None) == group.peer_id and moved is not None and hasattr(moved, "channel_id"):
            return int(moved.channel_id), int(getattr(moved, "access_hash", 0) or 0)
    return None


class MessageMethods(GatewayBase):
    @mapped("send")
    async def send_message(self, account: AccountRef, group: GroupRef, message: OutgoingMessage) -> int:
        """Post ``message`` to ``group`` with the account's pooled client; returns the message id."""
        if message.media is None and not message.album and not message.text.strip():
            raise MessageRejected(code="MESSAGE_EMPTY", detail="nothing to send")
        async with self._pool.lease(account) as client:
            try:
                return await self._post(client, account, group, message)
            except MIGRATION_SUSPECTS as exc:
                target = await _migration_target(client, group)
                if target is None:
                    raise
                raise ChatMigratedError(*target) from exc


    @property
    def sent_files(self) -> SentFiles:
        files: SentFiles | None = getattr(self, "_sent_files", None)
        if files is None:
            files = self._sent_files = SentFiles()
        return files

    async def _post(self, client: Any, account: AccountRef, group: GroupRef, message: OutgoingMessage) -> int:
        if message.album:
            return await self._post_album(client, account, group, message)
        peer = input_peer(group)
        entities = to_telethon_entities(message.entities)
        # A forum topic: inputReplyToMessage(reply_to_msg_id=<topic id>), top_msg_id unset (Telegram
        # wants it only for a reply to another message inside a topic); General: no reply_to.
        topic = group.in_topic
        # parse_mode=None everywhere: the text is literal, formatting comes only from the entities.
        if message.media is None:
            sent = await client.send_message(peer, message.text, formatting_entities=entities,
                                             parse_mode=None, reply_to=topic)
            return int(sent.id)
        media = message.media
        known = self.sent_files.get(account, media)
        for attempt in range(2):
            if known is None:
                break
            try:
                sent = await client.send_file(peer, known.input_media(), caption=message.text,
                                              formatting_entities=entities, parse_mode=None, reply_to=topic)
                return int(sent.id)
            except errors.FileReferenceExpiredError:
                # Telegram's way: refetch the message the file was seen in for a fresh reference
                known = await refetch(client, known) if attempt == 0 else None
                self.sent_files.put(account, media, known)
        self.sent_files.drop(account, media)
        uploaded = await client.upload_file(media.data, file_name=media.filename)
        thumb = await client.upload_file(media.thumb, file_name="thumb.jpg") if media.thumb else None
        sent = await client.send_file(peer, input_media(media, uploaded, thumb), caption=message.text,
                                      formatting_entities=entities, parse_mode=None, reply_to=topic)
        self.sent_files.put(account, media, sent_file(sent, group))
        return int(sent.id)

    async def _post_album(
        self, client: Any, account: AccountRef, group: GroupRef, message: OutgoingMessage
    ) -> int:
        """U9.3: one ``messages.sendMultiMedia`` of ``inputSingleMedia`` items, the caption on the
        first. Each item is a file the account has: sent before (by reference), or uploaded now and
        turned into one with ``messages.uploadMedia``, as Telegram asks. A reference that expired
        sends the whole album again with every item uploaded. Returns the first message's id."""
        peer = input_peer(group)
        entities = to_telethon_entities(message.entities)
        for attempt in range(2):
            items = []
            for media in message.album:
                known = self.sent_files.get(account, media) if attempt == 0 else None
                if known is not None:
                    items.append(known.input_media())
                    continue
                uploaded = await client.upload_file(media.data, file_name=media.filename)
                thumb = await client.upload_file(media.thumb, file_name="thumb.jpg") if media.thumb else None
                shown = await client(functions.messages.UploadMediaRequest(
                    peer=peer, media=input_media(media, uploaded, thumb)))
                items.append(utils.get_input_media(shown))
            single = [types.InputSingleMedia(media=item, message=message.text if i == 0 else "",
                                             entities=entities if i == 0 else None)
                      for i, item in enumerate(items)]
            try:
                # a forum topic as for one post: inputReplyToMessage naming the topic's id, none for General
                topic = group.in_topic
                reply_to = types.InputReplyToMessage(reply_to_msg_id=topic) if topic else None
                result = await client(functions.messages.SendMultiMediaRequest(
                    peer=peer, multi_media=single, reply_to=reply_to))
            except errors.FileReferenceExpiredError:
                for media in message.album:
                    self.sent_files.drop(account, media)
                if attempt == 1:
                    raise
                continue
            sent = sorted((u.message for u in getattr(result, "updates", [])
                           if isinstance(u, types.UpdateNewMessage | types.UpdateNewChannelMessage)),
                          key=lambda m: int(m.id))
            for media, posted in zip(message.album, sent, strict=False):
                self.sent_files.put(account, media, sent_file(posted, group))
            return int(sent[0].id) if sent else 0  # posted; Telegram echoed no message to name it by
        raise AssertionError("the second attempt returns or raises")
