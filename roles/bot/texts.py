"""Every user-visible wording of the control bot, in one place.

Texts are HTML (the bot's default parse mode); anything that comes from a user or
from Telegram (names, titles, message snippets) goes through ``esc``. The message
preview is the one exception: it is sent with the user's own entities and no parse
mode, exactly as it will be posted.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from datetime import date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accounts.gateway import LoginState

from domain import rules, schedule
from roles.bot.plural import count

# button captions -------------------------------------------------------------------------------
BTN_MAIN = "🏠 Main menu"
BTN_ACCOUNT = "👤 Account"
BTN_GROUPS = "👥 Groups"
BTN_MESSAGE = "✉️ Message"
BTN_INTERVAL = "⏱ Interval"
BTN_SCHEDULE = "🕘 Schedule"
BTN_SCH_TZ = "🌍 Time zone"
BTN_SCH_HOURS = "🕘 Active hours"
BTN_SCH_DAYS = "📅 Days"
BTN_SCH_OFF = "♾ Any time"
BTN_SCH_BACK = "◀️ Schedule"
BTN_START = "▶️ Start broadcast"
BTN_STOP = "⏹ Stop broadcast"
BTN_STATUS = "📊 Status"
BTN_ADMIN = "🛠 Admin"
BTN_REQUEST = "🙋 Request access"
BTN_LOGIN = "🔑 Connect account"
BTN_LOGOUT = "🚪 Disconnect"
BTN_LOGOUT_YES = "Yes, disconnect"
BTN_CANCEL = "✖️ Cancel"
BTN_SHARE_PHONE = "📱 Share my number"
BTN_RESEND = "🔁 Send a new code"
BTN_IMPORT_STOP = "⏹ Stop the import"
BTN_KP_DEL = "⌫"
BTN_KP_OK = "✅ OK"
BTN_IMPORT = "🔄 Import groups"
BTN_LIST = "📋 Choose groups"
BTN_PREV = "◀️ Previous page"
BTN_NEXT = "Next ▶️"
BTN_ALL = "☑️ All on page"
BTN_NONE = "🔲 None on page"
BTN_DONE = "✔️ Done"
BTN_MSG_SET = "✏️ Set message"
BTN_MSG_NEW = "✏️ Send another"
BTN_MSG_SAVE = "💾 Save"
BTN_MSG_ADD = "➕ Add a message"
BTN_MSG_REPLACE_FIRST = "✏️ Replace message 1"
BTN_MSG_MENU = "✉️ Messages"
BTN_ROTATION_SEQ = "🔁 In order"
BTN_ROTATION_RND = "🎲 Random"


def btn_msg_view(n: int) -> str:
    return f"👁 {n}"


def btn_msg_delete(n: int) -> str:
    return f"🗑 {n}"


def btn_rotation(label: str, chosen: bool) -> str:
    return f"✅ {label}" if chosen else label
BTN_INT_CUSTOM = "✍️ Custom"
BTN_REFRESH = "🔄 Refresh"
BTN_APPROVE = "✅ Approve"
BTN_POST_NOW = "⏩ Post now"
BTN_POST_NOW_YES = "⏩ Yes, post now"
BTN_REJECT = "⛔ Reject"

# the reply-keyboard Cancel button sends this text; it is read like /cancel
CANCEL_WORDS = frozenset({"cancel", BTN_CANCEL.lower(), "/cancel"})


def esc(value: object) -> str:
    return html.escape(str(value), quote=False)


# U10.6: the time zone of the person the bot is talking to, set for each update (the access
# middleware) and each notification (the notifier), as aiogram's i18n sets the locale: every time
# the bot shows is on that person's clock, named.
SHOWN_ZONE: ContextVar[str] = ContextVar("shown_zone", default=schedule.DEFAULT_ZONE)


def hhmm(moment: datetime | None, now: datetime | None = None) -> str:
    """``14:35 Europe/Berlin``; with ``now``, the relative form beside it: ``14:35 UTC, in 12 min``."""
    if moment is None:
        return "—"
    name = SHOWN_ZONE.get()
    clock = f"{moment.astimezone(schedule.zone(name)):%H:%M} {schedule.short_zone(name, moment)}"
    if now is None:
        return clock
    return f"{clock}, {relative(moment, now)}"


def relative(moment: datetime, now: datetime) -> str:
    """``in 12 min``, ``in 1 h 5 min``, ``now``, ``12 min ago`` (minutes rounded up ahead, down behind)."""
    seconds = (moment - now).total_seconds()
    if -60 < seconds <= 30:
        return "now"
    minutes = int(-(-seconds // 60)) if seconds > 0 else int(-seconds // 60)
    span = rules.human_duration(minutes * 60)
    return f"in {span}" if seconds > 0 else f"{span} ago"


def notify_caption(on: bool) -> str:
    """The toggle names the action it performs (the status card shows the state)."""
    return "🔕 Turn round reports off" if on else "🔔 Turn round reports on"


GROUP_FORMS = ("group", "groups")
ATTEMPT_FORMS = ("attempt", "attempts")
ROUND_FORMS = ("round", "rounds")


def interval_preset_caption(label: str, current: bool) -> str:
    return f"• {label} •" if current else label


# U1 --------------------------------------------------------------------------------------------
WELCOME = (
    "👋 <b>Welcome!</b> I post your message to your Telegram groups on a schedule, "
    "from your own account.\n"
    "Steps: connect your account, choose groups, set the message and the interval, then start."
)
ACCESS_NEEDS_APPROVAL = "🔒 Access needs approval by an administrator. Press the button to send a request."
ACCESS_PENDING = "⏳ Your access request is waiting for approval; you'll get a message here."
ACCESS_REQUESTED = "📨 Request sent. Access needs approval; you'll get a message when an admin decides."
ACCESS_INVITATION_ONLY = "🔒 Access by invitation only. Ask an administrator to grant you access."
ACCESS_EXPIRED = "⌛ Your access has expired. Ask an administrator to extend it."
ACCESS_DENIED = "⛔ Access denied."
ACCESS_APPROVED = "✅ Access approved. Press /start to begin."
ACCESS_REJECTED = "⛔ Your access request was rejected."


def admin_access_request(uid: int, name: str, username: str) -> str:
    handle = f" @{esc(username)}" if username else ""
    return f"🙋 <b>Access request</b>\n{esc(name) or 'User'}{handle} (id {uid}) asks for access."


def main_card(
    *,
    phone_masked: str | None,
    account_name: str | None,
    selected: int,
    total: int,
    message_snippet: str | None,
    interval: str | None,
    running: bool,
    next_run: datetime | None,
    paused_until: datetime | None = None,
    media_kind: str | None = None,
    now: datetime | None = None,
    no_groups_left: bool = False,
) -> str:
    account = f"{esc(account_name or '')} ({esc(phone_masked)})".strip() if phone_masked else "not connected"
    if message_snippet is None and media_kind is None:
        message = "not set"
    else:
        media = MEDIA_LABELS.get(media_kind or "", f"[{media_kind}]") if media_kind else ""
        quoted = f"“{esc(message_snippet)}”" if message_snippet else ""
        message = " + ".join(part for part in (media, quoted) if part)
    state = broadcast_state(running, no_groups_left)
    lines = [
        "🏠 <b>Main menu</b>",
        f"👤 Account: {account}",
        f"👥 Groups: {selected} selected of {total}",
        f"✉️ Message: {message}",
        f"⏱ Interval: {esc(interval) if interval else 'not set'}",
        f"📣 Broadcast: {state}",
    ]
    if running and not no_groups_left:
        lines.append(f"🕒 Next run: {hhmm(next_run, now)}")
    if paused_until is not None:
        lines.append(f"⏳ Paused by Telegram until {hhmm(paused_until, now)}")
    return "\n".join(lines)


NO_GROUPS_LEFT = "⏸ paused — no groups left to post to"
NOTE_NO_GROUPS_LEFT = (
    "⏸ Your broadcast is paused: no groups left to post to (the groups you chose are disabled or "
    "gone). Choose groups and it goes on by itself."
)


def broadcast_state(running: bool, no_groups_left: bool = False) -> str:
    """U6.6: a running broadcast with no active selected group posts nothing: it shows as paused."""
    if running and no_groups_left:
        return NO_GROUPS_LEFT
    return "▶️ running" if running else "⏸ stopped"


MEDIA_LABELS = {"photo": "🖼 photo", "video": "🎬 video", "animation": "🎞 GIF", "document": "📎 document"}


HELP = (
    "ℹ️ <b>How it works</b>\n"
    "1. Connect your Telegram account — /login or 👤 Account.\n"
    "2. Import and choose groups — 👥 Groups.\n"
    "3. Set the message to post — ✉️ Message.\n"
    "4. Set the interval — ⏱ Interval.\n"
    "5. Start the broadcast — ▶️ Start.\n"
    "/start shows the main menu, /status the broadcast status, /cancel stops any input."
)
UNKNOWN_TEXT = "🤷 I didn't understand that. Use the menu below."
CANCELLED = "✖️ Cancelled."
SLOW_DOWN = "🐢 Slow down, please — too many requests at once."
STALE = "⚠️ This button is outdated."
NOT_YOURS = "⚠️ That item isn't available."
ERROR = "⚠️ Something went wrong. Please try again."
NOT_ALLOWED = "⛔ Not allowed."
GLOBAL_PAUSE = "⏸ Sending is paused by the administrator; schedules are kept."


def admin_decided(uid: int, approved: bool, already: bool) -> str:
    what = "approved" if approved else "rejected"
    return (
        f"{'ℹ️' if already else '✅'} Access request of user {uid}: {what}{' (already)' if already else ''}."
    )


def admin_request_gone(uid: int) -> str:
    return f"ℹ️ User {uid} has no pending access request (already decided)."


# U2 --------------------------------------------------------------------------------------------
ACC_NOT_CONNECTED = (
    "👤 <b>Account</b>\nNo Telegram account is connected. I post from your own account, so connect it "
    "first: I'll ask for your phone number and the login code Telegram sends you."
)


def acc_connected(name: str, phone_masked: str) -> str:
    return f"👤 <b>Account</b>\n✅ Connected as {esc(name)} ({esc(phone_masked)})."


def connected(name: str, phone_masked: str) -> str:
    return f"✅ Connected as {esc(name)} ({esc(phone_masked)})."


ASK_PHONE = (
    "📱 Send your phone number in international format, e.g. <code>+1 555 012 3456</code>, "
    "or press “Share my number”."
)
PHONE_INVALID_FORMAT = "❌ That's not a phone number. Example: <code>+1 555 012 3456</code>"
PHONE_NOT_OWN = "❌ Please share your own number, not someone else's contact."
PHONE_REJECTED = "❌ Telegram rejected this number. Check it and send it again."
PHONE_BANNED = "⛔ This number is banned by Telegram."
TELEGRAM_UNREACHABLE = "📡 Telegram is unreachable, try again later."


def phone_accepted(phone_masked: str) -> str:
    return f"📱 Number accepted: {esc(phone_masked)}."


def too_many_attempts(duration: str) -> str:
    return f"⏳ Too many attempts, try again in {esc(duration)}."


def code_prompt(typed: int, length: int, note: str = "") -> str:
    dots = "•" * typed + "○" * max(0, length - typed) if length else "•" * typed
    head = f"{note}\n" if note else ""
    return (
        f"{head}📨 The code was sent to your Telegram app. Type it here with spaces "
        f"(<code>1 2 3 4 5</code>) or use the keypad.\nCode: {dots}"
    )


# Where Telegram sent the code (auth.SentCodeType), and what a resend would use (auth.CodeType).
_CODE_WENT: dict[str, str] = {
    "app": "📨 The code was sent to your Telegram app (the \"Telegram\" chat on your other devices).",
    "sms": "📨 The code was sent by SMS to your phone.",
    "firebase_sms": "📨 The code was sent by SMS to your phone.",
    "call": "📞 Telegram is calling your phone to dictate the code.",
    "flash_call": "📞 Telegram will call you and hang up at once: the code is the calling number ({hint}).",
    "missed_call": ("📞 Telegram will call you from a number starting with <code>{hint}</code>. "
                    "Don't answer: the code is the <b>last {length} digits</b> of that number."),
    "email": "📧 The code was sent to your email <code>{hint}</code>.",
    "fragment_sms": "📨 The code was sent to your anonymous number on Fragment ({hint}).",
    "sms_word": "📨 Telegram sent you an SMS with a word; type the code from it.",
    "sms_phrase": "📨 Telegram sent you an SMS with a phrase; type the code from it.",
}
_NEXT_WAY: dict[str, str] = {
    "sms": "by SMS", "call": "by a phone call", "flash_call": "by a flash call",
    "missed_call": "by a missed call", "fragment_sms": "through Fragment",
}


def code_went(code_type: str, length: int, hint: str = "", next_type: str = "") -> str:
    """Where the code went, and what "send a new code" would do."""
    text = _CODE_WENT.get(code_type, _CODE_WENT["app"]).format(hint=esc(hint), length=length)
    if next_type in _NEXT_WAY:
        text += f"\nNo code? \"{BTN_RESEND}\" sends it {_NEXT_WAY[next_type]}."
    return text


def login_code_prompt(typed: int, state: LoginState, note: str = "") -> str:
    """``code_prompt`` worded for where this login's code went (app, SMS, call, email, Fragment...)."""
    dots = "•" * typed + "○" * max(0, state.code_length - typed) if state.code_length else "•" * typed
    head = f"{note}\n" if note else ""
    went = code_went(state.code_type, state.code_length, state.code_hint, state.next_type)
    return (f"{head}{went}\nType it here with spaces (<code>1 2 3 4 5</code>) or use the keypad.\n"
            f"Code: {dots}")


