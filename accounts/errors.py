"""The one table from Telegram's error names to the domain errors of ``domain.errors``.

Both account gateway adapters end here: the Telethon adapter turns an exception
into Telegram's name, RPC code and data (``accounts.telethon.errors``), the
sandbox adapter reads them from the world's answer (``accounts.sandbox_gateway``),
and ``to_domain`` decides the domain error. Lookup works like Telegram clients do:
the exact name first, then the numeric class of the RPC error (400, 401, 403,
420, 5xx) for names the table does not know. Some rows depend on what the
caller was doing (an unknown 400 while sending is a rejected message; while
listing dialogs it is just an error), hence ``operation``.

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
    CodeExpired,
    CodeInvalid,
    FloodWait,
    GatewayError,
    GroupClosed,
    GroupMigrated,
    LoginBlocked,
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


def _when_sending(error: type[GatewayError]) -> Rule:
    """``error`` while sending; a plain ``GatewayError`` anywhere else."""

    def rule(failure: Failure) -> GatewayError:
        cls = error if failure.operation == "send" else GatewayError
        return cls(code=failure.name, detail=failure.detail)

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


_dead = _always(SessionDead)
_closed = _always(GroupClosed)
_rejected = _always(MessageRejected)
_transient = _always(TransientError)

# The table (engine.md, "Errors from Telegram"). Names not listed fall back on ``BY_CODE``.
TABLE: Final[dict[str, Rule]] = {
    # flood waits
    "FLOOD_WAIT": _flood,
    "FLOOD_PREMIUM_WAIT": _flood,
    "FLOOD_TEST_PHONE_WAIT": _flood,
    "SLOWMODE_WAIT": _flood,
    "PHONE_NUMBER_FLOOD": _phone_flood,
    "PHONE_PASSWORD_FLOOD": _phone_flood,
    # account throttled
    "PEER_FLOOD": _always(AccountThrottled),
    "FROZEN_METHOD_INVALID": _always(AccountThrottled),
    "USER_RESTRICTED": _always(AccountThrottled),
    # group permanently closed; the name is the reason
    "CHAT_WRITE_FORBIDDEN": _closed,
    "USER_BANNED_IN_CHANNEL": _closed,
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
    "CHANNEL_PUBLIC_GROUP_NA": _closed,
    "USER_NOT_PARTICIPANT": _closed,
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
    # message rejected
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
    # login
    "PHONE_NUMBER_INVALID": _always(PhoneInvalid),
    "PHONE_NUMBER_UNOCCUPIED": _always(PhoneInvalid),
    "PHONE_NUMBER_APP_SIGNUP_FORBIDDEN": _always(PhoneInvalid),
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
    # transient: Telegram's own trouble
    "INTERNAL": _transient,
    "RPC_CALL_FAIL": _transient,
    "TIMEOUT": _transient,
    # transient: transport failures below the RPC layer
    "NETWORK_ERROR": _transient,
    "NETWORK": _transient,  # the sandbox world's name for a dropped connection
    "INVALID_BUFFER": _transient,  # the server closed the MTProto connection with an error code
    # Telethon says this one may be temporary; a dead key shows as AUTH_KEY_UNREGISTERED instead.
    # If it outlasts every retry of a send, the engine ends the session (services.engine.decide).
    "AUTH_KEY_NOT_FOUND": _transient,
    # The adapters refresh an expired file reference (or upload again) themselves; one that still
    # comes through is retried like any passing trouble.
    "FILE_REFERENCE_EXPIRED": _transient,
}

# Fallbacks by the RPC error's numeric class, for names the table does not know. Every 5xx
# (also Telegram's negative -500/-503) uses the 500 row.
BY_CODE: Final[dict[int, Rule]] = {
    400: _when_sending(MessageRejected),
    401: _dead,
    403: _when_sending(GroupClosed),
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


def rule_for(name: str, rpc_code: int | None) -> Rule | None:
    """The table's row for ``name``, else the fallback for ``rpc_code``, else None."""
    rule = TABLE.get(name)
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
    "rule_for",
    "split_name",
    "to_domain",
]
