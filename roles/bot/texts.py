"""Every user-visible wording of the control bot, in one place.

Texts are HTML (the bot's default parse mode); anything that comes from a user or
from Telegram (names, titles, message snippets) goes through ``esc``. The message
preview is the one exception: it is sent with the user's own entities and no parse
mode, exactly as it will be posted.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from datetime import date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accounts.gateway import LoginState

from domain import rules, schedule
from roles.bot.i18n import LANGUAGES, N_, N_map, _, current, translate, translate_module
from roles.bot.plural import count

# button captions -------------------------------------------------------------------------------
BTN_MAIN = N_("🏠 Main menu")
BTN_ACCOUNT = N_("👤 Account")
BTN_GROUPS = N_("👥 Groups")
BTN_MESSAGE = N_("✉️ Message")
BTN_INTERVAL = N_("⏱ Interval")
BTN_SCHEDULE = N_("🕘 Schedule")
BTN_SCH_TZ = N_("🌍 Time zone")
BTN_SCH_HOURS = N_("🕘 Active hours")
BTN_SCH_DAYS = N_("📅 Days")
BTN_SCH_OFF = N_("♾ Any time")
BTN_SCH_BACK = N_("◀️ Schedule")
BTN_START = N_("▶️ Start broadcast")
BTN_STOP = N_("⏹ Stop broadcast")
BTN_STATUS = N_("📊 Status")
BTN_ADMIN = N_("🛠 Admin")
BTN_REQUEST = N_("🙋 Request access")
BTN_LOGIN = N_("🔑 Connect account")
BTN_LOGOUT = N_("🚪 Disconnect")
BTN_LOGOUT_YES = N_("Yes, disconnect")
BTN_CANCEL = N_("✖️ Cancel")
BTN_SHARE_PHONE = N_("📱 Share my number")
BTN_RESEND = N_("🔁 Send a new code")
BTN_IMPORT_STOP = N_("⏹ Stop the import")
BTN_KP_DEL = "⌫"
BTN_KP_OK = N_("✅ OK")
BTN_IMPORT = N_("🔄 Import groups")
BTN_LIST = N_("📋 Choose groups")
BTN_PREV = N_("◀️ Previous page")
BTN_NEXT = N_("Next ▶️")
BTN_ALL = N_("☑️ All on page")
BTN_NONE = N_("🔲 None on page")
BTN_DONE = N_("✔️ Done")
BTN_MSG_SET = N_("✏️ Set message")
BTN_MSG_NEW = N_("✏️ Send another")
BTN_MSG_SAVE = N_("💾 Save")
BTN_MSG_ADD = N_("➕ Add a message")
BTN_MSG_REPLACE_FIRST = N_("✏️ Replace message 1")
BTN_MSG_MENU = N_("✉️ Messages")
BTN_ROTATION_SEQ = N_("🔁 In order")
BTN_ROTATION_RND = N_("🎲 Random")


def btn_msg_view(n: int) -> str:
    return f"👁 {n}"


def btn_msg_delete(n: int) -> str:
    return f"🗑 {n}"


def btn_rotation(label: str, chosen: bool) -> str:
    return f"✅ {label}" if chosen else label


BTN_INT_CUSTOM = N_("✍️ Custom")
BTN_REFRESH = N_("🔄 Refresh")
BTN_APPROVE = N_("✅ Approve")
BTN_POST_NOW = N_("⏩ Post now")
BTN_POST_NOW_YES = N_("⏩ Yes, post now")
BTN_REJECT = N_("⛔ Reject")

BTN_SETTINGS = N_("⚙️ Settings")


def cancel_words() -> frozenset[str]:
    """What the reply-keyboard Cancel button sends, in every language; read like /cancel."""
    return frozenset({"cancel", "/cancel", _("cancel").lower()} | {translate(BTN_CANCEL, lang).lower()
                                                                    for lang in LANGUAGES})


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
        return _("now")
    minutes = int(-(-seconds // 60)) if seconds > 0 else int(-seconds // 60)
    span = units(rules.human_duration(minutes * 60))
    return (_("in {span}") if seconds > 0 else _("{span} ago")).format(span=span)


# the unit words of domain.rules' durations ("1 h 30 min"), shown in the user's language
UNIT_WORDS = N_map({"d": N_("d"), "h": N_("h"), "min": N_("min"), "s": N_("s")})
_UNIT = re.compile(r"(\d) (d|h|min|s)\b")


def units(duration: str) -> str:
    """A duration from ``domain.rules`` (``"1 h 30 min"``) with its unit words in the current language."""
    if current() == "en":
        return duration
    return _UNIT.sub(lambda m: f"{m.group(1)} {_(UNIT_WORDS[m.group(2)])}", duration)


def notify_caption(on: bool) -> str:
    """The toggle names the action it performs (the status card shows the state)."""
    return _("🔕 Turn round reports off") if on else _("🔔 Turn round reports on")


# nouns that agree with a number: the English forms (one|other) are the msgid, Russian has three
GROUP_FORMS = N_("group|groups")
ATTEMPT_FORMS = N_("attempt|attempts")
USER_FORMS = N_("user|users")
DAY_FORMS = N_("day|days")
ROUND_FORMS = N_("round|rounds")


def counted(n: int, forms: str) -> str:
    """``n`` and the noun in the form that agrees with it, in the current language (``plural.py``)."""
    return count(n, _(forms).split("|"), current())


def interval_preset_caption(label: str, current: bool) -> str:
    label = units(label)
    return f"• {label} •" if current else label


# U1 --------------------------------------------------------------------------------------------
WELCOME = N_(
    "👋 <b>Welcome!</b> I post your message to your Telegram groups on a schedule, "
    "from your own account.\n"
    "Steps: connect your account, choose groups, set the message and the interval, then start."
)
ACCESS_NEEDS_APPROVAL = N_("🔒 Access needs approval by an administrator. "
                           "Press the button to send a request.")
ACCESS_PENDING = N_("⏳ Your access request is waiting for approval; you'll get a message here.")
ACCESS_REQUESTED = N_("📨 Request sent. Access needs approval; you'll get a message when an admin decides.")
ACCESS_INVITATION_ONLY = N_("🔒 Access by invitation only. Ask an administrator to grant you access.")
ACCESS_EXPIRED = N_("⌛ Your access has expired. Ask an administrator to extend it.")
ACCESS_DENIED = N_("⛔ Access denied.")
ACCESS_APPROVED = N_("✅ Access approved. Press /start to begin.")
ACCESS_REJECTED = N_("⛔ Your access request was rejected.")


def admin_access_request(uid: int, name: str, username: str) -> str:
    handle = f" @{esc(username)}" if username else ""
    return _("🙋 <b>Access request</b>\n{name}{handle} (id {uid}) asks for access.").format(
        name=esc(name) or _("User"), handle=handle, uid=uid)


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
    accounts: Sequence[str] = (),
) -> str:
    """U1.5: the current account's broadcast; with two accounts or more (U8.6), a line for each
    (``account_line``) after it."""
    account = account_label(account_name or "", phone_masked) if phone_masked else _("not connected")
    if message_snippet is None and media_kind is None:
        message = _("not set")
    else:
        media = media_label(media_kind) if media_kind else ""
        quoted = f"“{esc(message_snippet)}”" if message_snippet else ""
        message = " + ".join(part for part in (media, quoted) if part)
    state = broadcast_state(running, no_groups_left)
    lines = [
        _("🏠 <b>Main menu</b>"),
        _("👤 Account: {account}").format(account=account),
        _("👥 Groups: {selected} selected of {total}").format(selected=selected, total=total),
        _("✉️ Message: {message}").format(message=message),
        _("⏱ Interval: {interval}").format(interval=esc(units(interval)) if interval else _("not set")),
        _("📣 Broadcast: {state}").format(state=state),
    ]
    if running and not no_groups_left:
        lines.append(_("🕒 Next run: {when}").format(when=hhmm(next_run, now)))
    if paused_until is not None:
        lines.append(_("⏳ Paused by Telegram until {when}").format(when=hhmm(paused_until, now)))
    if len(accounts) >= 2:
        lines.append(_("👥 Your accounts:"))
        lines.extend(accounts)
    return "\n".join(lines)


NO_GROUPS_LEFT = N_("⏸ paused — no groups left to post to")
NOTE_NO_GROUPS_LEFT = N_(
    "⏸ Your broadcast is paused: no groups left to post to (the groups you chose are disabled or "
    "gone). Choose groups and it goes on by itself."
)


def broadcast_state(running: bool, no_groups_left: bool = False) -> str:
    """U6.6: a running broadcast with no active selected group posts nothing: it shows as paused."""
    if running and no_groups_left:
        return _(NO_GROUPS_LEFT)
    return _("▶️ running") if running else _("⏸ stopped")


MEDIA_LABELS = N_map({"photo": N_("🖼 photo"), "video": N_("🎬 video"), "animation": N_("🎞 GIF"),
                      "document": N_("📎 document")})


def media_label(kind: str) -> str:
    label = MEDIA_LABELS.get(kind)
    return _(label) if label else f"[{esc(kind)}]"


HELP = N_(
    "ℹ️ <b>How it works</b>\n"
    "1. Connect your Telegram account — /login or 👤 Account.\n"
    "2. Import and choose groups — 👥 Groups.\n"
    "3. Set the message to post — ✉️ Message.\n"
    "4. Set the interval — ⏱ Interval.\n"
    "5. Start the broadcast — ▶️ Start.\n"
    "/start shows the main menu, /status the broadcast status, /cancel stops any input."
)
UNKNOWN_TEXT = N_("🤷 I didn't understand that. Use the menu below.")
CANCELLED = N_("✖️ Cancelled.")
SLOW_DOWN = N_("🐢 Slow down, please — too many requests at once.")
STALE = N_("⚠️ This button is outdated.")
NOT_YOURS = N_("⚠️ That item isn't available.")
ERROR = N_("⚠️ Something went wrong. Please try again.")
NOT_ALLOWED = N_("⛔ Not allowed.")
GLOBAL_PAUSE = N_("⏸ Sending is paused by the administrator; schedules are kept.")


def admin_decided(uid: int, approved: bool, already: bool) -> str:
    if already:
        text = (_("ℹ️ Access request of user {uid}: approved (already).") if approved
                else _("ℹ️ Access request of user {uid}: rejected (already)."))
    else:
        text = (_("✅ Access request of user {uid}: approved.") if approved
                else _("✅ Access request of user {uid}: rejected."))
    return text.format(uid=uid)


def admin_request_gone(uid: int) -> str:
    return _("ℹ️ User {uid} has no pending access request (already decided).").format(uid=uid)


# U2 --------------------------------------------------------------------------------------------
ACC_NOT_CONNECTED = N_(
    "👤 <b>Account</b>\nNo Telegram account is connected. I post from your own account, so connect it "
    "first: I'll ask for your phone number and the login code Telegram sends you."
)


def acc_connected(name: str, phone_masked: str) -> str:
    return _("👤 <b>Account</b>\n✅ Connected as {name} ({phone}).").format(
        name=esc(name), phone=esc(phone_masked))


def connected(name: str, phone_masked: str) -> str:
    return _("✅ Connected as {name} ({phone}).").format(name=esc(name), phone=esc(phone_masked))


# U8 several accounts ---------------------------------------------------------------------------
ACCOUNT_FORMS = N_("account|accounts")
BTN_ADD_ACCOUNT = N_("➕ Add an account")
BTN_ALL_ACCOUNTS = N_("👥 All accounts")
ACCOUNTS_HINT = N_("The groups, message, interval, schedule and start/stop menus act on the current "
                   "account (👉). Press an account to make it current.")
CURRENT_MARK = N_("current")


def account_label(name: str, phone_masked: str) -> str:
    """An account as the menus name it: its name and masked phone (``Ann (+1•••0123)``)."""
    return f"{esc(name)} ({esc(phone_masked)})".strip()


def note_account(name: str, phone_masked: str) -> str:
    """U8: the first line of a notification about one account of a user who has several."""
    return _("👤 Account {account}:").format(account=account_label(name, phone_masked))


def account_button(name: str, phone_masked: str, current: bool) -> str:
    """U8.1: an account's button in the list (the current one marked)."""
    return f"{'👉 ' if current else ''}{name} {phone_masked}"