LOGIN_BLOCKED: dict[str, str] = {
    "setup_email_required": (
        "📧 Telegram wants this account to set up a <b>login email</b> before it signs in to a new app. "
        "Open the official Telegram app, go to Settings → Privacy and Security → Login Email, add your "
        "email there, then connect again here."),
    "payment_required": (
        "💳 Telegram asks for a <b>payment to verify this number</b> before it sends a login code. This "
        "can only be done in the official Telegram app: sign in there first (it shows the offer), then "
        "connect again here."),
}
RESEND_UNAVAILABLE = ("🚫 Telegram has no other way left to send the code. Type the code you already got, "
                      "or cancel and try again later.")


CODE_BAD_FORMAT = "❌ Send the code you received (4–8 digits)."
CODE_NEW_SENT = "🔁 New code sent."
CODE_EXPIRED = "⌛ The code expired. Ask for a new one."
# U2.13: Telegram voids a login code that is sent as plain digits in any chat
CODE_VOIDED = (
    "⌛ Telegram cancelled this code because it was sent as plain digits; get a new one and type it "
    "with spaces (1 2 3 4 5) or use the keypad."
)
KEYPAD_OUTDATED = "⌛ This keypad is outdated; use the newest one."  # U2.22
LOGIN_CANCELLED_START = "✖️ The login was cancelled. Press 🔑 Connect account (or /login) to start again."
PASSWORD_PROMPT = "🔐 Two-step verification is on; send your password (it is deleted from the chat)."
LOGIN_CANCELLED = "✖️ Login cancelled."
LOGIN_EXPIRED = "⌛ Login expired, start again."
LOGIN_TOO_MANY = "⛔ Too many wrong attempts; the login is cancelled."
SESSION_ENDED = "🔌 Your session ended, connect again."
LOGOUT_CONFIRM = "🚪 Disconnect the account? A running broadcast stops."
DISCONNECTED = "🔌 Disconnected. The account session was closed and deleted."
ALREADY_CONNECTED = "✅ An account is already connected. Disconnect it first to connect another."
# the per-user lock is held by a broadcast batch (services.locks.Busy)
BROADCAST_BUSY = "⏳ Your broadcast is sending right now; try again in a moment."
# logout stops the broadcast before it waits for the lock, so only the disconnect is left to do
LOGOUT_BUSY = f"{BROADCAST_BUSY}\nThe broadcast stopped; press “Disconnect” again to finish the logout."


