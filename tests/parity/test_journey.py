"""The whole journey of one person, then: no plaintext session stored, no secret in any log line.

Login with 2FA, group import, a formatted message, an interval, start; a round sent by the worker
(with its own gateway, as another process) with a flood wait honoured; stop; start again, the
session revoked in the account's app, and the next round ending it with the user told.

Run with each account gateway (``PARITY_GATEWAYS``): the sandbox adapter, and the Telethon adapter
over the sandbox's MTProto endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import replace
from typing import Any

import pytest

import contract
from roles.bot import texts
from tests.integration.engine_support import FAST, Engine
from tests.parity.harness import Harness
from tests.parity.runner import CaseRunner, Output, diff

pytestmark = [pytest.mark.parity, pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.gateways("sandbox", "telethon")]

BORIS = "+15550000002"  # the demo world's 2FA account
PASSWORD = "sandbox-2fa"


class Person:
    """One chat user driving the bot through the runner's steps; ``do`` returns what changed."""

    def __init__(self, harness: Harness, runner: CaseRunner) -> None:
        self.h = harness
        self.runner = runner

    async def do(self, step: dict[str, Any]) -> Output:
        before = await self.h.client.chat(self.runner.uid)
        self.runner.last_answer = None
        await self.runner.step(step)
        out = diff(before, await self.h.client.chat(self.runner.uid))
        out.answer = self.runner.last_answer
        return out


async def _due_round(harness: Harness, worker: Engine, uid: int) -> int:
    """The user's campaign made due now, and the round the scheduler opens for it."""
    async with harness.db.connection() as conn:
        await conn.execute("UPDATE campaigns SET next_run_at = now() WHERE user_id = $1", uid)
    await worker.jobs.tick()
    round_id = await harness.fetchval("SELECT round_id FROM rounds WHERE user_id = $1 AND finished_at IS NULL", uid)
    assert round_id is not None, "the scheduler opened no round"
    return int(round_id)


async def _told(harness: Harness, uid: int, text: str, within: float = 10.0) -> None:
    """The bot's notifier delivered ``text`` to the user's chat (it drains the outbox on its own)."""
    deadline = asyncio.get_running_loop().time() + within
    while not any(m["from"] == "bot" and text in str(m.get("text")) for m in await harness.client.chat(uid)):
        assert asyncio.get_running_loop().time() < deadline, f"the user was not told {text!r}"
        await asyncio.sleep(0.05)


def _has(out: Output, *phrases: str) -> None:
    text = out.haystack.lower()
    for phrase in phrases:
        assert phrase.lower() in text, f"{phrase!r} not in {out.haystack!r}"


