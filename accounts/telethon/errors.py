"""Telethon's exceptions, described for the shared error table of ``accounts.errors``.

This module knows only what is Telethon's: which Telegram error name an
exception class stands for (Telethon generates one class per name and keeps
the raw message only on the generic classes it builds for names it does not
know), where the wait hint lives (``.seconds``), which exceptions are transport
failures, and the adapter's own ``ChatMigratedError`` and ``BadSessionError``.
What each name means for the domain is decided once, in ``accounts.errors``.

Every adapter method runs inside ``translating(operation)`` (or ``@mapped``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Final, ParamSpec, TypeVar

from telethon import errors
from telethon.errors import common as common_errors

from accounts.errors import NETWORK_ERROR, TIMEOUT, UNEXPECTED, Operation, split_name, to_domain
from domain.errors import GatewayError, SessionDead

logger = logging.getLogger(__name__)


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


def _raw_name(exc: BaseException) -> str:
    name = _NAMES.get(type(exc))
    if name is not None:
        return name
    message = getattr(exc, "message", None)
    if isinstance(exc, errors.RPCError) and isinstance(message, str) and message:
        # A generic class Telethon built from a message it does not know: the message is the name
        # (with its number, if any, which ``to_domain`` reads as the wait hint).
        return message
    if isinstance(exc, TimeoutError):
        return TIMEOUT
    if isinstance(exc, OSError | EOFError):  # the socket's failures; EOF: the connection was closed
        return NETWORK_ERROR
    return UNEXPECTED


def error_name(exc: BaseException) -> str:
    """Telegram's name for ``exc`` (``FLOOD_WAIT``, ``CHAT_WRITE_FORBIDDEN`` ...)."""
    return split_name(_raw_name(exc))[0]


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def map_error(exc: BaseException, operation: Operation) -> GatewayError:
    """The domain error for ``exc`` raised during ``operation``; domain errors pass unchanged."""
    if isinstance(exc, GatewayError):
        return exc
    name = _raw_name(exc)
    detail = f"{type(exc).__name__}: {exc}" if name == UNEXPECTED else str(exc) or type(exc).__name__
    if isinstance(exc, ChatMigratedError):
        return to_domain(name, rpc_code=None, operation=operation, new_id=exc.new_peer_id,
                         new_access_hash=exc.new_access_hash, detail=detail)
    # Telethon's own classes carry their RPC class as a class attribute, the generic ones (and
    # Telegram's negative -500/-503) on the instance.
    rpc_code = _int_or_none(exc.code) if isinstance(exc, errors.RPCError) else None
    return to_domain(name, rpc_code=rpc_code, operation=operation,
                     seconds=_int_or_none(getattr(exc, "seconds", None)), detail=detail)


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
    "BadSessionError",
    "ChatMigratedError",
    "Operation",
    "error_name",
    "is_session_dead",
    "map_error",
    "mapped",
    "translating",
]