def wrong_code(left: int) -> str:
    return f"❌ Wrong code, {count(left, ATTEMPT_FORMS)} left."


def wrong_password(left: int) -> str:
    return f"❌ Wrong password, {count(left, ATTEMPT_FORMS)} left."


# U3 --------------------------------------------------------------------------------------------
CONNECT_FIRST = "🔑 Connect your account first."
IMPORTING = "⏳ Importing…"


def groups_menu(selected: int, total: int, disabled: int) -> str:
    lines = ["👥 <b>Groups</b>", f"Selected: {selected} of {total}"]
    if disabled:
        lines.append(f"⚠️ Disabled: {disabled}")
    if not total:
        lines.append("No groups yet: press “Import groups”.")
    return "\n".join(lines)


def import_progress(chats_read: int, groups_found: int, archive: bool, wait_seconds: int = 0,
                    resume_at: datetime | None = None) -> str:
    """The import's progress message, edited in place page after page."""
    where = "the archive" if archive else "the main chat list"
    head = f"⏳ Importing… {chats_read:,} chats read, {groups_found:,} groups found (reading {where})."
    if resume_at is not None:
        return (f"{head}\n⏸ Telegram asked to wait {esc(human_wait(wait_seconds))}; the import resumes at "
                f"{hhmm(resume_at)} by itself, where it stopped.")
    if wait_seconds:
        return f"{head}\n⏳ Telegram asked to wait {wait_seconds} s; going on after it."
    return head


