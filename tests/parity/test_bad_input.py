"""Hypothesis-generated junk in every input state: no crash, every callback answered, nobody's data touched.

A "victim" user has a connected account, selected groups, a message and a running broadcast.
For each state an attacker (a fresh user per example) is brought into it and sends generated
text, contacts, media and callback data, including the victim's group ids, out-of-range pages
and over-long data. Afterwards nothing of the victim's (or the global settings) has changed,
the attacker owns no account and no groups, and no error was logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import contract
from sandbox.client import SandboxError
from tests.parity.harness import Harness
from tests.parity.runner import CaseFailed, CaseRunner

pytestmark = [pytest.mark.parity, pytest.mark.asyncio(loop_scope="module")]

STATE_SETUP: dict[str, list[dict[str, Any]]] = {
    "idle": [{"send": "/start"}],
    "login_phone": [{"given": "login_phone"}],
    "login_code": [{"given": "code_alice"}],
    "login_password": [{"given": "password_boris"}],
    "msg_wait": [{"given": "msg_wait"}],
    "msg_confirm": [{"given": "msg_confirm"}],
    "int_wait": [{"send": "/start"}, {"press": "int:menu"}, {"press": "int:custom"}],
    "sch_tz": [{"given": "tz_asked"}],
    "sch_hours": [{"given": "hours_asked"}],
}
VICTIM_TABLES = {
    "users": "SELECT access_status, banned, notify_rounds, timezone FROM users WHERE user_id = $1",
    "accounts": "SELECT status, session_enc FROM accounts WHERE user_id = $1",
    "groups": "SELECT group_id, selected, status FROM groups WHERE user_id = $1 ORDER BY group_id",
    "messages": "SELECT version, text FROM messages WHERE user_id = $1 ORDER BY version",
    "campaigns": "SELECT status, interval_seconds, next_run_at, window_start, window_end, window_days "
                 "FROM campaigns WHERE user_id = $1",
}


class ErrorLog(logging.Handler):
    """Every ERROR record of the process (an unhandled handler exception is logged at ERROR)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Victim:
    def __init__(self, uid: int, group_ids: list[int]) -> None:
        self.uid = uid
        self.group_ids = group_ids


async def _snapshot(h: Harness, uid: int) -> dict[str, Any]:
    async with h.db.connection() as conn:
        data: dict[str, Any] = {name: [tuple(r) for r in await conn.fetch(sql, uid)]
                                for name, sql in VICTIM_TABLES.items()}
        data["settings"] = [tuple(r) for r in await conn.fetch("SELECT key, value FROM settings ORDER BY key")]
    return data


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def victim(harness: Harness, flow_contract: contract.Contract) -> Victim:
    runner = CaseRunner(harness, flow_contract, contract.Case(id="victim"))
    runner.uid = await harness.new_user("Victim")
    for step in flow_contract.expand([{"given": "running"}]):
        await runner.step(step)
    async with harness.db.connection() as conn:
        gids = [r["group_id"] for r in await conn.fetch("SELECT group_id FROM groups WHERE user_id = $1",
                                                         runner.uid)]
    assert gids
    return Victim(runner.uid, gids)


@pytest.fixture(scope="module")
def error_log() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


KNOWN = ["menu:main", "acc:menu", "acc:login", "acc:request", "acc:resend", "acc:cancel", "acc:logout",
         "acc:logout:yes", "acc:kp:ok", "acc:kp:del", "grp:menu", "grp:import", "msg:menu", "msg:set",
         "msg:save", "int:menu", "int:custom", "bc:start", "bc:stop", "st:show", "st:refresh", "st:notify",
         "adm:menu"]
_big = st.integers(min_value=-(2**70), max_value=2**70)


