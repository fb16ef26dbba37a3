"""The one table that turns Telethon's exceptions into the domain errors of ``domain.errors``.

Lookup works like Telethon's own ``rpc_message_to_error``: the exact class
first, then up the class hierarchy. Telethon builds the generic base classes
(``FloodError`` for 420, ``UnauthorizedError`` for 401, ``ForbiddenError`` for
403, ``BadRequestError`` for 400, ``ServerError`` for 500 ...) for messages it
does not know, so walking the MRO is also the fallback "by RPC code". Some rows
depend on what the caller was doing (an unknown 400 while sending is a
rejected message; while listing dialogs it is just an error), hence the
``Operation`` argument.

Every adapter method runs inside ``translating(operation)`` (or ``@mapped``),
so this module is the only place that knows Telegram's error names. The name
Telegram used is kept in the domain error's ``code``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Final, Literal, ParamSpec, TypeVar

from telethon import errors
from telethon.errors import common as common_errors

from domain.errors import (
    AccountThrottled,
    CodeExpired,
    CodeInvalid,
    FloodWait,
    GatewayError,
    GroupClosed,
    GroupMigrated,
    MessageRejected,
    PasswordInvalid,
    PasswordNeeded,
    PhoneBanned,
    PhoneInvalid,
    SessionDead,
    TransientError,
)

logger = logging.getLogger(__name__)

Operation = Literal["login", "send", "dialogs", "session"]

# Telegram gives no wait hint with these; the values are deliberate guesses, long enough not to
# hammer a limit that is known to last hours.
PHONE_FLOOD_SECONDS: Final = 24 * 3600
UNKNOWN_FLOOD_SECONDS: Final = 60


class ChatMigratedError(Exception):
    """A basic group became a supergroup; raised by the adapter after it found ``migrated_to``.

    MTProto reports a send to a migrated group as PEER_ID_INVALID or CHAT_ID_INVALID (there is
    no CHAT_MIGRATED error as in the Bot API), so ``messages.py`` asks for the chat and raises
    this with the new channel's id and access hash.
    """

    def __init__(self, new_peer_id: int, new_access_hash: int) -> None:
        self.new_peer_id = new_peer_id
        self.new_access_hash = new_access_hash
        super().__init__(f"CHAT_MIGRATED to {new_peer_id}")


class BadSessionError(Exception):
    """A stored session string that Telethon cannot parse."""


Rule = Callable[[BaseException, str, Operation], GatewayError]


def _detail(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _always(error: type[GatewayError]) -> Rule:
    def rule(exc: BaseException, name: str, op: Operation) -> GatewayError:
        return error(code=name, detail=_detail(exc))

    return rule


def _when_sending(error: type[GatewayError]) -> Rule:
    """``error`` while sending; a plain ``GatewayError`` anywhere else."""

    def rule(exc: BaseException, name: str, op: Operation) -> GatewayError:
        cls = error if op == "send" else GatewayError
        return cls(code=name, detail=_detail(exc))

    return rule


def _flood(exc: BaseException, name: str, op: Operation) -> GatewayError:
    seconds = getattr(exc, "seconds", None)
    if seconds is None:
        # A 420 Telethon has no class for: the hint, if any, ends the raw message (XYZ_WAIT_30).
        digits = re.search(r"(\d+)$", str(getattr(exc, "message", "") or ""))
        seconds = int(digits.group(1)) if digits else UNKNOWN_FLOOD_SECONDS
    return FloodWait(int(seconds), code=name)


def _phone_flood(exc: BaseException, name: str, op: Operation) -> GatewayError:
    return FloodWait(PHONE_FLOOD_SECONDS, code=name, detail="too many login attempts")


def _migrated(exc: BaseException, name: str, op: Operation) -> GatewayError:
    assert isinstance(exc, ChatMigratedError)
    return GroupMigrated(exc.new_peer_id, exc.new_access_hash)


def _any_rpc(exc: BaseException, name: str, op: Operation) -> GatewayError:
    # An RPCError with a code Telethon has no base class for; -500/-503 arrive as ServerError.
    code = getattr(exc, "code", None)
    if isinstance(code, int) and abs(code) >= 500:
        return TransientError(code=name, detail=_detail(exc))
    return GatewayError(code=name, detail=_detail(exc))


_dead = _always(SessionDead)
_closed = _always(GroupClosed)
_rejected = _always(MessageRejected)
_transient = _always(TransientError)

# The table. Keys are Telethon's classes (a typo fails at import time, unlike a string);
# rows are found by exact class first, then by walking up the class hierarchy.
TABLE: Final[dict[type[BaseException], Rule]] = {
    # flood waits (engine.md: "flood wait")
    errors.FloodWaitError: _flood,
    errors.FloodPremiumWaitError: _flood,
    errors.FloodTestPhoneWaitError: _flood,
    errors.SlowModeWaitError: _flood,
    errors.PhoneNumberFloodError: _phone_flood,
    errors.PhonePasswordFloodError: _phone_flood,
    # account throttled
    errors.PeerFloodError: _always(AccountThrottled),
    errors.FrozenMethodInvalidError: _always(AccountThrottled),
    errors.UserRestrictedError: _always(AccountThrottled),
    # group permanently closed
    errors.ChatWriteForbiddenError: _closed,
    errors.UserBannedInChannelError: _closed,
    errors.ChannelPrivateError: _closed,
    errors.ChatAdminRequiredError: _closed,
    errors.ChatRestrictedError: _closed,
    errors.ChannelInvalidError: _closed,
    errors.PeerIdInvalidError: _closed,
    errors.ChatIdInvalidError: _closed,
    errors.ChatInvalidError: _closed,
    errors.ChatForbiddenError: _closed,
    errors.ChatGuestSendForbiddenError: _closed,
    errors.ChatSendPlainForbiddenError: _closed,
    errors.ChatSendMediaForbiddenError: _closed,
    errors.ChatSendPhotosForbiddenError: _closed,
    errors.ChatSendVideosForbiddenError: _closed,
    errors.ChatSendGifsForbiddenError: _closed,
    errors.ChannelPublicGroupNaError: _closed,
    errors.UserNotParticipantError: _closed,
    # group moved
    ChatMigratedError: _migrated,
    # account dead
    errors.AuthKeyUnregisteredError: _dead,
    errors.SessionRevokedError: _dead,
    errors.SessionExpiredError: _dead,
    errors.UserDeactivatedError: _dead,
    errors.UserDeactivatedBanError: _dead,
    errors.AuthKeyDuplicatedError: _dead,
    errors.AuthKeyInvalidError: _dead,
    errors.AuthKeyPermEmptyError: _dead,
    BadSessionError: _dead,
    # message rejected
    errors.MessageTooLongError: _rejected,
    errors.MessageEmptyError: _rejected,
    errors.MediaCaptionTooLongError: _rejected,
    errors.MediaInvalidError: _rejected,
    errors.MediaEmptyError: _rejected,
    errors.EntityBoundsInvalidError: _rejected,
    errors.EntityMentionUserInvalidError: _rejected,
    errors.EntitiesTooLongError: _rejected,
    errors.PhotoInvalidError: _rejected,
    errors.PhotoExtInvalidError: _rejected,
    errors.PhotoInvalidDimensionsError: _rejected,
    errors.PhotoSaveFileInvalidError: _rejected,
    errors.ImageProcessFailedError: _rejected,
    errors.DocumentInvalidError: _rejected,
    errors.VideoContentTypeInvalidError: _rejected,
    errors.FilePartsInvalidError: _rejected,
    errors.WebpageCurlFailedError: _rejected,
    # login
    errors.PhoneNumberInvalidError: _always(PhoneInvalid),
    errors.PhoneNumberUnoccupiedError: _always(PhoneInvalid),
    errors.PhoneNumberAppSignupForbiddenError: _always(PhoneInvalid),
    errors.PhoneNumberBannedError: _always(PhoneBanned),
    errors.PhoneCodeInvalidError: _always(CodeInvalid),
    errors.PhoneCodeEmptyError: _always(CodeInvalid),
    errors.PhoneCodeExpiredError: _always(CodeExpired),
    errors.PhoneCodeHashEmptyError: _always(CodeExpired),
    errors.SessionPasswordNeededError: _always(PasswordNeeded),
    errors.PasswordHashInvalidError: _always(PasswordInvalid),
    # transient: network, timeouts, Telegram's own trouble
    errors.ServerError: _transient,
    errors.TimedOutError: _transient,
    common_errors.InvalidBufferError: _transient,
    # Telethon says this one may be temporary; a dead key shows as AUTH_KEY_UNREGISTERED instead.
    common_errors.AuthKeyNotFound: _transient,
    asyncio.TimeoutError: _transient,
    ConnectionError: _transient,
    OSError: _transient,
    # fallbacks by RPC code, reached through the class hierarchy
    errors.FloodError: _flood,
    errors.UnauthorizedError: _dead,
    errors.ForbiddenError: _when_sending(GroupClosed),
    errors.BadRequestError: _when_sending(MessageRejected),
    errors.RPCError: _any_rpc,
}

# Errors after which a send to a basic group is worth a look at ``migrated_to``.
MIGRATION_SUSPECTS: Final = (
    errors.PeerIdInvalidError,
    errors.ChatIdInvalidError,
    errors.ChatInvalidError,
    errors.ChatWriteForbiddenError,
    errors.ChatForbiddenError,
)


def _names_by_class() -> dict[type[BaseException], str]:
    names: dict[type[BaseException], str] = {}
    for pattern, cls in errors.rpc_errors_re:
        # 'FLOOD_WAIT_(\d+)' -> 'FLOOD_WAIT': the number is data (FloodWait.seconds), not the name.
        names[cls] = pattern.replace("_(\\d+)", "").replace("(\\d+)", "")
    for name, cls in errors.rpc_errors_dict.items():
        names.setdefault(cls, name.upper())
    names[ChatMigratedError] = "CHAT_MIGRATED"
    names[BadSessionError] = "SESSION_INVALID"
    names[common_errors.AuthKeyNotFound] = "AUTH_KEY_NOT_FOUND"
    names[common_errors.InvalidBufferError] = "INVALID_BUFFER"
    return names


_NAMES: Final = _names_by_class()


def error_name(exc: BaseException) -> str:
    """Telegram's name for ``exc`` (``FLOOD_WAIT``, ``CHAT_WRITE_FORBIDDEN`` ...)."""
    name = _NAMES.get(type(exc))
    if name is not None:
        return name
    message = getattr(exc, "message", None)
    if isinstance(exc, errors.RPCError) and isinstance(message, str) and message:
        # A generic class Telethon built from a message it does not know: the message is the name.
        return re.sub(r"_\d+$", "", re.sub(r"\W+", "_", message.strip().upper()))
    if isinstance(exc, asyncio.TimeoutError):
        return "TIMEOUT"
    if isinstance(exc, OSError):
        return "NETWORK_ERROR"
    return type(exc).__name__.upper()