def human_wait(seconds: int) -> str:
    hours, rest = divmod(max(0, seconds), 3600)
    minutes = rest // 60
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min" if minutes else f"{seconds} s"


def archived_title(title: str) -> str:
    """A group from the account's archive folder, marked as such in the list."""
    return f"🗄 {title}"


IMPORT_ALREADY = "⏳ Already importing your groups: the progress is shown in its message."
IMPORT_NOT_RUNNING = "No import is running."
IMPORT_STOPPING = "Stopping the import…"


def import_cancelled(chats_read: int) -> str:
    return f"⏹ Import stopped after {chats_read:,} chats; the groups found so far are kept."


def imported(total: int, new: int, updated: int, gone: int) -> str:
    return f"🔄 Imported {total}: {new} new, {updated} updated, {gone} gone."


def group_page(page: int, pages: int, selected: int, total: int) -> str:
    return (
        f"👥 <b>Choose groups</b> — page {page + 1} of {max(pages, 1)}\n"
        f"Selected: {selected} of {total}. Tap a group to switch it."
    )


NO_GROUPS = "No groups yet: press “Import groups”."


def group_button(title: str, selected: bool, status: str, reason: str, forum: bool = False) -> str:
    if forum:
        title = f"{FORUM_MARK} {title}"
    if status != "active":
        return f"⚠️ {title} ({reason_text(reason or status)})"
    return f"{'✅' if selected else '⬜'} {title}"


# U11 forum topics ----------------------------------------------------------------------------------
FORUM_MARK = "🗂"
TOPIC_FORMS = ("topic", "topics")
BTN_TOPIC = "🗂 Topic"
BTN_BACK_TO_LIST = "◀️ Back to the groups"


def topic_button(title: str, chosen: bool, closed: bool) -> str:
    if closed:
        return f"🔒 {title} (closed)"
    return f"{'✅' if chosen else '⬜'} {title}"


def topic_page(title: str, chosen_title: str, page: int, pages: int, total: int, reason: str = "") -> str:
    lines = [
        f"{FORUM_MARK} <b>{esc(title)}</b>: choose the topic its posts go to — "
        f"page {page + 1} of {max(pages, 1)}",
        f"{count(total, TOPIC_FORMS)}; posting to: {esc(chosen_title or 'General')}.",
    ]
    if reason:
        lines.append(f"⚠️ The group is disabled: {reason_text(reason)}. Choose an open topic to post again.")
    if not total:
        lines.append(NO_TOPICS)
    return "\n".join(lines)


NO_TOPICS = "No topics known yet: import the groups again."
TOPIC_CLOSED_ALERT = "🔒 That topic is closed: only its admins can post there. Choose another one."
TOPIC_NOT_FORUM = "⚠️ That group isn't a forum (or isn't yours)."


def topic_chosen(title: str) -> str:
    return f"🗂 Posts go to “{title}” from the next round."


REASONS = {
    "CHAT_WRITE_FORBIDDEN": "can't write",
    "USER_BANNED_IN_CHANNEL": "banned",
    "CHANNEL_PRIVATE": "private",
    "CHAT_ADMIN_REQUIRED": "admins only",
    "CHAT_RESTRICTED": "restricted",
    "CHAT_SEND_PLAIN_FORBIDDEN": "text not allowed",
    "CHAT_SEND_MEDIA_FORBIDDEN": "media not allowed",
    "TOPIC_CLOSED": "topic closed",
    "TOPIC_DELETED": "topic deleted",
    "CHANNEL_INVALID": "gone",
    "PEER_ID_INVALID": "gone",
    "gone": "gone",
    "disabled": "disabled",
}


def reason_text(reason: str) -> str:
    return REASONS.get(reason, reason.replace("_", " ").lower() or "disabled")


def group_disabled(reason: str) -> str:
    if reason in ("TOPIC_CLOSED", "TOPIC_DELETED"):  # U11.4: another topic makes it active again
        return f"⚠️ This group is disabled: {reason_text(reason)}. Choose another topic with “{BTN_TOPIC}”."
    return f"⚠️ This group is disabled: {reason_text(reason)}."


def limit_reached(limit: int) -> str:
    return f"⚠️ Limit reached: at most {count(limit, GROUP_FORMS)}."


PAGE_GONE = "⚠️ That page doesn't exist any more."

# U4 --------------------------------------------------------------------------------------------
MSG_NOT_SET = "✉️ <b>Message</b>\nNot set yet."
MSG_CURRENT = "✉️ <b>Message</b> — this is what is posted (the preview follows):"
MSG_ASK = ("✏️ Send the message to broadcast: text, a photo/video/document/GIF with a caption, or an album "
           "of 2-10 photos/videos with one caption.")
MSG_PREVIEW_HEAD = "👀 Preview — this is exactly what will be posted:"
MSG_CONFIRM = "Save this message?"
MSG_UNSUPPORTED = ("❌ Unsupported: send text, a photo/video/document/GIF with caption, or an album of "
                   "2-10 photos/videos.")
