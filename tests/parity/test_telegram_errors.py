"""Issue 11's sandbox behaviours with both account gateways (sandbox over HTTP, Telethon over the
sandbox's MTProto): an account-wide restriction pauses without disabling groups, forum and paid
groups close with their reason, any error name and code injected through the fault API ends
alike through both adapters, and a second bot user connecting the same account is refused."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest

import contract
from accounts.gateway import AccountGateway, AccountRef, GroupRef, OutgoingMessage, release
from domain.errors import AccountThrottled, GatewayError, GroupClosed, SessionDead
from services import engine
from tests.integration.engine_support import Engine, open_round_count, settings_with
from tests.parity.harness import Harness
from tests.parity.runner import CaseRunner

pytestmark = [pytest.mark.parity, pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.gateways("sandbox", "telethon")]

_phones = itertools.count(1)


async def world_account(harness: Harness, **groups: dict[str, Any]) -> tuple[str, list[int]]:
    """A fresh world account whose groups are ``groups`` (name -> extra spec), ids in that order."""
    n = next(_phones)
    phone = f"+1777{harness.gateway_kind == 'telethon':d}{n:06d}"
    base = 900_000 + n * 100 + (50 if harness.gateway_kind == "telethon" else 0)
    ids = [base + i for i in range(len(groups))]
    await harness.client.add_accounts([{"phone": phone, "first_name": "Err", "groups": [
        {"id": gid, "title": name, "kind": "supergroup", **spec}
        for gid, (name, spec) in zip(ids, groups.items(), strict=True)]}])
    return phone, ids


async def login(harness: Harness, gateway: AccountGateway, phone: str) -> AccountRef:
    state = await gateway.send_code(f"err_{phone[1:]}", phone)
    signed = await gateway.sign_in(state, await harness.client.latest_code(phone))
    return AccountRef(0, signed.session)


async def refs(gateway: AccountGateway, account: AccountRef) -> dict[str, GroupRef]:
    listed = await gateway.list_groups(account)
    await release(gateway, account)  # as the import does: the connection lives as long as the lease
    return {g.title: GroupRef(g.peer_id, g.access_hash, g.kind) for g in listed}


async def test_an_account_restriction_refuses_every_group_until_lifted(harness: Harness) -> None:
    gateway = harness.new_gateway()
    phone, _ = await world_account(harness, a={}, b={})
    account = await login(harness, gateway, phone)
    groups = await refs(gateway, account)
    await harness.client.restrict_account(phone, "USER_BANNED_IN_CHANNEL")
    for group in groups.values():
        with pytest.raises(AccountThrottled) as err:
            await gateway.send_message(account, group, OutgoingMessage("hi"))
        assert err.value.code == "USER_BANNED_IN_CHANNEL" and err.value.spambot
    await harness.client.restrict_account(phone, None)
    assert await gateway.send_message(account, groups["a"], OutgoingMessage("hi")) > 0


async def test_forum_and_paid_groups_close_with_their_reason_and_import_records_forums(harness: Harness) -> None:
    gateway = harness.new_gateway()
    phone, ids = await world_account(harness, forum={"forum": True, "general_closed": True},
                                     open_forum={"forum": True}, paid={"paid_stars": 25}, plain={})
    account = await login(harness, gateway, phone)
    listed = {g.title: g for g in await gateway.list_groups(account)}
    assert {t: g.is_forum for t, g in listed.items()} == {
        "forum": True, "open_forum": True, "paid": False, "plain": False}
    groups = await refs(gateway, account)
    for title, reason in (("forum", "TOPIC_CLOSED"), ("paid", "ALLOW_PAYMENT_REQUIRED")):
        with pytest.raises(GroupClosed) as err:
            await gateway.send_message(account, groups[title], OutgoingMessage("hi"))
        assert err.value.reason == reason
    await gateway.send_message(account, groups["open_forum"], OutgoingMessage("to General"))
    assert [len(await harness.client.group_messages(g)) for g in ids] == [0, 1, 0, 0]


@pytest.mark.parametrize(("name", "code", "expected"), [
    ("BRAND_NEW_REFUSAL", 400, GatewayError), ("BRAND_NEW_FORBIDDEN", 403, GatewayError),
    ("BRAND_NEW_NOT_ACCEPTABLE", 406, AccountThrottled), ("BRAND_NEW_AUTH", 401, SessionDead),
    ("FROZEN_SOMETHING_NEW", 400, AccountThrottled),
])
async def test_any_fault_name_and_code_reach_the_table_alike(
    harness: Harness, name: str, code: int, expected: type[GatewayError]
) -> None:
    gateway = harness.new_gateway()
    phone, _ = await world_account(harness, a={})
    account = await login(harness, gateway, phone)
    group = (await refs(gateway, account))["a"]
    await harness.client.add_fault("send_message", name, phone=phone, code=code)
    with pytest.raises(GatewayError) as err:
        await gateway.send_message(account, group, OutgoingMessage("hi"))
    assert type(err.value) is expected and err.value.code == name


async def test_a_restricted_account_pauses_the_broadcast_and_disables_no_group(harness: Harness) -> None:
    gateway = harness.new_gateway()
    phone, _ = await world_account(harness, a={}, b={}, c={})
    account = await login(harness, gateway, phone)
    groups = await refs(gateway, account)
    uid = await harness.new_user("Restricted")
    async with harness.db.connection() as conn:
        await conn.execute("INSERT INTO users (user_id, access_status) VALUES ($1, 'granted') "
                           "ON CONFLICT (user_id) DO NOTHING", uid)
        await conn.execute("INSERT INTO accounts (user_id, phone, tg_user_id, session_enc) VALUES ($1, $2, $3, $4)",
                           uid, phone, uid, harness.cipher.encrypt(account.session))
        await conn.executemany("INSERT INTO groups (user_id, peer_id, access_hash, kind, title, selected) "
                               "VALUES ($1, $2, $3, 'supergroup', $4, true)",
                               [(uid, g.peer_id, g.access_hash, t) for t, g in groups.items()])
        await conn.execute("INSERT INTO messages (user_id, version, text) VALUES ($1, 1, 'sale')", uid)
        await conn.execute("INSERT INTO campaigns (user_id, status, interval_seconds, next_run_at, started_at) "
                           "VALUES ($1, 'running', 3600, now(), now() - interval '1 minute')", uid)
    await harness.client.restrict_account(phone, "USER_BANNED_IN_CHANNEL")
    eng = Engine(harness.db, harness.redis, gateway, settings_with(peer_flood_pause=600), harness.cipher,
                 consumer=f"parity-{uid}")
    await eng.jobs.tick()
    round_id = await harness.fetchval("SELECT round_id FROM rounds WHERE user_id = $1", uid)
    await eng.run_until_done([round_id])
    assert await open_round_count(harness.db, [round_id]) == 0
    async with harness.db.connection() as conn:
        rows = await conn.fetch("SELECT status FROM groups WHERE user_id = $1", uid)
        statuses = Counter(r["status"] for r in rows)
        campaign = await conn.fetchrow("SELECT status, paused_until > now() AS paused, pause_reason "
                                       "FROM campaigns WHERE user_id = $1", uid)
        notes = await conn.fetch("SELECT kind FROM notifications WHERE user_id = $1", uid)
    assert statuses == {"active": 3}
    assert tuple(campaign) == ("running", True, "USER_BANNED_IN_CHANNEL")
    kinds = Counter(n["kind"] for n in notes)
    assert kinds[engine.ACCOUNT_RESTRICTED] == 1 and kinds[engine.GROUP_DISABLED] == 0
    await harness.client.restrict_account(phone, None)


async def test_a_second_bot_user_connecting_the_same_account_is_refused(
    harness: Harness, flow_contract: contract.Contract
) -> None:
    phone = flow_contract.accounts["alice"]["phone"]
    sessions_before = len(await harness.client.sessions(phone))
    first = CaseRunner(harness, flow_contract, contract.Case(id="first owner"))
    second = CaseRunner(harness, flow_contract, contract.Case(id="second owner"))
    first.uid = await harness.new_user("Owner")
    second.uid = await harness.new_user("Second")
    for step in flow_contract.expand([{"given": "connected"}]):
        await first.step(step)
    assert await harness.fetchval("SELECT status FROM accounts WHERE user_id = $1", first.uid) == "connected"

    for step in flow_contract.expand([{"given": "connected"}]):
        await second.step(step)
    shown = "\n".join(str(m.get("text") or "") for m in await harness.client.chat(second.uid)
                      if m["from"] == "bot")
    assert "already connected by another user" in shown, shown
    assert await harness.fetchval("SELECT count(*) FROM accounts WHERE user_id = $1 AND status = 'connected'",
                                  second.uid) == 0
    # the refused login's session was logged out at Telegram: only the first owner's is left
    assert len(await harness.client.sessions(phone)) == sessions_before + 1