def accounts_list(accounts: Sequence[tuple[str, str, bool, bool]], limit: int) -> str:
    """U8.1: the user's connected accounts, (name, masked phone, running, current) each."""
    lines = [_("👥 Your Telegram accounts: {count} of at most {limit}").format(
        count=len(accounts), limit=limit)]
    for name, phone, running, chosen in accounts:
        line = _("{mark} {name} ({phone}): {state}").format(
            mark="👉" if chosen else "•", name=esc(name), phone=esc(phone), state=broadcast_state(running))
        lines.append(f"{line} — {_(CURRENT_MARK)}" if chosen else line)
    return "\n".join(lines)


def accounts_limit(limit: int) -> str:
    """U8.3: ``acc:login`` with ACCOUNTS_PER_USER accounts connected."""
    return _("⛔ You can connect at most {accounts}. Disconnect one of them first to connect "
             "another.").format(accounts=counted(limit, ACCOUNT_FORMS))


def account_selected(name: str, phone_masked: str, running: bool) -> str:
    """U8.2: the account card after ``acc:sel:<aid>``."""
    return "\n".join([
        acc_connected(name, phone_masked),
        _("📣 Broadcast: {state}").format(state=broadcast_state(running)),
        _("👉 This is now the current account: the groups, message, interval, schedule and start/stop "
          "menus act on it."),
    ])


def logout_confirm_named(name: str, phone_masked: str) -> str:
    return _("🚪 Disconnect {name} ({phone})? Its broadcast stops; your other accounts go on.").format(
        name=esc(name), phone=esc(phone_masked))


def reconnected(name: str, phone_masked: str) -> str:
    """U8.4: the same Telegram account logged in again by this user."""
    return _("✅ {name} ({phone}) is already connected: its session was replaced by this login; its "
             "groups, messages and broadcast are kept.").format(name=esc(name), phone=esc(phone_masked))


