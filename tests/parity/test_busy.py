"""Group import and logout wait for the per-user lock the worker sends under (engine.md: never the
same session in two places at once). While a "worker" (this test) holds a user's lock, grp:import,
acc:logout:yes and adm:logout answer "your broadcast is sending right now", the callback is
answered, the session is not touched and nothing else changes (a logout has stopped the broadcast
already, the account stays connected); once the lock is free the same presses work."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
import pytest_asyncio

import contract
from config.settings import EngineSettings
from roles.bot import texts
from storage.lease import HeldLease, Leases
from storage.user_lock import UserLock
from tests.parity.harness import ADMIN, Harness, start_harness
from tests.parity.runner import CaseRunner, Output, diff

pytestmark = [pytest.mark.parity, pytest.mark.asyncio(loop_scope="module")]

ALICE = "+15550000001"
# a short pacing gap keeps the logout's wait for the lock (a widened gap plus the lock wait) short
ENGINE = replace(EngineSettings(), gap_min=0.05, gap_max=0.1)
SESSION_CALLS = ("get_dialogs", "log_out")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def harness(server_urls: tuple[str, str], pg_server_url: str,
                  flow_contract: contract.Contract) -> AsyncIterator[Harness]:
    async with start_harness(pg_server_url, server_urls[1], flow_contract, redis_db=10, engine=ENGINE) as h:
        yield h


class Chat:
    """One person's steps through the runner; ``do`` returns what changed in ``watch``'s chat."""

    def __init__(self, harness: Harness, flow_contract: contract.Contract, uid: int) -> None:
        self.h = harness
        self.runner = CaseRunner(harness, flow_contract, contract.Case(id="busy"))
        self.runner.uid = uid
        self.runner.account = "alice"

    async def given(self, *steps: dict[str, Any]) -> None:
        for step in self.runner.contract.expand(list(steps)):
            await self.runner.step(step)

    async def do(self, step: dict[str, Any], watch: int | None = None) -> Output:
        chat_of = self.runner.uid if watch is None else watch
        before = await self.h.client.chat(chat_of)
        self.runner.last_answer = None
        await self.runner.step(step)
        out = diff(before, await self.h.client.chat(chat_of))
        out.answer = self.runner.last_answer
        return out


@contextlib.asynccontextmanager
async def worker_holds(harness: Harness, uid: int) -> AsyncIterator[HeldLease]:
    """The broadcast lock of the user's current account taken and kept the way the worker takes it
    for a batch."""
    async with harness.db.connection() as conn:
        account_id = await conn.fetchval("SELECT current_account_id FROM users WHERE user_id = $1", uid)
    assert account_id is not None, "the user has no account"
    lock = UserLock(Leases(harness.redis), harness.settings.engine.lease_ttl)
    lease = await lock.try_acquire(uid, account_id)
    assert lease is not None, "the account's lock was taken already"
    async with lock.keep(lease) as held:
        yield held
    assert await lock.holder(uid, account_id) is None


async def groups_of(harness: Harness, uid: int) -> list[tuple[Any, ...]]:
    async with harness.db.connection() as conn:
        rows = await conn.fetch("SELECT group_id, peer_id, title, selected, status, reason, updated_at "
                                "FROM groups WHERE user_id = $1 ORDER BY group_id", uid)
    return [tuple(r.values()) for r in rows]


def session_calls(harness: Harness, since: int) -> list[str]:
    return [e.method for e in harness.sandbox.events.since(since)
            if e.api == "world" and e.phone == ALICE and e.method in SESSION_CALLS]


def last_event(harness: Harness) -> int:
    events = harness.sandbox.events.since(0)
    return events[-1].seq if events else 0


async def fact(harness: Harness, sql: str, uid: int) -> Any:
    return await harness.fetchval(sql, uid)


async def connected(harness: Harness, uid: int) -> bool:
    return bool(await fact(harness, "SELECT status = 'connected' FROM accounts WHERE user_id = $1", uid))


async def campaign(harness: Harness, uid: int) -> str:
    return str(await fact(harness, "SELECT status FROM campaigns WHERE user_id = $1", uid))


async def _wait_for_text(harness: Harness, uid: int, words: str, within: float = 30.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        for message in reversed(await harness.client.chat(uid)):
            if message["from"] == "bot" and words in str(message.get("text") or ""):
                return dict(message)
        assert asyncio.get_running_loop().time() < deadline, f"{words!r} never shown"
        await asyncio.sleep(0.05)


def assert_busy(out: Output, phrase: str, *buttons: str) -> None:
    assert out.answer is not None and out.answer.get("answered"), "the callback was not answered"
    assert phrase in out.haystack, out.haystack
    assert texts.ERROR not in out.haystack
    for data in buttons:
        assert data in out.callback_ids, (data, out.callback_ids)


async def test_import_and_logout_wait_for_a_sending_broadcast(harness: Harness,
                                                              flow_contract: contract.Contract) -> None:
    uid = await harness.new_user("Busy")
    me = Chat(harness, flow_contract, uid)
    await me.given({"given": "running"}, {"press": "menu:main"}, {"press": "grp:menu"})
    # a title a real import would refresh: the busy import must leave it as it is
    await harness.db.pool.execute("UPDATE groups SET title = 'Stale title' WHERE group_id = "
                                  "(SELECT min(group_id) FROM groups WHERE user_id = $1)", uid)
    groups_before = await groups_of(harness, uid)
    assert await campaign(harness, uid) == "running" and len(groups_before) == 8

    async with worker_holds(harness, uid) as held:
        seq = last_event(harness)
        out = await me.do({"press": "grp:import"})
        assert out.answer is not None and out.answer.get("text") == texts.IMPORTING
        # the import runs as a job: its first page waits up to the lock wait for the batch, then the
        # progress message says "busy" in place (the update itself went on after a few seconds)
        busy = await _wait_for_text(harness, uid, texts.BROADCAST_BUSY)
        buttons = str(busy.get("reply_markup"))
        assert "grp:import" in buttons and "menu:main" in buttons, buttons
        assert await groups_of(harness, uid) == groups_before
        assert await campaign(harness, uid) == "running"  # an import stops nothing

        await me.do({"press": "menu:main"})
        await me.do({"press": "acc:menu"})
        await me.do({"press": "acc:logout"})
        out = await me.do({"press": "acc:logout:yes"})
        assert_busy(out, texts.LOGOUT_BUSY, "acc:logout", "menu:main")
        assert await connected(harness, uid)
        assert await campaign(harness, uid) == "stopped"  # stopped before the wait, as documented
        assert await groups_of(harness, uid) == groups_before
        assert session_calls(harness, seq) == []  # the session was not used while the batch held it
        assert not held.lost.is_set()
        assert await harness.state(uid) == "idle"

    seq = last_event(harness)
    await me.do({"press": "menu:main"})
    await me.do({"press": "grp:menu"})
    out = await me.do({"press": "grp:import"})
    assert "0 new, 8 updated, 0 gone" in out.haystack.lower(), out.haystack
    after = await groups_of(harness, uid)
    assert "Stale title" not in [row[2] for row in after]
    assert [row[3] for row in after] == [row[3] for row in groups_before]  # the selection is kept

    await me.do({"press": "menu:main"})
    await me.do({"press": "acc:menu"})
    await me.do({"press": "acc:logout"})
    out = await me.do({"press": "acc:logout:yes"})
    assert texts.DISCONNECTED in out.haystack, out.haystack
    assert not await connected(harness, uid)
    # the import reads the main chat list, then the archive folder (one page each here)
    assert session_calls(harness, seq) == ["get_dialogs", "get_dialogs", "log_out"]


async def test_an_admin_logout_waits_for_a_sending_broadcast(harness: Harness,
                                                            flow_contract: contract.Contract) -> None:
    uid = await harness.new_user("AdminBusy")
    user = Chat(harness, flow_contract, uid)
    await user.given({"given": "running"}, {"given": "admin_card"})
    assert await campaign(harness, uid) == "running"

    async with worker_holds(harness, uid):
        seq = last_event(harness)
        out = await user.do({"admin_press": f"adm:logout:{uid}"}, watch=ADMIN)
        assert_busy(out, texts.ADMIN_LOGOUT_BUSY, f"adm:logout:{uid}")
        assert await connected(harness, uid)
        assert await campaign(harness, uid) == "stopped"
        assert session_calls(harness, seq) == []

    out = await user.do({"admin_press": f"adm:logout:{uid}"}, watch=ADMIN)
    assert "account logged out" in out.haystack.lower(), out.haystack
    assert not await connected(harness, uid)
    assert session_calls(harness, seq) == ["log_out"]