MSG_EMPTY = "❌ The message is empty."
MSG_FILE_FAILED = "❌ I couldn't download that file; send it again."
MSG_SAVE_EXPIRED = "⚠️ Nothing to save; send the message again."


def msg_too_long(length: int, limit: int) -> str:
    return f"❌ Too long: {length}/{limit} characters."


def msg_saved(running: bool) -> str:
    tail = " The running broadcast posts it from its next round." if running else ""
    return f"💾 Message saved.{tail}"


# U9 --------------------------------------------------------------------------------------------
MESSAGE_FORMS = ("message", "messages")
ROTATION_NAMES = {"seq": "in order (each round the next message to every group)",
                  "rnd": "random (each group a random one, never the same twice in a row)"}
MSG_ASK_ANOTHER = ("➕ Send another message for the rotation: text, a photo/video/document/GIF with a "
                   "caption, or an album of 2-10 photos/videos with one caption.")
MSG_PREVIEW_ALBUM = "⬆️ The album above is posted as one post, the caption under it. Save it?"
MSG_ALBUM_NO_PREVIEW = "⚠️ The album's preview could not be shown; it is posted as one album."
MSG_GONE = "⚠️ That message no longer exists."
MSG_ALBUM_SIZE = "❌ An album needs 2 to 10 photos or videos."
MSG_ALBUM_KINDS = "❌ Unsupported album: an album to broadcast holds photos and videos only."


def msg_list(previews: Sequence[str], limit: int, rotation: str) -> str:
    """U9.1: the user's messages, numbered, with the rotation mode."""
    lines = [f"✉️ <b>Messages</b> — {count(len(previews), MESSAGE_FORMS)} of at most {limit}; "
             "this is what is posted, in turn:"]
    lines += [f"{n}. {esc(preview)}" for n, preview in enumerate(previews, start=1)]
    if len(previews) >= 2:
        lines.append(f"Rotation: {ROTATION_NAMES.get(rotation, rotation)}.")
    return "\n".join(lines)


def msg_preview_label(kind: str | None, preview: str, album: int = 0) -> str:
    """One line of the list: the caption's first characters and what media goes with it."""
    if album:
        media = f"[album of {album}] "
    elif kind:
        media = f"[{kind}] "
    else:
        media = ""
    return f"{media}{preview}".strip() or "[no text]"


def msg_view_head(n: int) -> str:
    return f"👁 Message {n} — posted exactly like this:"


def msg_limit(limit: int) -> str:
    return f"⚠️ You can keep at most {count(limit, MESSAGE_FORMS)}; delete one first (🗑), then add."


def msg_added(n: int, running: bool) -> str:
    tail = " The running broadcast rotates it in from its next round." if running else ""
    return f"💾 Message {n} added.{tail}"


def msg_deleted(n: int, left: int, stopped: bool) -> str:
    if stopped:
        return (f"🗑 Message {n} deleted. That was the last one: the broadcast is stopped. "
                "Add a message to start it again.")
    if left == 0:
        return f"🗑 Message {n} deleted. No message is left; add one before you start."
    return f"🗑 Message {n} deleted; {count(left, MESSAGE_FORMS)} left. A running broadcast goes on with them."


def rotation_set(rotation: str) -> str:
    return f"🔁 Rotation: {ROTATION_NAMES.get(rotation, rotation)}."


def status_message_no(n: int) -> str:
    """U9 status: which message a group got in the last round."""
    return f"message {n}" if n > 0 else "a deleted message"


# U5 --------------------------------------------------------------------------------------------
def interval_menu(current: str | None, low: str, high: str) -> str:
    shown = esc(current) if current else "not set"
    return f"⏱ <b>Interval</b>\nCurrent: {shown}\nChoose a preset or send your own ({low} – {high})."


def interval_ask(low: str, high: str) -> str:
    return f"✍️ Send an interval: 45, 45m, 1h30m, 2h (min {low}, max {high})."


def interval_bad(low: str, high: str) -> str:
    return f"❌ Send an interval between {low} and {high}, e.g. 1h30m."


INTERVAL_EXAMPLE = "e.g. 45, 45m, 1h30m or 2h"


def interval_not_understood(raw: str) -> str:
    """U5.5: text that isn't an interval (quoted back, shortened)."""
    shown = raw.strip()
    shown = shown if len(shown) <= 40 else shown[:39] + "…"
    return f"❌ I didn't understand “{esc(shown)}” as an interval; send one like {INTERVAL_EXAMPLE}."


def interval_below(value: str, low: str) -> str:
    return f"❌ {esc(value)} is below the minimum of {low}; send a longer one, {INTERVAL_EXAMPLE}."


def interval_above(value: str, high: str) -> str:
    return f"❌ {esc(value)} is above the maximum of {high}; send a shorter one, {INTERVAL_EXAMPLE}."


def interval_saved(every: str, next_run: datetime | None, now: datetime | None = None) -> str:
    if next_run is None:
        return f"⏱ Saved: every {esc(every)}."
    return f"⏱ Saved: every {esc(every)}, next round at {hhmm(next_run, now)}."


# U10 -------------------------------------------------------------------------------------------
DAY_INITIALS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
ZONE_EXAMPLE = "a name like Europe/Berlin or an offset from UTC like +3 or -05:30"
HOURS_EXAMPLE = "like 9-22, 09:00-22:30 or 22-06 (across midnight)"
SCH_TZ_ASK = f"🌍 Send your time zone: {ZONE_EXAMPLE}."
SCH_DAYS = "📅 <b>Days</b> on which rounds may start (tap a day to switch it):"
SCH_LAST_DAY = "At least one day stays on; “Any time” removes the window."
SCH_NO_HOURS = "Set the active hours first."
SCH_OFF = "♾ No schedule window: rounds start at any time."


