from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from services.messages import MessageDraft
from services.notifications import NotificationService
from storage.repositories import status as status_repo
from tests.integration.services_support import ADMIN_ID, Env, add_round, make_env

pytestmark = pytest.mark.integration

UID = 51


@pytest.fixture
def env(db_pool) -> Env:
    return make_env(db_pool)


async def test_main_card_of_a_new_user(env: Env) -> None:
    card = await env.status.main_card(UID)
    assert not card.account_connected and card.phone_masked == "" and not card.message_set
    assert (card.groups.total, card.groups.selected, card.interval, card.running, card.next_run_at) == (
        0, 0, None, False, None)
    assert not card.is_admin and (await env.status.main_card(ADMIN_ID)).is_admin


async def test_main_card_summarises_everything(env: Env) -> None:
    await env.ready(UID, groups=3, interval=5400)
    await env.execute("UPDATE groups SET status = 'disabled', reason = 'USER_BANNED_IN_CHANNEL' "
                      "WHERE user_id = $1 AND title = 'G02'", UID)
    await env.messages.save(UID, MessageDraft("A fairly long message that goes on and on beyond fifty characters"))
    await env.campaigns.start(UID)

    card = await env.status.main_card(UID)
    assert card.account_connected and card.phone_masked == "+1•••0123" and card.account_name == "Ada"
    assert (card.groups.total, card.groups.selected, card.groups.disabled) == (3, 2, 1)
    assert card.message_set and card.message_preview == "A fairly long message that goes on and on beyond f…"
    assert (card.interval, card.running, card.next_run_at) == (5400, True, env.clock())


async def test_main_card_is_one_statement_and_reads_the_last_round_only_while_running(env: Env) -> None:
    await env.ready(UID, groups=3)
    await env.messages.save(UID, MessageDraft("hello"))
    await env.campaigns.start(UID)
    await add_round(env, UID, env.clock(), ["sent", "pending", "failed"], finished=False)
    statements: list[str] = []
    async with env.pool.acquire() as conn:
        conn.add_query_logger(lambda logged: statements.append(logged.query))
        row = await status_repo.main_card(conn, UID, with_round=True)
        await asyncio.sleep(0)  # asyncpg calls query loggers soon after the query, not inside it
        assert len(statements) == 1  # one round trip for the whole card
        assert row.account is not None and row.account.connected and row.account.phone == "+15550123"
        assert row.campaign is not None and row.campaign.running
        assert row.message is not None and row.message.text == "hello" and row.message.version >= 1
        assert (row.groups.total, row.groups.selected) == (3, 3)
        last = row.last_round
        assert last is not None and (last.total, last.sent, last.pending, last.failed) == (3, 1, 1, 1)
        assert (await status_repo.main_card(conn, UID, with_round=False)).last_round is None
        await conn.execute("UPDATE campaigns SET status = 'stopped' WHERE user_id = $1", UID)
        assert (await status_repo.main_card(conn, UID, with_round=True)).last_round is None
        empty = await status_repo.main_card(conn, UID + 1, with_round=True)
    assert (empty.account, empty.campaign, empty.message, empty.last_round) == (None, None, None, None)
    assert empty.groups.total == 0


async def test_status_shows_the_last_round_group_by_group(env: Env) -> None:
    await env.ready(UID, groups=12)
    await env.campaigns.start(UID)
    await add_round(env, UID, env.clock() - timedelta(hours=2), ["sent"] * 12)
    statuses = ["sent"] * 8 + ["failed", "skipped", "pending", "unknown"]
    await add_round(env, UID, env.clock(), statuses, finished=False)
    pause = env.clock() + timedelta(hours=2)
    await env.execute("UPDATE campaigns SET paused_until = $2, pause_reason = 'FLOOD_WAIT' WHERE user_id = $1",
                      UID, pause)
    await env.execute("UPDATE groups SET status = 'disabled', reason = 'CHAT_WRITE_FORBIDDEN' "
                      "WHERE user_id = $1 AND title = 'G08'", UID)

    view = await env.status.status(UID)
    assert view.running and view.paused_until == pause and view.pause_reason == "FLOOD_WAIT"
    last = view.last_round
    assert last is not None and last.planned_at == env.clock()
    assert (last.total, last.sent, last.failed, last.skipped, last.pending, last.unknown) == (12, 8, 1, 1, 1, 1)
    assert [g.title for g in view.group_outcomes] == [f"G{i:02d}" for i in range(10)]
    assert view.group_outcomes[8].status == "failed" and view.group_outcomes[8].error_code == "CHAT_WRITE_FORBIDDEN"
    assert view.more_groups == 2
    assert [(g.title, g.reason) for g in view.disabled_groups] == [("G08", "CHAT_WRITE_FORBIDDEN")]
    assert not view.global_paused and view.notify_rounds

    # a pause in the past is not shown
    env.clock.advance(3 * 3600)
    assert (await env.status.status(UID)).paused_until is None


async def test_status_before_any_round(env: Env) -> None:
    view = await env.status.status(UID)
    assert (view.running, view.last_round, view.group_outcomes, view.more_groups) == (False, None, [], 0)


async def test_outbox_dedupe_delivery_and_the_round_summary_toggle(env: Env) -> None:
    await env.ready(UID, groups=1)
    async with env.db.transaction() as conn:
        first = await NotificationService.enqueue(conn, UID, "group_disabled", {"group_id": 1}, "group_disabled:1:X")
        again = await NotificationService.enqueue(conn, UID, "group_disabled", {"group_id": 1}, "group_disabled:1:X")
        summary = await NotificationService.enqueue(conn, UID, "round_summary", {"sent": 3})
        unknown = await NotificationService.enqueue(conn, 999_999, "session_ended", {})
    assert first is not None and again is None and summary is not None and unknown is None

    assert await env.notifications.toggle_round_summaries(UID) is False
    assert (await env.status.status(UID)).notify_rounds is False
    async with env.db.transaction() as conn:
        assert await NotificationService.enqueue(conn, UID, "round_summary", {"sent": 4}) is None
        assert await NotificationService.enqueue(conn, UID, "flood_pause", {"seconds": 7200}) is not None
    assert await env.notifications.toggle_round_summaries(UID) is True

    pending = await env.notifications.pending()
    assert [(n.kind, n.payload) for n in pending] == [
        ("group_disabled", {"group_id": 1}), ("round_summary", {"sent": 3}), ("flood_pause", {"seconds": 7200})]
    assert await env.notifications.mark_delivered([pending[0].notification_id]) == 1
    assert await env.notifications.mark_delivered([pending[0].notification_id]) == 0
    for _ in range(5):
        await env.notifications.mark_failed([pending[1].notification_id])
    assert [n.notification_id for n in await env.notifications.pending()] == [pending[2].notification_id]

    await env.notifications.mark_bot_blocked(UID)
    assert await env.notifications.pending() == []
    assert await env.fetchval("SELECT bot_blocked FROM users WHERE user_id = $1", UID) is True
