from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from services.admin import Actor
from services.messages import MessageDraft
from tests.integration.services_support import ADMIN_ID, Env, add_round, make_env

pytestmark = pytest.mark.integration

UID = 21


@pytest.fixture
def env(db_pool) -> Env:
    return make_env(db_pool)


async def test_interval_bounds_and_parsing(env: Env) -> None:
    low = await env.campaigns.set_interval(UID, 14 * 60)
    assert (low.outcome, low.minimum, low.maximum) == ("out_of_bounds", 900, 86400)
    assert (await env.campaigns.set_interval(UID, 86401)).outcome == "out_of_bounds"
    assert await env.fetchval("SELECT count(*) FROM campaigns") == 0

    ok = await env.campaigns.set_interval_text(UID, "1h30m")
    assert (ok.outcome, ok.interval, ok.running, ok.next_run_at) == ("ok", 5400, False, None)
    assert (await env.campaigns.set_interval_text(UID, "soon")).outcome == "unparsable"
    assert (await env.campaigns.set_interval_text(UID, "5")).outcome == "out_of_bounds"
    assert (await env.campaigns.view(UID)).interval == 5400
    assert env.campaigns.presets() == [15, 30, 60, 120, 360, 720, 1440]


async def test_lower_bounds_from_settings(db_pool) -> None:
    env = make_env(db_pool, interval_min=30, interval_max=600)
    assert (await env.campaigns.set_interval_text(UID, "45s")).interval == 45
    assert env.campaigns.presets() == []


async def test_start_lists_what_is_missing(env: Env) -> None:
    result = await env.campaigns.start(UID)
    assert result.outcome == "missing"
    assert result.missing == ("account", "groups", "message", "interval")

    await env.set_mode("whitelist")
    assert (await env.campaigns.start(UID)).missing == ("access", "account", "groups", "message", "interval")

    await env.admin.grant(Actor.admin(ADMIN_ID), UID, 0)
    await env.connect(UID)
    await env.messages.save(UID, MessageDraft("hi"))
    assert (await env.campaigns.start(UID)).missing == ("groups", "interval")
    assert await env.fetchval("SELECT status FROM campaigns WHERE user_id = $1", UID) == "stopped"


async def test_only_selected_active_groups_count(env: Env) -> None:
    await env.ready(UID, groups=1)
    # the one selected group is disabled by the engine: nothing left to send to
    await env.execute("UPDATE groups SET status = 'disabled', reason = 'CHAT_WRITE_FORBIDDEN' WHERE user_id = $1", UID)
    assert (await env.campaigns.start(UID)).missing == ("groups",)


async def test_start_runs_now_and_only_once(env: Env) -> None:
    await env.ready(UID, groups=3, interval=1800)
    await env.execute("UPDATE campaigns SET paused_until = $2 WHERE user_id = $1", UID, env.clock() + timedelta(hours=1))
    started = await env.campaigns.start(UID)
    assert (started.outcome, started.groups, started.interval, started.next_run_at) == ("started", 3, 1800, env.clock())
    row = await env.fetchrow("SELECT status, next_run_at, paused_until FROM campaigns WHERE user_id = $1", UID)
    assert (row["status"], row["next_run_at"], row["paused_until"]) == ("running", env.clock(), None)
    assert (await env.campaigns.start(UID)).outcome == "already_running"


async def test_concurrent_double_start_starts_exactly_once(env: Env) -> None:
    users = [31, 32, 33, 34]
    for uid in users:
        await env.ready(uid, groups=1)
    for uid in users:
        results = await asyncio.gather(env.campaigns.start(uid), env.campaigns.start(uid), env.campaigns.start(uid))
        outcomes = sorted(r.outcome for r in results)
        assert outcomes == ["already_running", "already_running", "started"], outcomes
    assert await env.fetchval("SELECT count(*) FROM campaigns WHERE status = 'running'") == len(users)


async def test_stop_reports_the_last_round(env: Env) -> None:
    await env.ready(UID, groups=4)
    assert (await env.campaigns.stop(UID)).outcome == "not_running"
    await env.campaigns.start(UID)
    await add_round(env, UID, env.clock(), ["sent", "sent", "failed", "pending"], finished=False)

    stopped = await env.campaigns.stop(UID)
    assert stopped.outcome == "stopped" and stopped.last_round is not None
    counts = stopped.last_round
    assert (counts.total, counts.sent, counts.failed, counts.skipped, counts.pending) == (4, 2, 1, 0, 1)
    row = await env.fetchrow("SELECT status, next_run_at, stopped_at FROM campaigns WHERE user_id = $1", UID)
    assert (row["status"], row["next_run_at"], row["stopped_at"]) == ("stopped", None, env.clock())
    assert (await env.campaigns.stop(UID)).outcome == "not_running"

    # stop before any round: no counts
    await env.ready(41, groups=1)
    await env.campaigns.start(41)
    first = await env.campaigns.stop(41)
    assert first.outcome == "stopped" and first.last_round is None


async def test_changing_the_interval_while_running_moves_the_next_run(env: Env) -> None:
    await env.ready(UID, interval=3600)
    await env.campaigns.start(UID)
    planned = env.clock()
    await add_round(env, UID, planned, ["sent", "sent"])
    await env.execute("UPDATE campaigns SET next_run_at = $2 WHERE user_id = $1", UID, planned + timedelta(hours=1))

    env.clock.advance(20 * 60)
    longer = await env.campaigns.set_interval(UID, 2 * 3600)
    assert longer.running and longer.next_run_at == planned + timedelta(hours=2)

    shorter = await env.campaigns.set_interval(UID, 15 * 60)  # last round + 15 min is past: not before now
    assert shorter.next_run_at == env.clock()
    assert await env.fetchval("SELECT next_run_at FROM campaigns WHERE user_id = $1", UID) == env.clock()

    # stopped: the interval is stored, no next run
    await env.campaigns.stop(UID)
    stopped = await env.campaigns.set_interval(UID, 3600)
    assert (stopped.running, stopped.next_run_at) == (False, None)
