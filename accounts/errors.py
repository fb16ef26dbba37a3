"""The one table from Telegram's error names to the domain errors of ``domain.errors``.

Both account gateway adapters end here: the Telethon adapter turns an exception
into Telegram's name, RPC code and data (``accounts.telethon.errors``), the
sandbox adapter reads them from the world's answer (``accounts.sandbox_gateway``),
and ``to_domain`` decides the domain error. Lookup works like Telegram clients do:
the exact name first, then a family pattern (``FROZEN_*``), then the numeric
class of the RPC error (401, 406, 420, 5xx) for names the table does not know.
Some rows depend on what the caller was doing (an unknown 406 while sending
pauses the account; while logging in it is just an error), hence ``operation``.
Anything else unknown stays a plain ``GatewayError`` and the engine decides it
by where it happens (``services.engine.judge_unknown``).

Names arrive as Telegram writes them: ``FLOOD_WAIT_30`` is the name ``FLOOD_WAIT``
with 30 seconds of data, and the domain error's ``code`` keeps the bare name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from domain.errors import (
    AccountThrottled,
    ClientError,
    CodeExpired,
    CodeInvalid,
    FloodWait,
    GatewayError,
    GroupClosed,
    GroupMigrated,
    LoginBlocked,
    MaybeSent,
    MessageRejected,
    PasswordInvalid,
    PasswordNeeded,
    PhoneBanned,
    PhoneInvalid,
    ResendUnavailable,
    SessionDead,
    TransientError,
)

Operation = Literal["login", "send", "dialogs", "session"]

# Telegram gives no wait hint with these; the values are deliberate guesses, long enough not to
# hammer a limit that is known to last hours.
PHONE_FLOOD_SECONDS: Final = 24 * 3600
UNKNOWN_FLOOD_SECONDS: Final = 60

# Names the adapters give to login answers that end the login (sentCode types, not RPC errors).
SETUP_EMAIL_REQUIRED: Final = "SENT_CODE_SETUP_EMAIL_REQUIRED"
PAYMENT_REQUIRED: Final = "SENT_CODE_PAYMENT_REQUIRED"

# Names the adapters give to failures below Telegram's RPC layer.
NETWORK_ERROR: Final = "NETWORK_ERROR"
TIMEOUT: Final = "TIMEOUT"
UNEXPECTED: Final = "UNEXPECTED"


@dataclass(frozen=True, slots=True)
class Failure:
    """One Telegram error as both adapters describe it, name already normalised."""

    name: str
    operation: Operation
    seconds: int | None = None
    new_id: int | None = None
    new_access_hash: int | None = None
    detail: str = ""


Rule = Callable[[Failure], GatewayError]


def _always(error: type[GatewayError]) -> Rule:
    def rule(failure: Failure) -> GatewayError:
        return error(code=failure.name, detail=failure.detail)

    return rule


def _flood(failure: Failure) -> GatewayError:
    seconds = UNKNOWN_FLOOD_SECONDS if failure.seconds is None else failure.seconds
    return FloodWait(seconds, code=failure.name)


def _phone_flood(failure: Failure) -> GatewayError:
    seconds = PHONE_FLOOD_SECONDS if failure.seconds is None else failure.seconds
    return FloodWait(seconds, code=failure.name, detail="too many login attempts")


def _migrated(failure: Failure) -> GatewayError:
    return GroupMigrated(failure.new_id or 0, failure.new_access_hash or 0, code=failure.name)


def _login_blocked(reason: str) -> Rule:
    def rule(failure: Failure) -> GatewayError:
        return LoginBlocked(code=failure.name, detail=reason)

    return rule


def _unknown_not_acceptable(failure: Failure) -> GatewayError:
    """An unknown 406 while sending: Telegram wants a person to look at the account; pause it."""
    if failure.operation != "send":
        return GatewayError(code=failure.name, detail=failure.detail)
    return AccountThrottled(code=failure.name, detail=failure.detail, spambot=False)


_dead = _always(SessionDead)
_closed = _always(GroupClosed)
_rejected = _always(MessageRejected)
_transient = _always(TransientError)
_restricted = _always(AccountThrottled)
_client = _always(ClientError)

# The table (engine.md, "Errors from Telegram"; docs/telegram-errors.md says why each row is what it
# is). Every name of ../shared/reference/telegram-errors.csv is here (tests/unit/test_error_csv.py).
# Names not listed fall back on ``PATTERNS``, then on ``BY_CODE``.
TABLE: Final[dict[str, Rule]] = {
    # flood waits
    "FLOOD_WAIT": _flood,
    "FLOOD_PREMIUM_WAIT": _flood,
    "FLOOD_TEST_PHONE_WAIT": _flood,
    "SLOWMODE_WAIT": _flood,
    "PHONE_NUMBER_FLOOD": _phone_flood,
    "PHONE_PASSWORD_FLOOD": _phone_flood,
    # account throttled: limits on the whole account, never one group's fault (@SpamBot explains them)
    "PEER_FLOOD": _restricted,
    "USER_BANNED_IN_CHANNEL": _restricted,  # "banned from sending messages in supergroups/channels"
    "USER_RESTRICTED": _restricted,
    "FROZEN_METHOD_INVALID": _restricted,  # a frozen account may only read; FROZEN_* by pattern too
    "FROZEN_PARTICIPANT_MISSING": _restricted,
    # group permanently closed; the name is the reason
    "CHAT_WRITE_FORBIDDEN": _closed,
    "CHANNEL_PRIVATE": _closed,
    "CHAT_ADMIN_REQUIRED": _closed,
    "CHAT_RESTRICTED": _closed,
    "CHANNEL_INVALID": _closed,
    "PEER_ID_INVALID": _closed,
    "CHAT_ID_INVALID": _closed,
    "CHAT_INVALID": _closed,
    "CHAT_FORBIDDEN": _closed,
    "CHAT_GUEST_SEND_FORBIDDEN": _closed,
    "CHAT_SEND_PLAIN_FORBIDDEN": _closed,
    "CHAT_SEND_MEDIA_FORBIDDEN": _closed,
    "CHAT_SEND_PHOTOS_FORBIDDEN": _closed,
    "CHAT_SEND_VIDEOS_FORBIDDEN": _closed,
    "CHAT_SEND_GIFS_FORBIDDEN": _closed,
    "CHAT_SEND_DOCS_FORBIDDEN": _closed,
    "CHANNEL_PUBLIC_GROUP_NA": _closed,
    "USER_NOT_PARTICIPANT": _closed,
    "INVITE_HASH_EXPIRED": _closed,
    # forums and paid groups: the post can't go in without a topic or a payment, and we do neither
    "TOPIC_CLOSED": _closed,
    "TOPIC_DELETED": _closed,
    "ALLOW_PAYMENT_REQUIRED": _closed,  # ALLOW_PAYMENT_REQUIRED_<stars>: the group charges per message
    # a private chat rather than a group: the other side is gone or blocked
    "USER_IS_BLOCKED": _closed,
    "YOU_BLOCKED_USER": _closed,
    "USER_IS_BOT": _closed,
    "INPUT_USER_DEACTIVATED": _closed,
    # group moved
    "CHAT_MIGRATED": _migrated,
    # account dead
    "AUTH_KEY_UNREGISTERED": _dead,
    "SESSION_REVOKED": _dead,
    "SESSION_EXPIRED": _dead,
    "USER_DEACTIVATED": _dead,
    "USER_DEACTIVATED_BAN": _dead,
    "AUTH_KEY_DUPLICATED": _dead,
    "AUTH_KEY_INVALID": _dead,
    "AUTH_KEY_PERM_EMPTY": _dead,
    "SESSION_INVALID": _dead,  # a stored session the client cannot even parse
    # message rejected: the message (or a part of the request built from it) is refused as it is
    "MESSAGE_TOO_LONG": _rejected,
    "MESSAGE_EMPTY": _rejected,
    "MEDIA_CAPTION_TOO_LONG": _rejected,
    "MEDIA_INVALID": _rejected,
    "MEDIA_EMPTY": _rejected,
    "ENTITY_BOUNDS_INVALID": _rejected,
    "ENTITY_MENTION_USER_INVALID": _rejected,
    "ENTITIES_TOO_LONG": _rejected,
    "PHOTO_INVALID": _rejected,
    "PHOTO_EXT_INVALID": _rejected,
    "PHOTO_INVALID_DIMENSIONS": _rejected,
    "PHOTO_SAVE_FILE_INVALID": _rejected,
    "IMAGE_PROCESS_FAILED": _rejected,
    "DOCUMENT_INVALID": _rejected,
    "VIDEO_CONTENT_TYPE_INVALID": _rejected,
    "FILE_PARTS_INVALID": _rejected,
    "WEBPAGE_CURL_FAILED": _rejected,
    "WEBPAGE_MEDIA_EMPTY": _rejected,
    "EXTERNAL_URL_INVALID": _rejected,
    "MSG_ID_INVALID": _rejected,
    "EMOTICON_INVALID": _rejected,
    # ... and parts of a message this product never builds (buttons, polls, games, invoices,
    # scheduling): should one ever arrive, the message is what Telegram refused
    "BOT_DOMAIN_INVALID": _rejected,
    "BOT_PAYMENTS_DISABLED": _rejected,
    "BOT_POLLS_DISABLED": _rejected,
    "BROADCAST_PUBLIC_VOTERS_FORBIDDEN": _rejected,
    "BUTTON_DATA_INVALID": _rejected,
    "BUTTON_TYPE_INVALID": _rejected,
    "BUTTON_URL_INVALID": _rejected,
    "CURRENCY_TOTAL_AMOUNT_INVALID": _rejected,
    "GAME_BOT_INVALID": _rejected,
    "PAYMENT_PROVIDER_INVALID": _rejected,
    "POLL_ANSWERS_INVALID": _rejected,
    "POLL_OPTION_DUPLICATE": _rejected,
    "POLL_OPTION_INVALID": _rejected,
    "POLL_QUESTION_INVALID": _rejected,
    "QUIZ_CORRECT_ANSWERS_EMPTY": _rejected,
    "QUIZ_CORRECT_ANSWERS_TOO_MUCH": _rejected,
    "QUIZ_CORRECT_ANSWER_INVALID": _rejected,
    "QUIZ_MULTIPLE_INVALID": _rejected,
    "REPLY_MARKUP_INVALID": _rejected,
    "REPLY_MARKUP_TOO_LONG": _rejected,
    "SCHEDULE_BOT_NOT_ALLOWED": _rejected,
    "SCHEDULE_DATE_TOO_LATE": _rejected,
    "SCHEDULE_STATUS_PRIVATE": _rejected,
    "SCHEDULE_TOO_MUCH": _rejected,
    # may already be posted: a resend of the same request (same random id) reached Telegram
    "RANDOM_ID_DUPLICATE": _always(MaybeSent),
    # login
    "PHONE_NUMBER_INVALID": _always(PhoneInvalid),
    "PHONE_NUMBER_UNOCCUPIED": _always(PhoneInvalid),
    "PHONE_NUMBER_APP_SIGNUP_FORBIDDEN": _always(PhoneInvalid),
    "PHONE_PASSWORD_PROTECTED": _always(PhoneInvalid),  # this phone can't log in from this app
    "PHONE_NUMBER_BANNED": _always(PhoneBanned),
    "PHONE_CODE_INVALID": _always(CodeInvalid),
    "PHONE_CODE_EMPTY": _always(CodeInvalid),
    "PHONE_CODE_EXPIRED": _always(CodeExpired),
    "PHONE_CODE_HASH_EMPTY": _always(CodeExpired),
    "SESSION_PASSWORD_NEEDED": _always(PasswordNeeded),
    "PASSWORD_HASH_INVALID": _always(PasswordInvalid),
    "SEND_CODE_UNAVAILABLE": _always(ResendUnavailable),
    SETUP_EMAIL_REQUIRED: _login_blocked("setup_email_required"),
    PAYMENT_REQUIRED: _login_blocked("payment_required"),
    # our client: credentials, layer or serialisation refused; the operator must fix the deployment
    "API_ID_INVALID": _client,
    "API_ID_PUBLISHED_FLOOD": _client,
    "CONNECTION_API_ID_INVALID": _client,
    "CONNECTION_DEVICE_MODEL_EMPTY": _client,
    "CONNECTION_LANG_PACK_INVALID": _client,
    "CONNECTION_LAYER_INVALID": _client,
    "CONNECTION_NOT_INITED": _client,
    "CONNECTION_SYSTEM_EMPTY": _client,
    "INPUT_LAYER_INVALID": _client,
    "INPUT_CONSTRUCTOR_INVALID": _client,
    "INPUT_FETCH_FAIL": _client,
    "INPUT_REQUEST_TOO_LONG": _client,
    "AUTH_BYTES_INVALID": _client,
    "CDN_METHOD_INVALID": _client,
    "OFFSET_PEER_ID_INVALID": _client,
    # transient: Telegram's own trouble
    "INTERNAL": _transient,
    "RPC_CALL_FAIL": _transient,
    "TIMEOUT": _transient,
    "AUTH_RESTART": _transient,  # login: start the login again
    "POSTPONED_TIMEOUT": _transient,
    "STORAGE_CHECK_FAILED": _transient,
    "MEMBER_NO_LOCATION": _transient,
    "NEED_MEMBER_INVALID": _transient,
    # transient: an upload went wrong on the way (a fresh upload fixes it) or a cached file
    # reference aged out; retried with backoff, a bounded number of times
    "FILE_PART_EMPTY": _transient,
    "FILE_PART_INVALID": _transient,
    "FILE_PART_LENGTH_INVALID": _transient,
    "FILE_PART_SIZE_CHANGED": _transient,
    "FILE_PART_SIZE_INVALID": _transient,
    "FILE_REFERENCE_EMPTY": _transient,
    # the adapters refresh an expired file reference (or upload again) themselves; one that still
    # comes through is retried like any passing trouble
    "FILE_REFERENCE_EXPIRED": _transient,
    # transient: data-centre moves. Telethon follows *_MIGRATE_X itself (reconnects to that DC and
    # repeats the call); one that still reaches us is retried like any outage
    "PHONE_MIGRATE": _transient,
    "NETWORK_MIGRATE": _transient,
    "USER_MIGRATE": _transient,
    "FILE_MIGRATE": _transient,
    # transient: transport failures below the RPC layer
    "NETWORK_ERROR": _transient,
    "NETWORK": _transient,  # the sandbox world's name for a dropped connection
    "INVALID_BUFFER": _transient,  # the server closed the MTProto connection with an error code
    # Telethon says this one may be temporary; a dead key shows as AUTH_KEY_UNREGISTERED instead.
    # If it outlasts every retry of a send, the engine ends the session (services.engine.decide).
    "AUTH_KEY_NOT_FOUND": _transient,
}

# Families Telegram extends over time: a new member gets the family's outcome, not the code fallback.
PATTERNS: Final[tuple[tuple[re.Pattern[str], Rule], ...]] = (
    (re.compile(r"FROZEN_\w+"), _restricted),
    (re.compile(r"CHAT_SEND_\w+_FORBIDDEN"), _closed),
)

# Fallbacks by the RPC error's numeric class, for names the table does not know. Every 5xx
# (also Telegram's negative -500/-503) uses the 500 row. An unknown 400/403 (or any other class)
# stays a plain ``GatewayError``: the engine decides it by where it happens
# (``services.engine.judge_unknown``), so one new name can neither disable every group at once
# nor repeat round after round.
BY_CODE: Final[dict[int, Rule]] = {
    401: _dead,
    406: _unknown_not_acceptable,
    420: _flood,
    500: _transient,
}

_NOT_A_NAME: Final = re.compile(r"\W+")
# Telegram's raw form "FLOOD_WAIT_30": the trailing number is data, not part of the name.
_NUMBERED: Final = re.compile(r"^(\w+?)_(\d+)$")


def split_name(raw: str) -> tuple[str, int | None]:
    """Telegram's name for a raw error message and the number it carried, if any.

    ``"FLOOD_WAIT_30"`` -> ``("FLOOD_WAIT", 30)``; ``"No workers running"`` ->
    ``("NO_WORKERS_RUNNING", None)``.
    """
    name = _NOT_A_NAME.sub("_", raw.strip().upper()).strip("_") or UNEXPECTED
    numbered = _NUMBERED.match(name)
    if name in TABLE or numbered is None:
        return name, None
    return numbered.group(1), int(numbered.group(2))


def named_rule(name: str) -> Rule | None:
    """The row the table or one of its patterns has for ``name``; None for an unknown name."""
    rule = TABLE.get(name)
    if rule is not None:
        return rule
    for pattern, family in PATTERNS:
        if pattern.fullmatch(name):
            return family
    return None


def rule_for(name: str, rpc_code: int | None) -> Rule | None:
    """The table's row for ``name``, else the fallback for ``rpc_code``, else None."""
    rule = named_rule(name)
    if rule is not None or rpc_code is None:
        return rule
    code_class = 500 if abs(rpc_code) >= 500 else abs(rpc_code)
    return BY_CODE.get(code_class)