def account_line(*, name: str, phone_masked: str, current: bool, selected: int, messages: int,
                 interval: str | None, running: bool, next_run: datetime | None, now: datetime | None) -> str:
    """U8.6: one account's line on the main card."""
    line = _("{mark} {name} ({phone}): {groups} selected, {messages}, interval {interval}, {state}").format(
        mark="👉" if current else "•", name=esc(name), phone=esc(phone_masked),
        groups=counted(selected, GROUP_FORMS), messages=counted(messages, MESSAGE_FORMS),
        interval=esc(units(interval)) if interval else _("not set"), state=broadcast_state(running))
    if running and next_run is not None:
        line += _(", next run {when}").format(when=hhmm(next_run, now))
    return f"{line} — {_(CURRENT_MARK)}" if current else line


ASK_PHONE = N_(
    "📱 Send your phone number in international format, e.g. <code>+1 555 012 3456</code>, "
    "or press “Share my number”."
)
PHONE_INVALID_FORMAT = N_("❌ That's not a phone number. Example: <code>+1 555 012 3456</code>")
PHONE_NOT_OWN = N_("❌ Please share your own number, not someone else's contact.")
PHONE_REJECTED = N_("❌ Telegram rejected this number. Check it and send it again.")
PHONE_BANNED = N_("⛔ This number is banned by Telegram.")
TELEGRAM_UNREACHABLE = N_("📡 Telegram is unreachable, try again later.")


def phone_accepted(phone_masked: str) -> str:
    return _("📱 Number accepted: {phone}.").format(phone=esc(phone_masked))


def too_many_attempts(duration: str) -> str:
    return _("⏳ Too many attempts, try again in {duration}.").format(duration=esc(units(duration)))


def code_prompt(typed: int, length: int, note: str = "") -> str:
    dots = "•" * typed + "○" * max(0, length - typed) if length else "•" * typed
    head = f"{note}\n" if note else ""
    return head + _(
        "📨 The code was sent to your Telegram app. Type it here with spaces "
        "(<code>1 2 3 4 5</code>) or use the keypad.\nCode: {dots}").format(dots=dots)


# Where Telegram sent the code (auth.SentCodeType), and what a resend would use (auth.CodeType).
_CODE_WENT = N_map({
    "app": N_("📨 The code was sent to your Telegram app (the \"Telegram\" chat on your other devices)."),
    "sms": N_("📨 The code was sent by SMS to your phone."),
    "firebase_sms": N_("📨 The code was sent by SMS to your phone."),
    "call": N_("📞 Telegram is calling your phone to dictate the code."),
    "flash_call": N_("📞 Telegram will call you and hang up at once: "
                     "the code is the calling number ({hint})."),
    "missed_call": N_("📞 Telegram will call you from a number starting with <code>{hint}</code>. "
                    "Don't answer: the code is the <b>last {length} digits</b> of that number."),
    "email": N_("📧 The code was sent to your email <code>{hint}</code>."),
    "fragment_sms": N_("📨 The code was sent to your anonymous number on Fragment ({hint})."),
    "sms_word": N_("📨 Telegram sent you an SMS with a word; type the code from it."),
    "sms_phrase": N_("📨 Telegram sent you an SMS with a phrase; type the code from it."),
})
_NEXT_WAY = N_map({
    "sms": N_("No code? “{resend}” sends it by SMS."),
    "call": N_("No code? “{resend}” sends it by a phone call."),
    "flash_call": N_("No code? “{resend}” sends it by a flash call."),
    "missed_call": N_("No code? “{resend}” sends it by a missed call."),
    "fragment_sms": N_("No code? “{resend}” sends it through Fragment."),
})


def code_went(code_type: str, length: int, hint: str = "", next_type: str = "") -> str:
    """Where the code went, and what "send a new code" would do."""
    text = _(_CODE_WENT.get(code_type, _CODE_WENT["app"])).format(hint=esc(hint), length=length)
    if next_type in _NEXT_WAY:
        text += "\n" + _(_NEXT_WAY[next_type]).format(resend=_(BTN_RESEND))
    return text


def login_code_prompt(typed: int, state: LoginState, note: str = "") -> str:
    """``code_prompt`` worded for where this login's code went (app, SMS, call, email, Fragment...)."""
    dots = "•" * typed + "○" * max(0, state.code_length - typed) if state.code_length else "•" * typed
    head = f"{note}\n" if note else ""
    went = code_went(state.code_type, state.code_length, state.code_hint, state.next_type)
    return head + went + "\n" + _(
        "Type it here with spaces (<code>1 2 3 4 5</code>) or use the keypad.\nCode: {dots}"
    ).format(dots=dots)


LOGIN_BLOCKED = N_map({
    "setup_email_required": N_(
        "📧 Telegram wants this account to set up a <b>login email</b> before it signs in to a new app. "
        "Open the official Telegram app, go to Settings → Privacy and Security → Login Email, add your "
        "email there, then connect again here."),
    "payment_required": N_(
        "💳 Telegram asks for a <b>payment to verify this number</b> before it sends a login code. This "
        "can only be done in the official Telegram app: sign in there first (it shows the offer), then "
        "connect again here."),
})
RESEND_UNAVAILABLE = N_("🚫 Telegram has no other way left to send the code. Type the code you already got, "
                      "or cancel and try again later.")


CODE_BAD_FORMAT = N_("❌ Send the code you received (4–8 digits).")
CODE_NEW_SENT = N_("🔁 New code sent.")
CODE_EXPIRED = N_("⌛ The code expired. Ask for a new one.")
# U2.13: Telegram voids a login code that is sent as plain digits in any chat
CODE_VOIDED = N_(
    "⌛ Telegram cancelled this code because it was sent as plain digits; get a new one and type it "
    "with spaces (1 2 3 4 5) or use the keypad."
)
KEYPAD_OUTDATED = N_("⌛ This keypad is outdated; use the newest one.")  # U2.22
LOGIN_CANCELLED_START = N_("✖️ The login was cancelled. Press 🔑 Connect account (or /login) to start again.")
PASSWORD_PROMPT = N_("🔐 Two-step verification is on; send your password (it is deleted from the chat).")
LOGIN_CANCELLED = N_("✖️ Login cancelled.")
LOGIN_EXPIRED = N_("⌛ Login expired, start again.")
LOGIN_TOO_MANY = N_("⛔ Too many wrong attempts; the login is cancelled.")
SESSION_ENDED = N_("🔌 Your session ended, connect again.")
LOGOUT_CONFIRM = N_("🚪 Disconnect the account? A running broadcast stops.")
DISCONNECTED = N_("🔌 Disconnected. The account session was closed and deleted.")
# the per-user lock is held by a broadcast batch (services.locks.Busy)
BROADCAST_BUSY = N_("⏳ Your broadcast is sending right now; try again in a moment.")
# logout stops the broadcast before it waits for the lock, so only the disconnect is left to do
LOGOUT_BUSY = N_("⏳ Your broadcast is sending right now; try again in a moment.\n"
                 "The broadcast stopped; press “Disconnect” again to finish the logout.")
# U2.x: one Telegram account is connected by one user of the bot at a time
ACCOUNT_TAKEN = N_("⛔ This Telegram account is already connected by another user of this bot. One Telegram "
                   "account can be connected by one user at a time, so this login was refused and its new "
                   "session logged out. Disconnect it there first, or connect another account.")


