"""Retention (issue 14 item 6): a 60-day compressed-time run keeps table sizes flat after day 30, the
deletes are batched, what is still in use is kept, and the views users and admins read give the same
answers before and after old rows go."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from config.settings import RetentionSettings
from domain.retention import HistoryTotals
from scheduler.runner import run_scheduler
from services.admin import Actor
from services.messages import MessageDraft
from services.retention import RetentionService
from storage.db import Database
from storage.repositories import retention as retention_repo
from tests.integration.engine_support import Engine as EngineHarness
from tests.integration.engine_support import FakeSender, seed_user, settings_with
from tests.integration.retention_sim import START, Truth, Workload, no_pause, simulate
from tests.integration.services_support import Env, add_round, make_env

pytestmark = pytest.mark.integration

DAYS = 60
WINDOW = 30
AUDIT_WINDOW = 45
FLAT = ("rounds", "attempts", "messages", "media", "notifications", "announcement_deliveries")


@pytest.fixture
def env(db_pool) -> Env:
    return make_env(db_pool)


async def test_sixty_simulated_days_keep_the_tables_flat_after_the_window(db_pool) -> None:
    db = Database(db_pool)
    w = Workload()
    truth = Truth()
    settings = RetentionSettings(days=WINDOW, audit_days=AUDIT_WINDOW, batch=200, pause=0.0)
    figures = await simulate(db, w, DAYS, settings, truth)
    by_day = {f.day: f for f in figures}

    # before the window is full nothing goes; afterwards every day's rounds are summarised and deleted
    assert all(f.report.deleted["rounds"] == 0 for f in figures if f.day <= WINDOW)
    assert all(f.report.deleted["rounds"] > 0 for f in figures if f.day > WINDOW + 1)
    assert by_day[DAYS].sizes["rounds"][0] < by_day[WINDOW + 5].sizes["rounds"][0] * 1.05
    for table in FLAT:
        rows30, bytes30 = by_day[WINDOW].sizes[table]
        for day in range(WINDOW + 1, DAYS + 1):
            rows, size = by_day[day].sizes[table]
            # rows: the window's worth plus what is kept (last rounds, current versions) and one edit cycle
            assert rows <= rows30 * 1.15 + 10, (table, day, rows, rows30)
            assert size <= bytes30 * 1.3 + 64 * 1024, (table, day, size, bytes30)
    # and they have stopped growing: the last ten days add nothing (index pages settle by day ~50)
    for table in FLAT:
        assert by_day[DAYS].sizes[table][1] <= by_day[DAYS - 10].sizes[table][1] * 1.05 + 16 * 1024, table
    # without retention the history tables would have doubled
    assert by_day[DAYS].sizes["attempts"][0] < by_day[WINDOW].sizes["attempts"][0] * 1.15
    # announcements keep their totals; only their per-user rows go
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM announcements") == len(range(0, DAYS, w.announce_every))
    # the audit log has its own, longer window
    assert all(f.report.deleted["audit_log"] == 0 for f in figures if f.day <= AUDIT_WINDOW)
    audit = by_day[DAYS].sizes["audit_log"][0]
    assert audit <= (AUDIT_WINDOW + 1) * w.admin_actions_per_day
    # summaries: one row per user and summarised day, nothing else
    summary_rows = by_day[DAYS].sizes["round_summaries"][0]
    assert 0 < summary_rows <= w.users * (DAYS - WINDOW + 1)

    # totals survive: summaries + stored rounds == everything ever written
    async with db.connection() as conn:
        for uid in w.user_ids:
            totals = await retention_repo.history_totals(conn, uid)
            assert (totals.rounds, totals.sent, totals.failed, totals.skipped, totals.unknown) == (
                truth.rounds[uid], truth.sent[uid], truth.failed[uid], truth.skipped[uid], truth.unknown[uid])
            assert totals.since == START.date()
        # the user who stopped on day 5 still has their last round, its attempts and its message
        stopped = w.user_ids[-1]
        last = truth.last_round[stopped]
        assert await conn.fetchval("SELECT count(*) FROM attempts WHERE round_id = $1", last) == w.groups
        message_id = await conn.fetchval("SELECT message_id FROM rounds WHERE round_id = $1", last)
        assert await conn.fetchval("SELECT count(*) FROM messages WHERE message_id = $1", message_id) == 1
        # every stored round still has its message; every message's media is there
        assert await conn.fetchval(
            "SELECT count(*) FROM rounds r LEFT JOIN messages m USING (message_id) WHERE m.message_id IS NULL") == 0


async def _round_at(env: Env, uid: int, days_ago: float, statuses: list[str]) -> int:
    planned = env.clock() - timedelta(days=days_ago)
    round_id = await add_round(env, uid, planned, statuses)
    await env.execute("UPDATE rounds SET sent = $2, failed = $3, skipped = $4, unknown = $5, total = $6 "
                      "WHERE round_id = $1", round_id, statuses.count("sent"), statuses.count("failed"),
                      statuses.count("skipped"), statuses.count("unknown"), len(statuses))
    return round_id


def _service(env: Env, **changes: object) -> RetentionService:
    settings = replace(RetentionSettings(days=30, audit_days=365, batch=1000, pause=0.0), **changes)
    return RetentionService(env.db, settings, now=env.clock, sleep=no_pause)


async def test_status_view_and_admin_card_answer_the_same_after_old_rounds_go(env: Env) -> None:
    uid, idle = 501, 502
    await env.ready(uid, groups=3)
    await env.ready(idle, groups=2)
    for days_ago in (50, 45, 40, 35):
        await _round_at(env, uid, days_ago, ["sent", "failed", "sent"])
    await _round_at(env, uid, 2, ["sent", "skipped", "unknown"])
    last = await _round_at(env, uid, 1, ["sent", "sent", "failed"])
    # the idle user's only rounds are older than the window: the last one is what their status shows
    await _round_at(env, idle, 60, ["sent", "sent"])
    idle_last = await _round_at(env, idle, 40, ["failed", "sent"])

    before = {u: await env.status.status(u) for u in (uid, idle)}
    cards = {u: await env.admin.user_card(Actor.api("ops"), u) for u in (uid, idle)}
    runtime = await env.admin.runtime(Actor.api("ops"))
    main = await env.status.main_card(uid)

    report = await _service(env).run()
    assert report.deleted["rounds"] == 5 and report.deleted["attempts"] == 14

    after = {u: await env.status.status(u) for u in (uid, idle)}
    for u in (uid, idle):
        assert after[u] == before[u]
        card = await env.admin.user_card(Actor.api("ops"), u)
        assert card == cards[u]
    assert before[uid].last_round is not None and before[uid].last_round.round_id == last
    assert before[idle].last_round is not None and before[idle].last_round.round_id == idle_last
    assert [o.status for o in after[idle].group_outcomes] == ["failed", "sent"]
    assert after[uid].history == HistoryTotals(rounds=6, total=18, sent=11, failed=5, skipped=1, unknown=1,
                                               since=(env.clock() - timedelta(days=50)).date())
    assert await env.admin.runtime(Actor.api("ops")) == runtime
    assert await env.status.main_card(uid) == main
    assert await env.fetchval("SELECT sum(rounds) FROM round_summaries WHERE user_id = $1", uid) == 4


async def test_message_versions_and_media_go_only_when_nothing_uses_them(env: Env) -> None:
    uid = 511
    await env.ready(uid, groups=2)
    old = env.clock() - timedelta(days=40)
    photo = await env.messages.store_media(b"\x89PNG-old", "photo")
    kept_photo = await env.messages.store_media(b"\x89PNG-kept", "photo")
    draft_photo = await env.messages.store_media(b"\x89PNG-draft", "photo")
    await env.execute("UPDATE media SET created_at = $1 WHERE media_id = ANY($2::bigint[])", old,
                      [photo, kept_photo])
    await env.messages.save(uid, MessageDraft("v2", media_id=photo))       # superseded, then unused
    await _round_at(env, uid, 39, ["sent", "sent"])                          # sends v2, ages out
    await env.messages.save(uid, MessageDraft("v3", media_id=kept_photo))  # sent by the kept round
    kept_round = await _round_at(env, uid, 38, ["sent", "sent"])
    await env.messages.save(uid, MessageDraft("v4"))                        # current, never sent
    await env.execute("UPDATE messages SET created_at = $1 WHERE user_id = $2", old, uid)

    report = await _service(env).run()

    versions = [r["version"] for r in await env.fetch(
        "SELECT version FROM messages WHERE user_id = $1 ORDER BY version", uid)]
    assert versions == [3, 4]  # v1 and v2: superseded and sent by no stored round
    assert report.deleted["messages"] == 2
    media_left = {r["media_id"] for r in await env.fetch("SELECT media_id FROM media")}
    assert media_left == {kept_photo, draft_photo}  # the draft's upload is newer than the window
    assert report.deleted["media"] == 1
    assert await env.fetchval("SELECT count(*) FROM rounds WHERE round_id = $1", kept_round) == 1


async def test_notifications_and_audit_follow_their_own_windows(env: Env) -> None:
    uid = 521
    await env.ready(uid, groups=1)
    now = env.clock()
    rows = [(now - timedelta(days=40), now - timedelta(days=40)),  # delivered long ago: goes
            (now - timedelta(days=40), None),                      # never delivered: the bot's to finish
            (now - timedelta(days=5), now - timedelta(days=5))]    # recent: stays
    for created, delivered in rows:
        await env.execute("INSERT INTO notifications (user_id, kind, created_at, delivered_at) "
                          "VALUES ($1, 'x', $2, $3)", uid, created, delivered)
    await env.execute("DELETE FROM audit_log")
    for days_ago in (400, 100, 1):
        await env.execute("INSERT INTO audit_log (at, actor_kind, action) VALUES ($1, 'api', 'mode')",
                          now - timedelta(days=days_ago))

    kept_forever = await _service(env, audit_days=0).run()
    assert kept_forever.deleted["audit_log"] == 0
    assert kept_forever.deleted["notifications"] == 1
    assert await env.fetchval("SELECT count(*) FROM notifications WHERE delivered_at IS NULL") == 1
    assert await env.fetchval("SELECT count(*) FROM notifications") == 2

    report = await _service(env).run()
    assert report.deleted["audit_log"] == 1
    assert await env.fetchval("SELECT count(*) FROM audit_log") == 2


async def test_deletes_go_in_bounded_batches_with_a_pause_and_resume_after_the_run_limit(env: Env) -> None:
    uid = 531
    await env.ready(uid, groups=4)
    for i in range(12):
        await _round_at(env, uid, 60 - i, ["sent", "sent", "failed", "sent"])
    await _round_at(env, uid, 1, ["sent"] * 4)
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    batch = 11  # a round and its 4 attempts cost 5 rows: two rounds per batch
    settings = RetentionSettings(days=30, batch=batch, pause=0.25)
    limited = RetentionService(env.db, settings, now=env.clock, sleep=pause, max_batches=3)
    first = await limited.run()
    assert not first.complete
    assert first.deleted["rounds"] == 6 and first.deleted["attempts"] == 24
    assert pauses == [0.25] * 3
    second = await RetentionService(env.db, settings, now=env.clock, sleep=pause).run()
    assert second.complete and second.deleted["rounds"] == 6
    assert await env.fetchval("SELECT sum(rounds) FROM round_summaries WHERE user_id = $1", uid) == 12
    history = await RetentionService(env.db, settings, now=env.clock).history(uid)
    assert (history.rounds, history.sent, history.failed) == (13, 40, 12)


async def test_a_round_another_transaction_holds_is_skipped_not_waited_for(env: Env) -> None:
    uid = 541
    await env.ready(uid, groups=2)
    held = await _round_at(env, uid, 50, ["sent", "sent"])
    other = await _round_at(env, uid, 45, ["sent", "failed"])
    await _round_at(env, uid, 1, ["sent", "sent"])
    async with env.pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM rounds WHERE round_id = $1 FOR UPDATE", held)
        report = await asyncio.wait_for(_service(env).run(), timeout=30)
        assert report.deleted["rounds"] == 1
    left = {r["round_id"] for r in await env.fetch("SELECT round_id FROM rounds WHERE user_id = $1", uid)}
    assert held in left and other not in left
    assert (await _service(env).run()).deleted["rounds"] == 1
    assert await env.fetchval("SELECT sum(rounds) FROM round_summaries WHERE user_id = $1", uid) == 2


async def test_finished_announcements_lose_their_per_user_rows_not_their_totals(env: Env) -> None:
    users = [551, 552, 553]
    for uid in users:
        await env.execute("INSERT INTO users (user_id, access_status) VALUES ($1, 'granted')", uid)
    now = env.clock()
    ids = []
    for days_ago, status in ((40, "done"), (5, "done"), (40, "running")):
        finished = now - timedelta(days=days_ago) if status == "done" else None
        ids.append(await env.fetchval(
            """INSERT INTO announcements (text, status, total, delivered, created_at, finished_at)
               VALUES ('hi', $1, 3, 3, $2, $3) RETURNING announcement_id""",
            status, now - timedelta(days=days_ago), finished))
        await env.execute("INSERT INTO announcement_deliveries (announcement_id, user_id, status) "
                          "SELECT $1, u, 'delivered' FROM unnest($2::bigint[]) u", ids[-1], users)

    report = await _service(env, batch=2).run()

    assert report.deleted["announcement_deliveries"] == 3
    left = {r["announcement_id"]: r["n"] for r in await env.fetch(
        "SELECT announcement_id, count(*) AS n FROM announcement_deliveries GROUP BY 1")}
    assert left == {ids[1]: 3, ids[2]: 3}  # recent, and still running
    assert await env.fetchval("SELECT delivered FROM announcements WHERE announcement_id = $1", ids[0]) == 3


async def test_the_scheduler_leader_runs_the_retention_job(db: Database, redis_client, cipher) -> None:
    settings = replace(settings_with(lease_ttl=1.0, tick=0.05),
                       retention=RetentionSettings(interval=0.2, pause=0.0))
    async with db.connection() as conn:
        await seed_user(conn, cipher, 1, 2, running=False)
        message_id = await conn.fetchval("SELECT message_id FROM messages WHERE user_id = 1")
        old = [await conn.fetchval(
            """INSERT INTO rounds (user_id, message_id, planned_at, finished_at, status)
               VALUES (1, $1, now() - make_interval(days => $2), now() - make_interval(days => $2), 'done')
               RETURNING round_id""", message_id, days) for days in (41, 40, 39)]
    queue = EngineHarness(db, redis_client, FakeSender(), settings, cipher).queue
    stop = asyncio.Event()
    task = asyncio.create_task(run_scheduler(db, redis_client, queue, settings, stop))
    try:
        deadline = asyncio.get_running_loop().time() + 15
        while await _fetchval(db, "SELECT count(*) FROM rounds") > 1:
            assert asyncio.get_running_loop().time() < deadline, "the leader never ran retention"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert await _fetchval(db, "SELECT array_agg(round_id) FROM rounds") == [old[-1]]  # the newest stays
    assert await _fetchval(db, "SELECT sum(rounds) FROM round_summaries WHERE user_id = 1") == 2


async def _fetchval(db: Database, sql: str) -> object:
    async with db.connection() as conn:
        return await conn.fetchval(sql)
