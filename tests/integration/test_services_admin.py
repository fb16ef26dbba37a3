from __future__ import annotations

from datetime import timedelta

import pytest

from domain.models import UserProfile
from services.admin import Actor, NotAllowed
from tests.integration.services_support import ADMIN_ID, Env, add_round, make_env

pytestmark = pytest.mark.integration

ADMIN = Actor.admin(ADMIN_ID)
UID = 61


@pytest.fixture
def env(db_pool) -> Env:
    return make_env(db_pool)


async def _audit(env: Env) -> list[tuple]:
    rows = await env.fetch(
        "SELECT actor_kind, actor_id, action, target_user_id, outcome FROM audit_log ORDER BY audit_id")
    return [tuple(r) for r in rows]


async def test_non_admins_are_refused_audited_and_nothing_changes(env: Env) -> None:
    await env.access.touch(UserProfile(UID))
    intruder = Actor.admin(UID)  # claims to be an admin from the bot, is not in ADMIN_IDS
    with pytest.raises(NotAllowed):
        await env.admin.ban(intruder, 62)
    with pytest.raises(NotAllowed):
        await env.admin.set_mode(intruder, "whitelist")
    with pytest.raises(NotAllowed):
        await env.admin.overview(intruder)
    assert await _audit(env) == [
        ("user", UID, "ban", 62, "denied"),
        ("user", UID, "mode", None, "denied"),
        ("user", UID, "overview", None, "denied"),
    ]
    assert await env.fetchval("SELECT count(*) FROM users WHERE user_id = 62") == 0
    assert (await env.access.mode()) == "open"


async def test_access_operations_are_audit_logged(env: Env) -> None:
    await env.set_mode("approval")
    await env.access.touch(UserProfile(UID, "Mallory"))
    await env.access.request_access(UID)
    assert [u.user_id for u in await env.admin.pending_requests(ADMIN)] == [UID]

    assert (await env.admin.reject(ADMIN, UID)).ok
    assert (await env.admin.reject(ADMIN, UID)).outcome == "no_change"
    assert (await env.access.check(UID)).status == "needs_approval"
    assert (await env.admin.grant(ADMIN, UID, 30)).detail["days"] == 30
    assert (await env.access.check(UID)).expires_at == env.clock() + timedelta(days=30)
    assert (await env.admin.revoke(ADMIN, UID)).ok
    assert (await env.access.check(UID)).status == "needs_approval"
    assert (await env.admin.ban(ADMIN, UID)).ok
    assert (await env.access.check(UID)).status == "banned"
    assert (await env.admin.unban(ADMIN, UID)).ok
    assert (await env.admin.unban(ADMIN, UID)).outcome == "no_change"
    assert (await env.admin.revoke(ADMIN, 999)).outcome == "not_found"

    assert await _audit(env) == [
        ("admin", ADMIN_ID, "reject", UID, "ok"),
        ("admin", ADMIN_ID, "reject", UID, "ok"),
        ("admin", ADMIN_ID, "grant", UID, "ok"),
        ("admin", ADMIN_ID, "revoke", UID, "ok"),
        ("admin", ADMIN_ID, "ban", UID, "ok"),
        ("admin", ADMIN_ID, "unban", UID, "ok"),
        ("admin", ADMIN_ID, "unban", UID, "ok"),
        ("admin", ADMIN_ID, "revoke", 999, "failed"),
    ]
    details = [r["detail"] for r in await env.fetch("SELECT detail::text AS detail FROM audit_log ORDER BY audit_id")]
    assert '"no_change"' in details[1] and '"not_found"' in details[-1]
    kinds = [r["kind"] for r in await env.fetch("SELECT kind FROM notifications ORDER BY notification_id")]
    assert kinds == ["access_rejected", "access_granted", "access_revoked"]
    entries = await env.admin.audit_log(Actor.api("ops"), limit=3)
    assert [e.action for e in entries] == ["revoke", "unban", "unban"]


async def test_ban_stop_and_force_logout_stop_the_broadcast(env: Env) -> None:
    await env.ready(UID)
    await env.campaigns.start(UID)
    result = await env.admin.stop_broadcast(ADMIN, UID)
    assert result.ok
    assert await env.fetchval("SELECT status FROM campaigns WHERE user_id = $1", UID) == "stopped"
    assert (await env.admin.stop_broadcast(ADMIN, UID)).outcome == "no_change"

    await env.campaigns.start(UID)
    assert (await env.admin.ban(ADMIN, UID)).detail == {"broadcast_stopped": True}
    await env.admin.unban(ADMIN, UID)

    await env.campaigns.start(UID)
    session = env.gateway.durable_sessions[-1]
    assert (await env.admin.force_logout(ADMIN, UID)).ok
    row = await env.fetchrow("SELECT status, session_enc, disconnected_reason FROM accounts WHERE user_id = $1", UID)
    assert (row["status"], row["session_enc"], row["disconnected_reason"]) == ("disconnected", None, "admin")
    assert env.gateway.logged_out == [session]
    assert await env.fetchval("SELECT status FROM campaigns WHERE user_id = $1", UID) == "stopped"
    assert (await env.admin.force_logout(ADMIN, UID)).outcome == "no_change"
    kinds = [r["kind"] for r in await env.fetch("SELECT kind FROM notifications WHERE user_id = $1", UID)]
    assert kinds == ["broadcast_stopped", "session_ended"]


