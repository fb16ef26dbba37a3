"""Plain records of the stored objects, as the repositories return them.

Services turn them into the views the bot and the admin API show. Secrets never appear here
decrypted: ``AccountRecord.session_enc`` is the ciphertext.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from domain.schedule import Window, window_of

ActorKind = Literal["admin", "api", "system", "user"]
AuditOutcome = Literal["ok", "denied", "failed"]


@dataclass(frozen=True)
class UserProfile:
    """Who sent an update, as the Bot API describes them."""

    user_id: int
    first_name: str = ""
    last_name: str = ""
    username: str = ""
    language: str = ""


@dataclass(frozen=True)
class UserRecord:
    user_id: int
    first_name: str
    last_name: str
    username: str
    language: str
    access_status: str  # none | pending | granted | rejected | revoked
    access_expires_at: datetime | None
    access_requested_at: datetime | None
    banned: bool
    bot_blocked: bool
    notify_rounds: bool
    created_at: datetime
    last_seen_at: datetime
    timezone: str = "UTC"  # U10: an IANA name or UTC±HH:MM (domain.schedule)

    @property
    def display_name(self) -> str:
        name = " ".join(part for part in (self.first_name, self.last_name) if part)
        return name or (f"@{self.username}" if self.username else str(self.user_id))


@dataclass(frozen=True)
class AccountRecord:
    account_id: int
    user_id: int
    phone: str
    tg_user_id: int
    first_name: str
    session_enc: bytes | None
    status: str  # connected | disconnected
    disconnected_reason: str
    updated_at: datetime

    @property
    def connected(self) -> bool:
        return self.status == "connected" and self.session_enc is not None


@dataclass(frozen=True)
class GroupRecord:
    group_id: int
    user_id: int
    peer_id: int
    access_hash: int
    kind: str  # group | supergroup | channel
    title: str
    selected: bool
    status: str  # active | disabled | gone
    reason: str
    archived: bool = False  # in the account's archive folder
    is_forum: bool = False  # a supergroup with topics (U11)
    topic_id: int | None = None  # the topic its posts go to; None: the General topic


@dataclass(frozen=True)
class MediaRecord:
    media_id: int
    sha256: str
    kind: str  # photo | video | document | animation
    filename: str
    mime_type: str
    bot_file_id: str
    size: int
    width: int = 0
    height: int = 0
    duration: float = 0.0


@dataclass(frozen=True)
class MessageRecord:
    message_id: int
    user_id: int
    version: int
    text: str
    entities: list[dict[str, Any]] = field(default_factory=list)
    media_id: int | None = None
    media_kind: str | None = None
    media_filename: str = ""
    media_bot_file_id: str = ""
    created_at: datetime | None = None


@dataclass(frozen=True)
class CampaignRecord:
    user_id: int
    status: str  # stopped | running
    interval_seconds: int | None
    next_run_at: datetime | None
    paused_until: datetime | None
    pause_reason: str
    started_at: datetime | None
    stopped_at: datetime | None
    last_round_id: int | None
    account_id: int | None = None  # U8: the account whose broadcast it is (None: a draft before any)
    window_start: int | None = None  # U10: active hours in local minutes (domain.schedule.Window)
    window_end: int | None = None
    window_days: int = 127

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def window(self) -> Window | None:
        return window_of(self.window_start, self.window_end, self.window_days)


@dataclass(frozen=True)
class RoundCounts:
    """A round's attempts by outcome; ``pending`` covers pending, sending and flood_wait."""

    round_id: int
    planned_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    status: str
    total: int
    sent: int
    failed: int
    skipped: int
    pending: int
    unknown: int


@dataclass(frozen=True)
class AuditEntry:
    audit_id: int
    at: datetime
    actor_id: int | None
    actor_kind: str
    action: str
    target_user_id: int | None
    outcome: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class Notification:
    notification_id: int
    user_id: int
    kind: str
    payload: dict[str, Any]
    dedupe_key: str | None
    created_at: datetime
    tries: int
    timezone: str = "UTC"  # U10.6: the recipient's, the times in the text are on their clock
    language: str = ""  # the recipient's users.language (U12), "" when unknown
    # U8: the account the payload's ``account_id`` names (its name and phone, "" when none or gone)
    # and how many accounts the user has (connected ones, this one counted too)
    account_name: str = ""
    account_phone: str = ""
    user_accounts: int = 1


Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock of the services (tests pass their own)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class UnknownHistory:
    """What the database says around one failed send with an unknown error ``code``."""

    sent_this_round: int  # attempts of this round already sent
    others_not_failed_alike: int  # attempts of this round, this one aside, not failed with ``code``
    group_failed_alike_last_round: bool  # this group failed with ``code`` in the user's previous round
    sent_last_round: int  # attempts of the previous round that were sent