async def test_full_journey(harness: Harness, flow_contract: contract.Contract,
                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    runner = CaseRunner(harness, flow_contract, contract.Case(id="journey"))
    runner.uid = await harness.new_user("Journey")
    runner.account = "boris"
    me = Person(harness, runner)
    uid = runner.uid

    _has(await me.do({"send": "/start"}), "welcome", "not connected")
    await me.do({"press": "acc:menu"})
    out = await me.do({"press": "acc:login"})
    _has(out, "phone number")
    out = await me.do({"send": "+1 555 000 0002"})
    _has(out, "sent to your telegram app", "1 2 3 4 5")
    assert await harness.state(uid) == "login_code"

    code = await harness.client.latest_code(BORIS)
    out = await me.do({"send": " ".join(code)})  # "1 2 3 4 5": Telegram doesn't void a spaced code
    _has(out, "two-step verification")
    assert await harness.state(uid) == "login_password"
    out = await me.do({"send": PASSWORD})
    _has(out, "connected as boris", "+1•••0002")
    chat = {m["message_id"]: m for m in await harness.client.chat(uid)}
    secrets_typed = [m for m in chat.values() if m["from"] == "user" and m["text"] in (" ".join(code), PASSWORD)]
    assert len(secrets_typed) == 2 and all(m["deleted"] for m in secrets_typed)

    await me.do({"press": "grp:menu"})
    _has(await me.do({"press": "grp:import"}), "imported 12: 12 new")
    for _ in range(3):
        await me.do({"press": {"data": "grp:t:*:0", "text": "⬜"}})
    assert await harness.fetchval("SELECT count(*) FROM groups WHERE user_id = $1 AND selected", uid) == 3

    await me.do({"send": "/start"})
    await me.do({"press": "msg:menu"})
    await me.do({"press": "msg:set"})
    entities = [{"type": "bold", "offset": 0, "length": 5}, {"type": "italic", "offset": 6, "length": 4}]
    out = await me.do({"send": {"text": "Fresh bread daily", "entities": entities}})
    preview = [m for m in out.new if m["text"] == "Fresh bread daily"]
    assert preview and [(e["type"], e["offset"], e["length"]) for e in preview[0]["entities"]] == [
        ("bold", 0, 5), ("italic", 6, 4)]
    _has(await me.do({"press": "msg:save"}), "message saved")

    await me.do({"send": "/start"})
    await me.do({"press": "int:menu"})
    await me.do({"press": "int:custom"})
    _has(await me.do({"send": "1h30m"}), "every 1 h 30 min")

    sealed = bytes(await harness.fetchval("SELECT session_enc FROM accounts WHERE user_id = $1", uid))
    session = harness.cipher.decrypt(sealed)
    assert harness.is_session(session), "the stored session is not one of this gateway's sessions"

    await me.do({"send": "/start"})
    _has(await me.do({"press": "bc:start"}), "started: 3 groups every 1 h 30 min")
    assert await harness.fetchval("SELECT status FROM campaigns WHERE user_id = $1", uid) == "running"

    # --- a round through the worker (its own gateway, as another process): the flood wait honoured --
    async with harness.db.connection() as conn:
        peers = [int(r["peer_id"]) for r in await conn.fetch(
            "SELECT peer_id FROM groups WHERE user_id = $1 AND selected ORDER BY peer_id", uid)]
    flooded = peers[1]
    await harness.client.add_fault("send_message", "FLOOD_WAIT", phone=BORIS, group_id=flooded, seconds=1)
    worker = Engine(harness.db, harness.redis, harness.new_gateway(),
                    replace(harness.settings, engine=FAST), harness.cipher)
    first = await _due_round(harness, worker, uid)
    await worker.run_until_done([first])
    for peer in peers:  # every group exactly once, the flooded one after the wait
        posts = await harness.client.group_messages(peer)
        assert [(p["from_phone"], p["text"]) for p in posts] == [(BORIS, "Fresh bread daily")], posts
        assert [(e["type"], e["offset"], e["length"]) for e in posts[0]["entities"]] == [
            ("bold", 0, 5), ("italic", 6, 4)]
    sends = [e for e in await harness.client.events() if e["method"] == "send_message" and e.get("phone") == BORIS]
    flood = next(e for e in sends if e.get("error") == "FLOOD_WAIT")
    retry = next(e for e in sends if e["ok"] and e.get("group_id") == flooded)
    assert flood["retry_after"] == 1 and retry["ts_ms"] - flood["ts_ms"] >= 1000
    attempt = await harness.fetchval("SELECT row(a.status, a.tries, a.error_code)::text FROM attempts a JOIN groups g "
                                     "USING (group_id) WHERE a.round_id = $1 AND g.peer_id = $2", first, flooded)
    assert attempt == "(sent,2,FLOOD_WAIT)"
    await _told(harness, uid, "Round finished: 3 sent, 0 failed, 0 skipped of 3.")

    await me.do({"send": "/start"})
    _has(await me.do({"press": "bc:stop"}), "stopped")
    assert await harness.fetchval("SELECT status FROM campaigns WHERE user_id = $1", uid) == "stopped"

    # --- the session revoked in the account's app: the next round ends it and tells the user ------
    await me.do({"send": "/start"})
    _has(await me.do({"press": "bc:start"}), "started: 3 groups")
    await harness.client.revoke_sessions(BORIS)
    second = await _due_round(harness, worker, uid)
    await worker.run_until_done([second])
    account = await harness.fetchval("SELECT row(status, disconnected_reason)::text FROM accounts "
                                     "WHERE user_id = $1", uid)
    assert account == "(disconnected,SESSION_REVOKED)"
    assert await harness.fetchval("SELECT status FROM campaigns WHERE user_id = $1", uid) == "stopped"
    for peer in peers:
        assert len(await harness.client.group_messages(peer)) == 1
    await _told(harness, uid, texts.NOTE_SESSION_ENDED)

    # --- no plaintext session anywhere in the database (or in Redis) ------------------------------
    forbidden = [session, session.encode().hex()]
    async with harness.db.connection() as conn:
        tables = [r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            dump = await conn.fetchval(f'SELECT coalesce(string_agg(row_to_json(t)::text, E\'\\n\'), \'\') '
                                       f'FROM "{table}" t')
            for value in forbidden:
                assert value not in dump, f"plaintext session in table {table}"
            assert harness.leaked_session(dump) is None, f"a session string in table {table}"
    async for key in harness.redis.scan_iter(count=500):
        kind = await harness.redis.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        value = repr(await harness.redis.get(key)) if kind == "string" else ""
        assert session not in value and harness.leaked_session(value) is None, key

    # --- no code, password or session string in any log line ---------------------------------------
    codes = [c["code"] for c in await harness.client.codes(BORIS)]
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert any(r.name.startswith("roles.bot") for r in caplog.records), "the bot's log lines were not captured"
    assert PASSWORD not in logged
    assert session not in logged
    assert harness.leaked_session(logged) is None, "a session string was logged"
    for value in codes:
        assert not re.search(rf"(?<!\d){value}(?!\d)", logged), "a login code was logged"
        assert " ".join(value) not in logged, "a login code was logged"
