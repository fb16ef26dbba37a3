"""Which Telegram accounts a chat user connected, as the sandbox itself saw it (issue 13 item 6).

The sandbox plays Telegram and never reads the product's database: its evidence is the bot chat
a login went through (the phone given there before the code was sent, or the code typed there)
and the live session that login ended in.
"""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.client import SandboxError
from sandbox.world import World, WorldError
from tests.sandbox.conftest import USER, Sandbox
from tests.sandbox.conftest_world import ANN, BEN, PASSWORD, latest_code, login, make_world, world_error

OTHER = 2002


async def _sign_in(world: World, phone: str, sent: dict[str, Any], chat: int | None = None,
                   spaced: bool = True) -> str:
    code = latest_code(world, phone)
    if chat is not None:  # the person types the code into the bot chat, as the bot asks
        world.observe_chat_message(chat, " ".join(code) if spaced else f"{code[:2]}-{code[2:]}")
    try:
        done = await world.sign_in(phone, sent["session"], sent["phone_code_hash"], code)
    except WorldError as exc:
        assert exc.name == "SESSION_PASSWORD_NEEDED"
        done = await world.check_password(phone, sent["session"], PASSWORD)
    return str(done["session"])


async def test_the_phone_given_in_a_chat_marks_the_login_and_its_session() -> None:
    world = make_world()
    world.observe_chat_message(USER, "+1 555 000 1001")  # typed, with spaces
    await _sign_in(world, ANN, await world.send_code(ANN))
    world.observe_chat_message(USER, None, contact_phone=BEN)  # shared as a contact
    await _sign_in(world, BEN, await world.send_code(BEN))

    mine = world.chat_accounts(USER)
    assert [(a["phone"], a["first_name"], a["user_id"], a["sessions"]) for a in mine] == [
        (ANN, "Ann", 501, 1), (BEN, "Ben", 502, 1)]
    assert world.chat_accounts(OTHER) == []
    shown = {a["phone"]: a["chat_users"] for a in world.accounts()}
    assert shown[ANN] == [USER] and shown[BEN] == [USER]
    assert [s["chat_user_id"] for s in world.sessions(ANN)] == [USER]


async def test_the_code_typed_in_a_chat_wins_over_the_phone_given_in_another() -> None:
    world = make_world()
    world.observe_chat_message(USER, ANN)
    sent = await world.send_code(ANN)
    await _sign_in(world, ANN, sent, chat=OTHER, spaced=False)  # "12-345": not voided, and OTHER's
    assert world.chat_accounts(USER) == []
    assert [a["phone"] for a in world.chat_accounts(OTHER)] == [ANN]


async def test_a_login_without_any_chat_evidence_belongs_to_nobody() -> None:
    world = make_world()
    world.observe_chat_message(USER, "hello 12345")  # neither a known phone nor a live code
    await login(world, ANN)
    assert world.chat_accounts(USER) == []
    assert next(a for a in world.accounts() if a["phone"] == ANN)["chat_users"] == []


async def test_a_phone_given_after_the_code_was_sent_marks_nothing() -> None:
    world = make_world()
    sent = await world.send_code(ANN)
    world.observe_chat_message(USER, ANN)  # too late: this login started without it
    await _sign_in(world, ANN, sent)
    assert world.chat_accounts(USER) == []


async def test_log_out_and_terminated_sessions_leave_the_list() -> None:
    world = make_world()
    world.observe_chat_message(USER, ANN)
    first = await _sign_in(world, ANN, await world.send_code(ANN))
    second = await _sign_in(world, ANN, await world.send_code(ANN))  # the same account again
    assert [(a["phone"], a["sessions"]) for a in world.chat_accounts(USER)] == [(ANN, 2)]

    version = world.changes.version
    await world.log_out(first)  # e.g. the bot replaced the old session (U8.4)
    assert world.changes.version > version  # the page hears of it
    assert [(a["phone"], a["sessions"]) for a in world.chat_accounts(USER)] == [(ANN, 1)]
    assert world.revoke_sessions(ANN) == 1  # "Terminate all sessions" in the account's app
    assert world.chat_accounts(USER) == []
    assert (await world_error(world.get_dialogs(second))).name == "SESSION_REVOKED"


async def test_a_voided_code_keeps_the_login_its_chat_users() -> None:
    world = make_world()
    sent = await world.send_code(ANN)
    code = latest_code(world, ANN)
    world.observe_chat_message(OTHER, code)  # sent as plain digits: Telegram voids it
    assert world.codes(ANN)[0]["state"] == "voided"
    assert (await world_error(world.sign_in(ANN, sent["session"], sent["phone_code_hash"], code))).name == \
        "PHONE_CODE_EXPIRED"
    sent = await world.send_code(ANN, sent["session"])  # a new code for the same temporary session
    await _sign_in(world, ANN, sent, chat=USER)
    assert [a["phone"] for a in world.chat_accounts(USER)] == [ANN]
    assert world.chat_accounts(OTHER) == []


async def test_the_control_api_and_the_chat_route_tell_it(sandbox: Sandbox) -> None:
    """Through the server: chat messages via the control API, the login via the world API."""
    phone = "+15550009001"
    await sandbox.client.add_account(phone, "Zoe")
    await sandbox.client.create_user(OTHER, "Otto")
    await sandbox.client.send_contact(USER, phone)
    world = sandbox.world
    sent = await world.send_code(phone)
    code = await sandbox.client.latest_code(phone)
    await sandbox.client.send_text(USER, " ".join(code))
    await world.sign_in(phone, sent["session"], sent["phone_code_hash"], code)

    assert [(a["phone"], a["first_name"]) for a in await sandbox.client.chat_accounts(USER)] == [(phone, "Zoe")]
    assert await sandbox.client.chat_accounts(OTHER) == []
    [account] = [a for a in await sandbox.client.accounts() if a["phone"] == phone]
    assert account["chat_users"] == [USER]
    with pytest.raises(SandboxError) as bad:
        await sandbox.client.request("GET", "/users/x/accounts")
    assert bad.value.status == 400 and "integer" in bad.value.body["error"]
