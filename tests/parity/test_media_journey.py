"""A video message broadcast to every selected group with its real attributes, uploaded once.

The video comes from the chat through the Bot API (width, height, duration, thumbnail), is stored
by the bot and posted by the worker through each account gateway; the sandbox's group feeds show
what each group received and its event log how many bytes the account uploaded.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

import contract
from tests.integration.engine_support import FAST, Engine
from tests.parity.harness import Harness
from tests.parity.runner import CaseRunner

pytestmark = [pytest.mark.parity, pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.gateways("sandbox", "telethon")]

ALICE = "+15550000001"  # the demo world's account without 2FA
VIDEO_SIZE = 600 * 1024


async def test_a_video_reaches_every_group_with_its_attributes_uploaded_once(
    harness: Harness, flow_contract: contract.Contract
) -> None:
    runner = CaseRunner(harness, flow_contract, contract.Case(id="video journey"))
    runner.uid = uid = await harness.new_user("Video")
    await runner.step({"send": "/login"})
    await runner.step({"send": ALICE})
    await runner.step({"send": " ".join(await harness.client.latest_code(ALICE))})
    assert await harness.fetchval("SELECT status FROM accounts WHERE user_id = $1", uid) == "connected"
    await runner.step({"send": "/start"})
    await runner.step({"press": "grp:menu"})
    await runner.step({"press": "grp:import"})
    await runner.step({"press": "grp:all:0"})
    await runner.step({"send": "/start"})
    await runner.step({"press": "msg:menu"})
    await runner.step({"press": "msg:set"})
    await runner.step({"send": {"video": {"caption": "New menu", "width": 1280, "height": 720, "duration": 9,
                                          "size": VIDEO_SIZE, "file_name": "menu.mp4"}}})
    await runner.step({"press": "msg:save"})
    await runner.step({"send": "/start"})
    await runner.step({"press": "int:menu"})
    await runner.step({"press": "int:custom"})
    await runner.step({"send": "2h"})
    await runner.step({"send": "/start"})
    await runner.step({"press": "bc:start"})
    assert await harness.fetchval("SELECT status FROM campaigns WHERE user_id = $1", uid) == "running"

    async with harness.db.connection() as conn:
        peers = [int(r["peer_id"]) for r in await conn.fetch(
            "SELECT peer_id FROM groups WHERE user_id = $1 AND selected AND status = 'active'", uid)]
        await conn.execute("UPDATE campaigns SET next_run_at = now() WHERE user_id = $1", uid)
    assert len(peers) >= 3
    uploaded_before = await harness.client.uploaded_bytes(ALICE)
    worker = Engine(harness.db, harness.redis, harness.new_gateway(),
                    replace(harness.settings, engine=FAST), harness.cipher)
    await worker.jobs.tick()
    round_id = int(await harness.fetchval(
        "SELECT round_id FROM rounds WHERE user_id = $1 AND finished_at IS NULL", uid))
    await worker.run_until_done([round_id])

    for peer in peers:
        [post] = await harness.client.group_messages(peer)
        media = post["media"]
        assert (post["text"], media["kind"], media["filename"]) == ("New menu", "video", "menu.mp4"), post
        assert (media["width"], media["height"], media["duration"], media["size"]) == (1280, 720, 9, VIDEO_SIZE)
        assert media["thumb_size"] > 0, media
    uploaded = await harness.client.uploaded_bytes(ALICE) - uploaded_before
    # once for the round, not once per group (thumbnail included)
    assert VIDEO_SIZE <= uploaded <= 1.1 * VIDEO_SIZE, (uploaded, len(peers))
