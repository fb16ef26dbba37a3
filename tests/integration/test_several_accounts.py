"""U8: several Telegram accounts per user through the services, against real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from services.admin import Actor
from services.messages import MessageDraft
from services.schedule import ScheduleService
from storage.repositories import accounts
from tests.integration.services_support import ADMIN_ID, Env, group, make_env

pytestmark = pytest.mark.integration

UID = 5151
OTHER = 5252
ALICE, DANA = 810_001, 810_004


@pytest.fixture
def env(db_pool) -> Env:
    return make_env(db_pool)


async def _add(env: Env, tg_user_id: int, name: str, groups: list[tuple[int, str]], text: str,
               interval: int) -> int:
    """Connect another account (it becomes current) and give it groups, a message and an interval."""
    env.gateway.first_name = name
    await env.connect(UID, phone=f"+1555{tg_user_id}", tg_user_id=tg_user_id)
    env.gateway.groups = [group(peer, title) for peer, title in groups]
    await env.groups.import_groups(UID)
    for item in (await env.groups.page(UID, 0)).items:
        await env.groups.toggle(UID, item.group_id)
    await env.messages.save(UID, MessageDraft(text))
    assert (await env.campaigns.set_interval(UID, interval)).outcome == "ok"
    view = await env.login.account(UID)
    assert view is not None and view.first_name == name
    return view.account_id


async def test_each_account_has_its_own_broadcast_and_the_menus_act_on_the_current_one(env: Env) -> None:
    alice = await _add(env, ALICE, "Alice", [(1, "A1"), (2, "A2")], "from alice", 3600)
    dana = await _add(env, DANA, "Dana", [(1, "same chat"), (3, "D3"), (4, "D4")], "from dana", 7200)
    assert await env.fetchval("SELECT count(*) FROM accounts WHERE user_id = $1", UID) == 2

    # Dana (the newest) is current: her three groups (one chat both accounts are in), her message
    counts = await env.groups.counts(UID)
    assert (counts.total, counts.selected) == (3, 3)
    assert [m.text for m in await env.messages.active(UID)] == ["from dana"]
    assert (await env.campaigns.view(UID)).interval == 7200

    assert (await env.login.select(UID, alice)) is not None
    counts = await env.groups.counts(UID)
    assert (counts.total, counts.selected) == (2, 2)
    assert [m.text for m in await env.messages.active(UID)] == ["from alice"]
    assert (await env.campaigns.view(UID)).interval == 3600

    # start/stop act on the current account only
    assert (await env.campaigns.start(UID)).outcome == "started"
    running = dict(await env.pool.fetch("SELECT account_id, status FROM campaigns WHERE user_id = $1", UID))
    assert running == {alice: "running", dana: "stopped"}
    await env.login.select(UID, dana)
    assert (await env.campaigns.stop(UID)).outcome == "not_running"
    assert (await env.campaigns.start(UID)).outcome == "started"

    # U8.6: the main card has a line per account, the current one marked
    card = await env.status.main_card(UID)
    assert [(a.first_name, a.current, a.selected, a.messages, a.interval, a.running) for a in card.accounts] == [
        ("Alice", False, 2, 1, 3600, True), ("Dana", True, 3, 1, 7200, True)]
    assert card.account_name == "Dana" and card.groups.selected == 3


async def test_what_was_set_before_any_account_belongs_to_the_first_one(env: Env) -> None:
    await env.messages.save(UID, MessageDraft("draft"))
    assert (await env.campaigns.set_interval(UID, 3600)).outcome == "ok"
    await env.connect(UID, tg_user_id=ALICE)
    assert [m.text for m in await env.messages.active(UID)] == ["draft"]
    assert (await env.campaigns.view(UID)).interval == 3600
    assert await env.fetchval("SELECT count(*) FROM campaigns WHERE user_id = $1", UID) == 1
    # a second account starts empty
    await env.connect(UID, tg_user_id=DANA)
    assert await env.messages.active(UID) == []
    assert (await env.campaigns.view(UID)).interval is None


async def test_a_forged_or_foreign_account_id_is_refused_and_changes_nothing(env: Env) -> None:
    alice = await _add(env, ALICE, "Alice", [(1, "A1")], "a", 3600)
    dana = await _add(env, DANA, "Dana", [(2, "D2")], "d", 3600)
    env.gateway.tg_user_id = 999_111
    await env.connect(OTHER, tg_user_id=999_111)
    foreign = await env.fetchval("SELECT account_id FROM accounts WHERE user_id = $1", OTHER)

    for forged in (foreign, 987_654_321):
        assert await env.login.select(UID, forged) is None
        assert await env.login.owned(UID, forged) is None
        assert await env.login.logout(UID, account_id=forged) is False
    assert await env.fetchval("SELECT current_account_id FROM users WHERE user_id = $1", UID) == dana
    assert await env.fetchval("SELECT status FROM accounts WHERE account_id = $1", foreign) == "connected"
    # a disconnected account of the user can't be made current either
    await env.login.logout(UID, account_id=alice)
    assert await env.login.select(UID, alice) is None


async def test_the_same_telegram_account_again_replaces_its_session_in_place(env: Env) -> None:
    """U8.4: one row, its groups and broadcast kept, the new session stored, the old one logged out."""
    alice = await _add(env, ALICE, "Alice", [(1, "A1"), (2, "A2")], "a", 3600)
    old_session = env.gateway.durable_sessions[-1]
    await _add(env, DANA, "Dana", [(3, "D3")], "d", 3600)

    env.gateway.tg_user_id = ALICE
    step = await env.login.send_code(UID, "+1555810001")
    assert step.attempt is not None
    done = await env.login.submit_code(UID, step.attempt, env.gateway.code)
    assert done.outcome == "reconnected" and done.account is not None and done.account.account_id == alice
    assert await env.fetchval("SELECT count(*) FROM accounts WHERE user_id = $1", UID) == 2
    assert env.gateway.logged_out == [old_session]
    stored = await env.fetchval("SELECT session_enc FROM accounts WHERE account_id = $1", alice)
    assert env.cipher.decrypt(bytes(stored)) == env.gateway.durable_sessions[-1]
    # it is current again, with what it had
    counts = await env.groups.counts(UID)
    assert (counts.total, counts.selected) == (2, 2)


async def test_at_the_limit_a_new_login_is_refused_and_its_session_ended(env: Env) -> None:
    """U8.3, checked again when the code is accepted (a login begun before the limit was reached)."""
    limited = make_env(env.pool, accounts_per_user=1)
    limited.gateway.tg_user_id = ALICE
    step = await limited.login.send_code(UID, "+1555810001")
    assert step.attempt is not None
    await limited.connect(UID, tg_user_id=DANA)  # another login completes meanwhile
    limited.gateway.tg_user_id = ALICE
    done = await limited.login.submit_code(UID, step.attempt, limited.gateway.code)
    assert (done.outcome, done.limit) == ("at_limit", 1)
    assert limited.gateway.logged_out == [limited.gateway.durable_sessions[-1]]
    assert await limited.fetchval("SELECT count(*) FROM accounts WHERE user_id = $1", UID) == 1


async def test_logging_one_account_out_keeps_the_others_and_picks_another_as_current(env: Env) -> None:
    alice = await _add(env, ALICE, "Alice", [(1, "A1")], "a", 3600)
    assert (await env.campaigns.start(UID)).outcome == "started"
    dana = await _add(env, DANA, "Dana", [(2, "D2")], "d", 3600)
    assert (await env.campaigns.start(UID)).outcome == "started"

    assert await env.login.logout(UID) is True  # the current one: Dana
    assert await env.fetchval("SELECT current_account_id FROM users WHERE user_id = $1", UID) == alice
    statuses = dict(await env.pool.fetch("SELECT account_id, status FROM accounts WHERE user_id = $1", UID))
    assert statuses == {alice: "connected", dana: "disconnected"}
    running = dict(await env.pool.fetch("SELECT account_id, status FROM campaigns WHERE user_id = $1", UID))
    assert running == {alice: "running", dana: "stopped"}
    assert [a.first_name for a in await env.login.connected_accounts(UID)] == ["Alice"]

    # the last one out stays current (its message and interval are still shown)
    assert await env.login.logout(UID, account_id=alice) is True
    assert await env.fetchval("SELECT current_account_id FROM users WHERE user_id = $1", UID) == alice
    assert [m.text for m in await env.messages.active(UID)] == ["a"]


async def test_the_admin_sees_every_account_and_stops_and_logs_out_all_of_them(env: Env) -> None:
    alice = await _add(env, ALICE, "Alice", [(1, "A1")], "a", 3600)
    assert (await env.campaigns.start(UID)).outcome == "started"
    dana = await _add(env, DANA, "Dana", [(2, "D2")], "d", 1800)
    assert (await env.campaigns.start(UID)).outcome == "started"
    admin = Actor.admin(ADMIN_ID)

    card = await env.admin.user_card(admin, UID)
    assert card is not None
    assert [(a.account_id, a.name, a.phone_masked, a.connected, a.current, a.running, a.interval)
            for a in card.accounts] == [(alice, "Alice", "+1•••0001", True, False, True, 3600),
                                        (dana, "Dana", "+1•••0004", True, True, True, 1800)]

    assert (await env.admin.stop_broadcast(admin, UID)).outcome == "ok"
    assert await env.fetchval("SELECT count(*) FROM campaigns WHERE user_id = $1 AND status = 'running'",
                              UID) == 0
    assert (await env.admin.force_logout(admin, UID)).outcome == "ok"
    assert await env.fetchval("SELECT count(*) FROM accounts WHERE user_id = $1 AND status = 'connected'",
                              UID) == 0


async def test_a_new_time_zone_moves_every_running_broadcast_of_the_user(env: Env) -> None:
    """The time zone is the person's (users.timezone): each account's window opening moves with it."""
    windows = ScheduleService(env.db, env.clock)
    alice = await _add(env, ALICE, "Alice", [(1, "A1")], "a", 3600)
    assert (await windows.set_hours_text(UID, "9-10")).outcome == "ok"
    assert (await env.campaigns.start(UID)).outcome == "started"
    dana = await _add(env, DANA, "Dana", [(2, "D2")], "d", 3600)
    assert (await windows.set_hours_text(UID, "9-10")).outcome == "ok"
    assert (await env.campaigns.start(UID)).outcome == "started"
    before = dict(await env.pool.fetch("SELECT account_id, next_run_at FROM campaigns WHERE user_id = $1", UID))

    assert (await windows.set_timezone_text(UID, "+5")).outcome == "ok"
    after = dict(await env.pool.fetch("SELECT account_id, next_run_at FROM campaigns WHERE user_id = $1", UID))
    for account in (alice, dana):  # 09:00 at UTC+5 is five hours before 09:00 UTC
        assert after[account] != before[account]
        assert after[account].astimezone(timezone(timedelta(hours=5))).hour == 9


async def test_an_account_telegram_ended_is_no_longer_the_current_one(env: Env) -> None:
    """The engine disconnects an account whose session died: the menus move to another one."""
    alice = await _add(env, ALICE, "Alice", [(1, "A1")], "a", 3600)
    dana = await _add(env, DANA, "Dana", [(2, "D2")], "d", 3600)
    async with env.db.transaction() as conn:
        assert await accounts.disconnect(conn, dana, "AUTH_KEY_UNREGISTERED") is True
        assert await accounts.disconnect(conn, dana, "AUTH_KEY_UNREGISTERED") is False
    assert await env.fetchval("SELECT current_account_id FROM users WHERE user_id = $1", UID) == alice
