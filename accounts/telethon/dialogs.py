"""Listing the groups an account is in, and whether it can post to each.

``GroupInfo.peer_id`` is Telegram's raw id (``Chat.id`` / ``Channel.id``, always positive),
not Telethon's "marked" id (-id, -100id): ``kind`` says which input peer to build
(``group`` -> ``InputPeerChat(peer_id)``, ``supergroup``/``channel`` ->
``InputPeerChannel(peer_id, access_hash)``), so a send never needs a dialog fetch.
Basic groups have no access hash; it is 0 for them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from telethon import functions, types

from accounts.gateway import (
    ARCHIVE_FOLDER,
    MAX_TOPICS,
    AccountRef,
    DialogPage,
    ForumTopic,
    GroupInfo,
    GroupRef,
)
from accounts.telethon.client import GatewayBase
from accounts.telethon.errors import mapped
from accounts.telethon.messages import input_peer

logger = logging.getLogger(__name__)


def _forbids_text(rights: Any) -> bool:
    # ``send_plain`` is the newer per-kind right for text; ``send_messages`` forbids everything.
    return rights is not None and bool(rights.send_messages or rights.send_plain)


def _can_send(entity: Any) -> bool:
    if entity.creator or entity.admin_rights is not None:
        return True  # admins are not bound by the group's default restrictions
    if getattr(entity, "gigagroup", False):
        return False  # broadcast groups: only admins post
    if _forbids_text(getattr(entity, "banned_rights", None)):
        return False  # this account is restricted in the group
    return not _forbids_text(entity.default_banned_rights)


def group_info(entity: Any) -> GroupInfo | None:
    """The group behind a dialog entity, or ``None`` for anything the broadcast can't use.

    Kept: basic groups, supergroups and broadcast channels the account is in, ``can_send`` False
    where it may not write (restrictions; a channel it doesn't own or administer with the right to
    post), exactly as the sandbox adapter lists the same dialogs; the import rule (GroupService)
    decides what to keep: read-only channels are left out, closed groups are shown disabled.
    Left, kicked, migrated and deactivated chats, users and bots are dropped here.
    """
    if isinstance(entity, types.Chat):
        if entity.left or entity.deactivated or entity.migrated_to is not None:
            return None
        return GroupInfo(peer_id=entity.id, access_hash=0, kind="group", title=entity.title,
                         can_send=_can_send(entity))
    if isinstance(entity, types.Channel):
        if entity.left:
            return None
        if entity.megagroup:
            return GroupInfo(peer_id=entity.id, access_hash=entity.access_hash or 0, kind="supergroup",
                             title=entity.title, can_send=_can_send(entity), is_forum=bool(entity.forum))
        rights = entity.admin_rights
        return GroupInfo(peer_id=entity.id, access_hash=entity.access_hash or 0, kind="channel",
                         title=entity.title,
                         can_send=bool(entity.creator or (rights is not None and rights.post_messages)))
    return None


class DialogMethods(GatewayBase):
    @mapped("dialogs")
    async def list_groups(self, account: AccountRef) -> list[GroupInfo]:
        """Every group and channel in the account's dialogs, archived ones included."""
        groups: list[GroupInfo] = []
        async with self._pool.lease(account) as client:
            async for dialog in client.iter_dialogs(ignore_migrated=True):
                info = group_info(dialog.entity)
                if info is not None:
                    groups.append(info)
        logger.info("account %s: %d groups listed", account.account_id, len(groups))
        return groups

    @mapped("dialogs")
    async def list_groups_page(self, account: AccountRef, folder: int, offset: str = "") -> DialogPage:
        """One ``messages.getDialogs`` page of ``folder`` after the cursor ``offset`` (no hidden sleep:
        a FLOOD_WAIT reaches the caller, which keeps the cursor and resumes from it)."""
        date, top_id, peer = _cursor(offset)
        request = functions.messages.GetDialogsRequest(offset_date=date, offset_id=top_id, offset_peer=peer,
                                                       limit=DIALOG_PAGE, hash=0, folder_id=folder)
        async with self._pool.lease(account) as client:
            result = await client(request)
        chats = {chat.id: chat for chat in getattr(result, "chats", [])}
        users = {user.id: user for user in getattr(result, "users", [])}
        dialogs = list(getattr(result, "dialogs", []))
        groups = []
        for dialog in dialogs:
            entity = chats.get(getattr(dialog.peer, "chat_id", getattr(dialog.peer, "channel_id", None)))
            info = group_info(entity) if entity is not None else None
            if info is not None:
                groups.append(replace(info, archived=folder == ARCHIVE_FOLDER))
        done = isinstance(result, types.messages.Dialogs) or len(dialogs) < DIALOG_PAGE or not dialogs
        following = "" if done else _next_cursor(dialogs[-1], result, chats, users)
        return DialogPage(groups, len(dialogs), following)


    @mapped("dialogs")
    async def list_topics(self, account: AccountRef, group: GroupRef) -> list[ForumTopic]:
        """A forum's topics through ``messages.getForumTopics``, paged by the last topic's top
        message (date, id) and id as Telegram pages them; deleted topics are left out."""
        topics: list[ForumTopic] = []
        offset_date: Any = None
        offset_id = offset_topic = 0
        async with self._pool.lease(account) as client:
            while len(topics) < MAX_TOPICS:
                result = await client(functions.messages.GetForumTopicsRequest(
                    peer=input_peer(group), offset_date=offset_date, offset_id=offset_id,
                    offset_topic=offset_topic, limit=TOPICS_PAGE))
                page = list(getattr(result, "topics", []))
                topics += [ForumTopic(int(t.id), str(t.title), bool(t.closed)) for t in page
                           if isinstance(t, types.ForumTopic)]
                if len(page) < TOPICS_PAGE or len(topics) >= int(getattr(result, "count", 0) or 0):
                    break
                last = page[-1]
                dates = {m.id: m.date for m in getattr(result, "messages", []) if hasattr(m, "date")}
                offset_topic = int(last.id)
                offset_id = int(getattr(last, "top_message", 0) or 0)
                offset_date = dates.get(offset_id, getattr(last, "date", None))
        return topics[:MAX_TOPICS]


