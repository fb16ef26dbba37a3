"""The world's answers as Telegram's TL objects, and Telegram's requests as the world's arguments.

Built with Telethon's own TL classes. Groups: ``group`` -> ``chat``, ``supergroup`` ->
``channel`` with ``megagroup``, ``channel`` -> ``channel`` with ``broadcast`` (the account
admin with ``post_messages`` where it may post). A group the account may not write to carries
``send_messages`` in its banned rights, as Telegram shows a restriction.
"""

from __future__ import annotations

import hashlib
import mimetypes
from datetime import UTC, datetime
from typing import Any, Final

from telethon.tl import types

from sandbox.mtproto.bridge import Me
from sandbox.world import MediaIn

DC_ID: Final = 2
_NO_SEND: Final = types.ChatBannedRights(until_date=None, send_messages=True)

# Telegram's entity classes taking only (offset, length) -> the Bot API type the world keeps.
_PLAIN_ENTITIES: Final[dict[type, str]] = {
    types.MessageEntityBold: "bold",
    types.MessageEntityItalic: "italic",
    types.MessageEntityUnderline: "underline",
    types.MessageEntityStrike: "strikethrough",
    types.MessageEntitySpoiler: "spoiler",
    types.MessageEntityCode: "code",
    types.MessageEntityUrl: "url",
    types.MessageEntityMention: "mention",
    types.MessageEntityHashtag: "hashtag",
    types.MessageEntityCashtag: "cashtag",
    types.MessageEntityBotCommand: "bot_command",
    types.MessageEntityEmail: "email",
    types.MessageEntityPhone: "phone_number",
    types.MessageEntityBankCard: "bank_card",
}


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _stable_hash(*parts: object) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def me_user(me: Me) -> Any:
    return types.User(id=me.user_id, is_self=True, access_hash=_stable_hash("user", me.user_id),
                      first_name=me.first_name, phone=me.phone.lstrip("+"),
                      status=types.UserStatusRecently())


def chat_object(group: dict[str, Any]) -> Any:
    """A dialog of the world (``{id, title, kind, access_hash, can_send, slow_mode}``) as a chat."""
    gid, title, can_send = int(group["id"]), str(group["title"]), bool(group.get("can_send", True))
    if group["kind"] == "group":
        moved = group.get("migrated_to")  # (supergroup id, access hash) of an upgraded group
        return types.Chat(id=gid, title=title, photo=types.ChatPhotoEmpty(), participants_count=0,
                          date=now(), version=1, default_banned_rights=None if can_send else _NO_SEND,
                          deactivated=True if moved else None,
                          migrated_to=types.InputChannel(*moved) if moved else None)
    common: dict[str, Any] = {"id": gid, "title": title, "photo": types.ChatPhotoEmpty(), "date": now(),
                              "access_hash": int(group["access_hash"])}
    if group["kind"] == "channel":
        rights = types.ChatAdminRights(post_messages=True) if can_send else None
        return types.Channel(broadcast=True, admin_rights=rights, **common)
    return types.Channel(megagroup=True, banned_rights=None if can_send else _NO_SEND,
                         slowmode_enabled=bool(group.get("slow_mode")) or None,
                         forum=bool(group.get("forum")) or None, **common)


def peer_of(kind: str, group_id: int) -> Any:
    return types.PeerChat(chat_id=group_id) if kind == "group" else types.PeerChannel(channel_id=group_id)


def dialog(group: dict[str, Any]) -> Any:
    return types.Dialog(
        peer=peer_of(str(group["kind"]), int(group["id"])), top_message=0, read_inbox_max_id=0,
        read_outbox_max_id=0, unread_count=0, unread_mentions_count=0, unread_reactions_count=0,
        unread_poll_votes_count=0, notify_settings=types.PeerNotifySettings())


def _peer_key(peer: Any) -> tuple[str, int] | None:
    if isinstance(peer, types.InputPeerChat):
        return "chat", peer.chat_id
    if isinstance(peer, types.InputPeerChannel):
        return "channel", peer.channel_id
    return None


def dialogs_page(groups: list[dict[str, Any]], me: Me, offset_peer: Any, limit: int) -> Any:
    """One page of ``messages.getDialogs``; pages continue after ``offset_peer``."""
    keys = [("chat" if g["kind"] == "group" else "channel", int(g["id"])) for g in groups]
    start = 0
    wanted = _peer_key(offset_peer)
    if wanted is not None and wanted in keys:
        start = keys.index(wanted) + 1
    limit = max(1, min(limit or 100, 100))
    page = groups[start:start + limit]
    parts = {"dialogs": [dialog(g) for g in page], "messages": [],
             "chats": [chat_object(g) for g in page], "users": [me_user(me)]}
    if start == 0 and len(groups) <= limit:
        return types.messages.Dialogs(**parts)
    return types.messages.DialogsSlice(count=len(groups), **parts)


