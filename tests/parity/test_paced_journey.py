"""With the sandbox's Telegram limits on (about 1 message a second per chat, short bursts; 30 a
second per bot), a user's journey meets no "Too Many Requests": each step posts at most one new
message, and the bot's send pacer spreads what bursts there are instead of having them refused."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

import contract
from tests.parity.harness import Harness, start_harness
from tests.parity.runner import CaseRunner, diff

pytestmark = [pytest.mark.parity, pytest.mark.asyncio(loop_scope="module")]

BORIS = "+15550000002"  # the demo world's 2FA account
PASSWORD = "sandbox-2fa"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def harness(server_urls: tuple[str, str], pg_server_url: str,
                  flow_contract: contract.Contract) -> AsyncIterator[Harness]:
    """The module's harness with the bot's send pacer on, as in production."""
    paced = dataclasses.replace(flow_contract, settings={**flow_contract.settings, "pace_sends": True})
    async with start_harness(pg_server_url, server_urls[1], paced) as h:
        yield h


@pytest.fixture
def limits_on(harness: Harness) -> Iterator[None]:
    chats = harness.sandbox.chats
    chats.rate_limits = True
    try:
        yield
    finally:
        chats.rate_limits = False


async def test_a_journey_with_telegram_limits_meets_no_429(harness: Harness, flow_contract: contract.Contract,
                                                           limits_on: None) -> None:
    runner = CaseRunner(harness, flow_contract, contract.Case(id="paced-journey"))
    runner.uid = uid = await harness.new_user("Paced")
    runner.account = "boris"
    mark = (await harness.client.events())[-1]["seq"]
    posted: dict[str, int] = {}

    async def do(name: str, step: dict[str, Any]) -> None:
        before = await harness.client.chat(uid)
        await runner.step(step)
        out = diff(before, await harness.client.chat(uid))
        posted[name] = sum(1 for m in out.new if m["from"] == "bot")

    await do("start", {"send": "/start"})
    await do("account", {"press": "acc:menu"})
    await do("login", {"press": "acc:login"})
    await do("phone", {"send": "+1 555 000 0002"})
    code = await harness.client.latest_code(BORIS)
    await do("code", {"send": " ".join(code)})
    await do("password", {"send": PASSWORD})
    await do("groups", {"press": "grp:menu"})
    await do("import", {"press": "grp:import"})
    for i in range(3):
        await do(f"toggle{i}", {"press": {"data": "grp:t:*:0", "text": "⬜"}})
    await do("start2", {"send": "/start"})
    await do("message", {"press": "msg:menu"})
    await do("set", {"press": "msg:set"})
    await do("text", {"send": "Fresh bread daily"})
    await do("save", {"press": "msg:save"})
    await do("start3", {"send": "/start"})
    await do("interval", {"press": "int:menu"})
    await do("custom", {"press": "int:custom"})
    await do("typed", {"send": "1h30m"})
    await do("start4", {"send": "/start"})
    await do("go", {"press": "bc:start"})
    assert await harness.fetchval("SELECT status FROM campaigns WHERE user_id = $1", uid) == "running"

    # a quick burst of taps: spread by the pacer, every reply delivered
    for i in range(4):
        await do(f"burst{i}", {"send": "/start"})

    events = [e for e in await harness.client.events(mark) if e.get("user_id") == uid]
    throttled = [e for e in events if e.get("retry_after") or "Too Many Requests" in str(e.get("error"))]
    assert throttled == [], f"{len(throttled)} 'Too Many Requests' answers: {throttled} {[(e['seq'], e['method'], e['ts_ms']) for e in events]}"
    assert {name: n for name, n in posted.items() if n > 1} == {}, "a step posted more than one new message"
    sends = [e for e in events if e["method"].lower() == "sendmessage" and e["ok"]]
    assert len(sends) >= sum(posted.values())