def day_caption(weekday: int, on: bool) -> str:
    return f"{'✅' if on else '▫️'} {DAY_INITIALS[weekday]}"


def window_wait(opens: datetime, now: datetime | None) -> str:
    """U10.4: ``waiting for the window: starts 09:00 Europe/Berlin, in 2 h``."""
    return f"waiting for the window: starts {hhmm(opens, now)}"


def schedule_menu(zone: str, hours: str | None, days: str | None, opens: datetime | None,
                  next_run: datetime | None, now: datetime) -> str:
    """U10.1: the time zone (named, with its offset now), active hours and days."""
    lines = [
        "🕘 <b>Schedule</b>",
        f"🌍 Time zone: {esc(zone)}",
        f"🕘 Active hours: {esc(hours) if hours else 'any time'}",
        f"📅 Days: {esc(days) if days else 'every day'}",
    ]
    if opens is not None:
        lines.append(f"⏸ Outside the window now; it opens at {hhmm(opens, now)}")
    if next_run is not None:
        lines.append(f"🕒 Next run: {hhmm(next_run, now)}")
    lines.append("Rounds start only within the window; a round under way stops when it closes and goes on "
                 "at the next opening.")
    return "\n".join(lines)


def sch_hours_ask(zone: str) -> str:
    return f"🕘 Send the active hours, {HOURS_EXAMPLE}, on your clock ({esc(zone)})."


def sch_tz_bad(raw: str) -> str:
    shown = raw.strip()
    shown = shown if len(shown) <= 40 else shown[:39] + "…"
    return f"❌ I don't know the time zone “{esc(shown)}”; send {ZONE_EXAMPLE}."


def sch_hours_bad(raw: str) -> str:
    shown = raw.strip()
    shown = shown if len(shown) <= 40 else shown[:39] + "…"
    return f"❌ I didn't understand “{esc(shown)}” as hours; send them {HOURS_EXAMPLE}."


def sch_tz_set(zone: str) -> str:
    return f"✅ Time zone set: {esc(zone)}. Every time I show is on this clock now."


def sch_hours_set(hours: str, zone: str, opens: datetime | None, now: datetime) -> str:
    text = f"✅ Active hours set: {esc(hours)} ({esc(zone)})."
    if opens is not None:
        text += f" Outside them now; the window opens at {hhmm(opens, now)}."
    return text


def sch_days_set(days: str) -> str:
    return f"📅 Days: {esc(days)}"


# U6 --------------------------------------------------------------------------------------------
MISSING_LABELS = {
    "access": "access to the bot",
    "account": "a connected account",
    "groups": "groups to post to (choose at least one active group)",
    "message": "a message",
    "interval": "an interval",
}


def missing(items: list[str]) -> str:
    lines = ["📋 <b>Not ready to start.</b> Missing:"]
    lines += [f"• {MISSING_LABELS.get(item, item)}" for item in items]
    return "\n".join(lines)


def started(groups: int, every: str, next_run: datetime | None, now: datetime | None,
            waits_for_window: bool = False) -> str:
    """U6.2: due now, or (the last round started less than an interval ago) at its time; U10.4:
    outside the schedule window, at its next opening."""
    head = f"▶️ Started: {count(groups, GROUP_FORMS)} every {esc(every)}."
    if waits_for_window and next_run is not None:
        return f"{head} Outside the schedule window: {window_wait(next_run, now)}."
    if next_run is None or now is None or next_run <= now:
        return f"{head} The first round starts now."
    return (
        f"{head} The last round was less than {esc(every)} ago, so the next round is at "
        f"{hhmm(next_run, now)}. “Post now” sends at once."
    )


POST_NOW_CONFIRM = (
    "⚠️ Post to every group now, before the interval has passed? Posting too often can get "
    "the account reported for spam."
)
POSTING_NOW = "▶️ The next round starts now."


ALREADY_RUNNING = "ℹ️ Already running."
NOT_RUNNING = "ℹ️ Not running."


def stopped(sent: int | None, failed: int | None, total: int | None) -> str:
    if total is None:
        return "⏹ Stopped."
    return f"⏹ Stopped; last round {sent or 0} sent, {failed or 0} failed of {total}."


# U7 --------------------------------------------------------------------------------------------
def history_line(rounds: int, sent: int, failed: int, skipped: int, since: date | None) -> str:
    """U7.1: every finished round so far (kept exact when old rounds are summarised and deleted)."""
    start = f" since {since.day} {since:%b %Y}" if since is not None else ""
    rounds_text = count(rounds, ROUND_FORMS)
    return f"📈 All time: {sent} sent, {failed} failed, {skipped} skipped in {rounds_text}{start}"


def status_card(
    *,
    running: bool,
    interval: str | None,
    next_run: datetime | None,
    last_round: dict[str, object] | None,
    groups: list[tuple[str, str]],
    more: int,
    paused_until: datetime | None,
    disabled: list[tuple[str, str]],
    now: datetime | None = None,
    no_groups_left: bool = False,
    notify_on: bool | None = None,
    window_opens: datetime | None = None,
) -> str:
    lines = [
        "📊 <b>Status</b>",
        f"State: {broadcast_state(running, no_groups_left)}",
        f"Interval: {esc(interval) if interval else 'not set'}",
        f"Next run: {hhmm(next_run, now) if running and not no_groups_left else '—'}",
    ]
    if running and window_opens is not None and not no_groups_left:
        wait = window_wait(window_opens, now)
        lines.append(f"⏸ {wait[:1].upper()}{wait[1:]}")
    if notify_on is not None:
        lines.append(f"Round reports: {'on' if notify_on else 'off'}")
    if paused_until is not None:
        lines.append(f"⏳ Flood pause until {hhmm(paused_until, now)}")
    if last_round:
        started_at = last_round.get("started_at")
        when = hhmm(started_at) if isinstance(started_at, datetime) else "—"
        lines.append(
            f"Last round ({when}): {last_round.get('sent', 0)} sent, {last_round.get('failed', 0)} failed, "
            f"{last_round.get('skipped', 0)} skipped, {last_round.get('pending', 0)} pending"
        )
        for title, outcome in groups:
            lines.append(f"  • {esc(title)}: {esc(outcome)}")
        if more:
            lines.append(f"  … and {more} more")
    else:
        lines.append("Last round: none yet")
    if disabled:
        lines.append("Selected groups that are disabled:")
        lines += [f"  ⚠️ {esc(title)} ({reason_text(reason)})" for title, reason in disabled]
    return "\n".join(lines)


