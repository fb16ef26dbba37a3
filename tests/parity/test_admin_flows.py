"""Admin flows beyond the contract's rows: the figures are the services' own, users are paged,
announcements are paced and honour Telegram's 429, blocked users are marked, and access expiry
stops a running broadcast and tells the user (the bot role's own expiry loop)."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest

import contract
from config.settings import SandboxSettings
from roles.bot import texts
from roles.bot.announcer import Announcement, Announcer
from roles.bot.role import build_bot
from sandbox.client import SandboxClient
from sandbox.server import run_sandbox
from services.access import AccessService
from services.admin import Actor
from services.announcements import AnnouncementService
from services.engine import ROUNDS_QUEUE
from services.notifications import NotificationService
from services.runtime import DEPTH_READER, RuntimeService
from storage import keys
from storage.heartbeats import Heartbeats
from storage.queue import JobQueue
from storage.repositories import users
from tests.parity.harness import ADMIN, ADMIN_USER, Harness, parity_settings
from tests.parity.runner import CaseRunner

pytestmark = [pytest.mark.parity, pytest.mark.asyncio(loop_scope="module")]

SYSTEM = Actor.system("test")


def runner_for(harness: Harness, flow_contract: contract.Contract, uid: int) -> CaseRunner:
    runner = CaseRunner(harness, flow_contract, contract.Case(id="admin"))
    runner.uid = uid
    return runner


async def steps(runner: CaseRunner, *items: dict[str, Any]) -> None:
    for step in runner.contract.expand(list(items)):
        await runner.step(step)


async def newest_text(harness: Harness, uid: int, phrase: str) -> str:
    for message in reversed(await harness.client.chat(uid)):
        if message["from"] == "bot" and phrase.lower() in (message.get("text") or "").lower():
            return str(message["text"])
    raise AssertionError(f"no bot message with {phrase!r} in the chat of {uid}")


async def wait_for(predicate: Any, timeout: float = 15.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_the_admin_menu_counts_are_the_databases(harness: Harness, flow_contract: contract.Contract) -> None:
    requester = runner_for(harness, flow_contract, await harness.new_user("Asking"))
    await steps(requester, {"given": "requested"})
    await harness.set_mode("open")  # (approval mode would stop the broadcast below)
    connected = runner_for(harness, flow_contract, await harness.new_user("Counted"))
    await steps(connected, {"given": "running"})

    admin = runner_for(harness, flow_contract, ADMIN)
    await steps(admin, {"admin_send": "/admin"})
    shown = await newest_text(harness, ADMIN, "Pending requests")
    figures = {
        "Users": await harness.fetchval("SELECT count(*) FROM users"),
        "Connected accounts": await harness.fetchval("SELECT count(*) FROM accounts WHERE status = 'connected'"),
        "Running broadcasts": await harness.fetchval("SELECT count(*) FROM campaigns WHERE status = 'running'"),
        "Pending requests": await harness.fetchval(
            "SELECT count(*) FROM users WHERE access_status = 'pending' AND NOT banned"),
    }
    assert all(value >= 1 for value in figures.values()), figures
    for label, value in figures.items():
        assert f"{label}: {value}\n" in shown + "\n", (label, value, shown)


async def test_users_are_paged_ten_at_a_time(harness: Harness, flow_contract: contract.Contract) -> None:
    for i in range(11):
        uid = await harness.new_user(f"Paged{i}")
        harness.count_pushed()
        await harness.client.send_text(uid, "/start")
    await harness.settle()
    total = await harness.fetchval("SELECT count(*) FROM users")
    admin = runner_for(harness, flow_contract, ADMIN)
    await steps(admin, {"admin_send": "/admin"}, {"admin_press": "adm:users:0"})
    first = [m for m in await harness.client.chat(ADMIN) if m["from"] == "bot"][-1]
    buttons = [b["callback_data"] for row in first["reply_markup"]["inline_keyboard"] for b in row]
    assert len([b for b in buttons if b.startswith("adm:u:")]) == 10
    assert "adm:users:1" in buttons and f"({total} in all)" in first["text"]

    await steps(admin, {"admin_press": "adm:users:1"})
    second = next(m for m in await harness.client.chat(ADMIN) if m["message_id"] == first["message_id"])
    assert "page 2 of" in second["text"]
    buttons = [b["callback_data"] for row in second["reply_markup"]["inline_keyboard"] for b in row]
    assert "adm:users:0" in buttons
    assert 1 <= len([b for b in buttons if b.startswith("adm:u:")]) <= 10


async def test_runtime_shows_the_runtime_services_figures(harness: Harness, flow_contract: contract.Contract) -> None:
    now_ms = int(time.time() * 1000)
    lease_ms = int(harness.settings.engine.lease_ttl * 1000)
    await harness.redis.zadd(keys.WORKER_HEARTBEAT, {"worker-live": now_ms, "worker-gone": now_ms - 3 * lease_ms})
    queue = JobQueue(harness.redis, ROUNDS_QUEUE, "admin-test")
    await queue.enqueue("round:admin-test-1", {"round_id": 1}, delay=3600)
    await queue.enqueue("round:admin-test-2", {"round_id": 2}, delay=3600)
    await queue.enqueue("round:admin-test-3", {"round_id": 3})
    try:
        admin = runner_for(harness, flow_contract, ADMIN)
        await steps(admin, {"admin_send": "/admin"}, {"admin_press": "adm:runtime"})
        shown = await newest_text(harness, ADMIN, "Runtime")
        view = await RuntimeService(harness.admin, Heartbeats(harness.redis), JobQueue(harness.redis, ROUNDS_QUEUE, DEPTH_READER),
                                    harness.settings).snapshot(SYSTEM)
        assert (view.queue.ready, view.queue.delayed, view.live_workers) == (1, 2, 1)
        assert "Queue: 1 ready, 2 delayed, 0 in progress" in shown
        assert "Live workers: 1" in shown and "worker-live" in shown and "worker-gone" not in shown
        assert f"Running broadcasts: {view.counts.running} ({view.counts.open_rounds} rounds" in shown
        assert f"Flood pauses: {view.counts.flood_paused}" in shown
    finally:
        await harness.redis.delete(keys.WORKER_HEARTBEAT, *[k.format(name=ROUNDS_QUEUE) for k in (
            keys.QUEUE_STREAM, keys.QUEUE_DELAYED, keys.QUEUE_PAYLOADS, keys.QUEUE_DEDUPE)])


async def test_an_announcement_counts_and_marks_users_who_blocked_the_bot(
    harness: Harness, flow_contract: contract.Contract
) -> None:
    readers = [await harness.new_user(f"Reader{i}") for i in range(4)]
    for uid in readers:
        harness.count_pushed()
        await harness.client.send_text(uid, "/start")
    await harness.settle()
    await harness.client.block(readers[0])
    await harness.client.block(readers[1])
    admin = runner_for(harness, flow_contract, ADMIN_USER)
    await steps(admin, {"send": "/start"}, {"press": "adm:menu"}, {"press": "adm:announce"},
                {"send": "Library closes early on Friday"})
    targets = await harness.admin.announce_targets(SYSTEM)
    assert set(readers) <= set(targets)  # blocked, but the bot doesn't know it yet
    await steps(admin, {"press": "adm:announce:send"})

    async def reported() -> bool:
        return any("Announcement done" in (m.get("text") or "") for m in await harness.client.chat(ADMIN_USER))

    await wait_for(reported, timeout=30)
    report = await newest_text(harness, ADMIN_USER, "Announcement done")
    match = re.search(r"delivered to (\d+) of (\d+), (\d+) blocked the bot, (\d+) failed", report)
    assert match is not None, report
    delivered, total, blocked, failed = map(int, match.groups())
    assert (total, blocked, failed) == (len(targets), 2, 0)
    assert delivered == total - 2
    for uid in readers:
        got = [m for m in await harness.client.chat(uid) if m.get("text") == "Library closes early on Friday"]
        assert len(got) == (0 if uid in readers[:2] else 1), uid
        marked = await harness.fetchval("SELECT bot_blocked FROM users WHERE user_id = $1", uid)
        assert marked is (uid in readers[:2])
    detail = await harness.fetchval("SELECT detail::text FROM audit_log WHERE action = 'announce' "
                                    "AND actor_id = $1 ORDER BY audit_id DESC LIMIT 1", ADMIN_USER)
    assert '"blocked": 2' in detail and '"state": "done"' in detail
    # the next announcement leaves them out
    assert not set(readers[:2]) & set(await harness.admin.announce_targets(SYSTEM))


async def test_announcements_are_paced_at_25_per_second(harness: Harness) -> None:
    uids = list(range(810_001, 810_031))
    for uid in uids:
        await harness.ensure_user(uid, "Paced")
    bot = build_bot(harness.settings)
    since = harness.sandbox.events.since(0)[-1].seq
    try:
        announcer = Announcer(NotificationService(harness.db), harness.admin)
        report = await announcer.deliver(bot, uids, Announcement("Paced notice"))
    finally:
        await bot.session.close()
    assert (report.delivered, report.failed) == (30, 0)
    stamps = [e.ts_ms for e in harness.sandbox.events.since(since) if e.method == "sendMessage"
              and e.user_id in set(uids)]
    assert len(stamps) == 30
    assert stamps[-1] - stamps[0] >= 29 * 1000 / 25 * 0.95
    assert max(sum(1 for t in stamps if s <= t < s + 1000) for s in stamps) <= 27  # 25 a second, plus timing jitter


async def test_announcements_honour_telegrams_retry_after(harness: Harness) -> None:
    """Against a sandbox with Telegram's flood control on, while a burst of other replies spends the
    ~30 messages a second Telegram allows: a refused send waits the time the 429 names, and every
    user still gets the notice exactly once."""
    sandbox = await run_sandbox(SandboxSettings(host="127.0.0.1", port=0, rate_limits=True, seed_file=""))
    client = SandboxClient(sandbox.url)
    bot = build_bot(parity_settings(sandbox.url))
    others = list(range(820_001, 820_081))
    uids = list(range(830_001, 830_041))
    try:
        for uid in others + uids:
            await client.create_user(uid, "Limited")
        announcer = Announcer(NotificationService(harness.db), harness.admin)
        delivery = asyncio.create_task(announcer.deliver(bot, uids, Announcement("Rate limited notice")))
        await asyncio.sleep(0.2)
        await asyncio.gather(*(bot.send_message(uid, "other traffic") for uid in others), return_exceptions=True)
        report = await delivery
        assert (report.delivered, report.blocked, report.failed) == (len(uids), 0, 0)
        sends = [e for e in sandbox.events.since(0) if e.method == "sendMessage" and e.user_id in set(uids)]
        refused = [e for e in sends if not e.ok]
        assert refused and all(e.retry_after for e in refused)
        for limited in refused:
            assert limited.retry_after is not None
            again = next(e for e in sends if e.seq > limited.seq and e.user_id == limited.user_id)
            assert again.ts_ms >= limited.ts_ms + limited.retry_after * 1000 - 50
        for uid in uids:
            got = [m for m in await client.chat(uid) if m.get("text") == "Rate limited notice"]
            assert len(got) == 1, uid
    finally:
        await bot.session.close()
        await client.close()
        await sandbox.close()


async def test_access_expiry_stops_the_broadcast_and_tells_the_user(
    harness: Harness, flow_contract: contract.Contract
) -> None:
    """The bot role's own expiry loop (every EXPIRY_EVERY seconds in the harness) does it."""
    runner = runner_for(harness, flow_contract, await harness.new_user("Expiring"))
    uid = runner.uid
    await harness.free_accounts()  # alice was connected by an earlier test's person
    access = AccessService(harness.db, harness.settings, now=harness.clock)

    async def expiry_check() -> list[int]:
        return await access.expire_due()

    async def delivered() -> bool:
        return not await harness.fetchval(
            "SELECT count(*) FROM notifications WHERE user_id = $1 AND delivered_at IS NULL", uid)
    await steps(runner, {"given": "running"})
    await harness.admin.grant(Actor.admin(ADMIN), uid, 7)
    await harness.set_mode("approval")
    try:
        assert await harness.fetchval("SELECT status FROM campaigns WHERE user_id = $1", uid) == "running"
        # an expiry check on the bot's clock, as the loop makes it: the grant is still valid
        assert await expiry_check() == []
        assert await harness.fetchval("SELECT status FROM campaigns WHERE user_id = $1", uid) == "running"
        harness.clock.offset += 8 * 86400

        async def told() -> bool:
            chat = await harness.client.chat(uid)
            return any(m.get("text") == texts.NOTE_ACCESS_EXPIRED for m in chat)

        await wait_for(told)
        assert await harness.fetchval("SELECT status FROM campaigns WHERE user_id = $1", uid) == "stopped"
        expired_at = await harness.fetchval("SELECT access_expires_at FROM users WHERE user_id = $1", uid)
        assert datetime.now(UTC) < expired_at < harness.clock()  # expired only on the bot's clock
        assert await expiry_check() == []  # handled once: a later check finds nothing to do
        await wait_for(delivered)  # (and what was queued has gone out)
        chat = await harness.client.chat(uid)
        assert sum(1 for m in chat if m.get("text") == texts.NOTE_ACCESS_EXPIRED) == 1
    finally:
        harness.clock.offset = 0.0
        await harness.set_mode("open")


