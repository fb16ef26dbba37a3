"""The joint journey of issue 13: one person, two Telegram accounts, three messages at random, a
schedule window that closes mid-round, a forum group posting into a chosen topic.

Everything is set up through the bot as a person would, in the sandbox's bot chat. The rounds run
through the real round engine with an injected clock (``window_steps.run_job``: the engine clock
moves on after a job's first send, so the window closes mid-round without waiting for it), and every
check reads the posts back from the sandbox's group feeds:
- each group got one of the three messages per round, never the same one twice in a row (U9.5);
- no send started once the window had closed, and the job was put off to the window's next opening,
  where the rest of the round went out (U10.5);
- the forum's posts landed in the chosen topic (U11.3);
- each account's posts came from its own Telegram account (U8: a broadcast belongs to one account);
- the sandbox itself (its web page's source) names both accounts as connected by this chat user.

The database's clock cannot be moved, so "the next opening" is met the only honest way left: the
window is a daily one that is open now, and the resumed job runs while it is (as it will be at
that opening); what the engine decided at the close (put off by the wait until the next opening)
is checked against the schedule itself.

Run with each account gateway: the sandbox adapter, and the Telethon adapter over the sandbox's
MTProto endpoint (logins, topics and posts over MTProto).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

import contract
from domain import schedule
from tests.parity import window_steps
from tests.parity.harness import Harness, start_harness
from tests.parity.runner import CaseRunner, Output, diff

pytestmark = [pytest.mark.parity, pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.gateways("sandbox", "telethon")]

ZONE = "Asia/Kolkata"  # UTC+5:30: the window is on the person's clock, half an hour off any UTC hour
ROUNDS = 3
CLOSE_AFTER = 3600.0  # the engine clock's step after the first send: well past the window's close


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def harness(server_urls: tuple[str, str], pg_server_url: str, flow_contract: contract.Contract,
                  gateway_kind: str) -> AsyncIterator[Harness]:
    """The parity harness, with the bot's per-user throttle lifted: this scripted person sends some
    150 updates, each as soon as the previous one is handled, and on a quiet machine more than the
    throttle's 50 a second (a person never does; the throttle has its own tests), which would
    answer "slow down" and drop the next ones."""
    unthrottled = replace(flow_contract, settings={**flow_contract.settings, "throttle_rate": 10_000.0})
    async with start_harness(pg_server_url, server_urls[1], unthrottled, gateway=gateway_kind) as h:
        yield h


class Person:
    """One chat user driving the bot through the runner's steps; ``do`` returns what changed."""

    def __init__(self, harness: Harness, runner: CaseRunner, flows: contract.Contract) -> None:
        self.h = harness
        self.runner = runner
        self.flows = flows

    async def do(self, *steps: dict[str, Any]) -> Output:
        before = await self.h.client.chat(self.runner.uid)
        self.runner.last_answer = None
        for step in self.flows.expand(list(steps)):
            await self.runner.step(step)
        out = diff(before, await self.h.client.chat(self.runner.uid))
        out.answer = self.runner.last_answer
        return out


def _has(out: Output, *phrases: str) -> None:
    text = out.haystack.lower()
    for phrase in phrases:
        assert phrase.lower() in text, f"{phrase!r} not in {out.haystack!r}"


@dataclass(frozen=True)
class Account:
    """What one of the person's accounts broadcasts, as set up through the bot."""

    name: str  # as flows.yaml names the demo account (the runner's {phone}/{code} templates)
    phone: str
    groups: dict[int, str]  # peer id -> title as the group list shows it
    messages: list[str]
    topic: tuple[int, int, str] | None = None  # (forum peer id, topic id, topic title)


DANA = Account("dana", "+15550000004", {1401: "🗂 Makers Forum", 1403: "Cycling Club", 1404: "Book Club"},
               ["Workshop open day", "Laser cutter for sale", "Soldering class tonight"],
               topic=(1401, 3, "Marketplace"))
# shares no group with Dana: what lands in a feed is one account's broadcast
ALICE = Account("alice", "+15550000001",
                {1001: "Berlin Flat Swap", 1103: "Bike Parts Exchange", 1002: "Remote Jobs Europe"},
                ["Room free from May", "Road bike, 56 cm", "Hiring a Go developer"])