def entity_to_dict(entity: Any) -> dict[str, Any] | None:
    """A Telegram entity as the world keeps it (Bot API form); None for kinds it has no name for."""
    out: dict[str, Any] = {"offset": entity.offset, "length": entity.length}
    plain = _PLAIN_ENTITIES.get(type(entity))
    if plain is not None:
        out["type"] = plain
    elif isinstance(entity, types.MessageEntityPre):
        out["type"] = "pre"
        if entity.language:
            out["language"] = entity.language
    elif isinstance(entity, types.MessageEntityTextUrl):
        out.update(type="text_link", url=entity.url)
    elif isinstance(entity, types.MessageEntityBlockquote):
        out["type"] = "expandable_blockquote" if entity.collapsed else "blockquote"
    elif isinstance(entity, types.MessageEntityCustomEmoji):
        out.update(type="custom_emoji", custom_emoji_id=str(entity.document_id))
    elif isinstance(entity, types.MessageEntityMentionName | types.InputMessageEntityMentionName):
        user = entity.user_id
        out.update(type="text_mention", user={"id": getattr(user, "user_id", user)})
    else:
        return None
    return out


def echoed_entities(entities: list[Any] | None) -> list[Any] | None:
    """The entities of the sent message as Telegram shows them back (input mentions resolved)."""
    if not entities:
        return None
    shown = []
    for entity in entities:
        if isinstance(entity, types.InputMessageEntityMentionName):
            user_id = getattr(entity.user_id, "user_id", 0)
            shown.append(types.MessageEntityMentionName(entity.offset, entity.length, user_id=user_id))
        else:
            shown.append(entity)
    return shown


def media_kind(media: Any) -> str:
    """``photo`` | ``video`` | ``animation`` | ``document`` for an uploaded input media."""
    if isinstance(media, types.InputMediaUploadedPhoto):
        return "photo"
    attributes = media.attributes or []
    if any(isinstance(a, types.DocumentAttributeAnimated) for a in attributes):
        return "animation"
    if any(isinstance(a, types.DocumentAttributeVideo) for a in attributes) and not media.force_file:
        return "video"
    return "document"


def media_in(media: Any, data: bytes) -> MediaIn:
    filename = str(getattr(media.file, "name", "") or "file")
    if isinstance(media, types.InputMediaUploadedPhoto):
        return MediaIn("photo", filename, data, mimetypes.guess_type(filename)[0] or "image/jpeg")
    for attribute in media.attributes or []:
        if isinstance(attribute, types.DocumentAttributeFilename):
            filename = attribute.file_name
    return MediaIn(media_kind(media), filename, data, media.mime_type or "application/octet-stream")


def message_media(media: Any, stored: MediaIn, date: datetime) -> Any:
    media_id = _stable_hash("media", stored.summary()["sha256"], date.timestamp())
    if stored.kind == "photo":
        photo = types.Photo(id=media_id, access_hash=_stable_hash("access", media_id), file_reference=b"",
                            date=date, sizes=[types.PhotoSize("x", 1280, 720, len(stored.data))],
                            dc_id=DC_ID)
        return types.MessageMediaPhoto(photo=photo)
    document = types.Document(id=media_id, access_hash=_stable_hash("access", media_id), file_reference=b"",
                              date=date, mime_type=stored.mime_type, size=len(stored.data), dc_id=DC_ID,
                              attributes=list(media.attributes or []))
    return types.MessageMediaDocument(document=document, video=stored.kind == "video" or None)


def sent_updates(*, me: Me, chat: Any, kind: str, group_id: int, message_id: int, date: datetime,
                 text: str, entities: list[Any] | None, media: Any, random_id: int, pts: int) -> Any:
    """What ``messages.sendMessage``/``sendMedia`` answer: the new message as updates."""
    broadcast = kind == "channel"
    message = types.Message(
        id=message_id, peer_id=peer_of(kind, group_id), date=date, message=text, out=True,
        post=broadcast or None, from_id=None if broadcast else types.PeerUser(me.user_id),
        entities=echoed_entities(entities), media=media)
    new: Any
    if kind == "group":
        new = types.UpdateNewMessage(message=message, pts=pts, pts_count=1)
    else:
        new = types.UpdateNewChannelMessage(message=message, pts=pts, pts_count=1)
    return types.Updates(updates=[types.UpdateMessageID(id=message_id, random_id=random_id), new],
                         users=[me_user(me)], chats=[chat], date=date, seq=0)
