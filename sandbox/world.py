"""The sandbox's simulated world: accounts, groups, logins, sessions, posts and faults.

It plays the part of Telegram's MTProto side for ``accounts.sandbox_gateway``
(through the HTTP routes of ``sandbox.world_api``) and keeps the rules that
matter to the product: a login code is bound to the temporary session that
asked for it, expires, is replaced by a resend and is voided when the user
shares it unchanged in a chat; 2FA is checked after the code; sends hit slow
mode, write restrictions and per-account rate limits; faults are injected on
demand. Errors carry Telegram's RPC error names (``FLOOD_WAIT``,
``PHONE_CODE_EXPIRED`` ...). Every adapter-facing call is recorded in the
event log with ``api="world"``.

Everything lives in memory; ``reset()`` forgets it all. Intervals use the
monotonic clock given to ``World`` (``time.monotonic`` unless a test injects
one), dates shown to people use wall-clock seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import math
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from config.settings import SandboxSettings
from sandbox.changes import Changes
from sandbox.events import EventLog

DEMO_WORLD: Final = Path(__file__).with_name("demo_world.json")

# Every adapter-facing call; a fault names one of these or "*".
CALLS: Final = (
    "send_code", "resend_code", "sign_in", "check_password", "cancel_login",
    "get_dialogs", "get_forum_topics", "send_message", "log_out",
)
GROUP_KINDS: Final = ("group", "supergroup", "channel")
MEDIA_KINDS: Final = ("photo", "video", "document", "animation")
TEXT_LIMIT: Final = 4096
CAPTION_LIMIT: Final = 1024
MEDIA_LIMIT: Final = 50 * 1024 * 1024
ALBUM_MIN: Final = 2  # items of one album (messages.sendMultiMedia)
ALBUM_MAX: Final = 10
CODE_LENGTH: Final = 5
# auth.SentCodeType as the world names it. The last two are not deliveries: Telegram answers them
# instead of sending a code, and the login can only go on in the official app.
CODE_TYPES: Final = (
    "app", "sms", "call", "flash_call", "missed_call", "email", "fragment_sms", "firebase_sms",
    "sms_word", "sms_phrase",
)
BLOCKING_CODE_TYPES: Final = ("setup_email_required", "payment_required")
EMAIL_CODE_LENGTH: Final = 6  # Telegram's email codes are longer than its SMS/app codes
MISSED_CALL_PREFIX: Final = "+4477009"  # the calling number is this prefix + the code
LATENCY: Final = "LATENCY"
NETWORK: Final = "NETWORK"

# Telegram's numeric class of each error the world raises (clients fall back on it for names
# they don't know). Anything not listed is a 400.
ERROR_CODES: Final[dict[str, int]] = {
    "FLOOD_WAIT": 420,
    "SLOWMODE_WAIT": 420,
    "FLOOD_PREMIUM_WAIT": 420,
    "SESSION_PASSWORD_NEEDED": 401,
    "AUTH_KEY_UNREGISTERED": 401,
    "SESSION_REVOKED": 401,
    "SESSION_EXPIRED": 401,
    "USER_DEACTIVATED": 401,
    "USER_DEACTIVATED_BAN": 401,
    "AUTH_KEY_DUPLICATED": 406,
    "CHAT_WRITE_FORBIDDEN": 403,
    "CHAT_ADMIN_REQUIRED": 403,
    "CHANNEL_PRIVATE": 406,
    "INTERNAL": 500,
    "RPC_CALL_FAIL": 500,
    NETWORK: 502,
}
# Limits Telegram puts on a whole account (issue 11): every send to any group answers with it, until
# lifted. USER_BANNED_IN_CHANNEL is the spam restriction ("banned from sending messages in
# supergroups/channels"), FROZEN_METHOD_INVALID a frozen (read-only) account; @SpamBot explains both.
ACCOUNT_RESTRICTIONS: Final = (
    "USER_BANNED_IN_CHANNEL", "PEER_FLOOD", "USER_RESTRICTED", "FROZEN_METHOD_INVALID",
)
# A fault of these kinds without ``seconds`` waits this long.
DEFAULT_FAULT_SECONDS: Final = 30
_WAIT_ERRORS: Final = frozenset({"FLOOD_WAIT", "SLOWMODE_WAIT", "FLOOD_PREMIUM_WAIT"})

GENERAL_TOPIC: Final = 1  # Telegram's id of a forum's General topic
TOPICS_PAGE_MAX: Final = 100

_PHONE_RE: Final = re.compile(r"\+[0-9]{8,15}")
_PHONE_NOISE: Final = re.compile(r"[\s\-.()]")
_DIGITS: Final = re.compile(r"\D")


class WorldError(Exception):
    """A Telegram RPC error as the world answers it: ``name`` plus its data."""

    def __init__(
        self,
        name: str,
        *,
        seconds: int | None = None,
        new_id: int | None = None,
        new_access_hash: int | None = None,
        code: int | None = None,
        description: str = "",
    ) -> None:
        self.name = name
        self.seconds = seconds
        self.new_id = new_id
        self.new_access_hash = new_access_hash
        self.code = code if code is not None else ERROR_CODES.get(name, 400)
        self.description = description
        super().__init__(name if seconds is None else f"{name} ({seconds}s)")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": False, "error": self.name, "code": self.code}
        if self.seconds is not None:
            out["seconds"] = self.seconds
        if self.new_id is not None:
            out["new_id"] = self.new_id
            out["new_access_hash"] = self.new_access_hash or 0
        if self.description:
            out["description"] = self.description
        return out


def normalise_phone(raw: object) -> str | None:
    """``+<8-15 digits>`` (spaces, dashes, dots, brackets dropped; 00 -> +), else None."""
    text = _PHONE_NOISE.sub("", str(raw or ""))
    if text.startswith("00"):
        text = "+" + text[2:]
    elif not text.startswith("+"):
        text = "+" + text
    return text if _PHONE_RE.fullmatch(text) else None


def load_world_file(path: str | Path | None = None) -> dict[str, Any]:
    """Read a seed file (``{"accounts": [...]}``); the demo world when ``path`` is None."""
    data = json.loads(Path(path or DEMO_WORLD).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("a world file holds a JSON object")
    return data


def _access_hash(phone: str, group_id: int) -> int:
    # Stable per (account, group), also across sandbox restarts, like Telegram's.
    digest = hashlib.sha256(f"{phone}:{group_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _wait(seconds: float) -> int:
    return max(1, math.ceil(seconds))


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _now_ms_date() -> float:
    return round(time.time(), 3)


# --- state ------------------------------------------------------------------------------------


@dataclass
class Topic:
    """A forum topic: its id is the id of the message that created it (General: 1)."""

    id: int
    title: str
    closed: bool = False  # only admins may post: others get TOPIC_CLOSED
    date: float = 0.0

    def to_dict(self, group: Group) -> dict[str, Any]:
        posts = [p for p in group.feed if p.get("topic_id") == self.id]
        return {"id": self.id, "title": self.title, "closed": self.closed, "date": self.date,
                "top_message": posts[-1]["message_id"] if posts else self.id, "posts": len(posts)}


@dataclass
class Group:
    id: int
    title: str
    kind: str
    slow_mode: int = 0
    migrated_to: int | None = None
    feed: list[dict[str, Any]] = field(default_factory=list)
    next_message_id: int = 1
    forum: bool = False  # a supergroup with topics; posts without a topic go to "General"
    paid_stars: int = 0  # the group charges this many Stars per message: ALLOW_PAYMENT_REQUIRED
    topics: dict[int, Topic] = field(default_factory=dict)  # a forum's live topics by id
    deleted_topics: dict[int, Topic] = field(default_factory=dict)  # a post there: TOPIC_DELETED

    @property
    def general_closed(self) -> bool:
        general = self.topics.get(GENERAL_TOPIC)
        return general is not None and general.closed

    def add_topic(self, title: str, closed: bool = False, topic_id: int | None = None) -> Topic:
        """A new topic; its id is the next message id, as the topic's creation is a message."""
        if topic_id is None:
            topic_id = self.next_message_id
        self.next_message_id = max(self.next_message_id, topic_id + 1)
        topic = self.topics[topic_id] = Topic(topic_id, title, closed, round(time.time(), 3))
        return topic

    def topic_of(self, reply_to: int | None) -> int:
        """The topic a post with this ``reply_to`` goes in: the topic named, or the replied-to
        post's topic, or General; TOPIC_DELETED / TOPIC_CLOSED as Telegram answers them."""
        if reply_to is None or reply_to == GENERAL_TOPIC:
            topic_id = GENERAL_TOPIC
        elif reply_to in self.topics or reply_to in self.deleted_topics:
            topic_id = reply_to
        else:
            post = next((p for p in self.feed if p["message_id"] == reply_to), None)
            if post is None:
                raise WorldError("TOPIC_DELETED")  # neither a topic nor a post: it was deleted
            topic_id = int(post.get("topic_id") or GENERAL_TOPIC)
        topic = self.topics.get(topic_id)
        if topic is None:
            raise WorldError("TOPIC_DELETED")
        if topic.closed:
            raise WorldError("TOPIC_CLOSED")
        return topic_id


