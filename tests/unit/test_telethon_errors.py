"""accounts.telethon.errors: every row of the Telegram error table, driven through the adapter.

Errors are built the way Telethon builds them from a raw ``RpcError`` (its own
``rpc_message_to_error``), raised by a stand-in client injected through the gateway's
client factory, and must come out of the gateway as the right domain error with its data.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from telethon import errors, functions, types
from telethon.errors import common as common_errors

from accounts.errors import (
    PAYMENT_REQUIRED,
    PHONE_FLOOD_SECONDS,
    SETUP_EMAIL_REQUIRED,
    TABLE,
    UNKNOWN_FLOOD_SECONDS,
)
from accounts.gateway import AccountRef, GroupRef, OutgoingMessage
from accounts.telethon import TelethonClientFactory, TelethonGateway
from accounts.telethon.errors import (
    BadSessionError,
    Operation,
    error_name,
    map_error,
    translating,
)
from config.settings import Settings
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
    ResendUnavailable,
    SessionDead,
    TransientError,
)
from tests.unit.test_error_csv import ROWS as CSV_ROWS

ACCOUNT = AccountRef(account_id=1, session="durable-session")
SUPERGROUP = GroupRef(peer_id=1001, access_hash=42, kind="supergroup")
BASIC_GROUP = GroupRef(peer_id=77, access_hash=0, kind="group")


def rpc(message: str, code: int = 400) -> BaseException:
    """The exception Telethon raises for an RPC error with this message and code."""
    exc: BaseException = errors.rpc_message_to_error(types.RpcError(code, message), request=None)
    return exc


class RaisingClient:
    """Stand-in client whose every Telegram call fails with ``exc``."""

    def __init__(self, exc: BaseException, chats: list[Any] | None = None) -> None:
        self.exc = exc
        self.chats = chats or []
        self.flood_sleep_threshold = 60
        self.api_id, self.api_hash = 1, "x"
        self.requests: list[Any] = []

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        return None

    def is_connected(self) -> bool:
        return True

    async def send_code_request(self, phone: str) -> Any:
        raise self.exc

    async def send_message(self, *args: Any, **kwargs: Any) -> Any:
        raise self.exc

    async def upload_file(self, data: bytes, *, file_name: str) -> Any:
        return types.InputFile(id=1, parts=1, name=file_name, md5_checksum="")

    async def send_file(self, *args: Any, **kwargs: Any) -> Any:
        raise self.exc

    async def iter_dialogs(self, **kwargs: Any) -> AsyncIterator[Any]:
        raise self.exc
        yield  # pragma: no cover - makes this an async generator

    async def __call__(self, request: Any) -> Any:
        self.requests.append(request)  # the login's auth.sendCode, and the migration check
        if isinstance(request, functions.auth.SendCodeRequest):
            raise self.exc
        return types.messages.Chats(chats=self.chats)


async def drive(exc: BaseException, operation: Operation, group: GroupRef = SUPERGROUP,
                chats: list[Any] | None = None) -> GatewayError:
    """Run one gateway call for ``operation`` against a client raising ``exc``; return what it raised."""
    gateway = TelethonGateway(Settings(), factory=lambda session: RaisingClient(exc, chats))
    try:
        with pytest.raises(GatewayError) as info:
            if operation == "send":
                await gateway.send_message(ACCOUNT, group, OutgoingMessage(text="hello"))
            elif operation == "login":
                await gateway.send_code("login_5", "+15550001234")
            else:
                await gateway.list_groups(ACCOUNT)
    finally:
        await gateway.close()
    return info.value


@dataclass
class Case:
    exc: Callable[[], BaseException]
    operation: Operation
    expected: type[GatewayError]
    code: str
    data: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}-{self.operation}"


def _rpc_case(message: str, operation: Operation, expected: type[GatewayError], code: str | None = None,
              rpc_code: int = 400, **data: Any) -> Case:
    return Case(lambda: rpc(message, rpc_code), operation, expected, code or message, data)


CASES: list[Case] = [
    # flood waits keep the hint
    _rpc_case("FLOOD_WAIT_30", "send", FloodWait, "FLOOD_WAIT", 420, seconds=30),
    _rpc_case("FLOOD_PREMIUM_WAIT_12", "send", FloodWait, "FLOOD_PREMIUM_WAIT", 420, seconds=12),
    _rpc_case("FLOOD_TEST_PHONE_WAIT_7", "login", FloodWait, "FLOOD_TEST_PHONE_WAIT", 420, seconds=7),
    _rpc_case("SLOWMODE_WAIT_300", "send", FloodWait, "SLOWMODE_WAIT", 420, seconds=300, is_slow_mode=True),
    _rpc_case("FLOOD_WAIT_600", "login", FloodWait, "FLOOD_WAIT", 420, seconds=600),
    _rpc_case("PHONE_NUMBER_FLOOD", "login", FloodWait, seconds=PHONE_FLOOD_SECONDS),
    _rpc_case("PHONE_PASSWORD_FLOOD", "login", FloodWait, rpc_code=406, seconds=PHONE_FLOOD_SECONDS),
    # account throttled
    _rpc_case("PEER_FLOOD", "send", AccountThrottled),
    _rpc_case("FROZEN_METHOD_INVALID", "send", AccountThrottled, rpc_code=420),
    _rpc_case("USER_RESTRICTED", "send", AccountThrottled, rpc_code=403),
    _rpc_case("USER_BANNED_IN_CHANNEL", "send", AccountThrottled),  # account-wide at Telegram
    _rpc_case("FROZEN_PARTICIPANT_MISSING", "send", AccountThrottled),
    # forums, paid groups, media kinds: the group with its reason
    _rpc_case("TOPIC_CLOSED", "send", GroupClosed, reason="TOPIC_CLOSED"),
    _rpc_case("ALLOW_PAYMENT_REQUIRED_300", "send", GroupClosed, "ALLOW_PAYMENT_REQUIRED", rpc_code=403,
              reason="ALLOW_PAYMENT_REQUIRED"),
    _rpc_case("CHAT_SEND_DOCS_FORBIDDEN", "send", GroupClosed, rpc_code=403, reason="CHAT_SEND_DOCS_FORBIDDEN"),
    # group permanently closed, reason = Telegram's name
    *(
        _rpc_case(name, "send", GroupClosed, reason=name)
        for name in (
            "CHAT_WRITE_FORBIDDEN", "CHANNEL_PRIVATE", "CHAT_ADMIN_REQUIRED",
            "CHAT_RESTRICTED", "CHANNEL_INVALID", "PEER_ID_INVALID", "CHAT_ID_INVALID", "CHAT_INVALID",
            "CHAT_FORBIDDEN", "CHAT_GUEST_SEND_FORBIDDEN", "CHAT_SEND_PLAIN_FORBIDDEN",
            "CHAT_SEND_MEDIA_FORBIDDEN", "CHAT_SEND_PHOTOS_FORBIDDEN", "CHAT_SEND_VIDEOS_FORBIDDEN",
            "CHAT_SEND_GIFS_FORBIDDEN", "CHANNEL_PUBLIC_GROUP_NA", "USER_NOT_PARTICIPANT",
        )
    ),
    # account dead
    *(
        _rpc_case(name, "send", SessionDead, rpc_code=401)
        for name in (
            "AUTH_KEY_UNREGISTERED", "SESSION_REVOKED", "SESSION_EXPIRED", "USER_DEACTIVATED",
            "USER_DEACTIVATED_BAN", "AUTH_KEY_DUPLICATED", "AUTH_KEY_INVALID", "AUTH_KEY_PERM_EMPTY",
        )
    ),
    # message rejected
    *(
        _rpc_case(name, "send", MessageRejected)
        for name in (
            "MESSAGE_TOO_LONG", "MESSAGE_EMPTY", "MEDIA_CAPTION_TOO_LONG", "MEDIA_INVALID", "MEDIA_EMPTY",
            "ENTITY_BOUNDS_INVALID", "ENTITY_MENTION_USER_INVALID", "ENTITIES_TOO_LONG", "PHOTO_INVALID",
            "PHOTO_EXT_INVALID", "PHOTO_INVALID_DIMENSIONS", "PHOTO_SAVE_FILE_INVALID",
            "IMAGE_PROCESS_FAILED", "DOCUMENT_INVALID", "VIDEO_CONTENT_TYPE_INVALID", "FILE_PARTS_INVALID",
            "WEBPAGE_CURL_FAILED",
        )
    ),
    # login
    _rpc_case("PHONE_NUMBER_INVALID", "login", PhoneInvalid),
    _rpc_case("PHONE_NUMBER_UNOCCUPIED", "login", PhoneInvalid),
    _rpc_case("PHONE_NUMBER_APP_SIGNUP_FORBIDDEN", "login", PhoneInvalid),
    _rpc_case("PHONE_NUMBER_BANNED", "login", PhoneBanned),
    _rpc_case("PHONE_CODE_INVALID", "login", CodeInvalid),
    _rpc_case("PHONE_CODE_EMPTY", "login", CodeInvalid),
    _rpc_case("PHONE_CODE_EXPIRED", "login", CodeExpired),
    _rpc_case("PHONE_CODE_HASH_EMPTY", "login", CodeExpired),
    _rpc_case("SESSION_PASSWORD_NEEDED", "login", PasswordNeeded, rpc_code=401),
    _rpc_case("PASSWORD_HASH_INVALID", "login", PasswordInvalid),
    # transient: Telegram's trouble, network, timeouts
    _rpc_case("INTERNAL", "send", TransientError, rpc_code=500),
    _rpc_case("RPC_CALL_FAIL", "send", TransientError, rpc_code=500),
    _rpc_case("NETWORK", "dialogs", TransientError, rpc_code=502),
    _rpc_case("No workers running", "send", TransientError, "NO_WORKERS_RUNNING", rpc_code=-500),
    _rpc_case("Timedout_somewhere", "login", TransientError, "TIMEDOUT_SOMEWHERE", rpc_code=-503),
    Case(lambda: common_errors.InvalidBufferError(b"\x6c\xfe\xff\xff"), "send", TransientError,
         "INVALID_BUFFER"),
    Case(common_errors.AuthKeyNotFound, "send", TransientError, "AUTH_KEY_NOT_FOUND"),
    Case(lambda: TimeoutError(), "send", TransientError, "TIMEOUT"),
    Case(lambda: ConnectionError("connection reset"), "login", TransientError, "NETWORK_ERROR"),
    Case(lambda: OSError("network unreachable"), "dialogs", TransientError, "NETWORK_ERROR"),
    # the server closed the connection mid-read (Telethon's readers raise this, not an OSError)
    Case(lambda: asyncio.IncompleteReadError(b"", 8), "login", TransientError, "NETWORK_ERROR"),
    # fallbacks by RPC code for names Telethon has no class for
    _rpc_case("NEW_LIMIT_WAIT_45", "send", FloodWait, "NEW_LIMIT_WAIT", rpc_code=420, seconds=45),
    _rpc_case("NEW_LIMIT", "send", FloodWait, rpc_code=420, seconds=UNKNOWN_FLOOD_SECONDS),
    _rpc_case("NEW_AUTH_PROBLEM", "send", SessionDead, rpc_code=401),
    # an unknown 400/403 while sending stays unknown: the engine judges it (services.engine.judge_unknown)
    _rpc_case("NEW_FORBIDDEN_THING", "send", GatewayError, rpc_code=403),
    _rpc_case("NEW_FORBIDDEN_THING", "dialogs", GatewayError, rpc_code=403),
    _rpc_case("NEW_BAD_THING", "send", GatewayError),
    _rpc_case("NEW_BAD_THING", "login", GatewayError),
    _rpc_case("NEW_BAD_THING", "dialogs", GatewayError),
    _rpc_case("BAD_GATEWAY_THING", "send", TransientError, rpc_code=502),
    _rpc_case("NEW_NOT_FOUND", "send", GatewayError, rpc_code=404),
    _rpc_case("SEND_CODE_UNAVAILABLE", "login", ResendUnavailable, rpc_code=406),
    _rpc_case("FILE_REFERENCE_EXPIRED", "send", TransientError),
    _rpc_case("NEW_NOT_ACCEPTABLE", "login", GatewayError, rpc_code=406),
    _rpc_case("NEW_NOT_ACCEPTABLE", "send", AccountThrottled, rpc_code=406, spambot=False),
    Case(lambda: ValueError("a bug"), "send", GatewayError, "UNEXPECTED"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_error_row_maps_to_domain_error(case: Case) -> None:
    exc = case.exc()
    error = await drive(exc, case.operation)
    assert type(error) is case.expected
    assert error.code == case.code
    assert error.__cause__ is exc  # the Telethon error stays attached for the logs
    for attribute, value in case.data.items():
        assert getattr(error, attribute) == value


def test_every_table_row_has_a_case() -> None:
    # The table is keyed by Telegram's names now (accounts.errors); the ones below have their own tests
    # (the two SENT_CODE_ names are auth.sentCode answers, see test_telethon_gateway), and every name
    # of Telegram's documented list goes through this adapter in test_error_csv.py.
    covered = ({case.code for case in CASES} | {"CHAT_MIGRATED", "SESSION_INVALID", SETUP_EMAIL_REQUIRED,
                                                PAYMENT_REQUIRED} | {row.name for row in CSV_ROWS})
    missing = [name for name in TABLE if name not in covered]
    assert missing == []


async def test_migrated_basic_group_reports_the_new_supergroup() -> None:
    old_chat = types.Chat(id=77, title="old", photo=types.ChatPhotoEmpty(), participants_count=3, date=None,
                          version=1, deactivated=True, migrated_to=types.InputChannel(555, 999))
    error = await drive(rpc("PEER_ID_INVALID"), "send", group=BASIC_GROUP, chats=[old_chat])
    assert isinstance(error, GroupMigrated)
    assert (error.code, error.new_peer_id, error.new_access_hash) == ("CHAT_MIGRATED", 555, 999)


async def test_basic_group_not_migrated_keeps_the_original_error() -> None:
    live_chat = types.Chat(id=77, title="live", photo=types.ChatPhotoEmpty(), participants_count=3, date=None,
                           version=1)
    error = await drive(rpc("CHAT_WRITE_FORBIDDEN", 403), "send", group=BASIC_GROUP, chats=[live_chat])
    assert isinstance(error, GroupClosed)
    assert error.reason == "CHAT_WRITE_FORBIDDEN"


async def test_supergroup_errors_do_not_probe_for_migration() -> None:
    client = RaisingClient(rpc("PEER_ID_INVALID"))
    gateway = TelethonGateway(Settings(), factory=lambda session: client)
    with pytest.raises(GroupClosed):
        await gateway.send_message(ACCOUNT, SUPERGROUP, OutgoingMessage(text="hello"))
    await gateway.close()
    assert client.requests == []


async def test_unparsable_stored_session_is_a_dead_session() -> None:
    gateway = TelethonGateway(Settings(), factory=TelethonClientFactory(api_id=1, api_hash="h" * 32))
    with pytest.raises(SessionDead) as info:
        await gateway.send_message(AccountRef(account_id=3, session="not a session"), SUPERGROUP,
                                   OutgoingMessage(text="hello"))
    await gateway.close()
    assert info.value.code == "SESSION_INVALID"
    assert isinstance(info.value.__cause__, BadSessionError)


def test_domain_errors_pass_through_unchanged() -> None:
    original = FloodWait(5)
    assert map_error(original, "send") is original


def test_error_names_strip_the_number_that_is_data() -> None:
    assert error_name(rpc("FLOOD_WAIT_31", 420)) == "FLOOD_WAIT"
    assert error_name(rpc("SLOWMODE_WAIT_9", 420)) == "SLOWMODE_WAIT"
    assert error_name(rpc("CHAT_WRITE_FORBIDDEN", 403)) == "CHAT_WRITE_FORBIDDEN"


def test_translating_leaves_cancellation_alone() -> None:
    with pytest.raises(asyncio.CancelledError), translating("send"):
        raise asyncio.CancelledError


def test_translating_raises_the_mapped_error_chained() -> None:
    exc = rpc("PEER_FLOOD")
    with pytest.raises(AccountThrottled) as info, translating("send"):
        raise exc
    assert info.value.__cause__ is exc