def wrong_code(left: int) -> str:
    return _("❌ Wrong code, {attempts} left.").format(attempts=counted(left, ATTEMPT_FORMS))


def wrong_password(left: int) -> str:
    return _("❌ Wrong password, {attempts} left.").format(attempts=counted(left, ATTEMPT_FORMS))


# U3 --------------------------------------------------------------------------------------------
CONNECT_FIRST = N_("🔑 Connect your account first.")
IMPORTING = N_("⏳ Importing…")


def groups_menu(selected: int, total: int, disabled: int) -> str:
    lines = [_("👥 <b>Groups</b>"),
             _("Selected: {selected} of {total}").format(selected=selected, total=total)]
    if disabled:
        lines.append(_("⚠️ Disabled: {disabled}").format(disabled=disabled))
    if not total:
        lines.append(_(NO_GROUPS))
    return "\n".join(lines)


def import_progress(chats_read: int, groups_found: int, archive: bool, wait_seconds: int = 0,
                    resume_at: datetime | None = None) -> str:
    """The import's progress message, edited in place page after page."""
    head = (_("⏳ Importing… {chats:,} chats read, {groups:,} groups found (reading the archive).") if archive
            else _("⏳ Importing… {chats:,} chats read, {groups:,} groups found "
                   "(reading the main chat list)."))
    head = head.format(chats=chats_read, groups=groups_found)
    if resume_at is not None:
        return head + "\n" + _("⏸ Telegram asked to wait {duration}; the import resumes at {when} by itself, "
                               "where it stopped.").format(duration=esc(human_wait(wait_seconds)),
                                                           when=hhmm(resume_at))
    if wait_seconds:
        return head + "\n" + _("⏳ Telegram asked to wait {duration}; going on after it.").format(
            duration=units(f"{wait_seconds} s"))
    return head


def human_wait(seconds: int) -> str:
    hours, rest = divmod(max(0, seconds), 3600)
    minutes = rest // 60
    if hours:
        text = f"{hours} h {minutes} min" if minutes else f"{hours} h"
    else:
        text = f"{minutes} min" if minutes else f"{seconds} s"
    return units(text)


def archived_title(title: str) -> str:
    """A group from the account's archive folder, marked as such in the list."""
    return f"🗄 {title}"


IMPORT_ALREADY = N_("⏳ Already importing your groups: the progress is shown in its message.")
IMPORT_NOT_RUNNING = N_("No import is running.")
IMPORT_STOPPING = N_("Stopping the import…")


def import_cancelled(chats_read: int) -> str:
    return _("⏹ Import stopped after {chats:,} chats; the groups found so far are kept.").format(
        chats=chats_read)


def imported(total: int, new: int, updated: int, gone: int) -> str:
    return _("🔄 Imported {total}: {new} new, {updated} updated, {gone} gone.").format(
        total=total, new=new, updated=updated, gone=gone)


def group_page(page: int, pages: int, selected: int, total: int) -> str:
    return _("👥 <b>Choose groups</b> — page {page} of {pages}\n"
             "Selected: {selected} of {total}. Tap a group to switch it.").format(
        page=page + 1, pages=max(pages, 1), selected=selected, total=total)


NO_GROUPS = N_("No groups yet: press “Import groups”.")


def group_button(title: str, selected: bool, status: str, reason: str, forum: bool = False) -> str:
    if forum:
        title = f"{FORUM_MARK} {title}"
    if status != "active":
        return f"⚠️ {title} ({reason_text(reason or status)})"
    return f"{'✅' if selected else '⬜'} {title}"


# U11 forum topics ----------------------------------------------------------------------------------
FORUM_MARK = "🗂"
TOPIC_FORMS = N_("topic|topics")
BTN_TOPIC = N_("🗂 Topic")
BTN_BACK_TO_LIST = N_("◀️ Back to the groups")


def topic_button(title: str, chosen: bool, closed: bool) -> str:
    if closed:
        return _("🔒 {title} (closed)").format(title=title)
    return f"{'✅' if chosen else '⬜'} {title}"


def topic_page(title: str, chosen_title: str, page: int, pages: int, total: int, reason: str = "") -> str:
    lines = [
        _("{mark} <b>{title}</b>: choose the topic its posts go to — page {page} of {pages}").format(
            mark=FORUM_MARK, title=esc(title), page=page + 1, pages=max(pages, 1)),
        _("{topics}; posting to: {chosen}.").format(topics=counted(total, TOPIC_FORMS),
                                                   chosen=esc(chosen_title or _("General"))),
    ]
    if reason:
        lines.append(_("⚠️ The group is disabled: {reason}. Choose an open topic to post again.").format(
            reason=reason_text(reason)))
    if not total:
        lines.append(_(NO_TOPICS))
    return "\n".join(lines)


NO_TOPICS = N_("No topics known yet: import the groups again.")
TOPIC_CLOSED_ALERT = N_("🔒 That topic is closed: only its admins can post there. Choose another one.")
TOPIC_NOT_FORUM = N_("⚠️ That group isn't a forum (or isn't yours).")


def topic_chosen(title: str) -> str:
    return _("🗂 Posts go to “{title}” from the next round.").format(title=title)


REASONS = N_map({
    "CHAT_WRITE_FORBIDDEN": N_("can't write"),
    "USER_BANNED_IN_CHANNEL": N_("banned"),
    "CHANNEL_PRIVATE": N_("private"),
    "CHAT_ADMIN_REQUIRED": N_("admins only"),
    "CHAT_RESTRICTED": N_("restricted"),
    "CHAT_SEND_PLAIN_FORBIDDEN": N_("text not allowed"),
    "CHAT_SEND_MEDIA_FORBIDDEN": N_("media not allowed"),
    "TOPIC_CLOSED": N_("topic closed"),
    "TOPIC_DELETED": N_("topic deleted"),
    "CHANNEL_INVALID": N_("gone"),
    "PEER_ID_INVALID": N_("gone"),
    "gone": N_("gone"),
    "disabled": N_("disabled"),
})


def reason_text(reason: str) -> str:
    known = REASONS.get(reason)
    return _(known) if known else (reason.replace("_", " ").lower() or _(REASONS["disabled"]))


def group_disabled(reason: str) -> str:
    if reason in ("TOPIC_CLOSED", "TOPIC_DELETED"):  # U11.4: another topic makes it active again
        return _("⚠️ This group is disabled: {reason}. Choose another topic with “{button}”.").format(
            reason=reason_text(reason), button=_(BTN_TOPIC))
    return _("⚠️ This group is disabled: {reason}.").format(reason=reason_text(reason))


def limit_reached(limit: int) -> str:
    return _("⚠️ Limit reached: at most {groups}.").format(groups=counted(limit, GROUP_FORMS))


PAGE_GONE = N_("⚠️ That page doesn't exist any more.")

# U4 --------------------------------------------------------------------------------------------
MSG_NOT_SET = N_("✉️ <b>Message</b>\nNot set yet.")
MSG_CURRENT = N_("✉️ <b>Message</b> — this is what is posted (the preview follows):")
MSG_ASK = N_("✏️ Send the message to broadcast: text, a photo/video/document/GIF with a caption, or an album "
             "of 2-10 photos/videos with one caption.")
