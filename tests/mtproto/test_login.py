"""Login through the real Telethon gateway against the sandbox's MTProto endpoint."""

from __future__ import annotations

import asyncio

import pytest

from accounts.gateway import AccountRef, LoginState
from accounts.telethon.pool import CONNECT_ATTEMPTS
from config.settings import SandboxSettings
from domain.errors import (
    CodeExpired,
    CodeInvalid,
    FloodWait,
    PasswordInvalid,
    PasswordNeeded,
    PhoneBanned,
    PhoneInvalid,
    TransientError,
)
from tests.mtproto.support import ANN, BEN, BEN_PASSWORD, MTSandbox


async def test_code_login_gives_a_session_that_the_world_knows(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    state = await gateway.send_code("login_1", ANN)
    assert state.phone == ANN and state.code_length == 5 and state.phone_code_hash
    assert mt.world.codes(ANN)[0]["state"] == "live"

    done = await gateway.sign_in(state, mt.last_code(ANN))

    assert (done.tg_user_id, done.first_name, done.phone) == (7001, "Ann", ANN)
    assert mt.world.codes(ANN)[0]["state"] == "used"
    assert len(mt.world.sessions(ANN)) == 1
    # The durable session is the login's auth key: a new client from the string is signed in.
    groups = await mt.gateway().list_groups(AccountRef(1, done.session))
    assert groups
    assert [(e.method, e.ok) for e in mt.world_calls()] == [
        ("send_code", True), ("sign_in", True), ("get_dialogs", True)]


async def test_wrong_code_is_refused_and_the_right_one_still_works(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    state = await gateway.send_code("login_1", ANN)
    right = mt.last_code(ANN)
    wrong = "00000" if right != "00000" else "11111"

    with pytest.raises(CodeInvalid) as err:
        await gateway.sign_in(state, wrong)
    assert err.value.code == "PHONE_CODE_INVALID"

    done = await gateway.sign_in(state, right)
    assert done.tg_user_id == 7001


async def test_a_code_replaced_by_a_resend_is_expired(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    state = await gateway.send_code("login_1", ANN)
    first = mt.last_code(ANN)

    again = await gateway.resend_code(state)

    assert again.session == state.session  # same temporary session (auth key), new hash
    assert again.phone_code_hash != state.phone_code_hash
    second = mt.last_code(ANN)
    assert second != first
    with pytest.raises(CodeExpired):
        await gateway.sign_in(again, first)
    assert (await gateway.sign_in(again, second)).tg_user_id == 7001


async def test_a_code_past_its_lifetime_is_expired(mt: MTSandbox) -> None:
    mt.world.settings = SandboxSettings(rate_limits=False, code_ttl=0.05)
    gateway = mt.gateway()
    state = await gateway.send_code("login_1", ANN)
    await asyncio.sleep(0.1)

    with pytest.raises(CodeExpired) as err:
        await gateway.sign_in(state, mt.last_code(ANN))
    assert err.value.code == "PHONE_CODE_EXPIRED"


async def test_a_code_is_bound_to_the_auth_key_that_asked_for_it(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    state = await gateway.send_code("login_1", ANN)
    other = await gateway.send_code("login_2", ANN)  # a second login: another auth key

    with pytest.raises(CodeExpired):
        await gateway.sign_in(LoginState(**{**state.to_dict(), "session": other.session}), mt.last_code(ANN))


async def test_two_step_login_with_srp(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    state = await gateway.send_code("login_2", BEN)

    with pytest.raises(PasswordNeeded) as err:
        await gateway.sign_in(state, mt.last_code(BEN))
    assert err.value.code == "SESSION_PASSWORD_NEEDED"

    done = await gateway.check_password(state, BEN_PASSWORD)
    assert (done.tg_user_id, done.first_name) == (7002, "Ben")
    assert [g.peer_id for g in await gateway.list_groups(AccountRef(2, done.session))] == [502]


async def test_wrong_password_is_refused_then_the_right_one_works(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    state = await gateway.send_code("login_2", BEN)
    with pytest.raises(PasswordNeeded):
        await gateway.sign_in(state, mt.last_code(BEN))

    with pytest.raises(PasswordInvalid) as err:
        await gateway.check_password(state, "wrong horse")
    assert err.value.code == "PASSWORD_HASH_INVALID"
    assert not mt.world.sessions(BEN)

    done = await gateway.check_password(state, BEN_PASSWORD)
    assert done.tg_user_id == 7002
    checks = [e.error for e in mt.world_calls("check_password")]
    assert checks == ["PASSWORD_HASH_INVALID", None]


async def test_two_step_login_survives_a_restart_between_code_and_password(mt: MTSandbox) -> None:
    before = mt.gateway()
    state = await before.send_code("login_2", BEN)
    with pytest.raises(PasswordNeeded):
        await before.sign_in(state, mt.last_code(BEN))
    stored = state.to_dict()  # what the bot keeps in its FSM storage
    await before.close()
    await mt.server.drop_connections()  # the old process is gone, and its TCP connections

    after = mt.gateway()  # a new process: new gateway, new factory, only the stored state
    done = await after.check_password(LoginState.from_dict(stored), BEN_PASSWORD)

    assert done.tg_user_id == 7002
    assert len(mt.world.sessions(BEN)) == 1
    assert await after.list_groups(AccountRef(2, done.session))


async def test_too_many_wrong_codes_end_in_a_flood_wait(mt: MTSandbox) -> None:
    mt.world.max_code_attempts = 1
    mt.world.login_flood_seconds = 77
    gateway = mt.gateway()
    state = await gateway.send_code("login_1", ANN)
    right = mt.last_code(ANN)
    wrong = "00000" if right != "00000" else "11111"
    with pytest.raises(CodeInvalid):
        await gateway.sign_in(state, wrong)

    with pytest.raises(FloodWait) as err:
        await gateway.sign_in(state, wrong)
    assert (err.value.code, err.value.seconds) == ("FLOOD_WAIT", 77)


@pytest.mark.parametrize(("phone", "error", "code"), [
    ("+15559999999", PhoneInvalid, "PHONE_NUMBER_INVALID"),
    ("+15550001003", PhoneBanned, "PHONE_NUMBER_BANNED"),
])
async def test_phone_errors(mt: MTSandbox, phone: str, error: type[Exception], code: str) -> None:
    with pytest.raises(error) as err:
        await mt.gateway().send_code("login_1", phone)
    assert getattr(err.value, "code", None) == code


async def test_phone_number_flood_from_a_fault(mt: MTSandbox) -> None:
    mt.world.add_fault({"call": "send_code", "error": "PHONE_NUMBER_FLOOD", "phone": ANN})
    with pytest.raises(FloodWait) as err:
        await mt.gateway().send_code("login_1", ANN)
    assert err.value.code == "PHONE_NUMBER_FLOOD"


async def test_a_key_exchange_the_server_cuts_is_tried_again(mt: MTSandbox) -> None:
    mt.server.cut_key_exchanges = CONNECT_ATTEMPTS - 1
    state = await mt.gateway().send_code("login_1", ANN)
    assert mt.server.cut_key_exchanges == 0
    assert state.phone_code_hash and mt.world.codes(ANN)[0]["state"] == "live"


async def test_a_connection_cut_at_every_attempt_is_a_network_error(mt: MTSandbox) -> None:
    mt.server.cut_key_exchanges = CONNECT_ATTEMPTS
    with pytest.raises(TransientError) as err:
        await mt.gateway().send_code("login_1", ANN)
    assert err.value.code == "NETWORK_ERROR"
    assert mt.server.cut_key_exchanges == 0 and mt.world.codes(ANN) == []


async def test_cancel_login_voids_the_code(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    state = await gateway.send_code("login_1", ANN)
    await gateway.cancel_login(state)
    assert mt.world.codes(ANN)[0]["state"] == "cancelled"
    with pytest.raises(CodeExpired):
        await gateway.sign_in(state, mt.last_code(ANN))