@dataclass
class Membership:
    group_id: int
    access_hash: int
    can_send: bool = True
    banned: bool = False
    folder: int = 0  # Telegram's peer folder: 0 the main list, 1 the archive


@dataclass
class Account:
    phone: str
    first_name: str
    user_id: int
    password: str | None = None
    banned: bool = False
    deactivated: bool = False
    memberships: dict[int, Membership] = field(default_factory=dict)
    # How send_code delivers (first item) and what each resend moves on to; past the end a
    # resend answers SEND_CODE_UNAVAILABLE, as Telegram does when no other way is left.
    code_types: tuple[str, ...] = ("app", "sms")
    email: str = ""


@dataclass
class LoginCode:
    """One code as the account's Telegram app shows it."""

    code: str
    date: float  # wall clock
    issued: float  # monotonic
    ttl: float
    state: str = "live"  # live | used | replaced | voided | cancelled | expired
    type: str = "app"
    calling_number: str = ""  # missed_call: the number that called; its last digits are the code

    def current_state(self, now: float) -> str:
        if self.state == "live" and now - self.issued > self.ttl:
            self.state = "expired"
        return self.state

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "code": self.code,
            "date": self.date,
            "expires_at": round(self.date + self.ttl, 3),
            "state": self.current_state(now),
            "type": self.type,
            **({"calling_number": self.calling_number} if self.calling_number else {}),
        }


@dataclass
class PendingLogin:
    """A temporary session between send_code and a finished sign-in."""

    token: str
    phone: str
    phone_code_hash: str
    code: LoginCode
    wrong_codes: int = 0
    wrong_passwords: int = 0
    awaiting_password: bool = False
    old_codes: set[str] = field(default_factory=set)  # replaced by a resend: "expired" if typed
    delivery: int = 0  # index into the account's code_types
    # the bot chat this login was seen in: the chat user who gave the bot the phone before the
    # code was sent, or the one who typed this code into the bot chat (that one wins)
    chat_user_id: int | None = None


@dataclass
class Session:
    token: str
    phone: str
    user_id: int
    created: float
    last_used: float
    chat_user_id: int | None = None  # the bot chat its login went through (``PendingLogin``)

    @property
    def id(self) -> str:
        # Lists show a fingerprint, never the session string itself.
        return hashlib.sha256(self.token.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "phone": self.phone, "user_id": self.user_id,
                "created": self.created, "last_used": self.last_used, "chat_user_id": self.chat_user_id}


@dataclass
class Fault:
    id: int
    call: str
    error: str
    phone: str | None = None
    group_id: int | None = None
    seconds: float | None = None
    remaining: int = 1  # -1: until cleared
    new_id: int | None = None
    code: int | None = None
    deliver: bool = False  # send_message only: the post lands, then the error is answered

    def matches(self, call: str, phone: str | None, group_id: int | None) -> bool:
        if self.call not in ("*", call):
            return False
        if self.phone is not None and self.phone != phone:
            return False
        return self.group_id is None or self.group_id == group_id

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "call": self.call, "error": self.error, "phone": self.phone,
                "group_id": self.group_id, "seconds": self.seconds, "times": self.remaining,
                "new_id": self.new_id, "deliver": self.deliver}


@dataclass
class _Call:
    phone: str | None
    group_id: int | None


@dataclass(frozen=True)
class MediaIn:
    """Media as a send carries it (bytes included), with the attributes the client gave."""

    kind: str
    filename: str
    data: bytes
    mime_type: str = "application/octet-stream"
    width: int = 0
    height: int = 0
    duration: float = 0.0
    thumb: bytes | None = None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "filename": self.filename, "size": len(self.data),
                               "mime_type": self.mime_type, "sha256": hashlib.sha256(self.data).hexdigest()}
        if self.width or self.height:
            out.update(width=self.width, height=self.height)
        if self.kind in ("video", "animation"):
            out["duration"] = self.duration
        if self.thumb:
            out["thumb_size"] = len(self.thumb)
        return out


@dataclass
class StoredFile:
    """A photo/document the world keeps after a post: sendable again by id + file reference."""

    id: int
    access_hash: int
    phone: str  # the account that uploaded it (its references are the ones it may use)
    media: MediaIn
    file_reference: bytes
    reference_expires: float  # monotonic

    def ref(self) -> dict[str, Any]:
        return {"id": self.id, "access_hash": self.access_hash, "file_reference": self.file_reference.hex()}


# --- the world --------------------------------------------------------------------------------