MSG_PREVIEW_HEAD = N_("👀 Preview — this is exactly what will be posted:")
MSG_CONFIRM = N_("Save this message?")
MSG_UNSUPPORTED = N_("❌ Unsupported: send text, a photo/video/document/GIF with caption, or an album of "
                     "2-10 photos/videos.")
MSG_EMPTY = N_("❌ The message is empty.")
MSG_FILE_FAILED = N_("❌ I couldn't download that file; send it again.")
MSG_SAVE_EXPIRED = N_("⚠️ Nothing to save; send the message again.")


def msg_too_long(length: int, limit: int) -> str:
    return _("❌ Too long: {length}/{limit} characters.").format(length=length, limit=limit)


def msg_saved(running: bool) -> str:
    if running:
        return _("💾 Message saved. The running broadcast posts it from its next round.")
    return _("💾 Message saved.")


# U9 --------------------------------------------------------------------------------------------
MESSAGE_FORMS = N_("message|messages")
ROTATION_NAMES = N_map({"seq": N_("in order (each round the next message to every group)"),
                        "rnd": N_("random (each group a random one, never the same twice in a row)")})
MSG_ASK_ANOTHER = N_("➕ Send another message for the rotation: text, a photo/video/document/GIF with a "
                     "caption, or an album of 2-10 photos/videos with one caption.")
MSG_PREVIEW_ALBUM = N_("⬆️ The album above is posted as one post, the caption under it. Save it?")
MSG_ALBUM_NO_PREVIEW = N_("⚠️ The album's preview could not be shown; it is posted as one album.")
MSG_GONE = N_("⚠️ That message no longer exists.")
MSG_ALBUM_SIZE = N_("❌ An album needs 2 to 10 photos or videos.")
MSG_ALBUM_KINDS = N_("❌ Unsupported album: an album to broadcast holds photos and videos only.")
# what kind of media goes with a message, in its line of the list ("[photo] Spring sale")
MEDIA_KINDS = N_map({"photo": N_("photo"), "video": N_("video"), "animation": N_("GIF"),
                     "document": N_("document")})


def rotation_name(rotation: str) -> str:
    known = ROTATION_NAMES.get(rotation)
    return _(known) if known else esc(rotation)


def msg_list(previews: Sequence[str], limit: int, rotation: str) -> str:
    """U9.1: the user's messages, numbered, with the rotation mode."""
    lines = [_("✉️ <b>Messages</b> — {messages} of at most {limit}; this is what is posted, in turn:").format(
        messages=counted(len(previews), MESSAGE_FORMS), limit=limit)]
    lines += [f"{n}. {esc(preview)}" for n, preview in enumerate(previews, start=1)]
    if len(previews) >= 2:
        lines.append(_("Rotation: {rotation}.").format(rotation=rotation_name(rotation)))
    return "\n".join(lines)


def msg_preview_label(kind: str | None, preview: str, album: int = 0) -> str:
    """One line of the list: the caption's first characters and what media goes with it."""
    if album:
        media = _("[album of {count}]").format(count=album) + " "
    elif kind:
        known = MEDIA_KINDS.get(kind)
        media = f"[{_(known) if known else kind}] "
    else:
        media = ""
    return f"{media}{preview}".strip() or _("[no text]")


def msg_view_head(n: int) -> str:
    return _("👁 Message {n} — posted exactly like this:").format(n=n)


def msg_limit(limit: int) -> str:
    return _("⚠️ You can keep at most {messages}; delete one first (🗑), then add.").format(
        messages=counted(limit, MESSAGE_FORMS))


def msg_added(n: int, running: bool) -> str:
    if running:
        return _("💾 Message {n} added. The running broadcast rotates it in from its next round.").format(n=n)
    return _("💾 Message {n} added.").format(n=n)


def msg_deleted(n: int, left: int, stopped: bool) -> str:
    if stopped:
        return _("🗑 Message {n} deleted. That was the last one: the broadcast is stopped. "
                 "Add a message to start it again.").format(n=n)
    if left == 0:
        return _("🗑 Message {n} deleted. No message is left; add one before you start.").format(n=n)
    return _("🗑 Message {n} deleted; {messages} left. A running broadcast goes on with them.").format(
        n=n, messages=counted(left, MESSAGE_FORMS))


def rotation_set(rotation: str) -> str:
    return _("🔁 Rotation: {rotation}.").format(rotation=rotation_name(rotation))


def status_message_no(n: int) -> str:
    """U9 status: which message a group got in the last round."""
    return _("message {n}").format(n=n) if n > 0 else _("a deleted message")


# U5 --------------------------------------------------------------------------------------------
def interval_menu(current: str | None, low: str, high: str) -> str:
    shown = esc(units(current)) if current else _("not set")
    return _("⏱ <b>Interval</b>\nCurrent: {current}\n"
             "Choose a preset or send your own ({low} – {high}).").format(
        current=shown, low=units(low), high=units(high))


def interval_ask(low: str, high: str) -> str:
    return _("✍️ Send an interval: 45, 45m, 1h30m, 2h (min {low}, max {high}).").format(
        low=units(low), high=units(high))


def interval_bad(low: str, high: str) -> str:
    return _("❌ Send an interval between {low} and {high}, e.g. 1h30m.").format(
        low=units(low), high=units(high))


INTERVAL_EXAMPLE = N_("e.g. 45, 45m, 1h30m or 2h")


def interval_not_understood(raw: str) -> str:
    """U5.5: text that isn't an interval (quoted back, shortened)."""
    shown = raw.strip()
    shown = shown if len(shown) <= 40 else shown[:39] + "…"
    return _("❌ I didn't understand “{raw}” as an interval; send one like {example}.").format(
        raw=esc(shown), example=_(INTERVAL_EXAMPLE))


def interval_below(value: str, low: str) -> str:
    return _("❌ {value} is below the minimum of {low}; send a longer one, {example}.").format(
        value=esc(units(value)), low=units(low), example=_(INTERVAL_EXAMPLE))


def interval_above(value: str, high: str) -> str:
    return _("❌ {value} is above the maximum of {high}; send a shorter one, {example}.").format(
        value=esc(units(value)), high=units(high), example=_(INTERVAL_EXAMPLE))


def interval_saved(every: str, next_run: datetime | None, now: datetime | None = None) -> str:
    if next_run is None:
        return _("⏱ Saved: every {every}.").format(every=esc(units(every)))
    return _("⏱ Saved: every {every}, next round at {when}.").format(every=esc(units(every)),
                                                                      when=hhmm(next_run, now))


# U10 -------------------------------------------------------------------------------------------
DAY_INITIALS = (N_("Mo"), N_("Tu"), N_("We"), N_("Th"), N_("Fr"), N_("Sa"), N_("Su"))
DAY_NAMES = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))
ZONE_EXAMPLE = N_("a name like Europe/Berlin or an offset from UTC like +3 or -05:30")
HOURS_EXAMPLE = N_("like 9-22, 09:00-22:30 or 22-06 (across midnight)")
SCH_TZ_ASK = N_("🌍 Send your time zone: a name like Europe/Berlin or an offset from UTC like +3 or -05:30.")
SCH_DAYS = N_("📅 <b>Days</b> on which rounds may start (tap a day to switch it):")
SCH_LAST_DAY = N_("At least one day stays on; “Any time” removes the window.")
SCH_NO_HOURS = N_("Set the active hours first.")
SCH_OFF = N_("♾ No schedule window: rounds start at any time.")


