"""A7 kept in the database: the repository and service against PostgreSQL, and the announcer resuming
an announcement after a crash, a graceful stop and alongside a second leader."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any, cast

import asyncpg
import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import SendMessage

from domain.errors import AlreadyRunning
from domain.models import UserProfile
from metrics import REGISTRY
from roles.bot import texts
from roles.bot.announcer import Announcer
from services.admin import Actor, NotAllowed
from services.announcements import AnnouncementBusy, AnnouncementService
from storage.repositories import announcements as repo
from tests.integration.services_support import ADMIN_ID, Env, make_env

pytestmark = pytest.mark.integration

ADMIN = Actor.admin(ADMIN_ID)
NOTICE = "Maintenance tonight"
READERS = list(range(501, 513))  # 12 users besides the admin


@pytest.fixture
async def env(db_pool: asyncpg.Pool) -> Env:
    environment = make_env(db_pool)
    for uid in [ADMIN_ID, *READERS]:
        await environment.access.touch(UserProfile(uid, f"User{uid}"))
    return environment


class FakeBot:
    """Records every send that reached "Telegram"; a script per chat raises instead, once per entry.

    ``freeze_after``: the send after that many announcement sends hangs before it reaches anybody.
    """

    def __init__(self, script: dict[int, list[BaseException]] | None = None,
                 freeze_after: int | None = None) -> None:
        self.script = script or {}
        self.freeze_after = freeze_after
        self.sent: list[tuple[int, str]] = []
        self.frozen = asyncio.Event()

    async def send_message(self, chat_id: int, text: str, **_: Any) -> None:
        if self.freeze_after is not None and text == NOTICE and len(self.notices()) >= self.freeze_after:
            self.frozen.set()
            await asyncio.Event().wait()
        outcomes = self.script.get(chat_id) or []
        if outcomes:
            raise outcomes.pop(0)
        self.sent.append((chat_id, text))

    def notices(self) -> list[int]:
        return [chat for chat, text in self.sent if text == NOTICE]

    def reports(self) -> list[str]:
        return [text for chat, text in self.sent if chat == ADMIN_ID and text != NOTICE]


class FreezingStore(AnnouncementService):
    """Hangs before the claim after ``allowed`` claims: a process that dies between two sends."""

    def __init__(self, env: Env, allowed: int) -> None:
        super().__init__(env.db, env.clock)
        self.allowed = allowed
        self.frozen = asyncio.Event()

    async def claim(self, announcement_id: int, user_id: int) -> bool:
        if self.allowed <= 0:
            self.frozen.set()
            await asyncio.Event().wait()
        self.allowed -= 1
        return await super().claim(announcement_id, user_id)


def blocked(uid: int) -> TelegramForbiddenError:
    return TelegramForbiddenError(SendMessage(chat_id=uid, text="x"), "Forbidden: bot was blocked by the user")


def retry_after(seconds: int) -> TelegramRetryAfter:
    return TelegramRetryAfter(SendMessage(chat_id=1, text="x"), "Too Many Requests", seconds)


def announcer(env: Env, store: AnnouncementService | None = None) -> Announcer:
    return Announcer(env.notifications, env.admin, rate=200.0, store=store, idle=0.05)


async def statuses(env: Env, announcement_id: int) -> dict[str, int]:
    rows = await env.fetch("SELECT status, count(*) AS n FROM announcement_deliveries "
                           "WHERE announcement_id = $1 GROUP BY status", announcement_id)
    return {r["status"]: r["n"] for r in rows}


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def run_until_done(env: Env, worker: Announcer, bot: FakeBot, announcement_id: int) -> None:
    """A fresh leader's loop, until the announcement is done (then stopped)."""
    stop = asyncio.Event()
    task = worker.start(cast(Bot, bot), stop)

    async def done() -> bool:
        assert not task.done(), task
        status = await env.fetchval("SELECT status FROM announcements WHERE announcement_id = $1",
                                    announcement_id)
        return bool(status == "done")

    await wait_for(done)
    stop.set()
    await asyncio.wait_for(task, 5)


# --- the service and the repository --------------------------------------------------------------