def map_error(exc: BaseException, operation: Operation) -> GatewayError:
    """The domain error for ``exc`` raised during ``operation``; domain errors pass unchanged."""
    if isinstance(exc, GatewayError):
        return exc
    name = error_name(exc)
    for cls in type(exc).__mro__:
        rule = TABLE.get(cls)
        if rule is not None:
            return rule(exc, name, operation)
    return GatewayError(code="UNEXPECTED", detail=f"{type(exc).__name__}: {exc}")


def is_session_dead(exc: BaseException) -> bool:
    return isinstance(map_error(exc, "session"), SessionDead)


class translating:
    """Context manager: any exception leaving the block is re-raised as its domain error."""

    def __init__(self, operation: Operation) -> None:
        self.operation = operation

    def __enter__(self) -> translating:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # CancelledError and KeyboardInterrupt are BaseException: they must keep their meaning.
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, GatewayError):
            return
        mapped = map_error(exc, self.operation)
        if type(mapped) is GatewayError:
            logger.warning("unclassified Telegram error during %s: %s", self.operation, mapped.code,
                           exc_info=exc)
        raise mapped from exc


P = ParamSpec("P")
R = TypeVar("R")


AsyncMethod = Callable[P, Coroutine[Any, Any, R]]


def mapped(operation: Operation) -> Callable[[Callable[P, Awaitable[R]]], AsyncMethod[P, R]]:
    """Decorator form of ``translating`` for the adapter's async methods."""

    def decorate(func: Callable[P, Awaitable[R]]) -> AsyncMethod[P, R]:
        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with translating(operation):
                return await func(*args, **kwargs)

        return wrapper

    return decorate


__all__ = [
    "MIGRATION_SUSPECTS",
    "TABLE",
    "BadSessionError",
    "ChatMigratedError",
    "Operation",
    "error_name",
    "is_session_dead",
    "map_error",
    "mapped",
    "translating",
]