async def set_up(me: Person, acc: Account) -> None:
    """Log in (the new account becomes the current one), import, select the groups (and the forum's
    topic), three messages in random rotation, an interval."""
    _has(await me.do({"send": "/start"}, {"press": "acc:menu"}, {"press": "acc:login"}), "phone number")
    me.runner.account = acc.name
    await me.do({"send": "{phone_spaced}"})
    _has(await me.do({"send": "{code_spaced}"}), "connected as")

    _has(await me.do({"press": "grp:menu"}, {"press": "grp:import"}), "imported")
    for title in acc.groups.values():
        await me.do({"press": {"data": "grp:t:*:0", "text": f"⬜ {title}"}})
    if acc.topic is not None:
        _, _, topic_title = acc.topic
        await me.do({"press": {"data": "grp:tp:*", "index": 0}})
        _has(await me.do({"press": {"data": "grp:tp:*:*", "text": f"⬜ {topic_title}"}}), f"✅ {topic_title}")

    first, *more = acc.messages
    await me.do({"send": "/start"}, {"press": "msg:menu"}, {"press": "msg:set"}, {"send": first},
                {"press": "msg:save"})
    for text in more:
        await me.do({"send": "/start"}, {"press": "msg:menu"}, {"press": "msg:add"}, {"send": text},
                    {"press": "msg:save"})
    _has(await me.do({"send": "/start"}, {"press": "msg:menu"}, {"press": "msg:mode:rnd"}),
         f"{len(acc.messages)} messages", "rotation: random")
    await me.do({"given": "interval_set"})


async def open_rounds(h: Harness, uid: int) -> dict[str, int]:
    """The person's open rounds by the phone of the account each belongs to."""
    async with h.db.connection() as conn:
        rows = await conn.fetch("SELECT a.phone, r.round_id FROM rounds r JOIN accounts a USING (account_id) "
                                "WHERE r.user_id = $1 AND r.finished_at IS NULL ORDER BY r.round_id", uid)
    found = {str(r["phone"]): int(r["round_id"]) for r in rows}
    assert len(found) == len(rows), f"two open rounds of one account: {rows}"
    return found


async def attempts(h: Harness, round_id: int) -> list[str]:
    async with h.db.connection() as conn:
        rows = await conn.fetch("SELECT status FROM attempts WHERE round_id = $1 ORDER BY attempt_id", round_id)
    return [str(r["status"]) for r in rows]


async def finish(h: Harness, round_id: int, uid: int) -> int:
    """Run the round's jobs (no clock step) until it is done; the sends they made."""
    sends = 0
    for _ in range(5):
        outcome, gateway = await window_steps.run_job(h, round_id, uid, 0.0)
        sends += gateway.sends
        if outcome.action == "ack":
            return sends
        assert outcome.action == "requeue", outcome
    raise AssertionError(f"round {round_id} did not finish in 5 jobs: {await attempts(h, round_id)}")


async def feeds(h: Harness, acc: Account) -> dict[int, list[dict[str, Any]]]:
    return {peer: await h.client.group_messages(peer) for peer in acc.groups}


