"""The notifications outbox drainer: pending rows -> Bot API messages -> delivered.

Rows are written by the engine and the services in the transaction of the event that causes
them; this loop delivers them at least once. A user who blocked the bot is remembered and
their rows dropped; a 429 pauses the loop for the time Telegram asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError, TelegramRetryAfter
from aiogram.types import InlineKeyboardMarkup

from domain import rules
from domain.models import Notification
from roles.bot import callbacks as cb
from roles.bot import keyboards as kb
from roles.bot import pacing_texts, texts
from roles.bot.i18n import _, use_locale
from services import notifications as kinds
from services.notifications import NotificationService

log = logging.getLogger(__name__)

BATCH = 50
IDLE_SLEEP = 1.0

PEER_FLOOD = "PEER_FLOOD"  # flood_pause code when Telegram limited the whole account
DETAIL_MAX = 200  # characters of Telegram's error detail shown to the user


# texts of the engine's newer notifications (kept here while roles/bot/texts.py is being edited)
def note_message_rejected(code: str, detail: str) -> str:
    text = _("✉️ Telegram rejected your message ({code}): fix it with “{button}” in the message menu. "
             "The broadcast keeps running and uses the new message from its next round.").format(
        code=texts.esc(code), button=texts.BTN_MSG_SET)
    if detail:
        text += f"\n<i>{texts.esc(detail[:DETAIL_MAX])}</i>"
    return text


def note_peer_flood(until: datetime | None, now: datetime | None = None) -> str:
    return _("🚫 Telegram limited your account; broadcast paused until {when}. "
             "@SpamBot in Telegram tells you more.").format(when=texts.hhmm(until, now))


def note_account_restricted(code: str, until: datetime | None, now: datetime | None = None) -> str:
    return _("🚫 Telegram restricted your account ({code}): it can't post in groups for now. "
             "The broadcast is paused until {when}; no group was disabled. "
             "Open @SpamBot in Telegram to see the limit and appeal it.").format(
        code=texts.esc(code), when=texts.hhmm(until, now))


def note_broadcast_halted(code: str) -> str:
    return _("⏹ Every group failed with the same error Telegram gave ({code}), so the "
             "broadcast stopped. Your account stays connected; start the broadcast again to retry.").format(
        code=texts.esc(code))


def _when(value: Any) -> datetime | None:
    """A payload time as an aware UTC datetime (``texts.hhmm`` prints it as UTC)."""
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float):
        with contextlib.suppress(ValueError, OverflowError, OSError):
            moment = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(value)
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _int(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    return int(value) if isinstance(value, int | float) else 0


def render(note: Notification) -> tuple[str, InlineKeyboardMarkup] | None:
    """The text and buttons of one notification, or None for a kind this bot doesn't know.

    Every kind in ``services.notifications.KINDS`` renders; a missing or malformed payload field
    renders as a neutral value rather than failing. A notification about one account of a user who
    has two or more (U8) starts with that account's name and masked phone; with one account, or a
    row naming no account (written by an earlier release), the text is the same as without U8.
    Its buttons then name the account too (``st:show:<aid>``, ``grp:menu:<aid>``, ``msg:menu:<aid>``):
    pressing one makes that account current first, so the menu it opens is about the account the
    notification is about, not whichever one the user had chosen last.
    """
    several = note.user_accounts >= 2 and bool(note.account_phone)
    aid = _int(note.payload or {}, "account_id") if several else 0
    rendered = _render_kind(note, aid or None)
    if rendered is None or not several:
        return rendered
    text, markup = rendered
    return f"{texts.note_account(note.account_name, rules.mask_phone(note.account_phone))}\n{text}", markup


def _render_kind(note: Notification, aid: int | None) -> tuple[str, InlineKeyboardMarkup] | None:
    """``aid``: the account the buttons act on (U8, several accounts), None for the current one."""
    p = note.payload or {}
    if note.kind == kinds.ROUND_SUMMARY:
        text = texts.note_round(_int(p, "sent"), _int(p, "failed"), _int(p, "skipped"), _int(p, "total"))
        paced = pacing_texts.report_line(p["pacing"]) if isinstance(p.get("pacing"), dict) else None
        if paced:
            text += "\n" + paced
        return text, kb.markup(
            [
                [
                    kb.button(texts.BTN_STATUS, cb.St(action=cb.StAction.show, aid=aid)),
                    kb.button(texts.notify_caption(True), cb.St(action=cb.StAction.notify)),
                ]
            ]
        )
    if note.kind == kinds.SESSION_ENDED:
        return texts.NOTE_SESSION_ENDED, kb.login_offer()
    if note.kind == kinds.GROUP_DISABLED:
        text = texts.note_group_disabled(str(p.get("title", "")), str(p.get("reason", "")))
        return text, kb.markup([[kb.button(texts.BTN_GROUPS, cb.Grp(action=cb.GrpAction.menu, aid=aid))]])
    if note.kind == kinds.NO_GROUPS_LEFT:
        groups = (kb.GROUPS_BUTTON if aid is None
                  else (texts.BTN_GROUPS, cb.Grp(action=cb.GrpAction.menu, aid=aid)))
        return texts.NOTE_NO_GROUPS_LEFT, kb.next_step([groups])
    if note.kind == kinds.FLOOD_PAUSE:
        until = _when(p.get("until"))
        # the relative form counts from when the pause was written (delivery follows within seconds)
        written = _when(note.created_at)
        if p.get("code") == PEER_FLOOD:
            return note_peer_flood(until, written), kb.main_only()
        duration = rules.human_duration(_int(p, "seconds"))
        return texts.note_flood_pause(duration, until, written), kb.main_only()
    if note.kind == kinds.ACCOUNT_RESTRICTED:
        code = str(p.get("code") or "USER_RESTRICTED")
        return note_account_restricted(code, _when(p.get("until")), _when(note.created_at)), kb.main_only()
    if note.kind == kinds.BROADCAST_HALTED:
        return note_broadcast_halted(str(p.get("code") or "UNKNOWN")), kb.main_only()
    if note.kind == kinds.MESSAGE_REJECTED:
        text = note_message_rejected(str(p.get("code") or "MESSAGE_REJECTED"), str(p.get("detail") or ""))
        return text, kb.markup([[kb.button(texts.BTN_MESSAGE, cb.Msg(action=cb.MsgAction.menu, aid=aid))],
                                [kb.button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main))]])
    if note.kind == kinds.ACCESS_EXPIRED:
        return texts.NOTE_ACCESS_EXPIRED, kb.main_only()
    if note.kind in (kinds.ACCESS_APPROVED, kinds.ACCESS_GRANTED):
        return texts.ACCESS_APPROVED, kb.main_only()
    if note.kind == kinds.ACCESS_REJECTED:
        return texts.ACCESS_REJECTED, kb.main_only()
    if note.kind == kinds.ACCESS_REVOKED:
        return texts.NOTE_ACCESS_REVOKED, kb.main_only()
    if note.kind == kinds.BROADCAST_STOPPED:
        return texts.NOTE_BROADCAST_STOPPED, kb.main_only()
    return None


def _render_safely(note: Notification) -> tuple[str, InlineKeyboardMarkup] | None:
    zone = texts.SHOWN_ZONE.set(note.timezone)  # U10.6: the recipient's clock
    try:
        with use_locale(note.language):  # U12: in the recipient's language
            rendered = render(note)
    except Exception:  # one unreadable row must not stop the drainer
        log.exception("notification %s of kind %s cannot be rendered", note.notification_id, note.kind)
        return None
    finally:
        texts.SHOWN_ZONE.reset(zone)
    if rendered is None:
        log.warning("notification %s of unknown kind %s not delivered", note.notification_id, note.kind)
    return rendered


async def deliver_once(bot: Bot, outbox: NotificationService, limit: int = BATCH) -> int:
    """Send one batch; returns how many were handled (delivered, dropped or failed)."""
    pending = await outbox.pending(limit)
    delivered: list[int] = []
    try:
        for note in pending:
            rendered = _render_safely(note)
            if rendered is None:
                # a failed try: left for a bot that can render it, given up after MAX_DELIVERY_TRIES
                await outbox.mark_failed([note.notification_id])
                continue
            text, markup = rendered
            try:
                await bot.send_message(note.user_id, text, reply_markup=markup)
            except TelegramRetryAfter as exc:
                log.info("notifier paused %ss by Telegram", exc.retry_after)
                await asyncio.sleep(exc.retry_after)
                break
            except TelegramForbiddenError:
                log.info("user=%s blocked the bot; notifications dropped", note.user_id)
                await outbox.mark_bot_blocked(note.user_id)
                continue
            except TelegramAPIError as exc:
                log.warning("notification %s failed: %s", note.notification_id, type(exc).__name__)
                await outbox.mark_failed([note.notification_id])
                continue
            delivered.append(note.notification_id)
    finally:
        if delivered:
            await outbox.mark_delivered(delivered)
    return len(pending)


async def run_notifier(
    bot: Bot, outbox: NotificationService, stop: asyncio.Event, idle_sleep: float = IDLE_SLEEP
) -> None:
    """Drain the outbox until ``stop`` is set; errors are logged and retried after a pause."""
    while not stop.is_set():
        handled = 0
        try:
            handled = await deliver_once(bot, outbox)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("notifier batch failed")
        if handled < BATCH:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), idle_sleep)
