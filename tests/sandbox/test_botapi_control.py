"""Control API and its client: events, rate limits, reset, the world routes, and ``python -m sandbox``."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramRetryAfter

from sandbox.client import SandboxClient, SandboxError
from tests.ports import free_port
from tests.sandbox.conftest import USER, Sandbox, SandboxFactory
from tests.sandbox.conftest_world import FakeClock

ROOT = Path(__file__).resolve().parents[2]
PHONE = "+15550007001"


async def test_events_record_every_call_with_millisecond_timestamps(sandbox: Sandbox, bot: Bot) -> None:
    before = time.time() * 1000
    await bot.send_message(USER, "one")
    await asyncio.sleep(0.01)
    status, _ = await sandbox.raw("sendMessage", json={"chat_id": USER, "text": ""})
    after = time.time() * 1000

    events = await sandbox.client.events()
    assert status == 400
    assert [(e["api"], e["method"], e["ok"], e.get("user_id")) for e in events] == [
        ("bot", "sendMessage", True, USER), ("bot", "sendMessage", False, USER)]
    assert events[1]["error"] == "Bad Request: message text is empty"
    assert before <= events[0]["ts_ms"] < events[1]["ts_ms"] <= after
    assert events[1]["ts_ms"] - events[0]["ts_ms"] >= 10  # milliseconds, not seconds
    assert await sandbox.client.events(since=events[0]["seq"]) == events[1:]
    assert await sandbox.client.events(since=events[1]["seq"]) == []


async def test_per_chat_rate_limit_answers_429_with_retry_after(sandbox_factory: SandboxFactory) -> None:
    box = await sandbox_factory(rate_limits=True)
    box.chats.clock = FakeClock(time.monotonic())  # no token refills between the sends, however slow they are
    await box.client.create_user(USER, "Tess")
    await box.client.create_user(USER + 1, "Other")
    bot = box.bot()
    try:
        for i in range(3):  # a short burst passes
            await bot.send_message(USER, f"burst {i}")
        with pytest.raises(TelegramRetryAfter) as info:
            await bot.send_message(USER, "one too many")
        await bot.send_message(USER + 1, "another chat is not limited")
        status, answer = await box.raw("sendMessage", json={"chat_id": USER, "text": "raw"})
    finally:
        await bot.session.close()

    assert info.value.retry_after >= 1
    assert info.value.message.endswith(f"Original description: Too Many Requests: retry after "
                                       f"{info.value.retry_after}")
    assert status == 429 and answer["error_code"] == 429
    assert answer["parameters"]["retry_after"] >= 1
    limited = [e for e in await box.client.events() if not e["ok"]]
    assert [e["retry_after"] >= 1 for e in limited] == [True, True]
    assert len(await box.client.chat(USER)) == 3


async def test_global_rate_limit(sandbox_factory: SandboxFactory) -> None:
    box = await sandbox_factory(rate_limits=True)
    box.chats.clock = FakeClock(time.monotonic())
    for uid in range(1, 41):
        await box.client.create_user(uid, f"U{uid}")
    statuses = []
    for uid in range(1, 41):
        status, _ = await box.raw("sendMessage", json={"chat_id": uid, "text": "announce"})
        statuses.append(status)
    assert statuses.count(200) == 30 and statuses[30:] == [429] * 10  # the burst of 30, then none refilled


async def test_rate_limits_can_be_switched_off(sandbox: Sandbox, bot: Bot) -> None:
    for i in range(40):
        await bot.send_message(USER, f"fast {i}")
    assert len(await sandbox.client.chat(USER)) == 40


async def test_reset_empties_chats_world_and_events(sandbox: Sandbox, bot: Bot) -> None:
    await sandbox.client.add_account(PHONE, "Acc", groups=[{"id": 5, "title": "G", "kind": "supergroup"}])
    await sandbox.client.send_text(USER, "before")
    old_id = (await bot.get_updates())[0].update_id

    await sandbox.client.reset()

    assert await sandbox.client.users() == []
    assert await sandbox.client.accounts() == []
    assert await sandbox.client.events() == []
    with pytest.raises(SandboxError) as info:
        await sandbox.client.chat(USER)
    assert info.value.status == 404
    await sandbox.client.create_user(USER, "Tess")
    await sandbox.client.send_text(USER, "after")
    updates = await bot.get_updates(offset=old_id + 1)
    assert [u.message.text for u in updates if u.message] == ["after"]
    assert updates[0].update_id > old_id  # ids keep increasing, so a running bot's offset stays valid


async def test_a_login_code_shared_unchanged_in_the_chat_is_voided(sandbox: Sandbox) -> None:
    client = sandbox.client
    await client.add_account(PHONE, "Acc", groups=[])
    await sandbox.world.send_code(PHONE)
    code = await client.latest_code(PHONE)
    await client.send_text(USER, " ".join(code))  # typed with spaces: still valid
    assert (await client.codes(PHONE))[0]["state"] == "live"

    await client.send_text(USER, f"my code is {code}")
    assert (await client.codes(PHONE))[0]["state"] == "voided"


async def test_client_covers_the_world_routes(sandbox: Sandbox) -> None:
    client = sandbox.client
    groups = [{"id": 11, "title": "Open", "kind": "supergroup"},
              {"id": 12, "title": "News", "kind": "channel", "can_send": False}]
    added = await client.add_account(PHONE, "Acc", groups=groups, password="pw")
    await client.add_accounts([{"phone": "+15550007002", "first_name": "Two", "groups": []}])
    accounts = {a["phone"]: a for a in await client.accounts()}
    assert added == {"phones": [PHONE]} and set(accounts) == {PHONE, "+15550007002"}
    assert accounts[PHONE]["has_password"] is True

    world = sandbox.world
    sent = await world.send_code(PHONE)
    from sandbox.world import WorldError

    with pytest.raises(WorldError):
        await world.sign_in(PHONE, sent["session"], sent["phone_code_hash"], await client.latest_code(PHONE))
    session = (await world.check_password(PHONE, sent["session"], "pw"))["session"]
    assert len(await client.sessions(PHONE)) == 1

    dialogs = {d["id"]: d for d in await world.get_dialogs(session)}
    await world.send_message(session, 11, dialogs[11]["access_hash"], "hello group")
    posts = await client.group_messages(11)
    assert [(p["from_phone"], p["text"]) for p in posts] == [(PHONE, "hello group")]

    fault = await client.add_fault("send_message", "FLOOD_WAIT", phone=PHONE, seconds=7, times=1)
    assert fault["error"] == "FLOOD_WAIT" and [f["id"] for f in await client.faults()] == [fault["id"]]
    with pytest.raises(WorldError):
        await world.send_message(session, 11, dialogs[11]["access_hash"], "flooded")
    await client.add_fault("*", "NETWORK", times=-1)
    assert (await client.clear_faults())["cleared"] == 1
    assert await client.faults() == []

    assert (await client.revoke_sessions(PHONE))["revoked"] == 1
    assert await client.sessions(PHONE) == []
    world_events = [e for e in await client.events() if e["api"] == "world"]
    assert any(e["method"] == "send_message" and e.get("error") == "FLOOD_WAIT" for e in world_events)


async def test_control_errors(sandbox: Sandbox) -> None:
    client = sandbox.client
    with pytest.raises(SandboxError) as unknown_user:
        await client.send_text(999, "hi")
    with pytest.raises(SandboxError) as bad_body:
        await client.send(USER, {"nothing": True})
    with pytest.raises(SandboxError) as no_id:
        await client.request("POST", "/users", {"first_name": "x"})
    assert (unknown_user.value.status, bad_body.value.status, no_id.value.status) == (404, 400, 400)
    with pytest.raises(TimeoutError):
        await client.wait_for_chat(USER, lambda chat: len(chat) > 0, timeout=0.1)


async def test_python_m_sandbox_serves_the_bot_api_and_the_demo_world(tmp_path: Path) -> None:
    port = free_port()
    # run from elsewhere: the package comes from PYTHONPATH, the default seed path resolves from it
    env = {**os.environ, "SANDBOX_PORT": str(port), "SANDBOX_HOST": "127.0.0.1", "PYTHONPATH": str(ROOT)}
    env.pop("SANDBOX_SEED_FILE", None)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "sandbox", cwd=tmp_path, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        me = None
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"{url}/bot1:abc/getMe") as resp:
                        me = await resp.json()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
        assert me is not None and me["ok"] is True
        async with SandboxClient(url) as client:
            assert len(await client.accounts()) > 0  # the packaged demo world
    finally:
        proc.terminate()
        output = (await asyncio.wait_for(proc.communicate(), 10))[0].decode()
    assert proc.returncode == 0, output
    assert "sandbox account:" in output


async def test_a_chat_user_has_the_time_zone_of_their_device(sandbox: Sandbox) -> None:
    """The web page shows the chat's times on this clock (U10.6's sandbox side); UTC by default."""
    plain = await sandbox.client.create_user(USER + 5, "Plain")
    berlin = await sandbox.client.create_user(USER + 6, "Berta", time_zone="Europe/Berlin")
    assert plain["time_zone"] == "UTC" and berlin["time_zone"] == "Europe/Berlin"
    again = await sandbox.client.create_user(USER + 6, "Berta")  # a profile update keeps the clock
    assert again["time_zone"] == "Europe/Berlin"
    with pytest.raises(SandboxError) as info:
        await sandbox.client.create_user(USER + 7, "Nowhere", time_zone="Mars/Olympus")
    assert "time_zone" in str(info.value)
    assert USER + 7 not in {u["user_id"] for u in await sandbox.client.users()}
