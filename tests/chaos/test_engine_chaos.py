"""Chaos: worker replicas as real processes, killed, cut off from Redis and PostgreSQL, flooded.

Every test checks the engine's promises from the outside, with the sandbox's group feeds and
event log as "what Telegram received": no duplicate post per (round, group), no stuck round,
nothing sent before a flood hint, stop and errors taking effect. Intervals, gaps and leases are
short (cluster.ENGINE_ENV) so the suite runs in a few minutes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from accounts.crypto import SessionCipher, generate_key
from accounts.sandbox_gateway import SandboxGateway
from config.settings import SandboxSettings
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer, run_sandbox
from storage.db import Database
from tests.chaos.cluster import (
    ENGINE_ENV,
    LEASE,
    Cluster,
    Servers,
    audit,
    double_rounds,
    hold_schedules,
    open_rounds,
    wait_until,
)
from tests.integration.engine_sandbox import WorldUser, create_world_users

pytestmark = [pytest.mark.chaos, pytest.mark.integration]


@dataclass
class World:
    db: Database
    redis: aioredis.Redis
    sandbox: SandboxServer
    client: SandboxClient
    gateway: SandboxGateway
    cipher: SessionCipher
    cluster: Cluster

    async def users(self, count: int, groups: int, interval: int, first: int = 1, **kw: Any) -> list[WorldUser]:
        async with self.db.connection() as conn:
            return await create_world_users(self.client, self.gateway, conn, self.cipher,
                                            list(range(first, first + count)), groups, interval=interval, **kw)

    async def send_events(self, since: int = 0) -> list[dict[str, Any]]:
        return [e for e in await self.client.events(since) if e["method"] == "send_message"]


@pytest.fixture
async def world(servers: Servers, tmp_path: Path) -> AsyncIterator[World]:
    db_url = await servers.fresh_database()
    db = await Database.connect(db_url, max_size=5)
    redis = aioredis.Redis.from_url(servers.redis_url)
    await redis.flushall()
    sandbox = await run_sandbox(SandboxSettings(host="127.0.0.1", port=0, rate_limits=False, seed_file=""))
    key = generate_key()
    cluster = Cluster(db_url, servers.redis_url, sandbox.url, key, tmp_path)
    world = World(db, redis, sandbox, SandboxClient(sandbox.url), SandboxGateway(sandbox.url), SessionCipher(key),
                  cluster)
    try:
        yield world
    finally:
        await asyncio.to_thread(cluster.stop_all)
        await world.gateway.close()
        await world.client.close()
        await sandbox.close()
        await redis.aclose()
        await db.close()


async def first_send(world: World, within: float = 30) -> None:
    async def any_sent() -> bool:
        return any(e["ok"] for e in await world.send_events())
    await wait_until(any_sent, within, what="a first send")


async def settle(world: World, within: float) -> float:
    """Stop scheduling and wait for every round to finish; returns how long that took."""
    await hold_schedules(world.db)

    async def done() -> bool:
        return await open_rounds(world.db) == 0
    try:
        return await wait_until(done, within, step=0.2, what="all rounds finished")
    except AssertionError:
        print(world.cluster.log_tail())
        raise


async def test_sigkill_ten_times_during_rounds(world: World) -> None:
    """20 users x 30 groups, three replicas, one SIGKILLed every 1-2 s (ten times, each replaced)."""
    await world.users(20, 30, interval=8)
    # every send takes a little time, so that kills do land on sends in flight
    await world.client.add_fault("send_message", "latency", seconds=0.003, times=-1)
    for _ in range(3):
        world.cluster.start()
    await first_send(world)

    kills = 0
    killed_at: list[datetime] = []  # the database's clock, read once each victim is dead
    rng = random.Random(7)
    names = list(world.cluster.procs)
    while kills < 10:
        await asyncio.sleep(rng.uniform(1.0, 2.0))
        victim = names.pop(0)
        world.cluster.kill(victim)
        async with world.db.connection() as conn:
            killed_at.append(await conn.fetchval("SELECT now()"))
        kills += 1
        names.append(world.cluster.start())

    took = await settle(world, LEASE + 60)
    result = await audit(world.db, world.client)
    print(f"kills={kills} posts={result.posts} {dict(result.statuses)} settled in {took:.1f}s")
    assert result.duplicates == []
    assert result.open_attempts == 0
    # a killed worker loses at most its in-flight sends: one per job it was running (WORKER_CONCURRENCY
    # jobs at once), each claimed (`sending`, durable) before the kill that ended it
    async with world.db.connection() as conn:
        lost = await conn.fetch("SELECT sending_at FROM attempts WHERE status = 'unknown'")
    assert len(lost) == result.unknown
    per_kill: Counter[int] = Counter()
    for row in lost:
        ended_by = [i for i, at in enumerate(killed_at) if row["sending_at"] <= at]
        assert ended_by, f"a send claimed at {row['sending_at']} became unknown with no kill after it"
        per_kill[ended_by[0]] += 1
    assert max(per_kill.values(), default=0) <= int(ENGINE_ENV["WORKER_CONCURRENCY"]), per_kill
    assert result.sent > 600  # rounds really ran through the kills
    assert await double_rounds(world.db) == []


async def test_redis_flush_and_postgres_restart_mid_run(world: World, servers: Servers) -> None:
    """FLUSHALL while rounds run: they resume within two leases; then PostgreSQL restarts: nobody dies."""
    interval = 6
    users = await world.users(12, 30, interval=interval)
    for _ in range(2):
        world.cluster.start()
    await first_send(world)
    await asyncio.sleep(1.5)

    async with world.db.connection() as conn:
        open_before = {r["user_id"] for r in await conn.fetch(
            "SELECT DISTINCT r.user_id FROM rounds r JOIN attempts t USING (round_id) "
            "WHERE r.finished_at IS NULL AND t.status = 'pending'")}
    flushed_at = time.time() * 1000
    await world.redis.flushall()
    await asyncio.sleep(2 * LEASE + 1)
    events = await world.send_events()
    phones = {u.user_id: u.phone for u in users}
    for uid in open_before:  # every round that had work left got a send within two leases
        after = [e["ts_ms"] for e in events if e["ok"] and e.get("phone") == phones[uid] and e["ts_ms"] > flushed_at]
        assert after and min(after) - flushed_at <= 2 * LEASE * 1000, (uid, after[:1])

    await asyncio.to_thread(servers.restart_postgres, 2.0)
    await world.db.close()
    world.db = await Database.connect(world.cluster.db_url, max_size=5)
    await asyncio.sleep(3)
    assert all(world.cluster.alive().values()), world.cluster.log_tail()
    sent_before = len([e for e in await world.send_events() if e["ok"]])

    async def sending_again() -> bool:
        return len([e for e in await world.send_events() if e["ok"]]) > sent_before
    # A round takes ~2.5 s of the interval: a fixed 2 s look can fall between two rounds.
    await wait_until(sending_again, interval + 2 * LEASE + 5, what="a send after PostgreSQL's restart")

    await settle(world, LEASE + 60)
    result = await audit(world.db, world.client)
    print(f"posts={result.posts} {dict(result.statuses)}")
    assert result.duplicates == []
    assert result.open_attempts == 0
    assert all(world.cluster.alive().values())
    assert await double_rounds(world.db) == []


async def test_replicas_that_all_schedule_never_create_double_rounds(world: World) -> None:
    """Two replicas run the due scan without the leader lease, every 50 ms, 1 s interval."""
    await world.users(10, 3, interval=1)
    for _ in range(2):
        world.cluster.start(CHAOS_FREE_SCHEDULER="1", SCHEDULER_TICK="0.05", GAP_MIN="0", GAP_MAX="0")
    await first_send(world)
    await asyncio.sleep(6)
    await settle(world, LEASE + 30)

    async with world.db.connection() as conn:
        per_user = await conn.fetch("SELECT user_id, count(*) AS n FROM rounds GROUP BY 1")
    assert all(r["n"] >= 3 for r in per_user)  # several due times each, scheduled concurrently
    assert await double_rounds(world.db) == []
    result = await audit(world.db, world.client)
    assert result.duplicates == []


async def test_flood_storm_and_every_error_kind(world: World) -> None:
    """30% of sends answered with 5-30 s flood waits, some slow mode, PEER_FLOOD, a closed group,
    a revoked session and a stop pressed mid-round, all at once."""
    users = await world.users(10, 8, interval=3600)
    peer_flood, closed, revoked, stopped = users[:4]
    storm = users[4:]
    await world.client.add_fault("send_message", "CHAT_WRITE_FORBIDDEN", group_id=closed.peer_ids[1], times=-1)
    for user in storm[:3]:  # slow mode on one group each
        await world.client.add_fault("send_message", "SLOWMODE_WAIT", group_id=user.peer_ids[2], seconds=6)
    await world.client.add_fault("send_message", "PEER_FLOOD", group_id=peer_flood.peer_ids[2])
    # every storm account's first send meets a flood wait too: with gaps of 0.05-0.1 s (skewed towards
    # the shorter end by the limiter) a round of 8 groups can end before the polling below has seen
    # a send to add a fault after it, so the storm must not hang on that race
    rng = random.Random(11)
    for user in storm:
        await world.client.add_fault("send_message", "FLOOD_WAIT", phone=user.phone, seconds=rng.randint(5, 30))
    world.cluster.start()
    world.cluster.start()

    seen = 0
    marks: dict[str, float] = {}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        events = await world.send_events()
        for event in events[seen:]:
            if not event["ok"] or event.get("phone") not in {u.phone for u in storm}:
                continue
            if rng.random() < 0.3:  # the next send of this phone gets a flood wait
                await world.client.add_fault("send_message", "FLOOD_WAIT", phone=event.get("phone"),
                                             seconds=rng.randint(5, 30))
        seen = len(events)
        ok_by_phone = {p: sum(1 for e in events if e["ok"] and e.get("phone") == p)
                       for p in (revoked.phone, stopped.phone)}
        if "revoke" not in marks and ok_by_phone[revoked.phone] >= 2:
            await world.client.revoke_sessions(revoked.phone)
            marks["revoke"] = time.time() * 1000
        if "second" not in marks:  # a second round for the user whose group is closed
            async with world.db.connection() as conn:
                if await conn.fetchval("SELECT count(*) FROM rounds WHERE user_id = $1 AND finished_at IS NOT NULL",
                                       closed.user_id):
                    await conn.execute("UPDATE campaigns SET next_run_at = now() WHERE user_id = $1",
                                       closed.user_id)
                    marks["second"] = time.time() * 1000
        if "stop" not in marks and ok_by_phone[stopped.phone] >= 3:
            async with world.db.connection() as conn:  # what CampaignService.stop writes
                await conn.execute("UPDATE campaigns SET status = 'stopped', next_run_at = NULL, "
                                   "stopped_at = now() WHERE user_id = $1", stopped.user_id)
            marks["stop"] = time.time() * 1000
        await asyncio.sleep(0.1)
    await world.client.clear_faults()
    await settle(world, 30 + LEASE + 30)

    events = await world.send_events()
    floods = [e for e in events if e.get("error") in ("FLOOD_WAIT", "SLOWMODE_WAIT")]
    assert len([e for e in floods if e["error"] == "FLOOD_WAIT"]) >= 5
    for flood in floods:  # nothing to that account (flood) or group (slow mode) before the hint
        until = flood["ts_ms"] + flood["retry_after"] * 1000
        early = [e for e in events if e.get("phone") == flood["phone"] and flood["ts_ms"] < e["ts_ms"] < until
                 and (flood["error"] == "FLOOD_WAIT" or e.get("group_id") == flood["group_id"])]
        assert early == [], (flood, early[:2])
    async with world.db.connection() as conn:
        campaigns = {r["user_id"]: r for r in await conn.fetch(
            "SELECT *, extract(epoch FROM paused_until - now()) AS left FROM campaigns")}
        accounts = {r["user_id"]: r for r in await conn.fetch("SELECT * FROM accounts")}
        group = await conn.fetchrow("SELECT status, reason FROM groups WHERE peer_id = $1", closed.peer_ids[1])
        notes = {(r["user_id"], r["kind"]) for r in await conn.fetch("SELECT user_id, kind FROM notifications")}
    # PEER_FLOOD: the campaign is paused for the setting, nothing more from that account
    flood_at = next(e["ts_ms"] for e in events if e.get("error") == "PEER_FLOOD")
    assert not [e for e in events if e.get("phone") == peer_flood.phone and e["ts_ms"] > flood_at]
    assert campaigns[peer_flood.user_id]["left"] > 3500 and (peer_flood.user_id, "flood_pause") in notes
    # the permanently closed group is disabled after its first error and never tried again
    assert len([e for e in events if e.get("group_id") == closed.peer_ids[1]]) == 1
    assert len([e for e in events if e["ok"] and e.get("group_id") == closed.peer_ids[0]]) == 2  # two rounds
    assert tuple(group) == ("disabled", "CHAT_WRITE_FORBIDDEN") and (closed.user_id, "group_disabled") in notes
    # the revoked session stops the campaign and disconnects the account
    assert campaigns[revoked.user_id]["status"] == "stopped"
    assert accounts[revoked.user_id]["status"] == "disconnected"
    assert (revoked.user_id, "session_ended") in notes
    assert not [e for e in events if e.get("phone") == revoked.phone and e["ts_ms"] > marks["revoke"] and e["ok"]]
    # stop pressed mid-round: at most the send in flight after it
    assert len([e for e in events if e.get("phone") == stopped.phone and e["ts_ms"] > marks["stop"]]) <= 1
    result = await audit(world.db, world.client)
    assert result.duplicates == [] and result.open_attempts == 0
    assert sum(1 for e in events if e["ok"] and e.get("phone") in {u.phone for u in storm}) == 6 * 8