def day_caption(weekday: int, on: bool) -> str:
    return f"{'✅' if on else '▫️'} {_(DAY_INITIALS[weekday])}"


def days_text(days: int) -> str:
    """The window's days (``schedule.format_days`` in the current language): ``every day``, ``Mon, Tue``."""
    if days == schedule.ALL_DAYS:
        return _("every day")
    return ", ".join(_(name) for n, name in enumerate(DAY_NAMES) if days >> n & 1)


def window_wait(opens: datetime, now: datetime | None) -> str:
    """U10.4: ``waiting for the window: starts 09:00 Europe/Berlin, in 2 h``."""
    return _("waiting for the window: starts {when}").format(when=hhmm(opens, now))


def schedule_menu(zone: str, hours: str | None, days: str | None, opens: datetime | None,
                  next_run: datetime | None, now: datetime) -> str:
    """U10.1: the time zone (named, with its offset now), active hours and days."""
    lines = [
        _("🕘 <b>Schedule</b>"),
        _("🌍 Time zone: {zone}").format(zone=esc(zone)),
        _("🕘 Active hours: {hours}").format(hours=esc(hours) if hours else _("any time")),
        _("📅 Days: {days}").format(days=esc(days) if days else _("every day")),
    ]
    if opens is not None:
        lines.append(_("⏸ Outside the window now; it opens at {when}").format(when=hhmm(opens, now)))
    if next_run is not None:
        lines.append(_("🕒 Next run: {when}").format(when=hhmm(next_run, now)))
    lines.append(_("Rounds start only within the window; a round under way stops when it closes and goes on "
                   "at the next opening."))
    return "\n".join(lines)


def sch_hours_ask(zone: str) -> str:
    return _("🕘 Send the active hours, {example}, on your clock ({zone}).").format(
        example=_(HOURS_EXAMPLE), zone=esc(zone))


def sch_tz_bad(raw: str) -> str:
    shown = raw.strip()
    shown = shown if len(shown) <= 40 else shown[:39] + "…"
    return _("❌ I don't know the time zone “{raw}”; send {example}.").format(
        raw=esc(shown), example=_(ZONE_EXAMPLE))


def sch_hours_bad(raw: str) -> str:
    shown = raw.strip()
    shown = shown if len(shown) <= 40 else shown[:39] + "…"
    return _("❌ I didn't understand “{raw}” as hours; send them {example}.").format(
        raw=esc(shown), example=_(HOURS_EXAMPLE))


def sch_tz_set(zone: str) -> str:
    return _("✅ Time zone set: {zone}. Every time I show is on this clock now.").format(zone=esc(zone))


def sch_hours_set(hours: str, zone: str, opens: datetime | None, now: datetime) -> str:
    text = _("✅ Active hours set: {hours} ({zone}).").format(hours=esc(hours), zone=esc(zone))
    if opens is not None:
        text += " " + _("Outside them now; the window opens at {when}.").format(when=hhmm(opens, now))
    return text


def sch_days_set(days: str) -> str:
    return _("📅 Days: {days}").format(days=esc(days))


# U6 --------------------------------------------------------------------------------------------
MISSING_LABELS = N_map({
    "access": N_("access to the bot"),
    "account": N_("a connected account"),
    "groups": N_("groups to post to (choose at least one active group)"),
    "message": N_("a message"),
    "interval": N_("an interval"),
})


def missing(items: list[str]) -> str:
    lines = [_("📋 <b>Not ready to start.</b> Missing:")]
    lines += [f"• {_(MISSING_LABELS[item]) if item in MISSING_LABELS else esc(item)}" for item in items]
    return "\n".join(lines)


def started(groups: int, every: str, next_run: datetime | None, now: datetime | None,
            waits_for_window: bool = False) -> str:
    """U6.2: due now, or (the last round started less than an interval ago) at its time; U10.4:
    outside the schedule window, at its next opening."""
    head = _("▶️ Started: {groups} every {every}.").format(groups=counted(groups, GROUP_FORMS),
                                                          every=esc(units(every)))
    if waits_for_window and next_run is not None:
        return _("{head} Outside the schedule window: {wait}.").format(head=head,
                                                                       wait=window_wait(next_run, now))
    if next_run is None or now is None or next_run <= now:
        return head + " " + _("The first round starts now.")
    return head + " " + _("The last round was less than {every} ago, so the next round is at {when}. "
                          "“Post now” sends at once.").format(
        every=esc(units(every)), when=hhmm(next_run, now))


POST_NOW_CONFIRM = N_(
    "⚠️ Post to every group now, before the interval has passed? Posting too often can get "
    "the account reported for spam."
)
POSTING_NOW = N_("▶️ The next round starts now.")


ALREADY_RUNNING = N_("ℹ️ Already running.")
NOT_RUNNING = N_("ℹ️ Not running.")


def stopped(sent: int | None, failed: int | None, total: int | None) -> str:
    if total is None:
        return _("⏹ Stopped.")
    return _("⏹ Stopped; last round {sent} sent, {failed} failed of {total}.").format(
        sent=sent or 0, failed=failed or 0, total=total)


# U7 --------------------------------------------------------------------------------------------
MONTHS = (N_("Jan"), N_("Feb"), N_("Mar"), N_("Apr"), N_("May"), N_("Jun"), N_("Jul"), N_("Aug"), N_("Sep"),
          N_("Oct"), N_("Nov"), N_("Dec"))


def history_line(rounds: int, sent: int, failed: int, skipped: int, since: date | None) -> str:
    """U7.1: every finished round so far (kept exact when old rounds are summarised and deleted)."""
    rounds_text = counted(rounds, ROUND_FORMS)
    if since is None:
        return _("📈 All time: {sent} sent, {failed} failed, {skipped} skipped in {rounds}").format(
            sent=sent, failed=failed, skipped=skipped, rounds=rounds_text)
    day = f"{since.day} {_(MONTHS[since.month - 1])} {since.year}"
    return _("📈 All time: {sent} sent, {failed} failed, {skipped} skipped in {rounds} since {day}").format(
        sent=sent, failed=failed, skipped=skipped, rounds=rounds_text, day=day)


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
    account: str | None = None,
) -> str:
    """U7.1; ``account`` (U8, two accounts or more): the one this status is about, named under the title."""
    lines = [
        _("📊 <b>Status</b>"),
        *([_("👤 Account: {account}").format(account=account)] if account else []),
        _("State: {state}").format(state=broadcast_state(running, no_groups_left)),
        _("Interval: {interval}").format(interval=esc(units(interval)) if interval else _("not set")),
        _("Next run: {when}").format(when=hhmm(next_run, now) if running and not no_groups_left else "—"),
    ]
    if running and window_opens is not None and not no_groups_left:
        wait = window_wait(window_opens, now)
        lines.append(f"⏸ {wait[:1].upper()}{wait[1:]}")
    if notify_on is not None:
        lines.append(_("Round reports: on") if notify_on else _("Round reports: off"))
    if paused_until is not None:
        lines.append(_("⏳ Flood pause until {when}").format(when=hhmm(paused_until, now)))
    if last_round:
        started_at = last_round.get("started_at")
        when = hhmm(started_at) if isinstance(started_at, datetime) else "—"
        lines.append(_("Last round ({when}): {sent} sent, {failed} failed, {skipped} skipped, "
                       "{pending} pending")
                     .format(when=when, sent=last_round.get("sent", 0), failed=last_round.get("failed", 0),
                             skipped=last_round.get("skipped", 0), pending=last_round.get("pending", 0)))
        for title, outcome in groups:
            lines.append(f"  • {esc(title)}: {esc(outcome)}")
        if more:
            lines.append(_("  … and {more} more").format(more=more))
    else:
        lines.append(_("Last round: none yet"))
    if disabled:
        lines.append(_("Selected groups that are disabled:"))
        lines += [f"  ⚠️ {esc(title)} ({reason_text(reason)})" for title, reason in disabled]
    return "\n".join(lines)