class World:
    """In-memory Telegram for user accounts; see the module docstring for the rules."""

    def __init__(self, settings: SandboxSettings, events: EventLog,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.settings = settings
        self.events = events
        # intervals (code expiry, slow mode, rate windows, login floods) read this clock, and a latency
        # fault waits with this sleep; tests inject both (a sleep that moves the clock)
        self.clock = clock
        self.sleep = sleep
        self.changes = Changes()  # accounts, codes, group feeds and faults as the control API shows them
        # Login thresholds (attributes so tests can shorten them).
        self.max_code_attempts = 5  # wrong codes answered PHONE_CODE_INVALID; the next try floods
        self.max_password_attempts = 5
        self.login_flood_seconds = 300
        self.send_code_limit = 10  # send_code + resend_code per phone per window (rate_limits only)
        self.send_code_window = 600.0
        self._accounts: dict[str, Account] = {}
        self._groups: dict[int, Group] = {}
        self._pending: dict[str, PendingLogin] = {}
        self._sessions: dict[str, Session] = {}
        self._dead: dict[str, str] = {}  # revoked session -> the error its next calls get
        self._codes: dict[str, list[LoginCode]] = {}
        self._code_requests: dict[str, deque[float]] = {}
        self._login_flood_until: dict[str, float] = {}
        self._last_post: dict[tuple[str, int], float] = {}
        self._send_times: dict[str, deque[float]] = {}
        self._faults: list[Fault] = []
        self._fault_seq = 0
        # Sent photos/documents, reusable by id + file reference until the reference expires
        # (Telegram's expire after a while; a refetch of the message gives a fresh one).
        self.file_reference_ttl = 3600.0
        self._files: dict[int, StoredFile] = {}
        # Dialog paging is throttled as Telegram does it: past a burst of pages in a window, the
        # next page answers FLOOD_WAIT until the window frees (attributes so tests can shorten them).
        self.dialog_pages_burst = 30
        self.dialog_pages_window = 60.0
        self._dialog_pages: dict[str, deque[float]] = {}
        self._restrictions: dict[str, str] = {}  # phone -> account-wide restriction (ACCOUNT_RESTRICTIONS)
        self._grouped_ids = itertools.count(13_900_000_000_000_000)  # albums' grouped_id
        self._home_dc: dict[str, int] = {}  # phone -> its data centre when not the default one
        self._media: dict[str, MediaIn] = {}  # posted media by sha256, for the page's feeds
        # phone -> the chat user who last gave the bot that phone (typed or shared as a contact)
        self._phone_told: dict[str, int] = {}

    # --- control side -----------------------------------------------------------------------

    def reset(self) -> None:
        for store in (self._accounts, self._groups, self._pending, self._sessions, self._dead,
                      self._codes, self._code_requests, self._login_flood_until, self._last_post,
                      self._send_times, self._files, self._dialog_pages, self._restrictions, self._home_dc,
                      self._media, self._phone_told):
            store.clear()
        self._faults.clear()
        self.changes.notify()

    def seed(self, data: Mapping[str, Any]) -> list[str]:
        """Add or replace accounts: ``{"accounts": [...]}`` or one account object.

        Raises ``ValueError`` naming the bad field; nothing is changed then.
        """
        items = data.get("accounts") if "accounts" in data else [data]
        if not isinstance(items, list):
            raise ValueError("accounts must be a list")
        parsed = [self._parse_account(item) for item in items]
        dcs = [_home_dc_of(item) for item in items]
        for (account, groups), dc in zip(parsed, dcs, strict=True):
            self._install(account, groups)
            self._set_home_dc(account.phone, dc)
        self.changes.notify()
        return [account.phone for account, _ in parsed]

    def observe_chat_text(self, text: str) -> None:
        """Void every live code that appears unchanged in ``text`` (Telegram voids shared codes)."""
        if not text:
            return
        for pending in self._pending.values():
            if pending.code.state == "live" and pending.code.code in text:
                pending.code.state = "voided"
                self.changes.notify()

    def observe_chat_message(self, user_id: int, text: str | None, contact_phone: str | None = None) -> None:
        """A chat user's message to the bot, as the sandbox saw it pass (its Bot API side).

        Besides voiding shared codes, it is the world's own evidence of which chat user a login
        belongs to: a phone of a known account given to the bot (typed or shared as a contact)
        marks the logins started for it afterwards, and a login's code typed into the chat in any
        spacing marks that login. The session it ends in keeps the mark (``chat_accounts``).
        """
        if text:
            self.observe_chat_text(text)
        phone = normalise_phone(contact_phone) if contact_phone else normalise_phone(text) if text else None
        if phone is not None and phone in self._accounts:
            self._phone_told[phone] = user_id
        digits = _DIGITS.sub("", text or "")
        if not digits:
            return
        for pending in self._pending.values():
            if pending.code.code == digits or digits in pending.old_codes:
                pending.chat_user_id = user_id

    def demo_summary(self) -> list[str]:
        lines = []
        for account in self._accounts.values():
            groups = [self._groups[gid] for gid in account.memberships]
            closed = sum(1 for m in account.memberships.values() if not m.can_send or m.banned)
            slow = sum(1 for g in groups if g.slow_mode)
            lock = f"2FA password {account.password!r}" if account.password else "no 2FA"
            lines.append(f"{account.phone}  {account.first_name}  {lock}  {len(groups)} chats "
                         f"({closed} not writable, {slow} with slow mode)")
        return lines

    def set_code_types(self, phone: str, raw: Any) -> list[str]:
        """Change how an account's login codes are delivered (``KeyError`` for an unknown account,
        ``ValueError`` for an unknown type); logins already under way keep their codes."""
        norm = self._known_phone(phone)
        account = self._accounts[norm]
        account.code_types = parse_code_types(raw, norm)
        self.changes.notify()
        return list(account.code_types)

    def accounts(self) -> list[dict[str, Any]]:
        return [
            {"phone": a.phone, "first_name": a.first_name, "user_id": a.user_id,
             "has_password": a.password is not None, "banned": a.banned, "code_types": list(a.code_types),
             "restriction": self._restrictions.get(a.phone),
             "chat_users": self._chat_users_of(a.phone),
             "groups": [self._shown_dialog(a, m) for m in a.memberships.values()]}
            for a in self._accounts.values()
        ]

    def _chat_users_of(self, phone: str) -> list[int]:
        """The chat users through whose bot chat a live session of ``phone`` was signed in."""
        return sorted({s.chat_user_id for s in self._sessions.values()
                       if s.phone == phone and s.chat_user_id is not None})

    def chat_accounts(self, chat_user_id: int) -> list[dict[str, Any]]:
        """The accounts a chat user has connected: those with a live session whose login went
        through that user's bot chat (``observe_chat_message``), oldest connection first."""
        first: dict[str, Session] = {}
        for s in sorted(self._sessions.values(), key=lambda s: s.created):
            if s.chat_user_id == chat_user_id and s.phone in self._accounts:
                first.setdefault(s.phone, s)
        return [{"phone": phone, "first_name": self._accounts[phone].first_name,
                 "user_id": self._accounts[phone].user_id, "since": s.created,
                 "sessions": sum(1 for o in self._sessions.values()
                                 if o.phone == phone and o.chat_user_id == chat_user_id)}
                for phone, s in first.items()]

    # --- data centres (issue 11) ---------------------------------------------------------------

    def _set_home_dc(self, phone: str, dc: int | None) -> None:
        if dc is None:
            self._home_dc.pop(phone, None)
        else:
            self._home_dc[phone] = dc

    def home_dc(self, phone: str) -> int | None:
        """The data centre an account lives in, when the seed named one (``"dc": 4``); a login
        that starts elsewhere is told PHONE_MIGRATE_<dc> by the MTProto endpoint."""
        norm = normalise_phone(phone)
        return self._home_dc.get(norm) if norm else None

    # --- account-wide restrictions (issue 11) --------------------------------------------------

    def set_restriction(self, phone: str, error: str | None) -> dict[str, Any]:
        """Restrict the whole account with ``error`` (one of ``ACCOUNT_RESTRICTIONS``), or lift it
        with None. ``KeyError`` for an unknown account, ``ValueError`` for another name."""
        norm = self._known_phone(phone)
        if error is None:
            self._restrictions.pop(norm, None)
        else:
            name = str(error).strip().upper()
            if name not in ACCOUNT_RESTRICTIONS:
                raise ValueError(f"error must be one of {', '.join(ACCOUNT_RESTRICTIONS)} or null")
            self._restrictions[norm] = name
        self.changes.notify()
        return {"phone": norm, "restriction": self._restrictions.get(norm)}

    def restriction(self, phone: str) -> str | None:
        return self._restrictions.get(phone)

    def _check_restriction(self, phone: str) -> None:
        """A restricted account can read (dialogs) but sends nothing, to any group."""
        name = self._restrictions.get(phone)
        if name is not None:
            raise WorldError(name)

    def codes(self, phone: str) -> list[dict[str, Any]]:
        """Codes sent to ``phone``, newest first. ``KeyError`` for an unknown account."""
        norm = self._known_phone(phone)
        now = self.clock()
        return [c.to_dict(now) for c in reversed(self._codes.get(norm, []))]

    def sessions(self, phone: str) -> list[dict[str, Any]]:
        norm = self._known_phone(phone)
        return [s.to_dict() for s in self._sessions.values() if s.phone == norm]

    def revoke_sessions(self, phone: str) -> int:
        """Terminate every session of ``phone``; their next call gets SESSION_REVOKED."""
        norm = self._known_phone(phone)
        tokens = [t for t, s in self._sessions.items() if s.phone == norm]
        for token in tokens:
            del self._sessions[token]
            self._dead[token] = "SESSION_REVOKED"
        if tokens:
            self.changes.notify()
        return len(tokens)

    def group_messages(self, group_id: int) -> list[dict[str, Any]]:
        group = self._groups.get(group_id)
        if group is None:
            raise KeyError(group_id)
        return [dict(post) for post in group.feed]

    def posted_media(self, sha256: str) -> MediaIn | None:
        """The bytes of media some account posted (the page shows the photo a group received)."""
        return self._media.get(sha256)

    def add_fault(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Register a fault (``ValueError`` naming the bad field).

        ``{call: one of CALLS or "*", error: a Telegram name | "NETWORK" | "latency", phone?,
        group_id?, seconds? (the wait hint, or the delay of a latency fault), times? (absent -> 1,
        -1 -> until cleared), new_id? (CHAT_MIGRATED), code? (numeric RPC class), deliver?
        (send_message only: the post lands, then the error is answered)}``. On each call the
        first matching latency fault and the first matching error fault fire, in order of
        registration; a call that fails before its faults are looked at (dead session, not a
        member of the group) consumes none.
        """
        call = str(spec.get("call") or "*")
        if call != "*" and call not in CALLS:
            raise ValueError(f"call must be one of {', '.join(CALLS)} or *")
        error = str(spec.get("error") or "").strip().upper()
        if not re.fullmatch(r"[A-Z0-9_]+", error):
            raise ValueError("error must be a Telegram error name, NETWORK or latency")
        phone = None
        if spec.get("phone") is not None:
            phone = normalise_phone(spec["phone"])
            if phone is None:
                raise ValueError("phone is not a phone number")
        times = spec.get("times")
        remaining = 1 if times is None else _int(times, "times")
        if remaining < 1 and remaining != -1:
            raise ValueError("times must be a positive count or -1 (until cleared)")
        seconds = None if spec.get("seconds") is None else float(spec["seconds"])
        if seconds is not None and seconds < 0:
            raise ValueError("seconds must not be negative")
        if error == LATENCY and seconds is None:
            raise ValueError("a latency fault needs seconds")
        new_id = None if spec.get("new_id") is None else _int(spec["new_id"], "new_id")
        if error == "CHAT_MIGRATED" and new_id is None:
            raise ValueError("a CHAT_MIGRATED fault needs new_id")
        self._fault_seq += 1
        fault = Fault(
            id=self._fault_seq, call=call, error=error, phone=phone,
            group_id=None if spec.get("group_id") is None else _int(spec["group_id"], "group_id"),
            seconds=seconds, remaining=remaining, new_id=new_id,
            code=None if spec.get("code") is None else _int(spec["code"], "code"),
            deliver=bool(spec.get("deliver", False)),
        )
        self._faults.append(fault)
        self.changes.notify()
        return fault.to_dict()

    def faults(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self._faults]

    def clear_faults(self) -> int:
        count = len(self._faults)
        self._faults.clear()
        self.changes.notify()
        return count

    # --- login (adapter side) -----------------------------------------------------------------

    async def send_code(self, phone: str, session: str | None = None) -> dict[str, Any]:
        """Start (or restart) a login: a new code bound to a temporary session."""
        norm = normalise_phone(phone)
        with self._recorded("send_code", norm or str(phone)):
            await self._fault_gate("send_code", norm, None)
            account = self._login_account(norm)
            self._check_login_flood(account.phone)
            self._count_code_request(account.phone)
            first = account.code_types[0]
            if first in BLOCKING_CODE_TYPES:
                return self._blocked_code(account, first)
            pending = self._pending.get(session) if session else None
            if pending is None:
                token = "tmp_" + secrets.token_urlsafe(24)
                pending = PendingLogin(token, account.phone, "", self._new_code(account.phone, set(), first))
                self._pending[token] = pending
            else:
                self._retire(pending, "replaced")
                pending.phone = account.phone
                pending.code = self._new_code(account.phone, pending.old_codes, first)
                pending.wrong_codes = pending.wrong_passwords = 0
                pending.awaiting_password = False
            pending.delivery = 0
            pending.phone_code_hash = secrets.token_hex(8)
            pending.chat_user_id = self._phone_told.get(account.phone)
            return self._sent_code(pending, account)

    async def resend_code(self, phone: str, session: str, phone_code_hash: str) -> dict[str, Any]:
        norm = normalise_phone(phone)
        with self._recorded("resend_code", norm or str(phone)):
            await self._fault_gate("resend_code", norm, None)
            pending = self._pending_for(session, norm, phone_code_hash)
            account = self._login_account(norm)
            self._check_login_flood(pending.phone)
            following = pending.delivery + 1
            if following >= len(account.code_types) or account.code_types[following] in BLOCKING_CODE_TYPES:
                raise WorldError("SEND_CODE_UNAVAILABLE")
            self._count_code_request(pending.phone)
            self._retire(pending, "replaced")
            pending.delivery = following
            pending.code = self._new_code(pending.phone, pending.old_codes, account.code_types[following])
            pending.phone_code_hash = secrets.token_hex(8)
            pending.wrong_codes = pending.wrong_passwords = 0
            pending.awaiting_password = False
            return self._sent_code(pending, account)

    async def sign_in(self, phone: str, session: str, phone_code_hash: str, code: str) -> dict[str, Any]:
        norm = normalise_phone(phone)
        with self._recorded("sign_in", norm or str(phone)):
            await self._fault_gate("sign_in", norm, None)
            pending = self._pending_for(session, norm, phone_code_hash)
            account = self._login_account(norm)
            self._check_login_flood(account.phone)
            if pending.awaiting_password:
                raise WorldError("SESSION_PASSWORD_NEEDED")
            if pending.code.current_state(self.clock()) != "live":
                raise WorldError("PHONE_CODE_EXPIRED")
            if pending.wrong_codes >= self.max_code_attempts:
                raise self._start_login_flood(account.phone)
            typed = str(code or "").strip()
            if not typed:
                raise WorldError("PHONE_CODE_EMPTY")
            if typed in pending.old_codes:
                raise WorldError("PHONE_CODE_EXPIRED")
            if not secrets.compare_digest(typed, pending.code.code):
                pending.wrong_codes += 1
                raise WorldError("PHONE_CODE_INVALID")
            pending.code.state = "used"
            if account.password is not None:
                pending.awaiting_password = True
                raise WorldError("SESSION_PASSWORD_NEEDED")
            return self._finish_login(pending, account)

    async def check_password(self, phone: str, session: str, password: str) -> dict[str, Any]:
        norm = normalise_phone(phone)
        with self._recorded("check_password", norm or str(phone)):
            await self._fault_gate("check_password", norm, None)
            pending = self._pending.get(session)
            if pending is None or not pending.awaiting_password or pending.phone != norm:
                # No password step is open for this temporary session: the login must restart.
                raise WorldError("PHONE_CODE_EXPIRED")
            account = self._login_account(norm)
            self._check_login_flood(account.phone)
            if pending.wrong_passwords >= self.max_password_attempts:
                raise self._start_login_flood(account.phone)
            if account.password is None or not secrets.compare_digest(
                    str(password).encode(), account.password.encode()):
                pending.wrong_passwords += 1
                raise WorldError("PASSWORD_HASH_INVALID")
            return self._finish_login(pending, account)

    async def cancel_login(self, session: str) -> None:
        pending = self._pending.get(session)
        with self._recorded("cancel_login", pending.phone if pending else None):
            await self._fault_gate("cancel_login", pending.phone if pending else None, None)
            pending = self._pending.pop(session, None)
            if pending is not None:
                self._retire(pending, "cancelled")

    # --- sessions, dialogs, messages (adapter side) ---------------------------------------

    async def log_out(self, session: str) -> None:
        with self._recorded("log_out", None) as call:
            account = self._session_account(session)
            call.phone = account.phone
            await self._fault_gate("log_out", account.phone, None)
            # A logged-out key is simply unknown afterwards: AUTH_KEY_UNREGISTERED.
            self._sessions.pop(session, None)
            self.changes.notify()

    async def get_dialogs(self, session: str) -> list[dict[str, Any]]:
        with self._recorded("get_dialogs", None) as call:
            account = self._session_account(session)
            call.phone = account.phone
            await self._fault_gate("get_dialogs", account.phone, None)
            return [self._dialog(account, m) for m in account.memberships.values()]

    async def get_dialogs_page(self, session: str, folder: int | None = None, after: int | None = None,
                               limit: int = 100) -> dict[str, Any]:
        """One page of the account's dialogs, as ``messages.getDialogs`` pages them.

        ``folder`` 0 = the main list, 1 = the archive, None = both (main first); ``after`` = the
        id of the last dialog of the previous page. Returns ``{"dialogs": [...], "count": n,
        "next": id | None}`` (``next`` None when the folder is done); each dialog carries its
        ``folder``. A burst of pages beyond ``dialog_pages_burst`` per ``dialog_pages_window``
        answers FLOOD_WAIT with the seconds until the window frees.
        """
        with self._recorded("get_dialogs", None) as call:
            account = self._session_account(session)
            call.phone = account.phone
            await self._fault_gate("get_dialogs", account.phone, None)
            if folder not in (None, 0, 1):
                raise WorldError("FOLDER_ID_INVALID")
            self._count_dialog_page(account.phone)
            listed = [m for m in account.memberships.values() if folder is None or m.folder == folder]
            if folder is None:
                listed.sort(key=lambda m: m.folder)  # stable: the main list, then the archive
            start = 0
            if after is not None:
                ids = [m.group_id for m in listed]
                if after not in ids:
                    raise WorldError("OFFSET_PEER_ID_INVALID")
                start = ids.index(after) + 1
            size = max(1, min(int(limit or 100), 100))
            page = listed[start:start + size]
            more = start + size < len(listed)
            return {"dialogs": [self._dialog(account, m) for m in page], "count": len(listed),
                    "next": page[-1].group_id if more and page else None}

    async def get_forum_topics(self, session: str, group_id: int, access_hash: int, after: int | None = None,
                               limit: int = TOPICS_PAGE_MAX) -> dict[str, Any]:
        """One page of a forum's topics as ``messages.getForumTopics`` lists them: General first,
        then the newest topics first; ``after`` = the id of the last topic of the previous page.
        Returns ``{"topics": [...], "count": n, "next": id | None}``. Not a forum:
        CHANNEL_FORUM_MISSING."""
        with self._recorded("get_forum_topics", None, group_id) as call:
            account = self._session_account(session)
            call.phone = account.phone
            group, _ = self._member_group(account, group_id, access_hash)
            await self._fault_gate("get_forum_topics", account.phone, group_id)
            if not group.forum:
                raise WorldError("CHANNEL_FORUM_MISSING")
            ordered = sorted(group.topics.values(), key=lambda t: (t.id != GENERAL_TOPIC, -t.id))
            ids = [t.id for t in ordered]
            start = ids.index(after) + 1 if after in ids else 0
            size = max(1, min(int(limit or TOPICS_PAGE_MAX), TOPICS_PAGE_MAX))
            page = ordered[start:start + size]
            more = start + size < len(ordered)
            return {"topics": [t.to_dict(group) for t in page], "count": len(ordered),
                    "next": page[-1].id if more and page else None}

    # --- forum topics (control side) --------------------------------------------------------

    def forum_topics(self, group_id: int) -> list[dict[str, Any]]:
        """A forum's live topics (``KeyError`` for an unknown group), as the page shows them."""
        group = self._groups[group_id]
        return [t.to_dict(group) for t in sorted(group.topics.values(), key=lambda t: t.id)]

    def change_topic(self, group_id: int, topic_id: int, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Close, reopen or delete a topic as a forum admin would: ``{"closed": bool}`` or
        ``{"deleted": true}``; ``{"deleted": false}`` brings a deleted one back (the sandbox's undo,
        for tests and demos; its posts stay gone). ``KeyError`` for an unknown group or topic,
        ``ValueError`` for anything else (General can be closed but not deleted)."""
        group = self._groups[group_id]
        if spec.get("deleted") is False and topic_id in group.deleted_topics:
            group.topics[topic_id] = group.deleted_topics.pop(topic_id)
            self.changes.notify()
            return group.topics[topic_id].to_dict(group)
        topic = group.topics[topic_id]
        if spec.get("deleted"):
            if topic_id == GENERAL_TOPIC:
                raise ValueError("the General topic can't be deleted")
            group.deleted_topics[topic_id] = group.topics.pop(topic_id)
            group.feed = [p for p in group.feed if p.get("topic_id") != topic_id]  # its posts go with it
            out = {"id": topic_id, "deleted": True}
        elif isinstance(spec.get("closed"), bool):
            topic.closed = bool(spec["closed"])
            out = topic.to_dict(group)
        else:
            raise ValueError('give {"closed": true|false} or {"deleted": true}')
        self.changes.notify()
        return out

    def add_topic(self, group_id: int, title: str, closed: bool = False) -> dict[str, Any]:
        group = self._groups[group_id]
        if not group.forum:
            raise ValueError("not a forum")
        if not title.strip():
            raise ValueError("a topic needs a title")
        topic = group.add_topic(title.strip(), closed)
        self.changes.notify()
        return topic.to_dict(group)

    def forget_dialog_paging(self) -> None:
        """Forget recent dialog pages (their FLOOD_WAIT window): for tests whose cases stand for
        people minutes apart while they run a second apart."""
        self._dialog_pages.clear()

    def forget_slow_mode(self) -> None:
        """Forget when each account last posted to each group (their slow-mode waits): for tests
        whose rounds stand for rounds an interval apart while they run seconds apart."""
        self._last_post.clear()

    def _count_dialog_page(self, phone: str) -> None:
        now = self.clock()
        pages = self._dialog_pages.setdefault(phone, deque())
        while pages and now - pages[0] >= self.dialog_pages_window:
            pages.popleft()
        if len(pages) >= self.dialog_pages_burst:
            raise WorldError("FLOOD_WAIT", seconds=_wait(pages[0] + self.dialog_pages_window - now))
        pages.append(now)

    async def send_message(
        self,
        session: str,
        group_id: int,
        access_hash: int,
        text: str,
        entities: list[dict[str, Any]] | None = None,
        media: MediaIn | None = None,
        *,
        media_ref: Mapping[str, Any] | None = None,
        count_upload: bool = False,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """Post to a group's feed; returns ``{message_id, date, media_ref?, topic_id?}``.

        ``reply_to`` in a forum names the topic (its id, as ``inputReplyToMessage.reply_to_msg_id``
        does) or a post whose topic the new post joins; none: the General topic. A closed topic
        answers TOPIC_CLOSED, a deleted one TOPIC_DELETED.

        ``media_ref`` (``{id, access_hash, file_reference}``, the reference in hex) sends a file
        posted before instead of ``media`` (FILE_REFERENCE_EXPIRED once the reference is old;
        MEDIA_INVALID for a file the account doesn't have). ``count_upload``: the media's bytes
        arrived with this call (HTTP adapter) and are counted as uploaded in the event log.
        """
        with self._recorded("send_message", None, group_id) as call:
            account = self._session_account(session)
            call.phone = account.phone
            if media is not None and count_upload:
                self.record_upload(account.phone, len(media.data) + len(media.thumb or b""))
            stored: StoredFile | None = None
            if media_ref is not None:
                stored = self.file_by_ref(account.phone, media_ref)
                media = stored.media
            group, fault, topic_id = await self._send_gate(account, group_id, access_hash, reply_to)
            entities = list(entities or [])
            _check_message(text, entities, media)
            now = self.clock()
            self._check_slow_mode(account.phone, group, now)
            self._check_rate_limit(account.phone, now)
            posted = self._post(group, account, text, entities, media, now, topic_id)
            if media is not None:
                stored = stored or self._store_file(account.phone, media)
                group.feed[-1]["media"]["file_id"] = stored.id
                posted["media_ref"] = stored.ref()
            if fault is not None:
                raise self._fault_error(fault, account.phone, group_id)
            return posted

    async def send_album(
        self,
        session: str,
        group_id: int,
        access_hash: int,
        text: str,
        entities: list[dict[str, Any]] | None,
        items: Sequence[MediaIn | Mapping[str, Any]],
        *,
        count_upload: bool = False,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """U9.3: 2-10 photos/videos posted as one album (``messages.sendMultiMedia``): one post per
        item sharing a ``grouped_id``, the caption on the first. An item is media bytes or the
        reference of a file posted before. Slow mode and the account's rate count the album once.
        Returns ``{message_ids, date, grouped_id, media_refs}``."""
        with self._recorded("send_album", None, group_id) as call:
            account = self._session_account(session)
            call.phone = account.phone
            media: list[MediaIn] = []
            stored: list[StoredFile | None] = []
            for item in items:
                if isinstance(item, MediaIn):
                    if count_upload:
                        self.record_upload(account.phone, len(item.data) + len(item.thumb or b""))
                    media.append(item)
                    stored.append(None)
                else:
                    found = self.file_by_ref(account.phone, item)
                    media.append(found.media)
                    stored.append(found)
            if not ALBUM_MIN <= len(media) <= ALBUM_MAX:
                raise WorldError("MULTI_MEDIA_TOO_LONG" if len(media) > ALBUM_MAX else "MEDIA_INVALID")
            if any(m.kind not in ("photo", "video") for m in media):
                raise WorldError("MEDIA_INVALID")
            # one send for every check: a forum's album goes in one topic
            group, fault, topic_id = await self._send_gate(account, group_id, access_hash, reply_to)
            entities = list(entities or [])
            for i, item in enumerate(media):
                _check_message(text if i == 0 else "", entities if i == 0 else [], item)
            now = self.clock()
            self._check_slow_mode(account.phone, group, now)
            self._check_rate_limit(account.phone, now)
            grouped_id = next(self._grouped_ids)
            ids: list[int] = []
            refs: list[dict[str, Any]] = []
            for i, item in enumerate(media):
                posted = self._post(group, account, text if i == 0 else "", entities if i == 0 else [], item,
                                    now, topic_id, counted=i == 0)
                file = stored[i] or self._store_file(account.phone, item)
                group.feed[-1]["media"]["file_id"] = file.id
                group.feed[-1]["grouped_id"] = grouped_id
                ids.append(int(posted["message_id"]))
                refs.append(file.ref())
            if fault is not None:
                raise self._fault_error(fault, account.phone, group_id)
            return {"message_ids": ids, "date": group.feed[-1]["date"], "grouped_id": grouped_id,
                    "media_refs": refs}

    async def _send_gate(self, account: Account, group_id: int, access_hash: int,
                         reply_to: int | None) -> tuple[Group, Fault | None, int | None]:
        """The checks every send (a post or an album) meets, in Telegram's order: the group as this
        account sees it, faults asked for, a migrated group, the account-wide restriction, a forum
        topic or payment, a ban from this group, the right to write. Returns the group, an error
        fault to raise after the post (``deliver``), and the topic the post goes in."""
        group, membership = self._member_group(account, group_id, access_hash)
        fault = await self._take_faults("send_message", account.phone, group_id)
        if fault is not None and not fault.deliver:
            raise self._fault_error(fault, account.phone, group_id)
        if group.migrated_to is not None:
            raise WorldError("CHAT_MIGRATED", new_id=group.migrated_to,
                             new_access_hash=_access_hash(account.phone, group.migrated_to))
        self._check_restriction(account.phone)
        topic_id = _check_forum_and_payment(group, reply_to)
        if membership.banned:
            # banned from this one group: Telegram hides it from the user (CHANNEL_PRIVATE);
            # USER_BANNED_IN_CHANNEL is the account-wide restriction above
            raise WorldError("CHANNEL_PRIVATE")
        if not membership.can_send:
            raise WorldError("CHAT_WRITE_FORBIDDEN")
        return group, fault, topic_id

    def upload_media(self, session: str, media: MediaIn) -> StoredFile:
        """``messages.uploadMedia``: the account's file, stored without a post (an album's items
        are uploaded so, then sent by reference)."""
        with self._recorded("upload_media", None) as call:
            account = self._session_account(session)
            call.phone = account.phone
            _check_message("", [], media)
            return self._store_file(account.phone, media)

    # --- media: uploads, sent files and their file references ----------------------------------

    def record_upload(self, phone: str | None, nbytes: int) -> None:
        """Count file bytes an account uploaded (event ``upload`` with ``bytes``)."""
        self.events.record("world", "upload", ok=True, phone=phone, nbytes=nbytes)

    def accounts_phone(self, phone: str) -> str:
        """The normalised phone of a known account (``KeyError`` otherwise)."""
        return self._known_phone(phone)

    def uploaded_bytes(self, phone: str) -> int:
        return sum(e.bytes or 0 for e in self.events.since(0) if e.method == "upload" and e.phone == phone)

    def _store_file(self, phone: str, media: MediaIn) -> StoredFile:
        file_id = int.from_bytes(secrets.token_bytes(7), "big")
        stored = StoredFile(file_id, int.from_bytes(secrets.token_bytes(7), "big"), phone, media,
                            secrets.token_bytes(16), self.clock() + self.file_reference_ttl)
        self._files[file_id] = stored
        return stored

    def file_by_ref(self, phone: str, ref: Mapping[str, Any]) -> StoredFile:
        """The stored file named by ``{id, access_hash, file_reference}`` for ``phone``."""
        try:
            file_id, access_hash = int(ref["id"]), int(ref["access_hash"])
            reference = bytes.fromhex(str(ref.get("file_reference") or ""))
        except (KeyError, TypeError, ValueError):
            raise WorldError("MEDIA_INVALID") from None
        stored = self._files.get(file_id)
        if stored is None or stored.access_hash != access_hash or stored.phone != phone:
            raise WorldError("MEDIA_INVALID")
        if reference != stored.file_reference or self.clock() >= stored.reference_expires:
            raise WorldError("FILE_REFERENCE_EXPIRED")
        return stored

    def fresh_reference(self, file_id: int) -> StoredFile | None:
        """What a refetch of a message with this file shows: a reference valid for another TTL."""
        stored = self._files.get(file_id)
        if stored is None:
            return None
        if self.clock() >= stored.reference_expires:
            stored.file_reference = secrets.token_bytes(16)
        stored.reference_expires = self.clock() + self.file_reference_ttl
        return stored

    def expire_file_references(self) -> int:
        """Expire every file reference now (control API), as time would; returns how many."""
        now = self.clock()
        for stored in self._files.values():
            stored.reference_expires = now
        self.changes.notify()
        return len(self._files)

    def member_groups(self, phone: str) -> list[tuple[int, str]]:
        """``(group id, kind)`` of every group ``phone`` is in (for refetching its own posts)."""
        account = self._accounts.get(phone)
        if account is None:
            return []
        return [(gid, self._groups[gid].kind) for gid in account.memberships if gid in self._groups]

    def group_post(self, group_id: int, message_id: int) -> dict[str, Any] | None:
        group = self._groups.get(group_id)
        if group is None:
            return None
        return next((post for post in group.feed if post["message_id"] == message_id), None)

    # --- helpers ---------------------------------------------------------------------------

    @contextmanager
    def _recorded(self, method: str, phone: str | None, group_id: int | None = None) -> Iterator[_Call]:
        call = _Call(phone, group_id)
        try:
            yield call
        except WorldError as exc:
            self.events.record("world", method, ok=False, phone=call.phone, group_id=call.group_id,
                               error=exc.name, retry_after=exc.seconds)
            raise
        except Exception:
            self.events.record("world", method, ok=False, phone=call.phone, group_id=call.group_id,
                               error="INTERNAL")
            raise
        finally:
            self.changes.notify()  # even a failed call may have issued a code or consumed a fault
        self.events.record("world", method, ok=True, phone=call.phone, group_id=call.group_id)

    async def _take_faults(self, call: str, phone: str | None, group_id: int | None) -> Fault | None:
        """Consume the first matching latency fault (and wait) and the first matching error fault."""
        latency: Fault | None = None
        error: Fault | None = None
        for fault in self._faults:
            if not fault.matches(call, phone, group_id):
                continue
            if fault.error == LATENCY:
                if latency is None:
                    latency = fault
            elif error is None:
                error = fault
        for taken in (latency, error):
            if taken is not None and taken.remaining > 0:
                taken.remaining -= 1
                if taken.remaining == 0:
                    self._faults.remove(taken)
                self.changes.notify()  # shown before a latency fault's wait, not after it
        if latency is not None:
            await self.sleep(latency.seconds or 0.0)
        return error

    async def _fault_gate(self, call: str, phone: str | None, group_id: int | None) -> None:
        fault = await self._take_faults(call, phone, group_id)
        if fault is not None:
            raise self._fault_error(fault, phone, group_id)

    def _fault_error(self, fault: Fault, phone: str | None, group_id: int | None) -> WorldError:
        seconds: int | None = None
        if fault.seconds is not None:
            seconds = _wait(fault.seconds) if fault.seconds > 0 else 0
        elif fault.error in _WAIT_ERRORS:
            seconds = DEFAULT_FAULT_SECONDS
        new_hash = None
        if fault.new_id is not None:
            new_hash = _access_hash(phone, fault.new_id) if phone else 0
        return WorldError(fault.error, seconds=seconds, new_id=fault.new_id, new_access_hash=new_hash,
                          code=fault.code, description="injected fault")

    def _login_account(self, phone: str | None) -> Account:
        account = self._accounts.get(phone) if phone else None
        if account is None:
            raise WorldError("PHONE_NUMBER_INVALID")
        if account.banned:
            raise WorldError("PHONE_NUMBER_BANNED")
        return account

    def _pending_for(self, session: str, phone: str | None, phone_code_hash: str) -> PendingLogin:
        # Another temporary session or another hash: Telegram says the code expired.
        pending = self._pending.get(session)
        if pending is None or pending.phone != phone or pending.phone_code_hash != phone_code_hash:
            raise WorldError("PHONE_CODE_EXPIRED")
        return pending

    def _check_login_flood(self, phone: str) -> None:
        until = self._login_flood_until.get(phone)
        if until is not None:
            left = until - self.clock()
            if left > 0:
                raise WorldError("FLOOD_WAIT", seconds=_wait(left))
            del self._login_flood_until[phone]

    def _start_login_flood(self, phone: str) -> WorldError:
        self._login_flood_until[phone] = self.clock() + self.login_flood_seconds
        return WorldError("FLOOD_WAIT", seconds=self.login_flood_seconds)

    def _count_code_request(self, phone: str) -> None:
        if not self.settings.rate_limits:
            return
        now = self.clock()
        times = self._code_requests.setdefault(phone, deque())
        while times and now - times[0] >= self.send_code_window:
            times.popleft()
        if len(times) >= self.send_code_limit:
            raise WorldError("FLOOD_WAIT", seconds=_wait(times[0] + self.send_code_window - now))
        times.append(now)

    def _new_code(self, phone: str, avoid: set[str], kind: str = "app") -> LoginCode:
        length = code_length(kind)
        code = None
        while code is None or code in avoid:
            code = f"{secrets.randbelow(10 ** length):0{length}d}"
        record = LoginCode(code, _now_ms_date(), self.clock(), self.settings.code_ttl, type=kind)
        if kind in ("missed_call", "flash_call"):
            record.calling_number = MISSED_CALL_PREFIX + code
        self._codes.setdefault(phone, []).append(record)
        return record

    @staticmethod
    def _retire(pending: PendingLogin, state: str) -> None:
        pending.old_codes.add(pending.code.code)
        if pending.code.state == "live":
            pending.code.state = state

    @staticmethod
    def _sent_code(pending: PendingLogin, account: Account) -> dict[str, Any]:
        """The answer to send_code/resend_code: ``type``, ``code_length``, ``hint``, ``next_type``."""
        kind = pending.code.type
        following = pending.delivery + 1
        next_type = account.code_types[following] if following < len(account.code_types) else ""
        return {"session": pending.token, "phone": pending.phone,
                "phone_code_hash": pending.phone_code_hash, "code_length": code_length(kind), "type": kind,
                "hint": _code_hint(kind, account),
                "next_type": "" if next_type in BLOCKING_CODE_TYPES else next_type}

    @staticmethod
    def _blocked_code(account: Account, kind: str) -> dict[str, Any]:
        """send_code for an account Telegram won't send a code to here: no code, no pending login."""
        return {"session": "", "phone": account.phone, "phone_code_hash": secrets.token_hex(8),
                "code_length": 0, "type": kind, "hint": "", "next_type": ""}

    def _finish_login(self, pending: PendingLogin, account: Account) -> dict[str, Any]:
        self._pending.pop(pending.token, None)
        token = "sbx_" + secrets.token_urlsafe(32)
        now = _now_ms_date()
        self._sessions[token] = Session(token, account.phone, account.user_id, now, now, pending.chat_user_id)
        self.changes.notify()  # the page shows which chat user connected which account
        return {"session": token, "user_id": account.user_id, "first_name": account.first_name,
                "phone": account.phone}

    def _session_account(self, token: str) -> Account:
        session = self._sessions.get(token)
        if session is None:
            raise WorldError(self._dead.get(token, "AUTH_KEY_UNREGISTERED"))
        account = self._accounts.get(session.phone)
        if account is None:
            raise WorldError("AUTH_KEY_UNREGISTERED")
        if account.deactivated:
            raise WorldError("USER_DEACTIVATED_BAN")
        session.last_used = _now_ms_date()
        return account

    def _member_group(self, account: Account, group_id: int, access_hash: int) -> tuple[Group, Membership]:
        group = self._groups.get(group_id)
        membership = account.memberships.get(group_id)
        if group is None:
            raise WorldError("PEER_ID_INVALID")
        broadcast_like = group.kind != "group"
        if membership is None:
            raise WorldError("CHANNEL_PRIVATE" if broadcast_like else "PEER_ID_INVALID")
        if access_hash != membership.access_hash:
            raise WorldError("CHANNEL_INVALID" if broadcast_like else "PEER_ID_INVALID")
        return group, membership

    def _check_slow_mode(self, phone: str, group: Group, now: float) -> None:
        last = self._last_post.get((phone, group.id))
        if group.slow_mode > 0 and last is not None and now - last < group.slow_mode:
            raise WorldError("SLOWMODE_WAIT", seconds=_wait(group.slow_mode - (now - last)))

    def _send_windows(self) -> list[tuple[int, float]]:
        """(limit, seconds) of every configured per-account window: minute, hour, day."""
        s = self.settings
        windows = [(s.account_send_limit, s.account_send_window),
                   (s.account_send_limit_hour, s.account_send_window_hour),
                   (s.account_send_limit_day, s.account_send_window_day)]
        return [(limit, seconds) for limit, seconds in windows if limit > 0 and seconds > 0]

    def _check_rate_limit(self, phone: str, now: float) -> None:
        """Sliding windows of an account's sends; a send over any of them gets FLOOD_WAIT for the
        time until that window has room again (the longest such wait)."""
        if not self.settings.rate_limits:
            return
        windows = self._send_windows()
        if not windows:
            return
        times = self._send_times.setdefault(phone, deque())
        longest = max(seconds for _, seconds in windows)
        while times and now - times[0] >= longest:
            times.popleft()
        wait = 0.0
        for limit, seconds in windows:
            inside = [t for t in times if now - t < seconds]
            if len(inside) >= limit:
                wait = max(wait, inside[len(inside) - limit] + seconds - now)
        if wait > 0:
            raise WorldError("FLOOD_WAIT", seconds=_wait(wait))

    def _post(self, group: Group, account: Account, text: str, entities: list[dict[str, Any]],
              media: MediaIn | None, now: float, topic_id: int | None = None, *,
              counted: bool = True) -> dict[str, Any]:
        wall = time.time()
        post: dict[str, Any] = {
            "message_id": group.next_message_id,
            "from_phone": account.phone,
            "from_user_id": account.user_id,
            "text": text,
            "entities": entities,
            "date": round(wall, 3),
            "date_ms": int(wall * 1000),
        }
        if media is not None:
            post["media"] = media.summary()
            self._media[post["media"]["sha256"]] = media
        if topic_id is not None:
            post["topic_id"] = topic_id
        group.next_message_id += 1
        group.feed.append(post)
        if counted:  # an album's further items are the same send for slow mode and rates
            self._last_post[(account.phone, group.id)] = now
            self._send_times.setdefault(account.phone, deque()).append(now)
        answer: dict[str, Any] = {"message_id": post["message_id"], "date": post["date"]}
        if topic_id is not None:
            answer["topic_id"] = topic_id
        return answer

    def _dialog(self, account: Account, membership: Membership) -> dict[str, Any]:
        group = self._groups[membership.group_id]
        return {
            "id": group.id,
            "title": group.title,
            "kind": group.kind,
            "access_hash": membership.access_hash,
            "can_send": membership.can_send and not membership.banned,
            "slow_mode": group.slow_mode,
            "folder": membership.folder,
            "forum": group.forum,
        }

    def _shown_dialog(self, account: Account, membership: Membership) -> dict[str, Any]:
        """A dialog as the control API and the page show it: a forum with its topics (U11)."""
        out = self._dialog(account, membership)
        group = self._groups[membership.group_id]
        if group.forum:
            out["topics"] = [{"id": t.id, "title": t.title, "closed": t.closed}
                             for t in sorted(group.topics.values(), key=lambda t: t.id)]
        return out

    def _known_phone(self, phone: str) -> str:
        norm = normalise_phone(phone)
        if norm is None or norm not in self._accounts:
            raise KeyError(phone)
        return norm

    # --- seeding -------------------------------------------------------------------------

    def _parse_account(self, item: Any) -> tuple[Account, list[dict[str, Any]]]:
        if not isinstance(item, Mapping):
            raise ValueError("an account is a JSON object")
        phone = normalise_phone(item.get("phone"))
        if phone is None:
            raise ValueError(f"phone {item.get('phone')!r} is not a phone number")
        password = item.get("password")
        account = Account(
            phone=phone,
            first_name=str(item.get("first_name") or "User"),
            user_id=_int(item.get("user_id") or int(phone[1:]), "user_id"),
            password=str(password) if password else None,
            banned=bool(item.get("banned", False)),
            deactivated=bool(item.get("deactivated", False)),
            code_types=parse_code_types(item.get("code_types", item.get("code_type")), phone),
            email=str(item.get("email") or ""),
        )
        groups = item.get("groups") or []
        if not isinstance(groups, list):
            raise ValueError(f"{phone}: groups must be a list")
        groups = groups + _generated_groups(item.get("generated_groups"), phone)
        return account, [self._parse_group(phone, g) for g in groups]

    @staticmethod
    def _parse_group(phone: str, item: Any) -> dict[str, Any]:
        if not isinstance(item, Mapping):
            raise ValueError(f"{phone}: a group is a JSON object")
        gid = _int(item.get("id"), "group id")
        if gid <= 0:
            raise ValueError(f"{phone}: group ids are positive")
        kind = str(item.get("kind") or "supergroup")
        if kind not in GROUP_KINDS:
            raise ValueError(f"{phone}: group {gid}: kind must be one of {', '.join(GROUP_KINDS)}")
        migrated_to = item.get("migrated_to")
        folder = 1 if item.get("archived") else _int(item.get("folder") or 0, "folder")
        if folder not in (0, 1):
            raise ValueError(f"{phone}: group {gid}: folder is 0 (main list) or 1 (archive)")
        return {
            "id": gid,
            "folder": folder,
            "title": str(item.get("title") or f"Group {gid}"),
            "kind": kind,
            "can_send": bool(item.get("can_send", True)),
            "banned": bool(item.get("banned", False)),
            "slow_mode": None if item.get("slow_mode") is None else _int(item["slow_mode"], "slow_mode"),
            "migrated_to": None if migrated_to is None else _int(migrated_to, "migrated_to"),
            "forum": bool(item.get("forum", False)) and kind == "supergroup",
            "general_closed": bool(item.get("general_closed", False)),
            "topics": _parse_topics(phone, gid, item.get("topics")),
            "paid_stars": max(0, _int(item.get("paid_stars") or 0, "paid_stars")),
        }

    def _install(self, account: Account, groups: list[dict[str, Any]]) -> None:
        self._accounts[account.phone] = account
        for spec in groups:
            group = self._groups.get(spec["id"])
            if group is None:
                group = self._groups[spec["id"]] = Group(spec["id"], spec["title"], spec["kind"])
            else:  # one group, one feed, shared by its members; the latest description wins
                group.title, group.kind = spec["title"], spec["kind"]
            if spec["slow_mode"] is not None:
                group.slow_mode = spec["slow_mode"]
            group.forum = spec["forum"]
            if group.forum:
                _seed_topics(group, spec["topics"], spec["general_closed"])
            group.paid_stars = spec["paid_stars"]
            account.memberships[group.id] = Membership(group.id, _access_hash(account.phone, group.id),
                                                       spec["can_send"], spec["banned"], spec["folder"])
            if spec["migrated_to"] is not None:
                # A basic group that became a supergroup: the member follows it there.
                group.migrated_to = spec["migrated_to"]
                target = self._groups.setdefault(
                    spec["migrated_to"], Group(spec["migrated_to"], group.title, "supergroup"))
                account.memberships.setdefault(
                    target.id, Membership(target.id, _access_hash(account.phone, target.id)))


def _generated_groups(spec: Any, phone: str) -> list[dict[str, Any]]:
    """``{"count": 5200, "first_id": 700000, "archived": 1200}``: an account with thousands of
    dialogs without listing each (the last ``archived`` of them in the archive folder)."""
    if spec is None:
        return []
    if not isinstance(spec, Mapping):
        raise ValueError(f"{phone}: generated_groups is an object")
    count, first = _int(spec.get("count") or 0, "count"), _int(spec.get("first_id") or 0, "first_id")
    archived = _int(spec.get("archived") or 0, "archived")
    if not 0 < count <= 20_000 or first <= 0 or not 0 <= archived <= count:
        raise ValueError(f"{phone}: generated_groups needs 0 < count <= 20000, first_id > 0, "
                         "0 <= archived <= count")
    kinds = ("supergroup", "supergroup", "group", "channel")
    return [{"id": first + i, "title": f"Chat {i + 1}", "kind": kinds[i % len(kinds)],
             "folder": 1 if i >= count - archived else 0} for i in range(count)]


def code_length(kind: str) -> int:
    return EMAIL_CODE_LENGTH if kind == "email" else CODE_LENGTH


def mask_email(email: str) -> str:
    """Telegram's ``email_pattern``: the first letter of the name, stars, the domain."""
    name, _, domain = email.partition("@")
    return f"{name[:1]}{'*' * max(3, len(name) - 1)}@{domain or 'example.com'}"


def _code_hint(kind: str, account: Account) -> str:
    if kind == "email":
        return mask_email(account.email or f"{account.first_name.lower() or 'user'}@example.com")
    if kind in ("missed_call", "flash_call"):
        return MISSED_CALL_PREFIX
    if kind == "fragment_sms":
        return f"https://fragment.com/number/{account.phone.lstrip('+')}/code"
    return ""


def parse_code_types(raw: Any, phone: str) -> tuple[str, ...]:
    """``code_types`` of an account: one name or a list, in delivery order (default app, then SMS)."""
    if raw is None:
        return ("app", "sms")
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(f"{phone}: code_types must be a non-empty list")
    known = CODE_TYPES + BLOCKING_CODE_TYPES
    out = tuple(str(item) for item in items)
    for item in out:
        if item not in known:
            raise ValueError(f"{phone}: code type {item!r} must be one of {', '.join(known)}")
    return out


def _home_dc_of(item: Any) -> int | None:
    dc = item.get("dc") if isinstance(item, Mapping) else None
    if dc is None:
        return None
    value = _int(dc, "dc")
    if not 1 <= value <= 5:
        raise ValueError("dc must be a data centre id from 1 to 5")
    return value


def _check_forum_and_payment(group: Group, reply_to: int | None) -> int | None:
    """Forums and paid groups (issues 11, 13): the topic a post goes in (a post without one goes to
    General), refused when that topic is closed or deleted; a group that charges Stars refuses a
    message that offers no payment (we never offer one: ``allow_paid_stars`` is never set).
    Returns the post's topic id (None outside forums)."""
    topic_id = group.topic_of(reply_to) if group.forum else None
    if group.paid_stars > 0:
        raise WorldError("ALLOW_PAYMENT_REQUIRED", code=403,
                         description=f"{group.paid_stars} stars per message")
    return topic_id


def _parse_topics(phone: str, gid: int, raw: Any) -> list[dict[str, Any]]:
    """``topics: [{title, closed?, id?}]`` of a forum (General, id 1, is always there)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError(f"{phone}: group {gid}: topics must be a list")
    out = []
    for item in raw:
        if not isinstance(item, Mapping) or not str(item.get("title") or "").strip():
            raise ValueError(f"{phone}: group {gid}: a topic is an object with a title")
        topic_id = None if item.get("id") is None else _int(item["id"], "topic id")
        if topic_id is not None and topic_id <= GENERAL_TOPIC:
            raise ValueError(f"{phone}: group {gid}: topic ids above 1 (1 is General)")
        out.append({"title": str(item["title"]), "closed": bool(item.get("closed", False)), "id": topic_id})
    return out


def _seed_topics(group: Group, topics: list[dict[str, Any]], general_closed: bool) -> None:
    """A forum's topics from a seed: General, then each topic not there yet (by title)."""
    general = group.topics.get(GENERAL_TOPIC)
    if general is None:
        general = group.topics[GENERAL_TOPIC] = Topic(GENERAL_TOPIC, "General", date=round(time.time(), 3))
        group.next_message_id = max(group.next_message_id, GENERAL_TOPIC + 1)
    general.closed = general_closed
    by_title = {t.title: t for t in group.topics.values()}
    for spec in topics:
        known = by_title.get(spec["title"])
        if known is not None:
            known.closed = spec["closed"]
        else:
            group.add_topic(spec["title"], spec["closed"], spec["id"])


def _check_message(text: str, entities: list[dict[str, Any]], media: MediaIn | None) -> None:
    if media is None and not text.strip():
        raise WorldError("MESSAGE_EMPTY")
    size = _utf16_len(text)  # Telegram's limits count UTF-16 code units, as entity offsets do
    if media is not None and size > CAPTION_LIMIT:
        raise WorldError("MEDIA_CAPTION_TOO_LONG")
    if size > TEXT_LIMIT:
        raise WorldError("MESSAGE_TOO_LONG")
    for entity in entities:
        if not isinstance(entity, dict):
            raise WorldError("ENTITY_BOUNDS_INVALID")
        offset, length = entity.get("offset"), entity.get("length")
        if (not isinstance(offset, int) or not isinstance(length, int)
                or offset < 0 or length <= 0 or offset + length > size):
            raise WorldError("ENTITY_BOUNDS_INVALID")
    if media is not None and (media.kind not in MEDIA_KINDS or not 0 < len(media.data) <= MEDIA_LIMIT):
        raise WorldError("MEDIA_INVALID")


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer") from None
