"""The whole journey of one person, then: no plaintext session stored, no secret in any log line."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

import contract
from tests.parity.harness import Harness
from tests.parity.runner import CaseRunner, Output, diff

pytestmark = [pytest.mark.parity, pytest.mark.asyncio(loop_scope="module")]

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
    _has(await me.do({"press": "msg:save"}), "saved", "version 1")

    await me.do({"send": "/start"})
    await me.do({"press": "int:menu"})
    await me.do({"press": "int:custom"})
    _has(await me.do({"send": "1h30m"}), "every 1 h 30 min")

    await me.do({"send": "/start"})
    _has(await me.do({"press": "bc:start"}), "started: 3 groups every 1 h 30 min")
    assert await harness.fetchval("SELECT status FROM campaigns WHERE user_id = $1", uid) == "running"
    await me.do({"send": "/start"})
    _has(await me.do({"press": "bc:stop"}), "stopped")
    assert await harness.fetchval("SELECT status FROM campaigns WHERE user_id = $1", uid) == "stopped"

    # --- no plaintext session anywhere in the database (or in Redis) ------------------------------
    sealed = bytes(await harness.fetchval("SELECT session_enc FROM accounts WHERE user_id = $1", uid))
    session = harness.cipher.decrypt(sealed)
    assert session.startswith("sbx_")
    forbidden = [session, session.encode().hex()]
    async with harness.db.connection() as conn:
        tables = [r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            dump = await conn.fetchval(f'SELECT coalesce(string_agg(row_to_json(t)::text, E\'\\n\'), \'\') '
                                       f'FROM "{table}" t')
            for value in forbidden:
                assert value not in dump, f"plaintext session in table {table}"
            assert not re.search(r"tmp_[A-Za-z0-9_-]{20,}", dump), f"temporary session in table {table}"
    async for key in harness.redis.scan_iter(count=500):
        kind = await harness.redis.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        value = repr(await harness.redis.get(key)) if kind == "string" else ""
        assert session not in value and not re.search(r"tmp_[A-Za-z0-9_-]{20,}", value), key

    # --- no code, password or session string in any log line ---------------------------------------
    codes = [c["code"] for c in await harness.client.codes(BORIS)]
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert any(r.name.startswith("roles.bot") for r in caplog.records), "the bot's log lines were not captured"
    assert PASSWORD not in logged
    assert session not in logged
    assert not re.search(r"(sbx|tmp)_[A-Za-z0-9_-]{20,}", logged)
    for value in codes:
        assert not re.search(rf"(?<!\d){value}(?!\d)", logged), "a login code was logged"
        assert " ".join(value) not in logged, "a login code was logged"
