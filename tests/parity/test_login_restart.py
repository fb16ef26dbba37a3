"""A 2FA login across a bot restart between the code and the password steps, with each gateway.

The restart stops the bot task and starts a fresh one (new gateway, services and dispatcher) on
the same PostgreSQL and Redis: all the second bot knows of the login is the FSM data in Redis.
With the Telethon gateway that is the temporary MTProto session the code step left there.
"""

from __future__ import annotations

import pytest

import contract
from tests.parity.harness import Harness
from tests.parity.runner import CaseRunner

pytestmark = [pytest.mark.parity, pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.gateways("sandbox", "telethon")]


async def _chat_since(harness: Harness, uid: int, after: int) -> list[dict[str, object]]:
    return [m for m in await harness.client.chat(uid) if int(str(m["message_id"])) > after]


async def test_a_2fa_login_survives_a_restart_between_code_and_password(
    harness: Harness, flow_contract: contract.Contract
) -> None:
    runner = CaseRunner(harness, flow_contract, contract.Case(id="2fa restart"))
    runner.uid = uid = await harness.new_user("Restart2FA")
    account = flow_contract.accounts["boris"]
    sessions_before = len(await harness.client.sessions(account["phone"]))
    for step in flow_contract.expand([{"given": "password_boris"}]):  # phone, then the spaced code
        await runner.step(step)
    assert await harness.state(uid) == "login_password"
    chat = await harness.client.chat(uid)
    assert "two-step verification" in str(chat[-1]["text"]).lower()

    first_bot = harness.bot_task
    first_gateway = harness.gateway
    await harness.restart_bot()
    assert first_bot is not None and first_bot.done() and harness.bot_task is not first_bot
    assert harness.gateway is not first_gateway and harness.gateway_kind == harness.settings.gateway_kind
    assert await harness.state(uid) == "login_password"  # the FSM state outlived the first bot

    last = max(int(m["message_id"]) for m in chat)
    await runner.step({"send": "{password}"})
    shown = "\n".join(str(m.get("text") or "") for m in await _chat_since(harness, uid, last)
                      if m["from"] == "bot")
    assert "Connected as Boris" in shown and "+1•••0002" in shown, shown
    assert "wrong password" not in shown.lower() and "expired" not in shown.lower(), shown
    assert await harness.state(uid) == "idle"
    typed = [m for m in await harness.client.chat(uid) if m["from"] == "user" and m["text"] == account["password"]]
    assert len(typed) == 1 and typed[0]["deleted"]
    assert await harness.fetchval("SELECT status FROM accounts WHERE user_id = $1", uid) == "connected"
    session = harness.cipher.decrypt(bytes(await harness.fetchval(
        "SELECT session_enc FROM accounts WHERE user_id = $1", uid)))
    assert harness.is_session(session)
    assert len(await harness.client.sessions(account["phone"])) == sessions_before + 1

    # the session finished by the second bot works: the groups come through its gateway
    before = max(int(m["message_id"]) for m in await harness.client.chat(uid))
    await runner.step({"press": "grp:menu"})
    await runner.step({"press": "grp:import"})
    shown = "\n".join(str(m.get("text") or "") for m in await harness.client.chat(uid)
                      if m["from"] == "bot" and (int(m["message_id"]) > before or m.get("edited")))
    assert "Imported 12: 12 new, 0 updated, 0 gone" in shown, shown
