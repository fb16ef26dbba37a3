"""The world's answers as Telegram's TL objects, and Telegram's requests as the world's arguments.

Built with Telethon's own TL classes. Groups: ``group`` -> ``chat``, ``supergroup`` ->
``channel`` with ``megagroup``, ``channel`` -> ``channel`` with ``broadcast`` (the account
admin with ``post_messages`` where it may post). A group the account may not write to carries
``send_messages`` in its banned rights, as Telegram shows a restriction.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from telethon.tl import types

from sandbox.mtproto.bridge import Me
from sandbox.world import MediaIn, StoredFile

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
        unread_poll_votes_count=0, notify_settings=types.PeerNotifySettings(),
        folder_id=int(group.get("folder") or 0) or None)


def _peer_key(peer: Any) -> tuple[str, int] | None:
    if isinstance(peer, types.InputPeerChat):
        return "chat", peer.chat_id
    if isinstance(peer, types.InputPeerChannel):
        return "channel", peer.channel_id
    return None


def offset_id_of(offset_peer: Any) -> int | None:
    """The dialog id a ``messages.getDialogs`` page continues after (None: from the top)."""
    key = _peer_key(offset_peer)
    return None if key is None else key[1]


def dialogs_page(page: dict[str, Any], me: Me) -> Any:
    """A world page (``World.get_dialogs_page``) as ``messages.dialogs`` or ``messages.dialogsSlice``."""
    groups = page["dialogs"]
    parts = {"dialogs": [dialog(g) for g in groups], "messages": [],
             "chats": [chat_object(g) for g in groups], "users": [me_user(me)]}
    if page["next"] is None and len(groups) == page["count"]:
        return types.messages.Dialogs(**parts)
    return types.messages.DialogsSlice(count=int(page["count"]), **parts)


_NEXT_TYPES: Final[dict[str, Any]] = {
    "sms": types.auth.CodeTypeSms,
    "call": types.auth.CodeTypeCall,
    "flash_call": types.auth.CodeTypeFlashCall,
    "missed_call": types.auth.CodeTypeMissedCall,
    "fragment_sms": types.auth.CodeTypeFragmentSms,
}


def sent_code_type(kind: str, length: int, hint: str) -> Any:
    """The world's delivery name as Telegram's ``auth.SentCodeType``."""
    if kind == "sms":
        return types.auth.SentCodeTypeSms(length=length)
    if kind == "call":
        return types.auth.SentCodeTypeCall(length=length)
    if kind == "flash_call":
        return types.auth.SentCodeTypeFlashCall(pattern=hint + "*" * length)
    if kind == "missed_call":
        return types.auth.SentCodeTypeMissedCall(prefix=hint, length=length)
    if kind == "email":
        return types.auth.SentCodeTypeEmailCode(email_pattern=hint, length=length)
    if kind == "fragment_sms":
        return types.auth.SentCodeTypeFragmentSms(url=hint, length=length)
    if kind == "firebase_sms":
        return types.auth.SentCodeTypeFirebaseSms(length=length)
    if kind == "sms_word":
        return types.auth.SentCodeTypeSmsWord()
    if kind == "sms_phrase":
        return types.auth.SentCodeTypeSmsPhrase()
    if kind == "setup_email_required":
        return types.auth.SentCodeTypeSetUpEmailRequired()
    return types.auth.SentCodeTypeApp(length=length)


def sent_code(sent: dict[str, Any]) -> Any:
    """``auth.sentCode`` for a world answer, or ``auth.sentCodePaymentRequired`` (which has no type)."""
    phone_code_hash = str(sent["phone_code_hash"])
    kind = str(sent.get("type") or "app")
    if kind == "payment_required":
        return types.auth.SentCodePaymentRequired(
            store_product="org.telegram.sandbox.signup", phone_code_hash=phone_code_hash,
            support_email_address="sms@telegram.org", support_email_subject="Sign-up payment",
            premium_days=7, currency="USD", amount=199)
    next_class = _NEXT_TYPES.get(str(sent.get("next_type") or ""))
    return types.auth.SentCode(
        type=sent_code_type(kind, int(sent.get("code_length") or 5), str(sent.get("hint") or "")),
        phone_code_hash=phone_code_hash, next_type=next_class() if next_class else None)


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


_IMAGE_MAGIC: Final = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


def is_image(data: bytes) -> bool:
    """Whether bytes sent as a photo are an image Telegram can process (JPEG, PNG, GIF, WebP, BMP)."""
    return data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def media_in(media: Any, data: bytes, thumb: bytes | None = None) -> MediaIn:
    """An uploaded input media as the world keeps it, with the attributes the client sent."""
    filename = str(getattr(media.file, "name", "") or "file")
    if isinstance(media, types.InputMediaUploadedPhoto):
        return MediaIn("photo", filename, data, mimetypes.guess_type(filename)[0] or "image/jpeg")
    width = height = 0
    duration = 0.0
    for attribute in media.attributes or []:
        if isinstance(attribute, types.DocumentAttributeFilename):
            filename = attribute.file_name
        elif isinstance(attribute, types.DocumentAttributeVideo):
            width, height, duration = attribute.w, attribute.h, float(attribute.duration)
        elif isinstance(attribute, types.DocumentAttributeImageSize):
            width, height = attribute.w, attribute.h
    return MediaIn(media_kind(media), filename, data, media.mime_type or "application/octet-stream",
                   width=width, height=height, duration=duration, thumb=thumb)


def input_file_ref(media: Any) -> dict[str, Any] | None:
    """``{id, access_hash, file_reference}`` of an ``inputMediaPhoto``/``inputMediaDocument``."""
    target = media.id
    if not isinstance(target, types.InputPhoto | types.InputDocument):
        return None  # inputPhotoEmpty / inputDocumentEmpty
    reference = bytes(target.file_reference).hex()
    return {"id": target.id, "access_hash": target.access_hash, "file_reference": reference}


def _attributes(stored: MediaIn) -> list[Any]:
    out: list[Any] = []
    if stored.kind in ("video", "animation"):
        out.append(types.DocumentAttributeVideo(duration=stored.duration, w=stored.width, h=stored.height,
                                                supports_streaming=True))
    if stored.kind == "animation":
        out.append(types.DocumentAttributeAnimated())
    out.append(types.DocumentAttributeFilename(stored.filename))
    return out


def message_media(stored: StoredFile, date: datetime) -> Any:
    """The sent photo/document as Telegram shows it: id, access hash and the current file reference."""
    media = stored.media
    if media.kind == "photo":
        size = types.PhotoSize("x", media.width or 1280, media.height or 720, len(media.data))
        photo = types.Photo(id=stored.id, access_hash=stored.access_hash,
                            file_reference=stored.file_reference, date=date, sizes=[size], dc_id=DC_ID)
        return types.MessageMediaPhoto(photo=photo)
    thumbs = [types.PhotoSize("m", 320, 320, len(media.thumb))] if media.thumb else None
    document = types.Document(id=stored.id, access_hash=stored.access_hash,
                              file_reference=stored.file_reference, date=date, mime_type=media.mime_type,
                              size=len(media.data), dc_id=DC_ID, attributes=_attributes(media), thumbs=thumbs)
    return types.MessageMediaDocument(document=document, video=media.kind == "video" or None)


def feed_message(me: Me, kind: str, group_id: int, post: dict[str, Any], media: Any) -> Any:
    """A post of the group feed as ``messages.getMessages`` shows it (the account's own post)."""
    broadcast = kind == "channel"
    date = datetime.fromtimestamp(int(post["date"]), UTC)
    return types.Message(id=int(post["message_id"]), peer_id=peer_of(kind, group_id), date=date,
                         message=str(post.get("text") or ""), out=True, post=broadcast or None,
                         from_id=None if broadcast else types.PeerUser(me.user_id), media=media)


def reply_target(reply_to: Any) -> int | None:
    """The message a send replies to, which in a forum names the topic: ``inputReplyToMessage``'s
    ``top_msg_id`` (the topic, when replying to another message in it) or else ``reply_to_msg_id``
    (the topic's own id when posting in it, as Telegram's forum docs say)."""
    if not isinstance(reply_to, types.InputReplyToMessage):
        return None
    return int(reply_to.top_msg_id or reply_to.reply_to_msg_id)


def forum_topic(group_id: int, topic: dict[str, Any], me: Me) -> Any:
    """A world topic (``World.get_forum_topics``) as Telegram's ``forumTopic``."""
    return types.ForumTopic(
        id=int(topic["id"]), date=datetime.fromtimestamp(int(topic.get("date") or 0), UTC),
        peer=types.PeerChannel(channel_id=group_id), title=str(topic["title"]), icon_color=0x6FB9F0,
        top_message=int(topic.get("top_message") or topic["id"]), read_inbox_max_id=0, read_outbox_max_id=0,
        unread_count=0, unread_mentions_count=0, unread_reactions_count=0, unread_poll_votes_count=0,
        from_id=types.PeerUser(me.user_id), notify_settings=types.PeerNotifySettings(),
        closed=bool(topic.get("closed")) or None)


def sent_updates(*, me: Me, chat: Any, kind: str, group_id: int, message_id: int, date: datetime,
                 text: str, entities: list[Any] | None, media: Any, random_id: int, pts: int,
                 topic_id: int | None = None) -> Any:
    """What ``messages.sendMessage``/``sendMedia`` answer: the new message as updates (a post in a
    forum topic other than General replies to the topic's first message, ``forum_topic`` set)."""
    broadcast = kind == "channel"
    reply = None
    if topic_id is not None and topic_id != 1:
        reply = types.MessageReplyHeader(forum_topic=True, reply_to_msg_id=topic_id)
    message = types.Message(
        id=message_id, peer_id=peer_of(kind, group_id), date=date, message=text, out=True,
        post=broadcast or None, from_id=None if broadcast else types.PeerUser(me.user_id),
        entities=echoed_entities(entities), media=media, reply_to=reply)
    new: Any
    if kind == "group":
        new = types.UpdateNewMessage(message=message, pts=pts, pts_count=1)
    else:
        new = types.UpdateNewChannelMessage(message=message, pts=pts, pts_count=1)
    return types.Updates(updates=[types.UpdateMessageID(id=message_id, random_id=random_id), new],
                         users=[me_user(me)], chats=[chat], date=date, seq=0)


@dataclass(frozen=True)
class SentItem:
    """One message of an album as ``messages.sendMultiMedia`` answers it."""

    message_id: int
    random_id: int
    text: str
    entities: list[Any] | None
    media: Any
    pts: int


def album_updates(*, me: Me, chat: Any, kind: str, group_id: int, date: datetime, grouped_id: int,
                  items: list[SentItem]) -> Any:
    """What ``messages.sendMultiMedia`` answers: each new message (one ``grouped_id``) as updates."""
    broadcast = kind == "channel"
    updates: list[Any] = [types.UpdateMessageID(id=item.message_id, random_id=item.random_id)
                          for item in items]
    for item in items:
        message = types.Message(
            id=item.message_id, peer_id=peer_of(kind, group_id), date=date, message=item.text, out=True,
            post=broadcast or None, from_id=None if broadcast else types.PeerUser(me.user_id),
            entities=echoed_entities(item.entities), media=item.media, grouped_id=grouped_id)
        if kind == "group":
            updates.append(types.UpdateNewMessage(message=message, pts=item.pts, pts_count=1))
        else:
            updates.append(types.UpdateNewChannelMessage(message=message, pts=item.pts, pts_count=1))
    return types.Updates(updates=updates, users=[me_user(me)], chats=[chat], date=date, seq=0)
