"""Account safety (issue 17) with two real worker processes, read from the sandbox's event log.

Time is compressed with SEND_LIMIT_TIME_SCALE (a "minute" of 0.12 s, an "hour" of 7.2 s, breaks of
1.2-2.4 s), and the sandbox plays Telegram with windows of the same lengths, each one send looser
than ours: the limiter must keep the account under every window without Telegram ever answering
FLOOD_WAIT. A second test floods an account and watches its gaps widen and come back.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from accounts.crypto import SessionCipher, generate_key
from accounts.sandbox_gateway import SandboxGateway
from config.settings import SandboxSettings
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer, run_sandbox
from storage import keys
from storage.db import Database
from tests.chaos.cluster import Cluster, Servers, open_rounds, wait_until
from tests.integration.engine_sandbox import WorldUser, create_world_users

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

SCALE = 0.002
WINDOWS = (60 * SCALE, 3600 * SCALE, 86400 * SCALE)  # 0.12 s, 7.2 s, 172.8 s
OUR_CAPS = (5, 90, 350)
TELEGRAM_CAPS = (6, 100, 400)  # the sandbox's: a little looser than ours
BREAK_AFTER = 50
BREAK_MIN = 600 * SCALE  # 1.2 s
LIMITED_ENV = {
    "SEND_LIMIT_MINUTE": str(OUR_CAPS[0]), "SEND_LIMIT_HOUR": str(OUR_CAPS[1]), "SEND_LIMIT_DAY": str(OUR_CAPS[2]),
    "SEND_LIMIT_TIME_SCALE": str(SCALE), "SEND_LIMIT_SLACK": "0.1", "BREAK_AFTER": str(BREAK_AFTER),
    "BREAK_MIN": "600", "BREAK_MAX": "1200", "GAP_MIN": "0.005", "GAP_MAX": "0.02", "BATCH_SIZE": "5",
}


@dataclass
class Env:
    db: Database
    redis: aioredis.Redis
    sandbox: SandboxServer
    client: SandboxClient
    gateway: SandboxGateway
    cipher: SessionCipher
    cluster: Cluster

    async def user(self, groups: int) -> WorldUser:
        async with self.db.connection() as conn:
            [user] = await create_world_users(self.client, self.gateway, conn, self.cipher, [1], groups)
        return user

    async def sends(self, phone: str) -> list[dict[str, Any]]:
        return [e for e in await self.client.events() if e["method"] == "send_message" and e.get("phone") == phone]

    async def finish(self, within: float) -> float:
        async def done() -> bool:
            return await open_rounds(self.db) == 0
        await wait_until(lambda: _has_round(self.db), 30, what="the round created")
        try:
            return await wait_until(done, within, step=0.2, what="the round finished")
        except AssertionError:
            print(self.cluster.log_tail())
            raise


async def _has_round(db: Database) -> bool:
    async with db.connection() as conn:
        return bool(await conn.fetchval("SELECT count(*) FROM rounds"))


@pytest.fixture
async def env(servers: Servers, tmp_path: Path) -> AsyncIterator[Env]:
    db_url = await servers.fresh_database()
    db = await Database.connect(db_url, max_size=5)
    redis = aioredis.Redis.from_url(servers.redis_url)
    await redis.flushall()
    sandbox = await run_sandbox(SandboxSettings(
        host="127.0.0.1", port=0, seed_file="", rate_limits=True,
        account_send_limit=TELEGRAM_CAPS[0], account_send_window=WINDOWS[0],
        account_send_limit_hour=TELEGRAM_CAPS[1], account_send_window_hour=WINDOWS[1],
        account_send_limit_day=TELEGRAM_CAPS[2], account_send_window_day=WINDOWS[2]))
    key = generate_key()
    cluster = Cluster(db_url, servers.redis_url, sandbox.url, key, tmp_path)
    env = Env(db, redis, sandbox, SandboxClient(sandbox.url), SandboxGateway(sandbox.url), SessionCipher(key),
              cluster)
    try:
        yield env
    finally:
        await asyncio.to_thread(cluster.stop_all)
        await env.gateway.close()
        await env.client.close()
        await sandbox.close()
        await redis.aclose()
        await db.close()


def most_in_window(times_ms: list[float], window: float) -> int:
    """The largest number of sends in any sliding window of ``window`` seconds."""
    ordered = sorted(times_ms)
    best, start = 0, 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window * 1000:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_one_account_300_groups_two_workers_stays_under_every_window(env: Env) -> None:
    user = await env.user(300)
    env.cluster.start(**LIMITED_ENV)
    env.cluster.start(**LIMITED_ENV)
    took = await env.finish(120)

    events = await env.sends(user.phone)
    ok = [e["ts_ms"] for e in events if e["ok"]]
    errors = [e for e in events if not e["ok"]]
    gaps = [(b - a) / 1000 for a, b in itertools.pairwise(sorted(ok))]
    runs, run = [], 1  # sends in a row: consecutive gaps shorter than the shortest break
    for gap in gaps:
        if gap < BREAK_MIN:
            run += 1
        else:
            runs.append(run)
            run = 1
    runs.append(run)
    # at Telegram's side (the event log: arrival times) and at ours (the limiter's log: reservation times)
    counts = [most_in_window(ok, w) for w in WINDOWS]
    reserved = [score for _, score in await env.redis.zrange(keys.LIMIT_LOG.format(account=user.user_id), 0, -1,
                                                            withscores=True)]
    ours = [most_in_window(reserved, w) for w in WINDOWS]
    print(f"took {took:.1f}s, most sends per window at Telegram {counts}, reserved {ours}, runs {runs}")
    assert errors == []  # no FLOOD_WAIT (nor anything else) answered
    assert len(ok) == 300  # the round completed: every group got its post
    async with env.db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM attempts WHERE status = 'sent'") == 300
    assert all(c <= cap for c, cap in zip(counts, TELEGRAM_CAPS, strict=True)), counts  # no window over Telegram's
    assert len(reserved) == 300  # every send was reserved, shared by both workers through Redis
    assert all(c <= cap for c, cap in zip(ours, OUR_CAPS, strict=True)), ours  # nor over our caps
    assert ours[0] == OUR_CAPS[0] and ours[1] == OUR_CAPS[1]  # ... and the caps did bind
    assert max(runs) <= BREAK_AFTER and len(runs) >= 300 // BREAK_AFTER  # breaks taken
    consumers = {c for c in (await _consumers(env.redis))}
    assert len(consumers) == 2  # both worker processes were running


async def _consumers(redis: aioredis.Redis) -> list[str]:
    rows = await redis.zrange(keys.WORKER_HEARTBEAT, 0, -1)
    return [r.decode() if isinstance(r, bytes) else str(r) for r in rows]


# the gaps are read from the sandbox's arrival stamps: a starved event loop delays one arrival and
# shortens the next gap, so this runs with no other test process beside it (make test's serial phase)
@pytest.mark.serial
async def test_a_flood_storm_widens_the_gaps_and_clean_sends_bring_them_back(env: Env) -> None:
    user = await env.user(60)
    base = 0.05
    flat = {"SEND_LIMIT_MINUTE": "0", "SEND_LIMIT_HOUR": "0", "SEND_LIMIT_DAY": "0", "BREAK_AFTER": "0",
            "GAP_MIN": str(base), "GAP_MAX": str(base), "GAP_WIDEN_MAX": "10", "GAP_WIDEN_RECOVER": "5"}
    # the 6th to 9th sends of the account are answered FLOOD_WAIT 1 s, four in a row
    await env.client.add_fault("send_message", "LATENCY", phone=user.phone, seconds=0.0, times=5)
    env.cluster.start(**flat)
    env.cluster.start(**flat)

    async def five_sent() -> bool:
        return len([e for e in await env.sends(user.phone) if e["ok"]]) >= 5
    await wait_until(five_sent, 30, step=0.02, what="five sends")
    await env.client.add_fault("send_message", "FLOOD_WAIT", phone=user.phone, seconds=1, times=4)
    await env.finish(90)

    events = await env.sends(user.phone)
    floods = [e for e in events if e.get("error") == "FLOOD_WAIT"]
    assert len(floods) == 4
    for flood in floods:  # nothing before the hint
        assert not [e for e in events if flood["ts_ms"] < e["ts_ms"] < flood["ts_ms"] + 1000]
    before = [e["ts_ms"] for e in events if e["ok"] and e["ts_ms"] < floods[0]["ts_ms"]]
    after = [e["ts_ms"] for e in events if e["ok"] and e["ts_ms"] > floods[-1]["ts_ms"]]
    gaps_before = [(b - a) / 1000 for a, b in itertools.pairwise(before)]
    gaps = [(b - a) / 1000 for a, b in itertools.pairwise(after)]
    print("before", [round(g, 3) for g in gaps_before], "after", [round(g, 3) for g in gaps[:25]])
    # four floods: x2, x4, x8, then capped at x10; the first gap after them is ten base gaps
    assert gaps[0] >= 10 * base * 0.95
    # ... and halves back every 5 clean sends: x5 after 5, x2.5 after 10, about x1 after 17
    assert 5 * base * 0.9 <= gaps[5] < gaps[0]
    assert statistics.median(gaps[5:10]) > statistics.median(gaps[15:25]) * 2
    assert statistics.median(gaps[25:]) < 2 * base + 0.05  # back to the plain gap (plus the send's own time)
    assert max(gaps_before) < 5 * base
    widen = await env.redis.hget(keys.LIMIT_STATE.format(account=user.user_id), "widen")
    assert widen is not None and float(widen) < 1.01
