"""The sandbox adapter against a running world server: results and domain errors."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from accounts.errors import PHONE_FLOOD_SECONDS
from accounts.errors import TABLE as ERRORS
from accounts.gateway import AccountRef, GroupRef, LoginState, Media, OutgoingMessage
from accounts.sandbox_gateway import SandboxGateway, map_error
from config.settings import SandboxSettings
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
from sandbox.server import build_app
from sandbox.world import World, load_world_file
from sandbox.world_api import WORLD_KEY
from tests.ports import free_port
from tests.sandbox.conftest_world import ANN, BANNED, BEN, PASSWORD, latest_code, make_world, serve_world


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.fixture
async def base_url(world: World) -> AsyncIterator[str]:
    async with serve_world(world) as base:
        yield base


@pytest.fixture
async def gateway(base_url: str) -> AsyncIterator[SandboxGateway]:
    gw = SandboxGateway(base_url, timeout=5.0)
    yield gw
    await gw.close()


async def connect(gateway: SandboxGateway, world: World, phone: str = ANN) -> AccountRef:
    state = await gateway.send_code(f"login_{phone[-4:]}", phone)
    try:
        signed = await gateway.sign_in(state, latest_code(world, phone))
    except PasswordNeeded:
        signed = await gateway.check_password(state, PASSWORD)
    return AccountRef(account_id=1, session=signed.session)


async def group_ref(gateway: SandboxGateway, account: AccountRef, peer_id: int) -> GroupRef:
    info = next(g for g in await gateway.list_groups(account) if g.peer_id == peer_id)
    return GroupRef(info.peer_id, info.access_hash, info.kind)


# --- happy paths --------------------------------------------------------------------------------


async def test_login_list_and_send(gateway: SandboxGateway, world: World) -> None:
    state = await gateway.send_code("login_7", ANN)
    assert (state.name, state.phone, state.code_length) == ("login_7", ANN, 5)
    assert state.session and state.phone_code_hash
    assert LoginState.from_dict(state.to_dict()) == state

    signed = await gateway.sign_in(state, latest_code(world, ANN))

    assert (signed.tg_user_id, signed.first_name, signed.phone) == (501, "Ann", ANN)
    account = AccountRef(1, signed.session)
    groups = {g.peer_id: g for g in await gateway.list_groups(account)}
    assert groups[3].kind == "channel" and groups[3].can_send is False and groups[3].title == "News"
    assert groups[2].kind == "group" and groups[1].kind == "supergroup"
    message_id = await gateway.send_message(
        account, GroupRef(1, groups[1].access_hash, "supergroup"),
        OutgoingMessage("Hello", [{"type": "bold", "offset": 0, "length": 5}]))
    assert message_id == 1
    post = world.group_messages(1)[0]
    assert (post["from_phone"], post["text"], post["entities"][0]["type"]) == (ANN, "Hello", "bold")


async def test_media_is_sent_with_its_bytes(gateway: SandboxGateway, world: World) -> None:
    account = await connect(gateway, world)
    group = await group_ref(gateway, account, 2)
    data = b"\xff\xd8\xff" + bytes(range(256)) * 300

    await gateway.send_message(account, group, OutgoingMessage(
        "caption", [], Media("photo", data, "pic.jpg", "image/jpeg")))

    media = world.group_messages(2)[0]["media"]
    assert isinstance(media.pop("file_id"), int)
    assert media == {"kind": "photo", "filename": "pic.jpg", "size": len(data), "mime_type": "image/jpeg",
                     "sha256": hashlib.sha256(data).hexdigest()}
    assert world.uploaded_bytes(ANN) == len(data)


async def test_media_is_uploaded_once_per_account_with_its_attributes(
    gateway: SandboxGateway, world: World
) -> None:
    account = await connect(gateway, world)
    data = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 400
    video = Media("video", data, "clip.mp4", "video/mp4", width=1280, height=720, duration=7.5,
                  thumb=b"\xff\xd8\xffthumb", key=hashlib.sha256(data).hexdigest())
    for gid in (1, 2):
        await gateway.send_message(account, await group_ref(gateway, account, gid),
                                   OutgoingMessage("watch", [], video))
    assert world.uploaded_bytes(ANN) == len(data) + len(video.thumb or b"")  # once, not once per group
    first, second = world.group_messages(1)[0]["media"], world.group_messages(2)[0]["media"]
    assert first == second
    assert (first["width"], first["height"], first["duration"], first["thumb_size"]) == (1280, 720, 7.5, 8)

    # an expired file reference: the HTTP adapter uploads the bytes again, once, and goes on
    world.expire_file_references()
    await gateway.send_message(account, await group_ref(gateway, account, 1), OutgoingMessage("again", [], video))
    await gateway.send_message(account, await group_ref(gateway, account, 2), OutgoingMessage("again", [], video))
    assert world.uploaded_bytes(ANN) == 2 * (len(data) + len(video.thumb or b""))
    assert [p["media"]["sha256"] for p in world.group_messages(1)] == [first["sha256"]] * 2


async def test_two_factor_login(gateway: SandboxGateway, world: World) -> None:
    state = await gateway.send_code("login_2", BEN)
    with pytest.raises(PasswordNeeded) as needed:
        await gateway.sign_in(state, latest_code(world, BEN))
    assert needed.value.code == "SESSION_PASSWORD_NEEDED"
    with pytest.raises(PasswordInvalid):
        await gateway.check_password(state, "wrong")
    signed = await gateway.check_password(state, PASSWORD)
    assert signed.tg_user_id == 502


async def test_the_temporary_session_must_come_back_unchanged(gateway: SandboxGateway, world: World) -> None:
    state = await gateway.send_code("login_1", ANN)
    code = latest_code(world, ANN)
    other = await gateway.send_code("login_1", ANN)

    with pytest.raises(CodeExpired):
        await gateway.sign_in(replace(state, session=other.session), code)
    with pytest.raises(CodeExpired):
        await gateway.sign_in(replace(state, session="tmp_forged"), code)
    assert (await gateway.sign_in(state, code)).phone == ANN


async def test_resend_returns_the_state_for_the_new_code(gateway: SandboxGateway, world: World) -> None:
    state = await gateway.send_code("login_1", ANN)
    old = latest_code(world, ANN)

    fresh = await gateway.resend_code(state)

    assert fresh.session == state.session and fresh.phone_code_hash != state.phone_code_hash
    with pytest.raises(CodeExpired):
        await gateway.sign_in(fresh, old)
    with pytest.raises(CodeExpired):
        await gateway.sign_in(state, latest_code(world, ANN))
    assert (await gateway.sign_in(fresh, latest_code(world, ANN))).tg_user_id == 501


async def test_login_errors(gateway: SandboxGateway, world: World) -> None:
    with pytest.raises(PhoneInvalid):
        await gateway.send_code("login_1", "+15559999999")
    with pytest.raises(PhoneBanned):
        await gateway.send_code("login_1", BANNED)
    state = await gateway.send_code("login_1", ANN)
    with pytest.raises(CodeInvalid):
        await gateway.sign_in(state, "00000" if latest_code(world, ANN) != "00000" else "11111")
    world.observe_chat_text(f"code {latest_code(world, ANN)}")
    with pytest.raises(CodeExpired):
        await gateway.sign_in(state, latest_code(world, ANN))


async def test_too_many_wrong_codes_is_a_flood_wait(gateway: SandboxGateway, world: World) -> None:
    world.max_code_attempts = 1
    world.login_flood_seconds = 90
    state = await gateway.send_code("login_1", ANN)
    with pytest.raises(CodeInvalid):
        await gateway.sign_in(state, "abcde")
    with pytest.raises(FloodWait) as info:
        await gateway.sign_in(state, latest_code(world, ANN))
    assert (info.value.seconds, info.value.code) == (90, "FLOOD_WAIT")


async def test_cancel_login_forgets_the_temporary_session(gateway: SandboxGateway, world: World) -> None:
    state = await gateway.send_code("login_1", ANN)
    await gateway.cancel_login(state)
    with pytest.raises(CodeExpired):
        await gateway.sign_in(state, latest_code(world, ANN))


async def test_revoked_and_logged_out_sessions_are_dead(gateway: SandboxGateway, world: World) -> None:
    account = await connect(gateway, world)
    world.revoke_sessions(ANN)
    with pytest.raises(SessionDead) as info:
        await gateway.list_groups(account)
    assert info.value.code == "SESSION_REVOKED"

    account = await connect(gateway, world)
    await gateway.log_out(account)
    with pytest.raises(SessionDead) as info:
        await gateway.list_groups(account)
    assert info.value.code == "AUTH_KEY_UNREGISTERED"
    await gateway.log_out(account)  # already out: nothing to do, no error


async def test_natural_send_errors(gateway: SandboxGateway, world: World) -> None:
    account = await connect(gateway, world)
    slow = await group_ref(gateway, account, 4)
    await gateway.send_message(account, slow, OutgoingMessage("one"))
    with pytest.raises(FloodWait) as wait:
        await gateway.send_message(account, slow, OutgoingMessage("two"))
    assert wait.value.is_slow_mode and wait.value.seconds == 30
    with pytest.raises(GroupClosed) as closed:
        await gateway.send_message(account, await group_ref(gateway, account, 3), OutgoingMessage("x"))
    assert closed.value.reason == "CHAT_WRITE_FORBIDDEN"
    with pytest.raises(MessageRejected) as rejected:
        await gateway.send_message(account, await group_ref(gateway, account, 1), OutgoingMessage("x" * 5000))
    assert rejected.value.code == "MESSAGE_TOO_LONG"
    with pytest.raises(GroupMigrated) as moved:
        await gateway.send_message(account, await group_ref(gateway, account, 6), OutgoingMessage("x"))
    new = await group_ref(gateway, account, 60)
    assert (moved.value.new_peer_id, moved.value.new_access_hash) == (60, new.access_hash)
    assert await gateway.send_message(account, new, OutgoingMessage("moved along")) == 1


async def test_account_rate_limit_is_a_flood_wait(base_url: str) -> None:
    world = make_world(account_send_limit=1, account_send_window=50.0)
    async with serve_world(world) as base:
        gateway = SandboxGateway(base)
        try:
            account = await connect(gateway, world)
            group = await group_ref(gateway, account, 1)
            await gateway.send_message(account, group, OutgoingMessage("one"))
            with pytest.raises(FloodWait) as info:
                await gateway.send_message(account, group, OutgoingMessage("two"))
        finally:
            await gateway.close()
    assert info.value.code == "FLOOD_WAIT" and 49 <= info.value.seconds <= 50


# --- every world error name, through an injected fault -------------------------------------------

SEND_ERRORS: list[tuple[dict[str, Any], type[GatewayError], dict[str, Any]]] = [
    ({"error": "FLOOD_WAIT", "seconds": 42}, FloodWait, {"seconds": 42, "code": "FLOOD_WAIT"}),
    ({"error": "SLOWMODE_WAIT", "seconds": 17}, FloodWait, {"seconds": 17, "code": "SLOWMODE_WAIT"}),
    ({"error": "PEER_FLOOD"}, AccountThrottled, {"code": "PEER_FLOOD"}),
    ({"error": "USER_BANNED_IN_CHANNEL"}, AccountThrottled, {"code": "USER_BANNED_IN_CHANNEL"}),
    *[({"error": name}, GroupClosed, {"reason": name}) for name in (
        "CHAT_WRITE_FORBIDDEN", "CHANNEL_PRIVATE", "CHAT_ADMIN_REQUIRED",
        "CHAT_RESTRICTED", "CHANNEL_INVALID", "PEER_ID_INVALID", "TOPIC_CLOSED")],
    ({"error": "CHAT_MIGRATED", "new_id": 4242}, GroupMigrated, {"new_peer_id": 4242, "code": "CHAT_MIGRATED"}),
    *[({"error": name}, SessionDead, {"code": name}) for name in (
        "SESSION_REVOKED", "AUTH_KEY_UNREGISTERED", "USER_DEACTIVATED", "USER_DEACTIVATED_BAN",
        "AUTH_KEY_DUPLICATED")],
    *[({"error": name}, MessageRejected, {"code": name}) for name in (
        "MESSAGE_TOO_LONG", "MEDIA_INVALID", "ENTITY_BOUNDS_INVALID", "MEDIA_CAPTION_TOO_LONG")],
    ({"error": "INTERNAL"}, TransientError, {"code": "INTERNAL"}),
    ({"error": "RPC_CALL_FAIL"}, TransientError, {"code": "RPC_CALL_FAIL"}),
    ({"error": "NETWORK"}, TransientError, {"code": "NETWORK_ERROR"}),
]


@pytest.mark.parametrize(("fault", "error", "attrs"), SEND_ERRORS, ids=[f["error"] for f, _, _ in SEND_ERRORS])
async def test_send_errors_map_to_domain_errors(
    gateway: SandboxGateway, world: World, fault: dict[str, Any], error: type[GatewayError], attrs: dict[str, Any]
) -> None:
    account = await connect(gateway, world)
    group = await group_ref(gateway, account, 1)
    world.add_fault({"call": "send_message", **fault})

    with pytest.raises(GatewayError) as info:
        await gateway.send_message(account, group, OutgoingMessage("x"))

    assert type(info.value) is error
    for name, value in attrs.items():
        assert getattr(info.value, name) == value
    assert world.group_messages(1) == []
    # the fault fired once: the next send goes through
    assert await gateway.send_message(account, group, OutgoingMessage("y")) == 1


LOGIN_ERRORS: list[tuple[dict[str, Any], type[GatewayError], dict[str, Any]]] = [
    ({"error": "PHONE_NUMBER_INVALID"}, PhoneInvalid, {}),
    ({"error": "PHONE_NUMBER_BANNED"}, PhoneBanned, {}),
    ({"error": "PHONE_NUMBER_FLOOD"}, FloodWait, {"seconds": PHONE_FLOOD_SECONDS}),
    ({"error": "PHONE_NUMBER_FLOOD", "seconds": 600}, FloodWait, {"seconds": 600}),
    ({"error": "FLOOD_WAIT", "seconds": 3}, FloodWait, {"seconds": 3, "code": "FLOOD_WAIT"}),
    ({"error": "INTERNAL"}, TransientError, {}),
    ({"error": "NETWORK"}, TransientError, {"code": "NETWORK_ERROR"}),
]


@pytest.mark.parametrize(("fault", "error", "attrs"), LOGIN_ERRORS)
async def test_send_code_errors(
    gateway: SandboxGateway, world: World, fault: dict[str, Any], error: type[GatewayError], attrs: dict[str, Any]
) -> None:
    world.add_fault({"call": "send_code", **fault})
    with pytest.raises(GatewayError) as info:
        await gateway.send_code("login_1", ANN)
    assert type(info.value) is error
    assert info.value.code == attrs.get("code", info.value.code)
    for name, value in attrs.items():
        assert getattr(info.value, name) == value
    assert (await gateway.send_code("login_1", ANN)).phone == ANN


@pytest.mark.parametrize(
    ("call", "name", "error"),
    [
        ("sign_in", "PHONE_CODE_INVALID", CodeInvalid),
        ("sign_in", "PHONE_CODE_EXPIRED", CodeExpired),
        ("sign_in", "SESSION_PASSWORD_NEEDED", PasswordNeeded),
        ("check_password", "PASSWORD_HASH_INVALID", PasswordInvalid),
    ],
)
async def test_sign_in_and_password_errors(
    gateway: SandboxGateway, world: World, call: str, name: str, error: type[GatewayError]
) -> None:
    state = await gateway.send_code("login_1", BEN)
    if call == "check_password":
        with pytest.raises(PasswordNeeded):
            await gateway.sign_in(state, latest_code(world, BEN))
    world.add_fault({"call": call, "error": name})
    with pytest.raises(error) as info:
        if call == "sign_in":
            await gateway.sign_in(state, latest_code(world, BEN))
        else:
            await gateway.check_password(state, PASSWORD)
    assert info.value.code == name


async def test_dialog_errors(gateway: SandboxGateway, world: World) -> None:
    account = await connect(gateway, world)
    world.add_fault({"call": "get_dialogs", "error": "FLOOD_WAIT", "seconds": 5})
    world.add_fault({"call": "get_dialogs", "error": "USER_DEACTIVATED_BAN"})
    with pytest.raises(FloodWait):
        await gateway.list_groups(account)
    with pytest.raises(SessionDead):
        await gateway.list_groups(account)


# --- transport ----------------------------------------------------------------------------------


async def test_a_slow_world_is_a_timeout(base_url: str, world: World) -> None:
    gateway = SandboxGateway(base_url, timeout=0.2)
    world.sleep = asyncio.sleep  # the client's own timeout is under test: the world really waits
    try:
        world.add_fault({"call": "send_code", "error": "latency", "seconds": 0.6})
        with pytest.raises(TransientError) as info:
            await gateway.send_code("login_1", ANN)
        assert info.value.code == "TIMEOUT"
        await gateway.cancel_login(LoginState("login_1", ANN, "tmp_x", "h"))  # never raises
    finally:
        await gateway.close()


async def test_no_server_is_a_network_error() -> None:
    port = free_port()  # nothing listens there, and no other test's server will
    gateway = SandboxGateway(settings=SandboxSettings(host="127.0.0.1", port=port), timeout=2.0)
    try:
        with pytest.raises(TransientError) as info:
            await gateway.send_code("login_1", ANN)
        assert info.value.code == "NETWORK_ERROR"
        await gateway.cancel_login(LoginState("login_1", ANN, "tmp_x", "h"))
        with pytest.raises(TransientError):
            await gateway.log_out(AccountRef(1, "sbx_x"))
    finally:
        await gateway.close()


async def test_a_foreign_answer_is_transient(base_url: str) -> None:
    gateway = SandboxGateway(base_url + "/elsewhere")
    try:
        with pytest.raises(TransientError) as info:
            await gateway.send_code("login_1", ANN)
        assert info.value.code == "HTTP_404"
    finally:
        await gateway.close()


async def test_the_gateway_survives_close_and_reuse(gateway: SandboxGateway, world: World) -> None:
    await gateway.close()
    assert (await gateway.send_code("login_1", ANN)).phone == ANN


# --- the table itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "operation", "error", "attrs"),
    [
        ({"error": "FLOOD_WAIT_33"}, "send", FloodWait, {"seconds": 33, "code": "FLOOD_WAIT"}),
        ({"error": "SLOWMODE_WAIT_5"}, "send", FloodWait, {"seconds": 5, "code": "SLOWMODE_WAIT"}),
        ({"error": "SOME_NEW_WAIT", "code": 420}, "send", FloodWait, {"seconds": 60}),
        ({"error": "SOME_NEW_KEY_PROBLEM", "code": 401}, "dialogs", SessionDead, {}),
        ({"error": "SOME_NEW_FORBIDDEN", "code": 403}, "send", GatewayError, {}),  # judged by the engine
        ({"error": "SOME_NEW_FORBIDDEN", "code": 403}, "dialogs", GatewayError, {}),
        ({"error": "SOME_NEW_BAD_REQUEST", "code": 400}, "send", GatewayError, {}),
        ({"error": "SOME_NEW_BAD_REQUEST", "code": 400}, "login", GatewayError, {}),
        ({"error": "SOME_SERVER_TROUBLE", "code": 503}, "login", TransientError, {}),
        ({"error": "SOME_SERVER_TROUBLE", "code": -503}, "send", TransientError, {}),
        ({"error": "CHAT_MIGRATED", "new_id": 9, "new_access_hash": 8}, "send", GroupMigrated,
         {"new_peer_id": 9, "new_access_hash": 8}),
    ],
)
def test_map_error(answer: dict[str, Any], operation: Any, error: type[GatewayError], attrs: dict[str, Any]) -> None:
    mapped = map_error(answer, operation)
    assert type(mapped) is error
    for name, value in attrs.items():
        assert getattr(mapped, name) == value


def test_every_world_error_of_the_contract_is_in_the_table() -> None:
    names = {
        "PHONE_NUMBER_INVALID", "PHONE_NUMBER_BANNED", "PHONE_NUMBER_FLOOD", "FLOOD_WAIT", "PHONE_CODE_INVALID",
        "PHONE_CODE_EXPIRED", "SESSION_PASSWORD_NEEDED", "PASSWORD_HASH_INVALID", "SLOWMODE_WAIT", "PEER_FLOOD",
        "CHAT_WRITE_FORBIDDEN", "USER_BANNED_IN_CHANNEL", "CHANNEL_PRIVATE", "CHAT_ADMIN_REQUIRED",
        "CHAT_RESTRICTED", "CHANNEL_INVALID", "PEER_ID_INVALID", "CHAT_MIGRATED", "SESSION_REVOKED",
        "AUTH_KEY_UNREGISTERED", "USER_DEACTIVATED", "USER_DEACTIVATED_BAN", "AUTH_KEY_DUPLICATED",
        "MESSAGE_TOO_LONG", "MEDIA_INVALID", "ENTITY_BOUNDS_INVALID", "MESSAGE_EMPTY", "PHONE_CODE_EMPTY",
        "INTERNAL", "NETWORK",
    }
    assert names <= set(ERRORS)


async def test_media_larger_than_the_default_body_limit_goes_through(gateway: SandboxGateway, world: World) -> None:
    account = await connect(gateway, world)
    data = b"v" * (3 * 1024 * 1024)  # aiohttp's default client_max_size is 1 MB
    await gateway.send_message(account, await group_ref(gateway, account, 1),
                               OutgoingMessage("clip", [], Media("video", data, "clip.mp4", "video/mp4")))
    assert world.group_messages(1)[0]["media"]["size"] == len(data)


async def test_oversized_media_is_rejected(
    gateway: SandboxGateway, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sandbox.world.MEDIA_LIMIT", 1000)
    monkeypatch.setattr("sandbox.world_api.MEDIA_LIMIT", 1000)
    account = await connect(gateway, world)
    group = await group_ref(gateway, account, 1)
    await gateway.send_message(account, group, OutgoingMessage("", [], Media("document", b"d" * 1000, "ok.bin")))
    with pytest.raises(MessageRejected) as info:
        await gateway.send_message(account, group, OutgoingMessage("", [], Media("document", b"d" * 5000, "big.bin")))
    assert info.value.code == "MEDIA_INVALID"
    assert len(world.group_messages(1)) == 1


# --- the assembled sandbox server (sandbox.server) ------------------------------------------------


async def test_against_the_assembled_sandbox_with_the_demo_world() -> None:
    app = build_app(SandboxSettings(), load_world_file())
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("/")).rstrip("/")
    world = app[WORLD_KEY]
    gateway = SandboxGateway(base)
    try:
        async with aiohttp.ClientSession() as http:
            async def user_says(text: str) -> None:
                async with http.post(f"{base}/sandbox/api/users/77/messages", json={"text": text}) as response:
                    assert response.status == 200, await response.text()

            async with http.post(f"{base}/sandbox/api/users", json={"user_id": 77, "first_name": "U"}) as response:
                assert response.status == 200
            # a code the user types with spaces stays valid; one pasted unchanged is voided
            state = await gateway.send_code("login_77", "+15550000002")
            await user_says(" ".join(latest_code(world, "+15550000002")))
            with pytest.raises(PasswordNeeded):
                await gateway.sign_in(state, latest_code(world, "+15550000002"))
            signed = await gateway.check_password(state, "sandbox-2fa")

            state = await gateway.send_code("login_77", "+15550000001")
            await user_says(f"the code is {latest_code(world, '+15550000001')}")
            with pytest.raises(CodeExpired):
                await gateway.sign_in(state, latest_code(world, "+15550000001"))

        account = AccountRef(1, signed.session)
        groups = await gateway.list_groups(account)
        assert len(groups) == 13  # the read-only channel too: leaving it out is the import's rule
        first = groups[0]
        assert await gateway.send_message(account, GroupRef(first.peer_id, first.access_hash, first.kind),
                                          OutgoingMessage("hello from Boris")) == 1
        assert world.group_messages(first.peer_id)[0]["from_phone"] == "+15550000002"
    finally:
        await gateway.close()
        await server.close()
