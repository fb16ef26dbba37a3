"""Listing the groups an account is in, and whether it can post to each.

``GroupInfo.peer_id`` is Telegram's raw id (``Chat.id`` / ``Channel.id``, always positive),
not Telethon's "marked" id (-id, -100id): ``kind`` says which input peer to build
(``group`` -> ``InputPeerChat(peer_id)``, ``supergroup``/``channel`` ->
``InputPeerChannel(peer_id, access_hash)``), so a send never needs a dialog fetch.
Basic groups have no access hash; it is 0 for them.
"""

from __future__ import annotations

import logging
from typing import Any

from telethon import types

from accounts.gateway import AccountRef, GroupInfo
from accounts.telethon.client import GatewayBase
from accounts.telethon.errors import mapped

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