async def test_mode_change_stops_users_who_lose_access(env: Env) -> None:
    granted, plain = 71, 72
    for uid in (granted, plain, ADMIN_ID):
        await env.ready(uid, groups=1)
        await env.campaigns.start(uid)
    await env.admin.grant(ADMIN, granted, 0)

    result = await env.admin.set_mode(Actor.api("ops"), "whitelist")
    assert result.ok and result.detail["stopped"] == 1
    statuses = {r["user_id"]: r["status"] for r in await env.fetch("SELECT user_id, status FROM campaigns")}
    assert statuses == {granted: "running", plain: "stopped", ADMIN_ID: "running"}
    assert await env.access.mode() == "whitelist"
    assert (await env.admin.set_mode(ADMIN, "whitelist")).outcome == "no_change"
    with pytest.raises(ValueError):
        await env.admin.set_mode(ADMIN, "everyone")
    actions = [(a[0], a[2], a[4]) for a in await _audit(env) if a[2] == "mode"]
    assert actions == [("api", "mode", "ok"), ("admin", "mode", "ok")]


async def test_global_pause_and_resume(env: Env) -> None:
    assert (await env.admin.pause(ADMIN)).ok
    assert await env.admin.global_paused()
    assert (await env.admin.pause(ADMIN)).outcome == "no_change"
    assert (await env.status.status(UID)).global_paused
    assert (await env.admin.resume(ADMIN)).ok
    assert not await env.admin.global_paused()
    assert [a[2] for a in await _audit(env)] == ["pause", "pause", "resume"]


async def test_overview_lists_cards_and_runtime(env: Env) -> None:
    await env.set_mode("approval")
    for uid in range(100, 113):
        await env.access.touch(UserProfile(uid, f"U{uid}"))
        env.clock.advance(1)
    await env.access.request_access(105)
    await env.ready(UID, groups=3)
    await env.admin.grant(ADMIN, UID, 7)
    await env.campaigns.start(UID)
    await add_round(env, UID, env.clock(), ["sent", "sent", "failed"])
    await env.execute("UPDATE campaigns SET paused_until = $2 WHERE user_id = $1", UID, env.clock() + timedelta(hours=1))

    overview = await env.admin.overview(ADMIN)
    assert (overview.users, overview.connected, overview.running, overview.pending_requests) == (14, 1, 1, 1)
    assert (overview.access_mode, overview.global_paused) == ("approval", False)

    first = await env.admin.users_page(ADMIN, 0)
    assert (first.pages, first.total, len(first.items)) == (2, 14, 10)
    assert first.items[0].user_id == UID and first.items[0].connected and first.items[0].running
    last = await env.admin.users_page(ADMIN, 7)
    assert last.page == 1 and len(last.items) == 4

    card = await env.admin.user_card(ADMIN, UID)
    assert card is not None and card.phone_masked == "+1•••0123"
    assert (card.user.access, card.groups_total, card.groups_selected, card.message_version) == ("allowed", 3, 3, 1)
    assert card.user.expires_at == env.clock() + timedelta(days=7)
    assert await env.admin.user_card(ADMIN, 424242) is None
    assert (await env.admin.users_page(ADMIN, 1)).items[-1].access == "needs_approval"

    # the scheduler is behind by 90 s on a due campaign elsewhere
    await env.ready(81, groups=1)
    await env.admin.grant(ADMIN, 81, 0)
    assert (await env.campaigns.start(81)).outcome == "started"
    env.clock.advance(90)
    runtime = await env.admin.runtime(ADMIN)
    assert (runtime.running, runtime.open_rounds, runtime.flood_paused) == (2, 0, 1)
    assert runtime.scheduler_lag_seconds == 90
    assert runtime.sends_last_hour == {"sent": 2, "failed": 1}

    targets = await env.admin.announce_targets(ADMIN)
    assert UID in targets and 81 in targets and len(targets) == 15
    await env.admin.ban(ADMIN, 100)
    await env.notifications.mark_bot_blocked(101)
    assert len(await env.admin.announce_targets(ADMIN)) == 13
    await env.admin.record(ADMIN, "announce", detail={"delivered": 14, "blocked": 1})
    assert (await _audit(env))[-1] == ("admin", ADMIN_ID, "announce", None, "ok")


async def test_racing_mode_changes_audit_the_previous_mode_each_one_really_replaced(env: Env) -> None:
    """23 concurrent changes: each ok audit's ``previous`` is the mode the ok audit before it set
    (the read is under the settings row's lock, so no two changes read the same old value)."""
    import asyncio

    import orjson

    modes = ["approval", "whitelist", "open"] * 7 + ["approval", "whitelist"]
    results = await asyncio.gather(*(env.admin.set_mode(ADMIN, mode) for mode in modes))
    rows = await env.fetch("SELECT detail::text AS detail FROM audit_log WHERE action = 'mode' ORDER BY audit_id")
    current = "open"
    changes = 0
    for row in rows:
        detail = orjson.loads(row["detail"])
        if detail["result"] == "ok":
            assert detail["previous"] == current, (detail, current)
            assert detail["mode"] != current
            changes += 1
        else:
            assert detail["result"] == "no_change" and detail["mode"] == current
        current = detail["mode"]
    assert len(rows) == len(modes) and changes == sum(r.ok for r in results) and changes > 1
    assert current == await env.fetchval("SELECT value #>> '{}' FROM settings WHERE key = 'access_mode'")


async def test_racing_pause_and_resume_alternate_in_the_audit(env: Env) -> None:
    import asyncio

    calls = [env.admin.pause(ADMIN) if i % 2 == 0 else env.admin.resume(ADMIN) for i in range(20)]
    await asyncio.gather(*calls)
    rows = await env.fetch("SELECT action, detail->>'result' AS result FROM audit_log ORDER BY audit_id")
    paused = False
    for row in rows:
        wants = row["action"] == "pause"
        assert row["result"] == ("no_change" if wants == paused else "ok"), rows
        paused = wants
    assert paused == await env.admin.global_paused()
