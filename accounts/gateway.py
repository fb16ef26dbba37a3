"""The account gateway port: what the services need from a Telegram user account.

Two adapters implement it: ``accounts.telethon`` (real Telegram through
Telethon) and ``accounts.sandbox_gateway`` (the local sandbox world over HTTP).
Both raise only the domain errors of ``domain.errors``.

Sessions are opaque strings. During login a *temporary* session (named
``login_<userId>``) is created by ``send_code`` and must be passed back unchanged
to every later step; the durable session string is returned only by a
successful ``sign_in``/``check_password``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

GroupKind = Literal["group", "supergroup", "channel"]
MediaKind = Literal["photo", "video", "document", "animation"]
# Where Telegram sent a login code (auth.SentCodeType, by the name the bot words it with).
CodeType = Literal[
    "app", "sms", "call", "flash_call", "missed_call", "email", "fragment_sms", "firebase_sms",
    "sms_word", "sms_phrase",
]
CODE_TYPES: tuple[str, ...] = (
    "app", "sms", "call", "flash_call", "missed_call", "email", "fragment_sms", "firebase_sms",
    "sms_word", "sms_phrase",
)


@dataclass(frozen=True)
class LoginState:
    """Everything a login step needs from the previous one; survives a restart."""

    name: str  # temporary session name, ``login_<userId>``
    phone: str  # normalised, ``+<digits>``
    session: str  # temporary session string (auth key); secret
    phone_code_hash: str
    code_length: int = 5
    # Where the code went: ``code_type`` one of ``CODE_TYPES``; ``code_hint`` the masked email
    # (email), the calling number's prefix (missed_call) or the Fragment link (fragment_sms);
    # ``next_type`` what a resend would use ("" = no other way left).
    code_type: str = "app"
    code_hint: str = ""
    next_type: str = ""

    def with_code(self, session: str, phone_code_hash: str) -> LoginState:
        return replace(self, session=session, phone_code_hash=phone_code_hash)

    def with_delivery(self, delivery: CodeDelivery) -> LoginState:
        return replace(self, code_length=delivery.length, code_type=delivery.type, code_hint=delivery.hint,
                       next_type=delivery.next_type)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "phone": self.phone,
            "session": self.session,
            "phone_code_hash": self.phone_code_hash,
            "code_length": self.code_length,
            "code_type": self.code_type,
            "code_hint": self.code_hint,
            "next_type": self.next_type,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoginState:
        return cls(
            name=str(data["name"]),
            phone=str(data["phone"]),
            session=str(data["session"]),
            phone_code_hash=str(data["phone_code_hash"]),
            code_length=int(data.get("code_length", 5)),
            code_type=str(data.get("code_type") or "app"),
            code_hint=str(data.get("code_hint") or ""),
            next_type=str(data.get("next_type") or ""),
        )


@dataclass(frozen=True)
class CodeDelivery:
    """How Telegram delivered a login code (``auth.sentCode.type`` and ``next_type``)."""

    type: str = "app"
    length: int = 5
    hint: str = ""
    next_type: str = ""


@dataclass(frozen=True)
class SignedIn:
    """A finished login: the durable session and who it belongs to."""

    session: str  # durable session string; secret, stored encrypted only
    tg_user_id: int
    first_name: str
    phone: str


@dataclass(frozen=True)
class GroupInfo:
    """A chat the account can post to, with what a send needs (no dialog fetch later)."""

    peer_id: int
    access_hash: int
    kind: GroupKind
    title: str
    can_send: bool = True
    archived: bool = False  # in the account's archive folder (Telegram's peer folder 1)
    is_forum: bool = False  # a supergroup with topics (posts go to its General topic)


# Topics an import records per forum (pages of ``messages.getForumTopics`` until this many).
MAX_TOPICS = 300

# Telegram's peer folders that hold dialogs: the main list and the archive.
MAIN_FOLDER = 0
ARCHIVE_FOLDER = 1


@dataclass(frozen=True)
class DialogPage:
    """One page of ``messages.getDialogs`` in one folder.

    ``read`` counts every dialog on the page (users and bots too), for progress; ``next_offset``
    is an opaque cursor to pass back for the next page, "" when the folder is done.
    """

    groups: list[GroupInfo]
    read: int
    next_offset: str


# Telegram's id of a forum's General topic; a post without a topic goes there.
GENERAL_TOPIC = 1


@dataclass(frozen=True)
class GroupRef:
    peer_id: int
    access_hash: int
    kind: GroupKind
    # the forum topic to post in (U11); None or GENERAL_TOPIC: the General topic (no reply_to)
    topic_id: int | None = None

    @property
    def in_topic(self) -> int | None:
        """The topic id a send names (``reply_to`` its id), None for the General topic or no forum."""
        return self.topic_id if self.topic_id is not None and self.topic_id != GENERAL_TOPIC else None


@dataclass(frozen=True)
class ForumTopic:
    """One topic of a forum as ``messages.getForumTopics`` lists it (deleted topics are not listed)."""

    topic_id: int  # the id of the message that created it; the General topic is 1
    title: str
    closed: bool = False


@dataclass(frozen=True)
class Media:
    """Media bytes with the attributes the Bot API reported (0 / None when it had none).

    ``key`` names the content (the stored row's sha256): an adapter that sent it once on an
    account reuses the sent file (id + file reference) instead of uploading the bytes again.
    """

    kind: MediaKind
    data: bytes
    filename: str
    mime_type: str = "application/octet-stream"
    width: int = 0
    height: int = 0
    duration: float = 0.0
    thumb: bytes | None = None
    key: str = ""


@dataclass(frozen=True)
class OutgoingMessage:
    """Text (or caption) with Bot-API-style entities, and optional media; or (U9.3) an album of
    2-10 photos/videos posted as one, ``text`` its caption (on the first item)."""

    text: str
    entities: list[dict[str, Any]] = field(default_factory=list)
    media: Media | None = None
    album: tuple[Media, ...] = ()

    @property
    def upload_bytes(self) -> int:
        """What a send may have to upload first (media, thumbnails, an album's items)."""
        items = [*self.album, *([self.media] if self.media is not None else [])]
        return sum(len(m.data) + len(m.thumb or b"") for m in items)


@dataclass(frozen=True)
class AccountRef:
    """A connected account as the gateway needs it for sends."""

    account_id: int
    session: str  # decrypted durable session string


class AccountGateway(Protocol):
    """Capabilities of a Telegram user account, split as Telethon splits its client."""

    # login
    async def send_code(self, name: str, phone: str) -> LoginState: ...

    async def resend_code(self, state: LoginState) -> LoginState: ...

    async def sign_in(self, state: LoginState, code: str) -> SignedIn:
        """Raises ``PasswordNeeded`` when two-step verification is on."""
        ...

    async def check_password(self, state: LoginState, password: str) -> SignedIn: ...

    async def cancel_login(self, state: LoginState) -> None:
        """Forget the temporary session (best effort, never raises)."""
        ...

    # dialogs
    async def list_groups(self, account: AccountRef) -> list[GroupInfo]: ...

    async def list_groups_page(self, account: AccountRef, folder: int, offset: str = "") -> DialogPage:
        """One page of dialogs in ``folder`` (``MAIN_FOLDER``/``ARCHIVE_FOLDER``) after ``offset``."""
        ...

    async def list_topics(self, account: AccountRef, group: GroupRef) -> list[ForumTopic]:
        """The topics of a forum supergroup (General first), up to ``MAX_TOPICS``."""
        ...

    # messages
    async def send_message(self, account: AccountRef, group: GroupRef, message: OutgoingMessage) -> int:
        """Post ``message`` to ``group`` (in ``group.topic_id`` of a forum); returns the new message id."""
        ...

    # session
    async def log_out(self, account: AccountRef) -> None: ...

    async def close(self) -> None:
        """Release connections (client pool, HTTP sessions)."""
        ...


async def release(gateway: object, account: AccountRef) -> None:
    """The account's lease ended: a gateway that keeps connections closes the account's now.

    One session key, one process at a time (issue 11): Telegram kills a key used from two places at
    once (AUTH_KEY_DUPLICATED), so a client stays connected only while its holder has the account's
    lock. Gateways without connections of their own (the sandbox's HTTP one) have nothing to do.
    """
    method = getattr(gateway, "release", None)
    if method is not None:
        await method(account)