OUTCOME_WORDS = N_map({
    "sent": N_("✅ sent"),
    "failed": N_("❌ failed"),
    "skipped": N_("⏭ skipped"),
    "pending": N_("⏳ pending"),
    "sending": N_("⏳ sending"),
    "flood_wait": N_("⏳ waiting (flood)"),
    "unknown": N_("❔ unknown"),
})

NOTIFY_ON = N_("🔔 Round reports on.")
NOTIFY_OFF = N_("🔕 Round reports off.")

# notifications the bot sends on its own ------------------------------------------------------------


def note_round(sent: int, failed: int, skipped: int, total: int) -> str:
    return _("📣 Round finished: {sent} sent, {failed} failed, {skipped} skipped of {total}.").format(
        sent=sent, failed=failed, skipped=skipped, total=total)


def note_group_disabled(title: str, reason: str) -> str:
    return _("⚠️ Group “{title}” was disabled: {reason}. It is skipped from now on.").format(
        title=esc(title), reason=reason_text(reason))


def note_flood_pause(duration: str, until: datetime | None, now: datetime | None = None) -> str:
    return _("⏳ Telegram asked to wait {duration}; resuming at {when}.").format(
        duration=esc(units(duration)), when=hhmm(until, now))


NOTE_SESSION_ENDED = N_("🔌 Your Telegram session ended, so the broadcast stopped. Connect again.")
NOTE_ACCESS_EXPIRED = N_("⌛ Your access expired, so the broadcast stopped.")
NOTE_ACCESS_REVOKED = N_("⛔ Your access was revoked by an administrator; the broadcast stopped.")
NOTE_BROADCAST_STOPPED = N_("⏹ An administrator stopped your broadcast.")


# A admin ------------------------------------------------------------------------------------------
BTN_ADM_USERS = N_("👥 Users")
BTN_ADM_PENDING = N_("🙋 Access requests")
BTN_ADM_RUNTIME = N_("⚙️ Runtime")
BTN_ADM_MODE = N_("🔐 Access mode")
BTN_ADM_PAUSE = N_("⏸ Pause all sending")
BTN_ADM_RESUME = N_("▶️ Resume sending")
BTN_ADM_ANNOUNCE = N_("📣 Announcement")
BTN_ADM_BACK = N_("🛠 Admin menu")
BTN_ADM_REVOKE = N_("🚫 Revoke access")
BTN_ADM_BAN = N_("⛔ Ban")
BTN_ADM_UNBAN = N_("♻️ Unban")
BTN_ADM_STOP = N_("⏹ Stop broadcast")
BTN_ADM_LOGOUT = N_("🔌 Log out account")
BTN_ADM_SEND = N_("📣 Send to everyone")

MODE_WORDS = N_map({
    "open": N_("open — everyone may use the bot"),
    "approval": N_("approval — new users request access, an admin decides"),
    "whitelist": N_("whitelist — only users an admin granted access"),
})
ACCESS_WORDS = N_map({
    "allowed": N_("✅ allowed"),
    "needs_approval": N_("🔒 needs approval"),
    "pending": N_("⏳ request pending"),
    "invitation_only": N_("🔒 not invited"),
    "banned": N_("⛔ banned"),
    "expired": N_("⌛ expired"),
})
ACCESS_ICONS = {"allowed": "✅", "pending": "⏳", "banned": "⛔", "expired": "⌛"}


def grant_caption(days: int) -> str:
    if days == 0:
        return _("✅ Grant, no expiry")
    return _("✅ Grant {days}").format(days=counted(days, DAY_FORMS))


def mode_caption(mode: str, current: bool) -> str:
    return f"• {mode} •" if current else mode


def admin_menu(*, users: int, connected: int, running: int, pending: int, mode: str, paused: bool,
               head: str = "") -> str:
    lines = [head, ""] if head else []
    lines += [
        _("🛠 <b>Admin</b>"),
        _("Users: {users}").format(users=users),
        _("Connected accounts: {connected}").format(connected=connected),
        _("Running broadcasts: {running}").format(running=running),
        _("Pending requests: {pending}").format(pending=pending),
        _("Access mode: {mode}").format(mode=esc(mode)),
        _("Sending: ⏸ paused for everyone") if paused else _("Sending: ▶️ on"),
    ]
    return "\n".join(lines)


PAUSED = N_("⏸ All sending is paused: no send starts; schedules are kept.")
RESUMED = N_("▶️ Sending resumed; schedules go on.")
ALREADY_PAUSED = N_("ℹ️ Sending was already paused.")
ALREADY_RESUMED = N_("ℹ️ Sending was not paused.")


def users_page(page: int, pages: int, total: int) -> str:
    return _("👥 <b>Users</b> — page {page} of {pages} ({total} in all)\n"
             "Newest first. Tap a user for the card.").format(page=page + 1, pages=max(pages, 1), total=total)


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
    last_seen: datetime | None, head: str = "", accounts: Sequence[str] = (),
) -> str:
    """A2; ``accounts``: a line for each Telegram account of the user (``admin_account_line``, U8)."""
    handle = f" @{esc(username)}" if username else ""
    if phone_masked:
        account = f"{esc(account_name)} ({esc(phone_masked)})".strip()
        if disconnected_reason:
            account += _(", disconnected ({reason})").format(reason=esc(disconnected_reason))
    else:
        account = _("not connected")
    if access_status == "granted":
        expiry = _("until {day}").format(day=_day(expires_at)) if expires_at is not None else _("no expiry")
    else:
        expiry = "—"
    broadcast = _("⏸ stopped")
    if running:
        broadcast = _("▶️ running every {every}, next at {when}").format(every=esc(units(interval or "?")),
                                                                        when=hhmm(next_run))
    known = ACCESS_WORDS.get(access)
    lines = [head, ""] if head else []
    lines += [
        f"👤 <b>{esc(name)}</b>{handle} (id {uid})",
        _("Access: {access}").format(access=_(known) if known else esc(access)),
        _("Expires: {expiry}").format(expiry=expiry),
        _("Account: {account}").format(account=account),
        _("Groups: {selected} selected of {total}, {disabled} disabled").format(
            selected=groups_selected, total=groups_total, disabled=groups_disabled),
        _("Broadcast: {broadcast}").format(broadcast=broadcast),
        _("Last seen: {day}").format(day=_day(last_seen)),
    ]
    if accounts:
        lines.append(_("Telegram accounts ({count}):").format(count=len(accounts)))
        lines.extend(accounts)
    return "\n".join(lines)