OUTCOME_WORDS = {
    "sent": "✅ sent",
    "failed": "❌ failed",
    "skipped": "⏭ skipped",
    "pending": "⏳ pending",
    "sending": "⏳ sending",
    "flood_wait": "⏳ waiting (flood)",
    "unknown": "❔ unknown",
}

NOTIFY_ON = "🔔 Round reports on."
NOTIFY_OFF = "🔕 Round reports off."

# notifications the bot sends on its own ------------------------------------------------------------


def note_round(sent: int, failed: int, skipped: int, total: int) -> str:
    return f"📣 Round finished: {sent} sent, {failed} failed, {skipped} skipped of {total}."


def note_group_disabled(title: str, reason: str) -> str:
    return f"⚠️ Group “{esc(title)}” was disabled: {reason_text(reason)}. It is skipped from now on."


def note_flood_pause(duration: str, until: datetime | None, now: datetime | None = None) -> str:
    return f"⏳ Telegram asked to wait {esc(duration)}; resuming at {hhmm(until, now)}."


NOTE_SESSION_ENDED = "🔌 Your Telegram session ended, so the broadcast stopped. Connect again."
NOTE_ACCESS_EXPIRED = "⌛ Your access expired, so the broadcast stopped."
NOTE_ACCESS_REVOKED = "⛔ Your access was revoked by an administrator; the broadcast stopped."
NOTE_BROADCAST_STOPPED = "⏹ An administrator stopped your broadcast."


# A admin ------------------------------------------------------------------------------------------
BTN_ADM_USERS = "👥 Users"
BTN_ADM_PENDING = "🙋 Access requests"
BTN_ADM_RUNTIME = "⚙️ Runtime"
BTN_ADM_MODE = "🔐 Access mode"
BTN_ADM_PAUSE = "⏸ Pause all sending"
BTN_ADM_RESUME = "▶️ Resume sending"
BTN_ADM_ANNOUNCE = "📣 Announcement"
BTN_ADM_BACK = "🛠 Admin menu"
BTN_ADM_REVOKE = "🚫 Revoke access"
BTN_ADM_BAN = "⛔ Ban"
BTN_ADM_UNBAN = "♻️ Unban"
BTN_ADM_STOP = "⏹ Stop broadcast"
BTN_ADM_LOGOUT = "🔌 Log out account"
BTN_ADM_SEND = "📣 Send to everyone"

MODE_WORDS = {
    "open": "open — everyone may use the bot",
    "approval": "approval — new users request access, an admin decides",
    "whitelist": "whitelist — only users an admin granted access",
}
ACCESS_WORDS = {
    "allowed": "✅ allowed",
    "needs_approval": "🔒 needs approval",
    "pending": "⏳ request pending",
    "invitation_only": "🔒 not invited",
    "banned": "⛔ banned",
    "expired": "⌛ expired",
}
ACCESS_ICONS = {"allowed": "✅", "pending": "⏳", "banned": "⛔", "expired": "⌛"}


def grant_caption(days: int) -> str:
    return "✅ Grant, no expiry" if days == 0 else f"✅ Grant {days} days"


def mode_caption(mode: str, current: bool) -> str:
    return f"• {mode} •" if current else mode


def admin_menu(*, users: int, connected: int, running: int, pending: int, mode: str, paused: bool,
               head: str = "") -> str:
    lines = [head, ""] if head else []
    lines += [
        "🛠 <b>Admin</b>",
        f"Users: {users}",
        f"Connected accounts: {connected}",
        f"Running broadcasts: {running}",
        f"Pending requests: {pending}",
        f"Access mode: {esc(mode)}",
        "Sending: ⏸ paused for everyone" if paused else "Sending: ▶️ on",
    ]
    return "\n".join(lines)


PAUSED = "⏸ All sending is paused: no send starts; schedules are kept."
RESUMED = "▶️ Sending resumed; schedules go on."
ALREADY_PAUSED = "ℹ️ Sending was already paused."
ALREADY_RESUMED = "ℹ️ Sending was not paused."


def users_page(page: int, pages: int, total: int) -> str:
    return (f"👥 <b>Users</b> — page {page + 1} of {max(pages, 1)} ({total} in all)\n"
            "Newest first. Tap a user for the card.")


def user_button(name: str, uid: int, access: str, running: bool) -> str:
    icon = ACCESS_ICONS.get(access, "🔒")
    caption = f"{icon}{' ▶️' if running else ''} {name} · {uid}"
    return caption[:64]


