"""accounts.errors: the one error table, and both adapters agreeing on it.

The Telethon side gets the exception Telethon itself builds from a raw RPC error
(``rpc_message_to_error``); the sandbox side gets the answer the world itself sends
(``WorldError.to_dict``). The same Telegram error must come out of both as the same
domain error with the same data.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_args

import pytest
from telethon import errors, types
from telethon.errors import common as common_errors

from accounts.errors import (
    PHONE_FLOOD_SECONDS,
    TABLE,
    UNKNOWN_FLOOD_SECONDS,
    Operation,
    split_name,
    to_domain,
)
from accounts.sandbox_gateway import map_error as sandbox_map_error
from accounts.telethon.errors import BadSessionError, ChatMigratedError, error_name
from accounts.telethon.errors import map_error as telethon_map_error
from domain.errors import (
    AccountThrottled,
    CodeExpired,
    FloodWait,
    GatewayError,
    GroupClosed,
    GroupMigrated,
    MessageRejected,
    PhoneBanned,
    SessionDead,
    TransientError,
)
from sandbox.world import WorldError

OPERATIONS: tuple[Operation, ...] = get_args(Operation)
WAIT = 7  # the hint used for every numbered name


def rpc(message: str, code: int = 400) -> BaseException:
    """The exception Telethon raises for an RPC error with this message and code."""
    exc: BaseException = errors.rpc_message_to_error(types.RpcError(code, message), request=None)
    return exc


def via_telethon(exc: BaseException, operation: Operation) -> GatewayError:
    return telethon_map_error(exc, operation)


def via_sandbox(answer: dict[str, Any], operation: Operation) -> GatewayError:
    return sandbox_map_error(answer, operation)


def signature(error: GatewayError) -> tuple[Any, ...]:
    """Everything the engine reads from a domain error."""
    return (
        type(error),
        error.code,
        getattr(error, "seconds", None),
        getattr(error, "new_peer_id", None),
        getattr(error, "new_access_hash", None),
    )


# --- the rows of engine.md, through both adapters ------------------------------------------------


@dataclass
class Row:
    name: str
    telethon_exc: Callable[[], BaseException]
    world: dict[str, Any]
    expected: type[GatewayError]
    code: str
    data: dict[str, Any] = field(default_factory=dict)
    operation: Operation = "send"

    def __str__(self) -> str:
        return self.name


def _named(name: str, expected: type[GatewayError], rpc_code: int = 400, **data: Any) -> Row:
    return Row(name, lambda: rpc(name, rpc_code), WorldError(name, code=rpc_code).to_dict(), expected, name,
               data)


ENGINE_ROWS: list[Row] = [
    # flood wait (seconds)
    Row("FLOOD_WAIT_X", lambda: rpc("FLOOD_WAIT_45", 420), WorldError("FLOOD_WAIT", seconds=45).to_dict(),
        FloodWait, "FLOOD_WAIT", {"seconds": 45, "is_slow_mode": False}),
    Row("SLOWMODE_WAIT_X", lambda: rpc("SLOWMODE_WAIT_30", 420),
        WorldError("SLOWMODE_WAIT", seconds=30).to_dict(), FloodWait, "SLOWMODE_WAIT",
        {"seconds": 30, "is_slow_mode": True}),
    # account throttled: limits on the whole account, never one group's
    *(
        _named(name, AccountThrottled, 400, spambot=True)
        for name in ("PEER_FLOOD", "USER_BANNED_IN_CHANNEL", "USER_RESTRICTED", "FROZEN_METHOD_INVALID",
                     "FROZEN_SOMETHING_NEW")
    ),
    # group permanently closed; the reason is Telegram's name
    *(
        _named(name, GroupClosed, rpc_code, reason=name)
        for name, rpc_code in (
            ("CHAT_WRITE_FORBIDDEN", 403), ("CHANNEL_PRIVATE", 406),
            ("CHAT_ADMIN_REQUIRED", 403), ("CHAT_RESTRICTED", 400), ("CHANNEL_INVALID", 400),
            ("PEER_ID_INVALID", 400), ("TOPIC_CLOSED", 400), ("ALLOW_PAYMENT_REQUIRED", 403),
            ("CHAT_SEND_STICKERS_FORBIDDEN", 403),
        )
    ),
    # group moved (new id)
    Row("CHAT_MIGRATED", lambda: ChatMigratedError(555, 999),
        WorldError("CHAT_MIGRATED", new_id=555, new_access_hash=999).to_dict(), GroupMigrated, "CHAT_MIGRATED",
        {"new_peer_id": 555, "new_access_hash": 999}),
    # account dead
    *(
        _named(name, SessionDead, rpc_code)
        for name, rpc_code in (
            ("AUTH_KEY_UNREGISTERED", 401), ("SESSION_REVOKED", 401), ("USER_DEACTIVATED", 401),
            ("USER_DEACTIVATED_BAN", 401), ("AUTH_KEY_DUPLICATED", 406),
        )
    ),
    # transient: network errors, RPC 5xx, timeouts
    Row("NETWORK_ERROR", lambda: ConnectionError("reset by peer"), {"ok": False, "error": "NETWORK_ERROR"},
        TransientError, "NETWORK_ERROR"),
    Row("TIMEOUT", lambda: TimeoutError(), {"ok": False, "error": "TIMEOUT"}, TransientError, "TIMEOUT"),
    _named("INTERNAL", TransientError, 500),
    _named("RPC_CALL_FAIL", TransientError, 500),
    _named("SOME_NEW_SERVER_TROUBLE", TransientError, 500),
    _named("SOME_NEW_TIMEOUT", TransientError, -503),
    # message rejected
    *(
        _named(name, MessageRejected)
        for name in (
            "MESSAGE_TOO_LONG", "MEDIA_INVALID", "ENTITY_BOUNDS_INVALID", "ENTITY_MENTION_USER_INVALID",
            "ENTITIES_TOO_LONG", "MEDIA_CAPTION_TOO_LONG",
        )
    ),
]


@pytest.mark.parametrize("row", ENGINE_ROWS, ids=str)
@pytest.mark.parametrize("adapter", ["telethon", "sandbox"])
def test_engine_row_maps_to_its_domain_error(row: Row, adapter: str) -> None:
    if adapter == "telethon":
        error = via_telethon(row.telethon_exc(), row.operation)
    else:
        error = via_sandbox(row.world, row.operation)
    assert type(error) is row.expected
    assert error.code == row.code
    for attribute, value in row.data.items():
        assert getattr(error, attribute) == value


# --- every name of the table, and the fallbacks, agree across the adapters -----------------------


def _numbered_in_telethon(name: str) -> bool:
    """Telethon only recognises a wait name with its number (``FLOOD_WAIT_7``)."""
    return any(re.fullmatch(pattern, f"{name}_{WAIT}") for pattern, _ in errors.rpc_errors_re)


# Names the Telethon adapter gives to exceptions that are not RPC errors.
_NOT_RPC: dict[str, Callable[[], BaseException]] = {
    "CHAT_MIGRATED": lambda: ChatMigratedError(4242, 77),
    "SESSION_INVALID": lambda: BadSessionError("garbage"),
    "INVALID_BUFFER": lambda: common_errors.InvalidBufferError(b"\x6c\xfe\xff\xff"),
    "AUTH_KEY_NOT_FOUND": common_errors.AuthKeyNotFound,
    "NETWORK_ERROR": lambda: OSError("network unreachable"),
}


def _pair(name: str) -> tuple[BaseException, dict[str, Any]]:
    """The same Telegram error as Telethon raises it and as the world answers it."""
    if name in _NOT_RPC:
        exc = _NOT_RPC[name]()
        world = WorldError(name, new_id=4242 if name == "CHAT_MIGRATED" else None, new_access_hash=77)
        return exc, world.to_dict()
    if _numbered_in_telethon(name):
        exc = rpc(f"{name}_{WAIT}", 420)
        return exc, WorldError(name, seconds=WAIT, code=420).to_dict()
    exc = rpc(name, 400)
    # The world sends the RPC class Telegram uses; Telethon's class carries the same one.
    code = exc.code if isinstance(exc, errors.RPCError) and isinstance(exc.code, int) else 400
    return exc, WorldError(name, code=code).to_dict()


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("name", sorted(TABLE))
def test_each_table_name_gives_the_same_error_through_both_adapters(name: str, operation: Operation) -> None:
    exc, answer = _pair(name)
    from_telethon = via_telethon(exc, operation)
    from_world = via_sandbox(answer, operation)
    assert signature(from_telethon) == signature(from_world)
    assert from_telethon.code == name
    # found by name, not by the code fallback: a listed name never ends as a bare GatewayError
    assert type(from_telethon) is not GatewayError


FALLBACKS: list[tuple[str, int]] = [
    ("NEW_BAD_REQUEST", 400),
    ("NEW_AUTH_PROBLEM", 401),
    ("NEW_FORBIDDEN", 403),
    ("NEW_NOT_FOUND", 404),
    ("NEW_KEY_THING", 406),
    ("NEW_LIMIT", 420),
    ("NEW_LIMIT_WAIT_45", 420),
    ("NEW_SERVER_TROUBLE", 500),
    ("NEW_GATEWAY_TROUBLE", 502),
    ("No workers running", -500),
    ("Timedout_somewhere", -503),
]


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize(("message", "rpc_code"), FALLBACKS)
def test_unknown_names_fall_back_by_code_alike(message: str, rpc_code: int, operation: Operation) -> None:
    from_telethon = via_telethon(rpc(message, rpc_code), operation)
    from_world = via_sandbox({"ok": False, "error": message, "code": rpc_code}, operation)
    assert signature(from_telethon) == signature(from_world)


@pytest.mark.parametrize(
    ("rpc_code", "operation", "expected"),
    [
        (400, "send", GatewayError),
        (400, "dialogs", GatewayError),
        (401, "login", SessionDead),
        (403, "send", GatewayError),
        (403, "login", GatewayError),
        (404, "send", GatewayError),
        (406, "send", AccountThrottled),
        (406, "login", GatewayError),
        (420, "dialogs", FloodWait),
        (500, "session", TransientError),
        (503, "send", TransientError),
        (-503, "login", TransientError),
        (None, "send", GatewayError),
    ],
)
def test_fallback_by_code(rpc_code: int | None, operation: Operation, expected: type[GatewayError]) -> None:
    error = to_domain("NOT_IN_THE_TABLE", rpc_code=rpc_code, operation=operation, detail="why")
    assert type(error) is expected
    assert error.code == "NOT_IN_THE_TABLE"


# --- to_domain's own rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("FLOOD_WAIT_30", ("FLOOD_WAIT", 30)),
        ("SLOWMODE_WAIT_5", ("SLOWMODE_WAIT", 5)),
        ("flood_wait_2", ("FLOOD_WAIT", 2)),
        ("CHAT_WRITE_FORBIDDEN", ("CHAT_WRITE_FORBIDDEN", None)),
        ("No workers running", ("NO_WORKERS_RUNNING", None)),
        ("", ("UNEXPECTED", None)),
    ],
)
def test_split_name(raw: str, expected: tuple[str, int | None]) -> None:
    assert split_name(raw) == expected


def test_numbered_names_carry_their_wait() -> None:
    error = to_domain("SLOWMODE_WAIT_5", rpc_code=420, operation="send")
    assert isinstance(error, FloodWait)
    assert (error.code, error.seconds, error.is_slow_mode) == ("SLOWMODE_WAIT", 5, True)


def test_an_explicit_hint_wins_over_the_number_in_the_name() -> None:
    error = to_domain("FLOOD_WAIT_5", rpc_code=420, operation="send", seconds=9)
    assert isinstance(error, FloodWait) and error.seconds == 9


def test_waits_without_a_hint_use_the_guesses() -> None:
    flood = to_domain("FLOOD_WAIT", rpc_code=420, operation="send")
    phone = to_domain("PHONE_NUMBER_FLOOD", rpc_code=400, operation="login")
    assert isinstance(flood, FloodWait) and flood.seconds == UNKNOWN_FLOOD_SECONDS
    assert isinstance(phone, FloodWait) and phone.seconds == PHONE_FLOOD_SECONDS


def test_a_listed_name_ignores_its_code() -> None:
    # Telegram sends PHONE_NUMBER_BANNED as a 400 and PHONE_CODE_EXPIRED too; the name decides.
    assert type(to_domain("PHONE_NUMBER_BANNED", rpc_code=400, operation="send")) is PhoneBanned
    assert type(to_domain("PHONE_CODE_EXPIRED", rpc_code=None, operation="dialogs")) is CodeExpired


def test_the_detail_is_kept() -> None:
    error = to_domain("CHAT_WRITE_FORBIDDEN", rpc_code=403, operation="send", detail="no rights")
    assert error.detail == "no rights"


# --- guard: the Telethon classes the old class-keyed table named -----------------------------------

OLD_TELETHON_ROWS: tuple[type[BaseException], ...] = (
    errors.FloodWaitError, errors.FloodPremiumWaitError, errors.FloodTestPhoneWaitError, errors.SlowModeWaitError,
    errors.PhoneNumberFloodError, errors.PhonePasswordFloodError,
    errors.PeerFloodError, errors.FrozenMethodInvalidError, errors.UserRestrictedError,
    errors.ChatWriteForbiddenError, errors.UserBannedInChannelError, errors.ChannelPrivateError,
    errors.ChatAdminRequiredError, errors.ChatRestrictedError, errors.ChannelInvalidError,
    errors.PeerIdInvalidError, errors.ChatIdInvalidError, errors.ChatInvalidError, errors.ChatForbiddenError,
    errors.ChatGuestSendForbiddenError, errors.ChatSendPlainForbiddenError, errors.ChatSendMediaForbiddenError,
    errors.ChatSendPhotosForbiddenError, errors.ChatSendVideosForbiddenError, errors.ChatSendGifsForbiddenError,
    errors.ChannelPublicGroupNaError, errors.UserNotParticipantError,
    ChatMigratedError,
    errors.AuthKeyUnregisteredError, errors.SessionRevokedError, errors.SessionExpiredError,
    errors.UserDeactivatedError, errors.UserDeactivatedBanError, errors.AuthKeyDuplicatedError,
    errors.AuthKeyInvalidError, errors.AuthKeyPermEmptyError, BadSessionError,
    errors.MessageTooLongError, errors.MessageEmptyError, errors.MediaCaptionTooLongError,
    errors.MediaInvalidError, errors.MediaEmptyError, errors.EntityBoundsInvalidError,
    errors.EntityMentionUserInvalidError, errors.EntitiesTooLongError, errors.PhotoInvalidError,
    errors.PhotoExtInvalidError, errors.PhotoInvalidDimensionsError, errors.PhotoSaveFileInvalidError,
    errors.ImageProcessFailedError, errors.DocumentInvalidError, errors.VideoContentTypeInvalidError,
    errors.FilePartsInvalidError, errors.WebpageCurlFailedError,
    errors.PhoneNumberInvalidError, errors.PhoneNumberUnoccupiedError, errors.PhoneNumberAppSignupForbiddenError,
    errors.PhoneNumberBannedError, errors.PhoneCodeInvalidError, errors.PhoneCodeEmptyError,
    errors.PhoneCodeExpiredError, errors.PhoneCodeHashEmptyError, errors.SessionPasswordNeededError,
    errors.PasswordHashInvalidError,
    common_errors.InvalidBufferError, common_errors.AuthKeyNotFound,
    TimeoutError, ConnectionError, OSError,
)
# The old table's fallbacks were Telethon's base classes, one per RPC code. An unknown 400/403 is
# no longer a rejected message / closed group at once: it stays a plain error that the engine
# judges by its history (services.engine.judge_unknown).
OLD_TELETHON_BASES: list[tuple[type[errors.RPCError], type[GatewayError]]] = [
    (errors.FloodError, FloodWait),
    (errors.UnauthorizedError, SessionDead),
    (errors.ForbiddenError, GatewayError),
    (errors.BadRequestError, GatewayError),
    (errors.ServerError, TransientError),
    (errors.TimedOutError, TransientError),
]

def _instance(cls: type[BaseException]) -> BaseException:
    if cls is ChatMigratedError:
        return ChatMigratedError(1, 2)
    if cls is common_errors.InvalidBufferError:
        return common_errors.InvalidBufferError(b"\x6c\xfe\xff\xff")
    if not issubclass(cls, errors.RPCError):
        return cls()
    # Telethon's generated classes take the request, and the number for the numbered names.
    if "capture" in inspect.signature(cls).parameters:
        return cls(request=None, capture=WAIT)  # type: ignore[call-arg]
    return cls(request=None)  # type: ignore[call-arg]


@pytest.mark.parametrize("cls", OLD_TELETHON_ROWS, ids=lambda cls: cls.__name__)
def test_every_old_telethon_row_resolves_to_a_name_in_the_table(cls: type[BaseException]) -> None:
    name = error_name(_instance(cls))
    assert name in TABLE


@pytest.mark.parametrize(("cls", "expected"), OLD_TELETHON_BASES, ids=lambda v: v.__name__)
def test_every_old_telethon_fallback_has_a_code_row(cls: type[errors.RPCError], expected: type[GatewayError]) -> None:
    assert isinstance(cls.code, int)
    error = to_domain("NOT_IN_THE_TABLE", rpc_code=cls.code, operation="send")
    assert type(error) is expected