def callback_data(victim_gids: list[int]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(KNOWN),
        st.builds(lambda g, p: f"grp:t:{g}:{p}", st.sampled_from(victim_gids), st.integers(0, 3)),
        st.builds(lambda g, p: f"grp:t:{g}:{p}", _big, _big),
        st.builds(lambda p: f"grp:list:{p}", st.one_of(st.integers(-5, 50), _big)),
        st.builds(lambda a, p: f"grp:{a}:{p}", st.sampled_from(["all", "none"]), st.one_of(st.integers(-3, 40), _big)),
        st.builds(lambda m: f"int:set:{m}", st.one_of(st.integers(-10, 3000), _big)),
        st.builds(lambda d: f"acc:kp:{d}", st.text(max_size=3)),
        st.builds(lambda n: f"sch:day:{n}", st.one_of(st.integers(-3, 12), _big)),
        st.builds(lambda u: f"adm:approve:{u}", st.one_of(st.integers(0, 2**40), _big)),
        st.text(max_size=100),  # anything, over-long included
    )


def message_body(victim_phone: str) -> st.SearchStrategy[dict[str, Any]]:
    text = st.one_of(st.text(min_size=1, max_size=200),
                     st.builds(lambda c, n: c * n, st.characters(), st.integers(4000, 4200)))
    return st.one_of(
        st.builds(lambda t: {"text": t}, text),
        st.builds(lambda p, u: {"contact": {"phone": p, "user_id": u}},
                  st.one_of(st.from_regex(r"\+?[0-9 ()\-.]{1,22}", fullmatch=True), st.just(victim_phone)),
                  st.one_of(st.none(), st.integers(1, 2**40))),
        st.builds(lambda k, c: {k: {"caption": c} if c else {}},
                  st.sampled_from(["photo", "video", "document", "animation"]),
                  st.one_of(st.none(), st.text(max_size=60), st.just("c" * 1030))),
        st.builds(lambda k: {k: {}}, st.sampled_from(["sticker", "voice"])),
        st.just({"location": {"latitude": 1.5, "longitude": 2.5}}),
        st.just({"poll": {"question": "Q?", "options": ["a", "b"]}}),
        st.just({"media_group": [{"photo": {}}, {"photo": {"caption": "x"}}]}),
    )


async def _attack(h: Harness, runner: CaseRunner, inputs: list[tuple[str, Any]]) -> None:
    uid = runner.uid
    for kind, value in inputs:
        if kind == "press":
            chat = await h.client.chat(uid)
            bot_messages = [m for m in chat if m["from"] == "bot" and not m.get("deleted")]
            if not bot_messages:
                continue
            h.count_pushed()
            answer = await h.client.press(uid, bot_messages[-1]["message_id"], value, timeout=5.0)
            await h.settle()
            if not answer.get("answered"):
                raise CaseFailed(f"callback {value!r} was not answered")
        else:
            try:
                result = await h.client.send(uid, value)
            except SandboxError:
                continue  # Telegram itself would not deliver this message
            h.count_pushed(len(result.get("message_ids") or [1]))
            await h.settle()


@pytest.mark.parametrize("state", list(STATE_SETUP))
@settings(max_examples=5, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_junk_in_every_state(harness: Harness, flow_contract: contract.Contract, victim: Victim,
                                   error_log: ErrorLog, state: str, data: st.DataObject) -> None:
    inputs = data.draw(st.lists(st.one_of(
        st.tuples(st.just("press"), callback_data(victim.group_ids)),
        st.tuples(st.just("send"), message_body(flow_contract.accounts["alice"]["phone"])),
    ), min_size=1, max_size=4), label="inputs")
    before = await _snapshot(harness, victim.uid)
    runner = CaseRunner(harness, flow_contract, contract.Case(id=f"junk {state}"))
    runner.uid = await harness.new_user("Junk")
    try:
        for step in flow_contract.expand(STATE_SETUP[state]):
            await runner.step(step)
        assert await harness.state(runner.uid) == state
        await _attack(harness, runner, inputs)
    finally:
        await runner.cleanup()
    assert await _snapshot(harness, victim.uid) == before, "the victim's data changed"
    owned = await harness.fetchval("SELECT count(*) FROM groups WHERE user_id = $1", runner.uid)
    connected = await harness.fetchval("SELECT count(*) FROM accounts WHERE user_id = $1 AND status = 'connected'",
                                       runner.uid)
    assert owned == 0 and connected == 0, "junk input connected an account or imported groups"
    errors = [f"{r.name}: {r.getMessage()}" for r in error_log.records]
    assert not errors, f"errors logged: {errors}"