def admin_account_line(*, name: str, phone_masked: str, connected: bool, current: bool, reason: str,
                       running: bool, interval: str | None, next_run: datetime | None) -> str:
    """A2 (U8): one of the user's accounts, the current one marked."""
    if not connected:
        state = _("🔌 disconnected ({reason})").format(reason=esc(reason or "—"))
    elif running:
        state = _("▶️ running every {every}, next at {when}").format(every=esc(units(interval or "?")),
                                                                   when=hhmm(next_run))
    else:
        state = broadcast_state(False)
    line = _("{mark} {name} ({phone}): {state}").format(
        mark="👉" if current else "•", name=esc(name), phone=esc(phone_masked), state=state)
    return f"{line} — {_(CURRENT_MARK)}" if current else line


ACTION_OK = N_map({
    "grant": N_("✅ Access granted"),
    "revoke": N_("🚫 Access revoked"),
    "ban": N_("⛔ User banned"),
    "unban": N_("♻️ User unbanned"),
    "stop": N_("⏹ Broadcast stopped"),
    "logout": N_("🔌 Account logged out"),
})
ACTION_NO_CHANGE = N_map({
    "grant": N_("ℹ️ Access was already granted"),
    "revoke": N_("ℹ️ Access was already revoked"),
    "ban": N_("ℹ️ Already banned"),
    "unban": N_("ℹ️ Not banned"),
    "stop": N_("ℹ️ No broadcast was running"),
    "logout": N_("ℹ️ No account was connected"),
})


ADMIN_LOGOUT_BUSY = N_(
    "⏳ The user's broadcast is sending right now; try again in a moment. "
    "The broadcast stopped; press “Log out account” again to finish the logout."
)


def admin_action(action: str, outcome: str, days: int | None = None) -> str:
    if outcome == "no_change":
        unchanged = ACTION_NO_CHANGE.get(action)
        return _(unchanged) if unchanged else _("ℹ️ Nothing changed")
    done = ACTION_OK.get(action)
    text = _(done) if done else _("✅ Done")
    if action == "grant" and days is not None:
        text += _(" (no expiry)") if days == 0 else _(" for {days}").format(days=counted(days, DAY_FORMS))
    return text + "."


def pending_list(items: Sequence[tuple[int, str, datetime | None]], more: int, head: str = "") -> str:
    lines = [head, ""] if head else []
    lines.append(_("🙋 <b>Access requests</b> ({pending} pending)").format(pending=len(items) + more))
    if not items:
        lines.append(_("No pending requests."))
    for uid, name, requested in items:
        lines.append(_("• {name} (id {uid}), asked {day}").format(
            name=esc(name), uid=uid, day=_day(requested)))
    if more:
        lines.append(_("… and {more} more").format(more=more))
    return "\n".join(lines)


def pending_caption(approve: bool, name: str, uid: int) -> str:
    return f"{'✅' if approve else '⛔'} {name} · {uid}"[:64]


def mode_menu(current: str, head: str = "") -> str:
    lines = [head, ""] if head else []
    lines.append(_("🔐 <b>Access mode</b>: {mode}").format(mode=esc(current)))
    lines += [f"• {_(text)}" for text in MODE_WORDS.values()]
    return "\n".join(lines)


BROADCAST_FORMS = N_("broadcast|broadcasts")


def mode_set(mode: str, changed: bool, stopped: int) -> str:
    if not changed:
        return _("ℹ️ Access mode was already {mode}.").format(mode=esc(mode))
    text = _("✅ Access mode: {mode}.").format(mode=esc(mode))
    if stopped:
        text += " " + _("{broadcasts} of users without access stopped.").format(
            broadcasts=counted(stopped, BROADCAST_FORMS))
    return text


def runtime(
    *, ready: int, delayed: int, in_progress: int, workers: Sequence[tuple[str, float]], running: int,
    open_rounds: int, sends: Mapping[str, int], flood_paused: int, lag: float, paused: bool,
) -> str:
    sent = ", ".join(f"{esc(k)} {v}" for k, v in sends.items()) or _("none")
    lines = [
        _("⚙️ <b>Runtime</b>"),
        _("Queue: {ready} ready, {delayed} delayed, {in_progress} in progress").format(
            ready=ready, delayed=delayed, in_progress=in_progress),
        _("Live workers: {workers}").format(workers=len(workers)),
    ]
    lines += [_("  • {name} ({age:.0f} s ago)").format(name=esc(name), age=age) for name, age in workers[:5]]
    if len(workers) > 5:
        lines.append(_("  … and {more} more").format(more=len(workers) - 5))
    lines += [
        _("Running broadcasts: {running} ({rounds} rounds in progress)").format(
            running=running, rounds=open_rounds),
        _("Sends in the last hour: {sent}").format(sent=sent),
        _("Flood pauses: {paused}").format(paused=flood_paused),
        _("Scheduler lag: {lag:.1f} s").format(lag=lag),
        _("Sending: ⏸ paused for everyone") if paused else _("Sending: ▶️ on"),
    ]
    return "\n".join(lines)


def announce_ask(targets: int) -> str:
    return _("📣 Send the announcement text. It goes to {users} of the bot "
             "(banned users and users who blocked the bot excluded).").format(
        users=counted(targets, USER_FORMS))


ANNOUNCE_UNSUPPORTED = N_("❌ Send the announcement as text (formatting is kept).")
ANNOUNCE_PREVIEW_HEAD = N_("👀 Preview — every user gets exactly this:")
ANNOUNCE_NOTHING = N_("⚠️ Nothing to send; start the announcement again.")
ANNOUNCE_BUSY = N_("ℹ️ An announcement is being sent already; wait for its report.")


def announce_confirm(targets: int) -> str:
    return _("Send it to {users}? Delivery is paced within Telegram's limits.").format(
        users=counted(targets, USER_FORMS))


def announce_started(targets: int) -> str:
    return _("📣 Sending the announcement to {users}… I'll report here when it's done.").format(
        users=counted(targets, USER_FORMS))


def announce_report(delivered: int, blocked: int, failed: int, total: int) -> str:
    return _("📣 Announcement done: delivered to {delivered} of {total}, "
             "{blocked} blocked the bot, {failed} failed.").format(
        delivered=delivered, total=total, blocked=blocked, failed=failed)


# U12 language ---------------------------------------------------------------------------------------


def settings_menu(language_name: str) -> str:
    return _("⚙️ <b>Settings</b>\nLanguage: {language}\nChoose the language of the bot:").format(
        language=language_name)


LANGUAGE_SET = N_("✅ The bot speaks English now.")
LANGUAGE_UNKNOWN = N_("⚠️ I don't speak that language; choose one of the buttons.")


translate_module(__name__)
