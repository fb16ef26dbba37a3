from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from domain.errors import FloodWait, SessionDead
from services.groups import GONE_REASON, READ_ONLY_REASON, NotConnected
from tests.integration.services_support import Env, group, make_env

pytestmark = pytest.mark.integration

UID = 7
OTHER = 8


@pytest.fixture
def env(db_pool) -> Env:
    return make_env(db_pool, selection_limit=3)


async def _titles(env: Env, user_id: int = UID) -> dict[str, tuple[bool, str, str]]:
    rows = await env.fetch("SELECT title, selected, status, reason FROM groups WHERE user_id = $1", user_id)
    return {r["title"]: (r["selected"], r["status"], r["reason"]) for r in rows}


async def test_import_needs_a_connected_account(env: Env) -> None:
    with pytest.raises(NotConnected):
        await env.groups.import_groups(UID)


async def test_import_merges_new_updated_and_gone(env: Env) -> None:
    await env.connect(UID)
    env.gateway.groups = [group(1, "Alpha"), group(2, "Beta"), group(3, "Gamma", can_send=False)]
    first = await env.groups.import_groups(UID)
    assert (first.total, first.new, first.updated, first.gone, first.disabled) == (3, 3, 0, 0, 1)
    assert env.gateway.listed_with == [env.gateway.durable_sessions[-1]]  # decrypted for the gateway
    assert await _titles(env) == {
        "Alpha": (False, "active", ""),
        "Beta": (False, "active", ""),
        "Gamma": (False, "disabled", READ_ONLY_REASON),
    }

    page = await env.groups.page(UID, 0)
    alpha, beta = page.items[0].group_id, page.items[1].group_id
    assert (await env.groups.toggle(UID, alpha)).outcome == "selected"
    assert (await env.groups.toggle(UID, beta)).outcome == "selected"

    # Alpha renamed (keeps its selection), Beta vanished, Gamma writable again, Delta new
    env.gateway.groups = [group(1, "Alpha 2"), group(3, "Gamma"), group(4, "Delta")]
    second = await env.groups.import_groups(UID)
    assert (second.total, second.new, second.updated, second.gone, second.disabled) == (3, 1, 2, 1, 0)
    assert await _titles(env) == {
        "Alpha 2": (True, "active", ""),
        "Beta": (False, "gone", GONE_REASON),
        "Gamma": (False, "active", ""),
        "Delta": (False, "active", ""),
    }
    assert await env.fetchval("SELECT access_hash FROM groups WHERE user_id = $1 AND peer_id = 1", UID) == 10

    # a gone group that comes back is active again, unselected
    env.gateway.groups = [group(1, "Alpha 2"), group(2, "Beta")]
    third = await env.groups.import_groups(UID)
    assert (third.new, third.updated, third.gone) == (0, 2, 2)
    assert (await _titles(env))["Beta"] == (False, "active", "")


async def test_read_only_channels_are_left_out_and_closed_groups_listed_disabled(env: Env) -> None:
    await env.connect(UID)
    env.gateway.groups = [
        group(1, "Own channel", kind="channel"),  # admin with post rights: a broadcast target
        group(2, "News", can_send=False, kind="channel"),  # only followed
        group(3, "Muted supergroup", can_send=False),
        group(4, "Muted basic group", can_send=False, kind="group"),
        group(5, "Chat"),
    ]
    first = await env.groups.import_groups(UID)
    assert (first.total, first.new, first.updated, first.gone, first.disabled) == (4, 4, 0, 0, 2)
    assert await _titles(env) == {
        "Own channel": (False, "active", ""),
        "Muted supergroup": (False, "disabled", READ_ONLY_REASON),
        "Muted basic group": (False, "disabled", READ_ONLY_REASON),
        "Chat": (False, "active", ""),
    }
    counts = await env.groups.counts(UID)
    assert (counts.total, counts.active, counts.disabled, counts.gone) == (4, 2, 2, 0)

    # a channel imported while it could be posted to (selected, even) loses the post right: gone
    own = next(i.group_id for i in (await env.groups.page(UID, 0)).items if i.title == "Own channel")
    assert (await env.groups.toggle(UID, own)).outcome == "selected"
    env.gateway.groups[0] = group(1, "Own channel", can_send=False, kind="channel")
    second = await env.groups.import_groups(UID)
    assert (second.total, second.new, second.updated, second.gone, second.disabled) == (3, 0, 3, 1, 2)
    assert (await _titles(env))["Own channel"] == (False, "gone", GONE_REASON)
    assert "News" not in await _titles(env)
    toggled = await env.groups.toggle(UID, own)
    assert toggled.outcome == "disabled" and toggled.reason == GONE_REASON

    # the post right back: active again, unselected
    env.gateway.groups[0] = group(1, "Own channel", kind="channel")
    third = await env.groups.import_groups(UID)
    assert (third.new, third.updated, third.gone) == (0, 4, 0)
    assert (await _titles(env))["Own channel"] == (False, "active", "")


async def test_revoked_session_on_import_disconnects_and_stops(env: Env) -> None:
    await env.ready(UID)
    assert (await env.campaigns.start(UID)).outcome == "started"
    env.gateway.list_error = SessionDead("SESSION_REVOKED")
    with pytest.raises(SessionDead):
        await env.groups.import_groups(UID)
    row = await env.fetchrow("SELECT status, session_enc, disconnected_reason FROM accounts WHERE user_id = $1", UID)
    assert (row["status"], row["session_enc"], row["disconnected_reason"]) == ("disconnected", None, "SESSION_REVOKED")
    assert await env.fetchval("SELECT status FROM campaigns WHERE user_id = $1", UID) == "stopped"
    with pytest.raises(NotConnected):
        await env.groups.import_groups(UID)


