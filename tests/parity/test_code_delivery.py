"""Every way Telegram delivers a login code, through the bot, with each account gateway.

The sandbox account's ``code_types`` (control API) decides what ``auth.sendCode`` answers and
what each ``auth.resendCode`` moves on to; the bot must say where the code went, take a code of
the type's length, end the login with an explanation when Telegram sends no usable code, and
say so when no other way is left (SEND_CODE_UNAVAILABLE).
"""

from __future__ import annotations

import itertools

import pytest

import contract
from tests.parity.harness import Harness
from tests.parity.runner import CaseRunner

pytestmark = [pytest.mark.parity, pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.gateways("sandbox", "telethon")]

_PHONES = itertools.count(15557770001)


async def _bot_text_since(harness: Harness, uid: int, after: int) -> str:
    return "\n".join(str(m.get("text") or "") for m in await harness.client.chat(uid)
                     if m["from"] == "bot" and (int(m["message_id"]) > after or m.get("edited")))


async def _last_id(harness: Harness, uid: int) -> int:
    return max((int(m["message_id"]) for m in await harness.client.chat(uid)), default=0)


async def _login(harness: Harness, flow_contract: contract.Contract, code_types: list[str],
                 name: str) -> tuple[CaseRunner, int, str]:
    phone = f"+{next(_PHONES)}"
    await harness.client.add_account(phone, name, groups=[{"id": 990_001, "title": "Code club"}],
                                     code_types=code_types)
    runner = CaseRunner(harness, flow_contract, contract.Case(id=f"code {code_types[0]}"))
    runner.uid = uid = await harness.new_user(name)
    await runner.step({"send": "/login"})
    await runner.step({"send": phone})
    return runner, uid, phone


def _typed_code(code: dict[str, object]) -> str:
    # missed call: the code is the last digits of the calling number
    digits = str(code.get("calling_number") or code["code"])[-len(str(code["code"])):]
    return " ".join(digits)


@pytest.mark.parametrize(
    ("code_type", "words", "length"),
    [
        ("app", "Telegram app", 5),
        ("sms", "by SMS", 5),
        ("call", "calling your phone", 5),
        ("missed_call", "last 5 digits", 5),
        ("email", "@example.com", 6),
        ("fragment_sms", "fragment.com", 5),
        ("firebase_sms", "by SMS", 5),
    ],
)
async def test_the_bot_says_where_the_code_went_and_signs_in_with_it(
    harness: Harness, flow_contract: contract.Contract, code_type: str, words: str, length: int
) -> None:
    runner, uid, phone = await _login(harness, flow_contract, [code_type], f"Code{code_type.title()}")
    shown = await _bot_text_since(harness, uid, 0)
    assert words in shown, shown
    assert "Code: " + "○" * length in shown, shown  # the code length comes from the type
    code = (await harness.client.codes(phone))[0]
    assert code["type"] == code_type and len(str(code["code"])) == length
    if code_type == "missed_call":
        assert str(code["calling_number"]).endswith(str(code["code"]))
    before = await _last_id(harness, uid)
    await runner.step({"send": _typed_code(code)})
    assert f"Connected as Code{code_type.title()}" in await _bot_text_since(harness, uid, before)
    assert await harness.state(uid) == "idle"


@pytest.mark.parametrize(
    ("code_type", "words"),
    [("setup_email_required", "login email"), ("payment_required", "payment to verify")],
)
async def test_no_usable_code_ends_the_login_with_what_to_do(
    harness: Harness, flow_contract: contract.Contract, code_type: str, words: str
) -> None:
    _, uid, phone = await _login(harness, flow_contract, [code_type], "Blocked")
    shown = await _bot_text_since(harness, uid, 0)
    assert words in shown and "official Telegram app" in shown, shown
    assert "unreachable" not in shown.lower(), shown
    assert await harness.state(uid) == "idle"
    assert await harness.client.codes(phone) == []


async def test_resend_follows_the_next_type_until_no_way_is_left(
    harness: Harness, flow_contract: contract.Contract
) -> None:
    runner, uid, phone = await _login(harness, flow_contract, ["app", "sms", "call"], "Resender")
    assert "sends it by SMS" in await _bot_text_since(harness, uid, 0)
    before = await _last_id(harness, uid)
    await runner.step({"press": "acc:resend"})
    shown = await _bot_text_since(harness, uid, before)
    assert "by SMS to your phone" in shown and "sends it by a phone call" in shown, shown
    await runner.step({"press": "acc:resend"})
    shown = await _bot_text_since(harness, uid, before)
    assert "calling your phone" in shown, shown
    await runner.step({"press": "acc:resend"})
    shown = await _bot_text_since(harness, uid, before)
    assert "no other way left" in shown, shown
    assert await harness.state(uid) == "login_code"
    assert [c["type"] for c in await harness.client.codes(phone)] == ["call", "sms", "app"]
    # the last code sent still signs in
    code = (await harness.client.codes(phone))[0]
    await runner.step({"send": _typed_code(code)})
    assert "Connected as Resender" in await _bot_text_since(harness, uid, before)