async def test_a_confirmed_announcement_is_stored_with_all_its_targets_and_audited(env: Env) -> None:
    await env.admin.ban(ADMIN, READERS[0])
    await env.notifications.mark_bot_blocked(READERS[1])
    entities = [{"type": "bold", "offset": 0, "length": 4}]
    started = await env.admin.start_announcement(ADMIN, NOTICE, entities, report_to=ADMIN_ID)
    expected = await env.admin.announce_targets(ADMIN)
    assert started.targets == len(expected) == len(READERS) - 1  # the admin counts, the two skipped don't

    store = AnnouncementService(env.db, env.clock)
    row = await store.get(started.announcement_id)
    assert row is not None
    assert (row.text, row.entities, row.status, row.total) == (NOTICE, entities, "running", started.targets)
    assert (row.created_by_kind, row.created_by, row.report_to, row.finished_at) == ("admin", ADMIN_ID,
                                                                                     ADMIN_ID, None)
    targets = await env.fetch("SELECT user_id, status, attempts FROM announcement_deliveries "
                              "WHERE announcement_id = $1 ORDER BY user_id", started.announcement_id)
    assert [r["user_id"] for r in targets] == expected
    assert {(r["status"], r["attempts"]) for r in targets} == {("pending", 0)}
    audit = await env.fetchrow("SELECT actor_kind, actor_id, action, outcome, detail::text AS detail "
                               "FROM audit_log ORDER BY audit_id DESC LIMIT 1")
    assert tuple(audit)[:4] == ("admin", ADMIN_ID, "announce", "ok")
    assert f'"targets":{started.targets}' in audit["detail"].replace(" ", "")
    assert '"state":"started"' in audit["detail"].replace(" ", "")
    assert await store.unfinished() == [started.announcement_id]
    assert await env.admin.announcing() and await store.running()


async def test_one_announcement_at_a_time_and_only_for_admins(env: Env) -> None:
    first = await env.admin.start_announcement(ADMIN, NOTICE, [], report_to=ADMIN_ID)
    with pytest.raises(AnnouncementBusy):
        await env.admin.start_announcement(ADMIN, "Second", [], report_to=ADMIN_ID)
    with pytest.raises(NotAllowed):
        await env.admin.start_announcement(Actor.admin(READERS[0]), "Intruder", [], report_to=READERS[0])
    assert await env.fetchval("SELECT count(*) FROM announcements") == 1
    assert await env.fetchval("SELECT count(*) FROM announcement_deliveries WHERE announcement_id <> $1",
                              first.announcement_id) == 0
    outcomes = await env.fetch("SELECT actor_id, outcome FROM audit_log WHERE action = 'announce' "
                               "ORDER BY audit_id")
    assert [tuple(r) for r in outcomes] == [(ADMIN_ID, "ok"), (READERS[0], "denied")]


async def test_claims_outcomes_and_the_finish_are_written_as_they_happen(env: Env) -> None:
    started = await env.admin.start_announcement(ADMIN, NOTICE, [], report_to=ADMIN_ID)
    aid = started.announcement_id
    store = AnnouncementService(env.db, env.clock)
    batch = await store.pending(aid, 5)
    assert batch == sorted([ADMIN_ID, *READERS])[:5]
    first, second, third, fourth, fifth = batch

    assert await store.claim(aid, first) and not await store.claim(aid, first)  # in flight: nobody else
    assert (await store.pending(aid, 1)) == [second]
    await store.record(aid, first, "delivered")
    assert await store.claim(aid, second)
    await store.release(aid, second)  # a 429: pending again, one retry counted
    assert await store.claim(aid, second)
    await store.record(aid, second, "blocked")
    assert await store.claim(aid, third)  # cut mid-send: resolved as failed, never sent again
    assert await store.fail_in_flight(aid) == [third]
    assert not await store.claim(aid, third)
    assert await store.finish(aid) is None  # targets left: not done
    assert await store.claim(aid, fourth)
    assert await store.finish(aid) is None  # one in flight: not done either
    await store.record(aid, fourth, "failed")
    for uid in await store.pending(aid, 100):
        assert fifth <= uid and await store.claim(aid, uid)
        await store.record(aid, uid, "delivered")

    done = await store.finish(aid)
    assert done is not None
    assert (done.status, done.total, done.delivered, done.blocked, done.failed, done.retries) == (
        "done", len(READERS) + 1, len(READERS) - 2, 1, 2, 1)
    assert done.finished_at == env.clock()
    assert await store.finish(aid) is None  # finished once
    assert await store.unfinished() == [] and not await env.admin.announcing()
    attempts = await env.fetchval("SELECT attempts FROM announcement_deliveries WHERE announcement_id = $1 "
                                  "AND user_id = $2", aid, second)
    assert attempts == 2
    audit = await env.fetchrow("SELECT actor_kind, actor_id, outcome, detail::text AS detail FROM audit_log "
                               "WHERE action = 'announce' ORDER BY audit_id DESC LIMIT 1")
    assert tuple(audit)[:3] == ("admin", ADMIN_ID, "ok")
    detail = audit["detail"].replace(" ", "")
    assert '"state":"done"' in detail and '"blocked":1' in detail and '"failed":2' in detail
    # the next one may start now (marking a blocked user is the outbox's job, not done here)
    assert (await env.admin.start_announcement(ADMIN, "Next", [], report_to=None)).targets == len(READERS) + 1


