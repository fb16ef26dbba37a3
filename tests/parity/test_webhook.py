"""Webhook mode: the contract's cases through the app role's ``/telegram/webhook`` give the same
outcomes as polling (the same expectations hold), and a call without the right secret token is
refused and changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

import contract
from metrics import REGISTRY
from roles.app.webhook import SECRET_HEADER, WEBHOOK_PATH
from storage import keys
from tests.parity.harness import Harness, handled_updates, start_harness
from tests.parity.runner import CaseRunner

pytestmark = [pytest.mark.parity, pytest.mark.asyncio(loop_scope="module")]

ROWS = {"U1.1", "U2.2", "U2.5", "U2.11", "U2.14", "U2.15", "U3.2", "U3.3", "U3.5", "U3.6", "U6.2", "U6.3",
        "U6.4", "A1"}
CONTRACT = contract.load()
CASES = [c for c in CONTRACT.executable() if c.id in ROWS]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def harness(server_urls: tuple[str, str], pg_server_url: str,
                  flow_contract: contract.Contract) -> AsyncIterator[Harness]:
    async with start_harness(pg_server_url, server_urls[1], flow_contract, redis_db=9, webhook=True) as h:
        yield h


def served() -> float:
    return REGISTRY.get_sample_value("http_requests_total", {"route": WEBHOOK_PATH, "status": "200"}) or 0.0


async def test_the_subset_covers_every_row_asked_for() -> None:
    assert {c.id for c in CASES} == ROWS


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_case_through_the_webhook(harness: Harness, case: contract.Case) -> None:
    # CaseRunner directly: the polling suite's RESULTS (the contract's coverage) stay its own
    await CaseRunner(harness, CONTRACT, case).run()


async def test_updates_arrive_by_webhook_only(harness: Harness) -> None:
    before = served()
    uid = await harness.new_user("Hooked")
    harness.count_pushed()
    await harness.client.send_text(uid, "/start")
    await harness.settle()
    # the handler counts the update before the HTTP response (and its metric) is finished
    for _ in range(250):
        if served() >= before + 1:
            break
        await asyncio.sleep(0.02)
    assert served() >= before + 1
    methods = [e.method for e in harness.sandbox.events.since(0)]
    assert "setWebhook" in methods and "getUpdates" not in methods
    hook = harness.sandbox.chats.webhook
    assert hook is not None and hook.url == harness.settings.app.webhook_url
    assert hook.secret_token == harness.settings.app.webhook_secret.get()


def _update(update_id: int, uid: int) -> dict[str, Any]:
    return {"update_id": update_id, "message": {
        "message_id": 1, "date": 1_700_000_000, "chat": {"id": uid, "type": "private"},
        "from": {"id": uid, "is_bot": False, "first_name": "Intruder"}, "text": "/start"}}


async def test_a_wrong_or_missing_secret_is_refused_and_changes_nothing(harness: Harness) -> None:
    uid = await harness.new_user("Intruder")
    update = _update(4_000_000_001, uid)
    url = harness.app_url + WEBHOOK_PATH
    secret = harness.settings.app.webhook_secret.get()
    handled = handled_updates()
    wrong: list[dict[str, str]] = [
        {}, {SECRET_HEADER: ""}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: secret[:-1]},
        {SECRET_HEADER: secret + "x"}, {SECRET_HEADER: secret.upper() if secret != secret.upper() else "A"},
        {"Authorization": f"Bearer {secret}"},
    ]
    async with aiohttp.ClientSession() as http:
        for headers in wrong:
            async with http.post(url, json=update, headers=headers) as resp:
                assert resp.status == 401, headers
        async with http.post(url, data=b"{not json", headers={SECRET_HEADER: secret}) as resp:
            assert resp.status == 400
        assert handled_updates() == handled
        assert await harness.fetchval("SELECT count(*) FROM users WHERE user_id = $1", uid) == 0
        assert not await harness.redis.exists(keys.BOT_UPDATE_SEEN.format(update_id=update["update_id"]))
        assert [m for m in await harness.client.chat(uid) if m["from"] == "bot"] == []

        # the right secret: handled, and once only when Telegram delivers it again (a retry)
        for _ in range(2):
            harness.count_pushed()
            async with http.post(url, json=update, headers={SECRET_HEADER: secret}) as resp:
                assert resp.status == 200
    await harness.settle()
    assert await harness.fetchval("SELECT count(*) FROM users WHERE user_id = $1", uid) == 1
    welcomes = [m for m in await harness.client.chat(uid) if m["from"] == "bot" and "Welcome" in (m["text"] or "")]
    assert len(welcomes) == 1
