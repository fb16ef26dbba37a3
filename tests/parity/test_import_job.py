"""Group import through the bot on a large account: progress edited in place, a second import
answered "already importing", the stop button, then a full import with the archive marked."""

from __future__ import annotations

import asyncio
import itertools

import pytest

import contract
from tests.parity.harness import Harness
from tests.parity.runner import CaseRunner

pytestmark = [pytest.mark.parity, pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.gateways("sandbox", "telethon")]

_PHONES = itertools.count(15557780001)
MAIN, ARCHIVED = 900, 300


async def _bot_messages(harness: Harness, uid: int) -> list[dict[str, object]]:
    return [m for m in await harness.client.chat(uid) if m["from"] == "bot"]


async def _wait_text(harness: Harness, uid: int, words: str, within: float = 30.0) -> dict[str, object]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        for message in reversed(await _bot_messages(harness, uid)):
            if words in str(message.get("text") or ""):
                return message
        assert asyncio.get_running_loop().time() < deadline, f"{words!r} never shown"
        await asyncio.sleep(0.05)


async def test_import_progress_already_importing_stop_and_archive(
    harness: Harness, flow_contract: contract.Contract
) -> None:
    phone = f"+{next(_PHONES)}"
    await harness.client.add_account(phone, "Crowded", generated_groups={
        "count": MAIN + ARCHIVED, "first_id": 910_000 + (0 if harness.gateway_kind == "sandbox" else 5000),
        "archived": ARCHIVED})
    runner = CaseRunner(harness, flow_contract, contract.Case(id="import job"))
    runner.uid = uid = await harness.new_user("Crowded")
    await runner.step({"send": "/login"})
    await runner.step({"send": phone})
    await runner.step({"send": " ".join(await harness.client.latest_code(phone))})
    await runner.step({"send": "/start"})
    await runner.step({"press": "grp:menu"})
    # each page of dialogs takes a while: the import is still running when the user presses again
    await harness.client.add_fault("get_dialogs", "LATENCY", phone=phone, seconds=0.4, times=-1)
    menu = (await _bot_messages(harness, uid))[-1]
    first = asyncio.create_task(harness.client.press(uid, int(str(menu["message_id"])), "grp:import"))
    progress = await _wait_text(harness, uid, "chats read")
    assert "Stop the import" in str(progress.get("reply_markup")), progress
    await _wait_text(harness, uid, "100 chats read")  # edited in place as pages come

    # a second import from a fresh menu (the runner's steps would wait for the first to finish)
    last = max(int(str(m["message_id"])) for m in await _bot_messages(harness, uid))
    await harness.client.send_text(uid, "/start")
    fresh = await harness.client.wait_for_bot_message(uid, after=last, timeout=10)
    await harness.client.press(uid, int(str(fresh["message_id"])), "grp:menu")
    await harness.client.press(uid, int(str(fresh["message_id"])), "grp:import")
    await _wait_text(harness, uid, "Already importing")

    answer = await harness.client.press(uid, int(str(progress["message_id"])), "grp:istop")
    assert "Stopping" in str(answer.get("text")), answer
    stopped = await _wait_text(harness, uid, "Import stopped after")
    assert stopped["message_id"] == progress["message_id"]  # the progress message itself
    await first
    await harness.client.clear_faults()

    await runner.step({"send": "/start"})
    await runner.step({"press": "grp:menu"})
    await runner.step({"press": "grp:import"})
    await _wait_text(harness, uid, f"Imported {MAIN + ARCHIVED}:")
    archived = await harness.fetchval("SELECT count(*) FROM groups WHERE user_id = $1 AND archived", uid)
    total = await harness.fetchval("SELECT count(*) FROM groups WHERE user_id = $1", uid)
    assert (total, archived) == (MAIN + ARCHIVED, ARCHIVED)