async def test_the_schema_keeps_one_running_announcement_and_known_statuses(env: Env) -> None:
    async with env.pool.acquire() as conn:
        await repo.create(conn, text="a", entities=[], created_by_kind="admin", created_by=ADMIN_ID,
                          report_to=None, now=env.clock())
        with pytest.raises(AlreadyRunning):  # the schema's unique index, as the domain names it
            await repo.create(conn, text="b", entities=[], created_by_kind="admin", created_by=ADMIN_ID,
                              report_to=None, now=env.clock())
        aid = await conn.fetchval("SELECT announcement_id FROM announcements")
        assert await repo.add_targets(conn, aid, [READERS[0], READERS[0], READERS[1]], env.clock()) == 2
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE announcement_deliveries SET status = 'lost'")
        with pytest.raises(asyncpg.CheckViolationError):  # done needs its finish time
            await conn.execute("UPDATE announcements SET status = 'done'")


# --- the announcer --------------------------------------------------------------------------------


def sends_counted() -> dict[str, float]:
    return {outcome: REGISTRY.get_sample_value("announcement_sends_total", {"outcome": outcome}) or 0.0
            for outcome in ("delivered", "blocked", "failed", "retry_after")}


async def test_an_announcement_resumes_after_a_crash_and_everyone_gets_it_once(env: Env) -> None:
    counted = sends_counted()
    started = await env.admin.start_announcement(ADMIN, NOTICE, [], report_to=ADMIN_ID)
    aid = started.announcement_id
    bot = FakeBot({READERS[3]: [blocked(READERS[3])], READERS[8]: [retry_after(0)]})

    # the first leader dies between two sends, after five of them
    store = FreezingStore(env, allowed=5)
    first = announcer(env, store)
    task = first.start(cast(Bot, bot), asyncio.Event())
    await asyncio.wait_for(store.frozen.wait(), 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(bot.notices()) == 4 and READERS[3] not in bot.notices()  # one of the five blocked the bot
    assert await statuses(env, aid) == {"delivered": 4, "blocked": 1, "pending": started.targets - 5}
    assert bot.reports() == []

    # a new leader (a fresh process) resumes the rest
    await run_until_done(env, announcer(env), bot, aid)
    assert Counter(bot.notices()) == {uid: 1 for uid in [ADMIN_ID, *READERS] if uid != READERS[3]}
    assert bot.reports() == [texts.announce_report(started.targets - 1, 1, 0, started.targets)]
    row = await AnnouncementService(env.db).get(aid)
    assert row is not None
    assert (row.status, row.delivered, row.blocked, row.failed, row.retries) == (
        "done", started.targets - 1, 1, 0, 1)
    assert await env.fetchval("SELECT bot_blocked FROM users WHERE user_id = $1", READERS[3]) is True
    now = sends_counted()
    assert {k: now[k] - counted[k] for k in now} == {
        "delivered": started.targets - 1, "blocked": 1, "failed": 0, "retry_after": 1}


async def test_a_send_cut_by_a_crash_is_counted_failed_and_never_sent_twice(env: Env) -> None:
    started = await env.admin.start_announcement(ADMIN, NOTICE, [], report_to=ADMIN_ID)
    aid = started.announcement_id
    bot = FakeBot(freeze_after=3)
    task = announcer(env).start(cast(Bot, bot), asyncio.Event())
    await asyncio.wait_for(bot.frozen.wait(), 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    cut = sorted([ADMIN_ID, *READERS])[3]
    assert await statuses(env, aid) == {"delivered": 3, "sending": 1, "pending": started.targets - 4}

    bot.freeze_after = None
    await run_until_done(env, announcer(env), bot, aid)
    assert Counter(bot.notices()) == {uid: 1 for uid in [ADMIN_ID, *READERS] if uid != cut}
    assert bot.reports() == [texts.announce_report(started.targets - 1, 0, 1, started.targets)]
    status = await env.fetchval("SELECT status FROM announcement_deliveries WHERE announcement_id = $1 "
                                "AND user_id = $2", aid, cut)
    assert status == "failed"


async def test_a_stopped_announcer_leaves_the_rest_for_the_next_leader(env: Env) -> None:
    """A graceful stop (grace 0): the loop ends between two sends, nothing is marked interrupted."""
    started = await env.admin.start_announcement(ADMIN, NOTICE, [], report_to=ADMIN_ID)
    aid = started.announcement_id
    bot = FakeBot()
    slow = Announcer(env.notifications, env.admin, rate=20.0, idle=0.05)
    stop = asyncio.Event()
    task = slow.start(cast(Bot, bot), stop, grace=0.0)

    async def some_sent() -> bool:
        return len(bot.notices()) >= 3

    await wait_for(some_sent)
    stop.set()
    await asyncio.wait_for(task, 2)
    counts = await statuses(env, aid)
    assert set(counts) == {"delivered", "pending"} and counts["delivered"] == len(bot.notices())
    assert await env.fetchval("SELECT status FROM announcements WHERE announcement_id = $1", aid) == "running"

    await run_until_done(env, announcer(env), bot, aid)
    assert Counter(bot.notices()) == {uid: 1 for uid in [ADMIN_ID, *READERS]}
    assert bot.reports() == [texts.announce_report(started.targets, 0, 0, started.targets)]


async def test_close_lets_a_short_announcement_finish(env: Env) -> None:
    started = await env.admin.start_announcement(ADMIN, NOTICE, [], report_to=ADMIN_ID)
    bot = FakeBot()
    worker = announcer(env)
    task = worker.start(cast(Bot, bot), asyncio.Event())

    async def sending() -> bool:
        return bool(bot.notices())

    await wait_for(sending)
    await worker.close(timeout=5)
    assert task.done()
    assert Counter(bot.notices()) == {uid: 1 for uid in [ADMIN_ID, *READERS]}
    assert bot.reports() == [texts.announce_report(started.targets, 0, 0, started.targets)]


async def test_two_leaders_at_once_still_send_each_notice_once(env: Env) -> None:
    """A split brain for the length of a lease: every target is claimed by one of them only."""
    started = await env.admin.start_announcement(ADMIN, NOTICE, [], report_to=ADMIN_ID)
    bot = FakeBot()
    stop = asyncio.Event()
    tasks = [announcer(env).start(cast(Bot, bot), stop) for _ in range(2)]

    async def done() -> bool:
        return bool(await env.fetchval("SELECT status FROM announcements") == "done")

    await wait_for(done)
    stop.set()
    await asyncio.gather(*tasks)
    assert Counter(bot.notices()) == {uid: 1 for uid in [ADMIN_ID, *READERS]}
    assert bot.reports() == [texts.announce_report(started.targets, 0, 0, started.targets)]


async def test_a_new_announcement_wakes_the_running_loop(env: Env) -> None:
    bot = FakeBot()
    worker = Announcer(env.notifications, env.admin, rate=200.0, idle=60.0)  # it would not look again soon
    stop = asyncio.Event()
    task = worker.start(cast(Bot, bot), stop)
    await asyncio.wait_for(worker.idling.wait(), 5)  # the loop found nothing and idles
    started = await env.admin.start_announcement(ADMIN, NOTICE, [], report_to=ADMIN_ID)
    worker.wake()

    async def reported() -> bool:
        return bool(bot.reports())

    await wait_for(reported, timeout=5)
    assert bot.reports() == [texts.announce_report(started.targets, 0, 0, started.targets)]
    stop.set()
    await asyncio.wait_for(task, 2)