async def test_two_accounts_rotation_window_and_topic(harness: Harness, flow_contract: contract.Contract) -> None:
    h = harness
    await h.free_accounts()
    runner = CaseRunner(h, flow_contract, contract.Case(id="issue13-journey"))
    runner.uid = uid = await h.new_user("Journey")
    me = Person(h, runner, flow_contract)

    # --- the person's clock, then Dana's broadcast with a window: all through the bot ---------------
    await me.do({"send": "/start"}, {"press": "sch:menu"}, {"press": "sch:tz"})
    _has(await me.do({"send": ZONE}), ZONE)
    await set_up(me, DANA)
    # a daily window, open for an hour already and closing in 30 minutes on the person's clock
    await me.do({"send": "/start"}, {"press": "sch:menu"}, {"press": "sch:hours"})
    hours = await runner.render("{hours_closing}")
    _has(await me.do({"send": hours}), f"active hours: {hours}")
    _has(await me.do({"send": "/start"}, {"press": "bc:start"}), "started: 3 groups")

    # --- the second account: its own groups, messages and interval, any time of day ----------------
    await set_up(me, ALICE)
    _has(await me.do({"send": "/start"}, {"press": "sch:menu"}), "active hours: any time")  # Dana's stays hers
    _has(await me.do({"send": "/start"}, {"press": "bc:start"}), "started: 3 groups")
    # the sandbox saw both logins go through this person's chat (its web page lists them, item 6)
    connected = await h.client.chat_accounts(uid)
    assert sorted(a["phone"] for a in connected) == sorted([DANA.phone, ALICE.phone]), connected
    # the menus act on the current account: switch back to Dana and her window is there
    _has(await me.do({"send": "/start"}, {"press": "acc:menu"}), "2 of at most")
    _has(await me.do({"press": {"data": "acc:sel:*", "text": "Dana"}}), "connected as dana", "current account")
    _has(await me.do({"send": "/start"}, {"press": "sch:menu"}), f"active hours: {hours}")
    async with h.db.connection() as conn:
        rows = await conn.fetch("SELECT a.phone, c.status, c.window_start, c.window_end, c.window_days "
                                "FROM campaigns c JOIN accounts a USING (account_id) WHERE c.user_id = $1", uid)
    campaigns = {str(r["phone"]): r for r in rows}
    assert {p: r["status"] for p, r in campaigns.items()} == {DANA.phone: "running", ALICE.phone: "running"}
    dana = campaigns[DANA.phone]
    window = schedule.window_of(dana["window_start"], dana["window_end"], dana["window_days"])
    assert window is not None and schedule.is_open(window, ZONE, datetime.now(UTC))
    alice = campaigns[ALICE.phone]
    assert schedule.window_of(alice["window_start"], alice["window_end"], alice["window_days"]) is None

    # --- round 1: Dana's window closes after the first send; the rest waits for its next opening ----
    await me.do({"scheduler_tick": True})
    rounds = await open_rounds(h, uid)
    assert set(rounds) == {DANA.phone, ALICE.phone}
    first = rounds[DANA.phone]
    started = datetime.now(UTC)
    outcome, gateway = await window_steps.run_job(h, first, uid, CLOSE_AFTER)
    ended = datetime.now(UTC)
    closed_at = started + timedelta(seconds=CLOSE_AFTER)  # the engine's moved clock, give or take the job
    assert gateway.sends == 1, "a send started after the window closed"
    assert await attempts(h, first) == ["sent", "pending", "pending"]
    assert sum(len(posts) for posts in (await feeds(h, DANA)).values()) == 1
    # put off until the window's next opening, as the schedule reckons it from the moment it closed
    assert outcome.action == "requeue", outcome
    assert not schedule.is_open(window, ZONE, closed_at)
    opening = schedule.next_open(window, ZONE, closed_at)
    assert opening - closed_at > timedelta(hours=20)  # tomorrow's window, not a near moment
    # the engine's now was read between ``started`` and ``ended``; the delay is the wait until the
    # opening from there, plus at most a second of jitter
    resumes = timedelta(seconds=CLOSE_AFTER + outcome.delay)
    assert started + resumes - timedelta(seconds=1) <= opening <= ended + resumes, (opening, outcome.delay)
    # Alice's broadcast has no window: her round goes out meanwhile, all of it
    assert await finish(h, rounds[ALICE.phone], uid) == len(ALICE.groups)
    # at the next opening (the daily window is open now as it will be then) the rest of Dana's goes out
    assert await finish(h, first, uid) == 2
    assert await attempts(h, first) == ["sent", "sent", "sent"]

    # --- rounds 2 and 3 of both: each interval later, inside the window -----------------------------
    for _ in range(ROUNDS - 1):
        async with h.db.connection() as conn:  # the interval passed
            await conn.execute("UPDATE campaigns SET next_run_at = now() WHERE user_id = $1", uid)
        await me.do({"scheduler_tick": True})
        rounds = await open_rounds(h, uid)
        assert set(rounds) == {DANA.phone, ALICE.phone}
        for acc in (DANA, ALICE):
            assert await finish(h, rounds[acc.phone], uid) == len(acc.groups)

    # --- read back from the sandbox's group feeds -----------------------------------------------------
    for acc in (DANA, ALICE):
        for peer, posts in (await feeds(h, acc)).items():
            texts_ = [p["text"] for p in posts]
            assert len(texts_) == ROUNDS, (peer, texts_)
            assert set(texts_) <= set(acc.messages), (peer, texts_)
            assert all(a != b for a, b in itertools.pairwise(texts_)), f"a repeat in {peer}: {texts_}"
            assert {p["from_phone"] for p in posts} == {acc.phone}, (peer, posts)
            forum, topic_id, _ = acc.topic or (None, None, "")
            shown_topics = {p.get("topic_id") for p in posts}
            assert shown_topics == ({topic_id} if peer == forum else {None}), (peer, shown_topics)