def to_domain(
    name: str,
    *,
    rpc_code: int | None,
    operation: Operation,
    seconds: int | None = None,
    new_id: int | None = None,
    new_access_hash: int | None = None,
    detail: str = "",
) -> GatewayError:
    """The domain error for Telegram's error ``name`` (raw form accepted) during ``operation``.

    ``seconds`` is the wait hint when the adapter has it apart from the name; otherwise a number
    ending the name is used. ``rpc_code`` is None for failures that never reached Telegram.
    An error that neither the table nor the code fallback knows is a plain ``GatewayError``
    with Telegram's name as its code.
    """
    bare, number = split_name(name)
    failure = Failure(
        name=bare,
        operation=operation,
        seconds=number if seconds is None else seconds,
        new_id=new_id,
        new_access_hash=new_access_hash,
        detail=detail,
    )
    rule = rule_for(bare, rpc_code)
    if rule is None:
        return GatewayError(code=bare, detail=detail)
    return rule(failure)


__all__ = [
    "BY_CODE",
    "NETWORK_ERROR",
    "PATTERNS",
    "PAYMENT_REQUIRED",
    "PHONE_FLOOD_SECONDS",
    "SETUP_EMAIL_REQUIRED",
    "TABLE",
    "TIMEOUT",
    "UNEXPECTED",
    "UNKNOWN_FLOOD_SECONDS",
    "Failure",
    "Operation",
    "Rule",
    "named_rule",
    "rule_for",
    "split_name",
    "to_domain",
]