def _day(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    name = SHOWN_ZONE.get()
    return f"{moment.astimezone(schedule.zone(name)):%Y-%m-%d %H:%M} {schedule.short_zone(name, moment)}"


def user_card(
    *, uid: int, name: str, username: str, access: str, access_status: str, expires_at: datetime | None,
    phone_masked: str, account_name: str, disconnected_reason: str, groups_selected: int, groups_total: int,
    groups_disabled: int, running: bool, interval: str | None, next_run: datetime | None,
    last_seen: datetime | None, head: str = "",
) -> str:
    handle = f" @{esc(username)}" if username else ""
    if phone_masked:
        account = f"{esc(account_name)} ({esc(phone_masked)})".strip()
        if disconnected_reason:
            account += f", disconnected ({esc(disconnected_reason)})"
    else:
        account = "not connected"
    if access_status == "granted":
        expiry = f"until {_day(expires_at)}" if expires_at is not None else "no expiry"
    else:
        expiry = "—"
    broadcast = "⏸ stopped"
    if running:
        broadcast = f"▶️ running every {esc(interval or '?')}, next at {hhmm(next_run)}"
    lines = [head, ""] if head else []
    lines += [
        f"👤 <b>{esc(name)}</b>{handle} (id {uid})",
        f"Access: {ACCESS_WORDS.get(access, esc(access))}",
        f"Expires: {expiry}",
        f"Account: {account}",
        f"Groups: {groups_selected} selected of {groups_total}, {groups_disabled} disabled",
        f"Broadcast: {broadcast}",
        f"Last seen: {_day(last_seen)}",
    ]
    return "\n".join(lines)


ACTION_OK = {
    "grant": "✅ Access granted",
    "revoke": "🚫 Access revoked",
    "ban": "⛔ User banned",
    "unban": "♻️ User unbanned",
    "stop": "⏹ Broadcast stopped",
    "logout": "🔌 Account logged out",
}
ACTION_NO_CHANGE = {
    "grant": "ℹ️ Access was already granted",
    "revoke": "ℹ️ Access was already revoked",
    "ban": "ℹ️ Already banned",
    "unban": "ℹ️ Not banned",
    "stop": "ℹ️ No broadcast was running",
    "logout": "ℹ️ No account was connected",
}


ADMIN_LOGOUT_BUSY = (
    "⏳ The user's broadcast is sending right now; try again in a moment. "
    "The broadcast stopped; press “Log out account” again to finish the logout."
)


def admin_action(action: str, outcome: str, days: int | None = None) -> str:
    if outcome == "no_change":
        return ACTION_NO_CHANGE.get(action, "ℹ️ Nothing changed")
    text = ACTION_OK.get(action, "✅ Done")
    if action == "grant" and days is not None:
        text += " (no expiry)" if days == 0 else f" for {days} days"
    return text + "."


def pending_list(items: Sequence[tuple[int, str, datetime | None]], more: int, head: str = "") -> str:
    lines = [head, ""] if head else []
    lines.append(f"🙋 <b>Access requests</b> ({len(items) + more} pending)")
    if not items:
        lines.append("No pending requests.")
    for uid, name, requested in items:
        lines.append(f"• {esc(name)} (id {uid}), asked {_day(requested)}")
    if more:
        lines.append(f"… and {more} more")
    return "\n".join(lines)


def pending_caption(approve: bool, name: str, uid: int) -> str:
    return f"{'✅' if approve else '⛔'} {name} · {uid}"[:64]


def mode_menu(current: str, head: str = "") -> str:
    lines = [head, ""] if head else []
    lines.append(f"🔐 <b>Access mode</b>: {esc(current)}")
    lines += [f"• {text}" for text in MODE_WORDS.values()]
    return "\n".join(lines)


def mode_set(mode: str, changed: bool, stopped: int) -> str:
    if not changed:
        return f"ℹ️ Access mode was already {esc(mode)}."
    tail = f" {stopped} broadcast(s) of users without access stopped." if stopped else ""
    return f"✅ Access mode: {esc(mode)}.{tail}"


def runtime(
    *, ready: int, delayed: int, in_progress: int, workers: Sequence[tuple[str, float]], running: int,
    open_rounds: int, sends: Mapping[str, int], flood_paused: int, lag: float, paused: bool,
) -> str:
    sent = ", ".join(f"{esc(k)} {v}" for k, v in sends.items()) or "none"
    lines = [
        "⚙️ <b>Runtime</b>",
        f"Queue: {ready} ready, {delayed} delayed, {in_progress} in progress",
        f"Live workers: {len(workers)}",
    ]
    lines += [f"  • {esc(name)} ({age:.0f} s ago)" for name, age in workers[:5]]
    if len(workers) > 5:
        lines.append(f"  … and {len(workers) - 5} more")
    lines += [
        f"Running broadcasts: {running} ({open_rounds} rounds in progress)",
        f"Sends in the last hour: {sent}",
        f"Flood pauses: {flood_paused}",
        f"Scheduler lag: {lag:.1f} s",
        "Sending: ⏸ paused for everyone" if paused else "Sending: ▶️ on",
    ]
    return "\n".join(lines)


def announce_ask(targets: int) -> str:
    return (f"📣 Send the announcement text. It goes to {targets} users of the bot "
            "(banned users and users who blocked the bot excluded).")


ANNOUNCE_UNSUPPORTED = "❌ Send the announcement as text (formatting is kept)."
ANNOUNCE_PREVIEW_HEAD = "👀 Preview — every user gets exactly this:"
ANNOUNCE_NOTHING = "⚠️ Nothing to send; start the announcement again."
ANNOUNCE_BUSY = "ℹ️ An announcement is being sent already; wait for its report."


def announce_confirm(targets: int) -> str:
    return f"Send it to {targets} users? Delivery is paced within Telegram's limits."


def announce_started(targets: int) -> str:
    return f"📣 Sending the announcement to {targets} users… I'll report here when it's done."


def announce_report(delivered: int, blocked: int, failed: int, total: int) -> str:
    return (f"📣 Announcement done: delivered to {delivered} of {total}, "
            f"{blocked} blocked the bot, {failed} failed.")
