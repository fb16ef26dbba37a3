"""The notifications outbox: written inside the transaction of the event, delivered by the bot.

Kinds and their payloads (the bot renders them):
- ``round_summary``: {round_id, sent, failed, skipped, unknown, total} (skipped at enqueue when the
  user turned round summaries off, ``st:notify``)
- ``session_ended``: {reason} (broadcast stopped, offer ``acc:login``)
- ``group_disabled``: {group_id, title, reason} (dedupe key ``group_disabled:<group_id>:<reason>``)
- ``flood_pause``: {seconds, until, code} (dedupe key ``flood_pause:<round_id>``); ``code`` is
  ``FLOOD_WAIT`` for a long flood wait ("Telegram asked to wait 2 h; resuming at HH:MM") or
  ``PEER_FLOOD`` when Telegram limited the account ("Telegram limited your account; broadcast
  paused until HH:MM"); rows written before ``code`` existed read as a flood wait
- ``message_rejected``: {round_id, code, detail}: Telegram refused the message itself
  (MESSAGE_TOO_LONG, MEDIA_INVALID, entity errors); told once per round (dedupe key
  ``message_rejected:<round_id>``), the campaign keeps going; offer ``msg:menu``
- ``account_restricted``: {seconds, until, code}: Telegram limits the whole account
  (USER_BANNED_IN_CHANNEL, USER_RESTRICTED, FROZEN_*); the broadcast is paused, no group is
  disabled, the user is pointed to @SpamBot; told once per restriction spell (not again while
  the same restriction keeps re-pausing it), dedupe key ``account_restricted:<round_id>``
- ``broadcast_halted``: {code}: every group of a round failed with the same error nobody listed;
  the broadcast stopped (the account stays connected); dedupe key ``broadcast_halted:<round_id>``
- ``access_expired``: {broadcast_stopped} (broadcast stopped)
- ``access_approved`` / ``access_rejected`` / ``access_granted`` {days, expires_at} /
  ``access_revoked`` {broadcast_stopped} / ``broadcast_stopped`` {by: "admin"}: outcomes of admin
  actions (A2, A3)
- ``no_groups_left``: {} (U6.6): a due round found no selected active group; told once per pause
  by the scheduler (dedupe key ``no_groups:<user_id>:<time>``), offer ``grp:list:0``

U8: the kinds about one account (the engine's, ``no_groups_left``) also carry its ``account_id``;
for a user with two accounts or more the bot then names the account (name and masked phone) first.
Rows without it (an earlier release, the admin's every-account actions) render as with one account.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from domain.models import Clock, Notification, utc_now
from storage.db import Connection, Database
from storage.repositories import notifications as repo
from storage.repositories import users

log = logging.getLogger(__name__)

ROUND_SUMMARY = "round_summary"
SESSION_ENDED = "session_ended"
GROUP_DISABLED = "group_disabled"
FLOOD_PAUSE = "flood_pause"
MESSAGE_REJECTED = "message_rejected"
ACCOUNT_RESTRICTED = "account_restricted"
BROADCAST_HALTED = "broadcast_halted"
ACCESS_EXPIRED = "access_expired"
ACCESS_APPROVED = "access_approved"
ACCESS_REJECTED = "access_rejected"
ACCESS_GRANTED = "access_granted"
ACCESS_REVOKED = "access_revoked"
BROADCAST_STOPPED = "broadcast_stopped"
NO_GROUPS_LEFT = "no_groups_left"  # U6.6: a round found no selected active group

# every kind above: what producers may queue and the bot must be able to render
KINDS: frozenset[str] = frozenset({
    ROUND_SUMMARY, SESSION_ENDED, GROUP_DISABLED, FLOOD_PAUSE, MESSAGE_REJECTED, ACCESS_EXPIRED,
    ACCESS_APPROVED, ACCESS_REJECTED, ACCESS_GRANTED, ACCESS_REVOKED, BROADCAST_STOPPED, NO_GROUPS_LEFT,
    ACCOUNT_RESTRICTED, BROADCAST_HALTED,
})

MAX_DELIVERY_TRIES = 5


class NotificationService:
    """Outbox API: ``enqueue`` for producers (engine, services), the rest for the bot's notifier."""

    def __init__(self, db: Database, now: Clock = utc_now) -> None:
        self.db = db
        self.now = now

    @staticmethod
    async def enqueue(
        conn: Connection,
        user_id: int,
        kind: str,
        payload: dict[str, Any] | None = None,
        dedupe_key: str | None = None,
        now: datetime | None = None,
    ) -> int | None:
        """Queue a notification in the caller's transaction.

        Returns the new id, or None when it was not queued: the dedupe key was used before, the
        user is unknown, or it is a round summary and the user turned those off.
        """
        return await repo.enqueue(conn, user_id, kind, payload or {}, dedupe_key, now or utc_now())

    async def pending(self, limit: int = 100) -> list[Notification]:
        """Undelivered notifications, oldest first, skipping those that failed too often."""
        async with self.db.connection() as conn:
            return await repo.pending(conn, limit, MAX_DELIVERY_TRIES)

    async def mark_delivered(self, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        async with self.db.transaction() as conn:
            return await repo.mark_delivered(conn, ids, self.now())

    async def mark_failed(self, ids: Sequence[int]) -> int:
        """Count a failed delivery try (gives up after ``MAX_DELIVERY_TRIES``)."""
        if not ids:
            return 0
        async with self.db.transaction() as conn:
            return await repo.mark_failed(conn, ids)

    async def mark_bot_blocked(self, user_id: int) -> None:
        """The user blocked the bot: remember it and drop their undelivered notifications."""
        async with self.db.transaction() as conn:
            await users.set_bot_blocked(conn, user_id, True)
            await repo.drop_for_user(conn, user_id, self.now())

    async def round_summaries_enabled(self, user_id: int) -> bool:
        async with self.db.connection() as conn:
            user = await users.get(conn, user_id)
        return user.notify_rounds if user is not None else True

    async def language_of(self, user_id: int) -> str:
        """The bot's stored language for ``user_id`` (U12; "" when unknown), for texts sent unprompted."""
        async with self.db.connection() as conn:
            user = await users.get(conn, user_id)
        return user.language if user is not None else ""

    async def set_round_summaries(self, user_id: int, enabled: bool) -> bool:
        async with self.db.transaction() as conn:
            await users.ensure(conn, user_id)
            return await users.set_notify_rounds(conn, user_id, enabled)

    async def toggle_round_summaries(self, user_id: int) -> bool:
        """``st:notify``: flip the user's round-summary setting; returns the new value."""
        async with self.db.transaction() as conn:
            await users.ensure(conn, user_id)
            return await users.toggle_notify_rounds(conn, user_id)