async def test_a_restarted_bot_resumes_an_unfinished_announcement(harness: Harness) -> None:
    """What a crash mid-announcement leaves: some targets delivered, one send cut in flight, the rest
    pending. The restarted bot, as the leader, resumes it on start: each pending target gets the notice
    once, nobody gets it twice, and the one report counts the whole announcement."""
    notice = "Resumed notice"
    uids = list(range(850_001, 850_011))
    for uid in uids:
        await harness.ensure_user(uid, "Resumed")
        async with harness.db.transaction() as conn:
            await users.ensure(conn, uid)
    await harness.stop_bot()
    started = await harness.admin.start_announcement(Actor.admin(ADMIN_USER), notice, [], report_to=ADMIN_USER)
    aid = started.announcement_id
    earlier, cut = uids[:3], uids[3]
    async with harness.db.transaction() as conn:
        await conn.execute("UPDATE announcement_deliveries SET status = 'delivered', attempts = 1 "
                           "WHERE announcement_id = $1 AND user_id = ANY($2::bigint[])", aid, earlier)
        await conn.execute("UPDATE announcement_deliveries SET status = 'sending', attempts = 1 "
                           "WHERE announcement_id = $1 AND user_id = $2", aid, cut)
    seen = len(await harness.client.chat(ADMIN_USER))
    harness.bot_task, harness.bot_stop = harness.start_bot(harness.gateway)

    async def done() -> bool:
        status = await harness.fetchval("SELECT status FROM announcements WHERE announcement_id = $1", aid)
        return bool(status == "done")

    await wait_for(done, timeout=30)
    async with harness.db.connection() as conn:
        row = await conn.fetchrow("SELECT total, delivered, blocked, failed FROM announcements "
                                  "WHERE announcement_id = $1", aid)
        targets = await conn.fetch("SELECT user_id, status FROM announcement_deliveries "
                                   "WHERE announcement_id = $1", aid)
    assert row["total"] == started.targets == len(targets) and set(uids) <= {t["user_id"] for t in targets}
    sent_now = 0
    for target in targets:
        got = [m for m in await harness.client.chat(target["user_id"]) if m.get("text") == notice]
        if target["user_id"] in (*earlier, cut):
            assert not got, target  # sent (or maybe sent) by the crashed run: never again
        else:
            assert len(got) == (target["status"] == "delivered"), target
        sent_now += len(got)
    assert row["delivered"] == len(earlier) + sent_now
    assert row["failed"] >= 1 and row["delivered"] + row["blocked"] + row["failed"] == row["total"]
    assert {t["status"] for t in targets if t["user_id"] == cut} == {"failed"}

    async def reports() -> list[str]:
        chat = (await harness.client.chat(ADMIN_USER))[seen:]
        return [m["text"] for m in chat if "Announcement done" in (m.get("text") or "")]

    async def reported() -> bool:
        return bool(await reports())

    await wait_for(reported)
    assert await reports() == [texts.announce_report(row["delivered"], row["blocked"], row["failed"], row["total"])]
    # the report is sent only by the run whose finish() closed the announcement: the close happens
    # once, so no second report can come (proven by the gate itself, not by waiting for one)
    assert await AnnouncementService(harness.db).finish(aid) is None