DIALOG_PAGE = 100  # Telegram's maximum per messages.getDialogs
TOPICS_PAGE = 100  # topics per messages.getForumTopics page


def _cursor(offset: str) -> tuple[Any, int, Any]:
    """(offset_date, offset_id, offset_peer) from a cursor made by ``_next_cursor``."""
    if not offset:
        return None, 0, types.InputPeerEmpty()
    data = json.loads(offset)
    kind, peer_id, access_hash = data["peer"]
    peer: Any
    if kind == "chat":
        peer = types.InputPeerChat(peer_id)
    elif kind == "channel":
        peer = types.InputPeerChannel(peer_id, access_hash)
    else:
        peer = types.InputPeerUser(peer_id, access_hash)
    return data.get("date"), int(data.get("id") or 0), peer


def _next_cursor(last: Any, result: Any, chats: dict[int, Any], users: dict[int, Any]) -> str:
    """Telegram pages dialogs by the last one's top message (date, id) and peer, as iter_dialogs does."""
    peer = last.peer
    if isinstance(peer, types.PeerChat):
        key: list[Any] = ["chat", peer.chat_id, 0]
    elif isinstance(peer, types.PeerChannel):
        key = ["channel", peer.channel_id, int(getattr(chats.get(peer.channel_id), "access_hash", 0) or 0)]
    else:
        key = ["user", peer.user_id, int(getattr(users.get(peer.user_id), "access_hash", 0) or 0)]
    date = None
    for message in getattr(result, "messages", []):
        if message.id == last.top_message and getattr(message, "peer_id", None) == peer:
            date = int(message.date.timestamp())
    return json.dumps({"peer": key, "id": last.top_message, "date": date})