async def test_other_gateway_errors_propagate_without_changes(env: Env) -> None:
    await env.connect(UID)
    env.gateway.list_error = FloodWait(30)
    with pytest.raises(FloodWait):
        await env.groups.import_groups(UID)
    assert await env.fetchval("SELECT status FROM accounts WHERE user_id = $1", UID) == "connected"


async def test_pages_of_ten_in_a_stable_order(env: Env) -> None:
    await env.connect(UID)
    # duplicate titles are ordered by id; insertion order is deliberately shuffled
    env.gateway.groups = [group(100 + i, f"T{(i * 7) % 25:02d}") for i in range(25)] + [group(999, "T03")]
    await env.groups.import_groups(UID)
    seen = []
    for number in range(3):
        page = await env.groups.page(UID, number)
        assert page.page == number and page.pages == 3 and page.total == 26
        seen.extend((item.title, item.group_id) for item in page.items)
    assert len(seen) == 26 and seen == sorted(seen)
    assert [len((await env.groups.page(UID, p)).items) for p in range(3)] == [10, 10, 6]

    stale = await env.groups.page(UID, 9)
    assert stale.page == 2 and stale.out_of_range and not stale.has_next and stale.has_prev


async def test_toggle_only_own_active_groups_and_respect_the_limit(env: Env) -> None:
    await env.connect(UID)
    await env.connect(OTHER)
    env.gateway.groups = [group(i, f"G{i}") for i in range(1, 6)] + [group(9, "Closed", can_send=False)]
    await env.groups.import_groups(UID)
    await env.groups.import_groups(OTHER)
    mine = {i.title: i.group_id for i in (await env.groups.page(UID, 0)).items}
    theirs = {i.title: i.group_id for i in (await env.groups.page(OTHER, 0)).items}

    # a forged id of another user's group: not found, nothing changes on either side
    forged = await env.groups.toggle(UID, theirs["G1"])
    assert forged.outcome == "not_found"
    assert (await env.groups.counts(OTHER)).selected == 0
    assert (await env.groups.toggle(UID, 10**12)).outcome == "not_found"

    disabled = await env.groups.toggle(UID, mine["Closed"])
    assert disabled.outcome == "disabled" and disabled.reason == READ_ONLY_REASON

    for title in ("G1", "G2", "G3"):
        assert (await env.groups.toggle(UID, mine[title])).outcome == "selected"
    limited = await env.groups.toggle(UID, mine["G4"])
    assert limited.outcome == "limit_reached" and limited.selected_count == 3 and limited.limit == 3
    unselected = await env.groups.toggle(UID, mine["G1"])
    assert unselected.outcome == "unselected" and unselected.selected_count == 2
    assert (await env.groups.counts(UID)).selected == 2


async def test_select_all_and_none_act_on_one_page(env: Env) -> None:
    await env.connect(UID)
    env.gateway.groups = [group(i, f"G{i:02d}") for i in range(1, 13)]
    await env.groups.import_groups(UID)

    result = await env.groups.select_all(UID, 1)  # page 1 holds G11, G12
    assert (result.outcome, result.changed, result.selected_count) == ("ok", 2, 2)
    result = await env.groups.select_all(UID, 0)  # only one more fits
    assert (result.outcome, result.changed, result.selected_count) == ("limit_reached", 1, 3)
    selected = {r["title"] for r in await env.fetch("SELECT title FROM groups WHERE selected AND user_id = $1", UID)}
    assert selected == {"G01", "G11", "G12"}

    cleared = await env.groups.select_none(UID, 1)
    assert (cleared.changed, cleared.selected_count) == (2, 1)
    counts = await env.groups.counts(UID)
    assert (counts.total, counts.selected, counts.active) == (12, 1, 12)


async def test_concurrent_toggles_never_pass_the_limit(env: Env) -> None:
    await env.connect(UID)
    env.gateway.groups = [group(i, f"G{i}") for i in range(1, 9)]
    await env.groups.import_groups(UID)
    ids = [i.group_id for i in (await env.groups.page(UID, 0)).items]
    results = await asyncio.gather(*(env.groups.toggle(UID, gid) for gid in ids))
    assert sorted(r.outcome for r in results).count("selected") == 3
    assert (await env.groups.counts(UID)).selected == 3


async def test_import_records_which_supergroups_are_forums(env: Env) -> None:
    await env.connect(UID)
    env.gateway.groups = [replace(group(1, "Forum"), is_forum=True), group(2, "Plain")]
    await env.groups.import_groups(UID)
    rows = await env.fetch("SELECT title, is_forum FROM groups WHERE user_id = $1 ORDER BY title", UID)
    assert [tuple(r) for r in rows] == [("Forum", True), ("Plain", False)]
    # a forum that turned its topics off is seen on the next import
    env.gateway.groups = [group(1, "Forum"), group(2, "Plain")]
    await env.groups.import_groups(UID)
    assert await env.fetchval("SELECT count(*) FROM groups WHERE user_id = $1 AND is_forum", UID) == 0
