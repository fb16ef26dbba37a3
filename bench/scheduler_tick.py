"""Scheduler tick cost with 10k and 100k campaigns and the same number due.

    .venv/bin/python -m bench.scheduler_tick [--due 500] [--groups 5] [--repeat 5] [--windows]

A tick (SchedulerJobs.tick: lock the due campaigns, create their rounds and attempts in one
transaction, advance next_run_at, enqueue the jobs) is timed with 10,000 and with 100,000 running
campaigns, ``--due`` of them due each time (the others due in the future). Between repeats the
created rounds are removed and the due campaigns made due again. The baseline is the 10k case:
the ratio 100k/10k should stay near 1 (target <= 2) because the due scan reads the
``(status, next_run_at)`` index range of the due rows only. For contrast, a naive scan that reads
every running campaign and filters in Python is timed too.

``--windows`` (U10): half the campaigns (the even user ids, due or not) get a schedule window on
a Europe/Berlin clock, open now for the due ones, so every other due campaign's next run is moved
to its window's next opening by the tick; the due scan itself stays the same range scan (target:
ratio 100k/10k <= 2 here too).

Reconciliation (``--open-rounds 5000``, 0 to skip): one pass (SchedulerJobs.reconcile) with that
many open rounds, (a) in the steady state, every round's next job due later (``next_job_at``) and
queued, and (b) right after a Redis flush with every round's job overdue (the worst case: a slice
of ``RECONCILE_SLICE`` rounds is looked up per pass); beside the reconciliation as it was before
issue 14 (every open round through ``rounds_open_idx``, HEXISTS + GET each). Counted: Redis round
trips and commands of the client, commands the server executed (Lua inner calls included), time.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis

from bench.common import (
    counting,
    database,
    engine_settings,
    fresh_database,
    machine,
    new_cipher,
    redis_server_calls,
    seed,
    servers,
)
from domain import schedule
from roles.worker.loop import round_queue
from scheduler import jobs as scheduler_jobs
from scheduler.jobs import SchedulerJobs
from services import engine
from storage.db import Database
from storage.lease import Leases
from storage.user_lock import UserLock

WINDOW_ZONE = "Europe/Berlin"


def open_window(ahead: int) -> tuple[int, int]:
    """Active hours (local minutes) open from 2 h ago to ``ahead`` minutes ahead on WINDOW_ZONE's clock."""
    local = datetime.now(UTC).astimezone(schedule.zone(WINDOW_ZONE))
    minute = local.hour * 60 + local.minute
    return (minute - 120) % schedule.DAY, (minute + ahead) % schedule.DAY or schedule.DAY


async def build(pg_url: str, total: int, due: int, groups: int, windows: bool = False) -> str:
    url = await fresh_database(pg_url)
    cipher = new_cipher()
    async with database(url, 4) as db, db.connection() as conn:
        # the due ones with groups and a message (they get rounds); the rest only a campaign row
        await seed(conn, cipher, range(1, due + 1), groups, due_offset=-1)
        await conn.execute(
            "INSERT INTO users (user_id) SELECT g FROM generate_series($1::bigint, $2) g", due + 1, total
        )
        await conn.execute(
            """INSERT INTO campaigns (user_id, status, interval_seconds, next_run_at)
               SELECT g, 'running', 3600, now() + interval '10 minutes' + (g || ' milliseconds')::interval
               FROM generate_series($1::bigint, $2) g""",
            due + 1,
            total,
        )
        if windows:
            # even ids: a window open now; ids = 0 mod 4 for 6 h more (the next run stays), = 2 mod 4
            # for 30 min more on weekdays and today (the next run moves to the next opening)
            await conn.execute("UPDATE users SET timezone = $1 WHERE user_id % 2 = 0", WINDOW_ZONE)
            today = datetime.now(UTC).astimezone(schedule.zone(WINDOW_ZONE)).weekday()
            for remainder, ahead, days in ((0, 360, schedule.ALL_DAYS), (2, 30, 0b11111 | 1 << today)):
                start, end = open_window(ahead)
                await conn.execute(
                    """UPDATE campaigns SET window_start = $1, window_end = $2, window_days = $3
                       WHERE user_id % 4 = $4""",
                    start, end, days, remainder,
                )
        await conn.execute("VACUUM ANALYZE")
    return url


async def reset(db: Database, due: int) -> None:
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM rounds")
        await conn.execute(
            "UPDATE campaigns SET next_run_at = now() - interval '1 second', last_round_id = NULL "
            "WHERE user_id <= $1",
            due,
        )
    async with db.connection() as conn:
        await conn.execute("VACUUM ANALYZE campaigns, rounds, attempts")


async def time_ticks(
    pg_url: str, redis: aioredis.Redis, total: int, due: int, groups: int, repeat: int, windows: bool = False
) -> tuple[float, float, float]:
    url = await build(pg_url, total, due, groups, windows)
    settings = engine_settings()
    async with database(url, 8) as db:
        queue = round_queue(redis, "tick", settings)
        jobs = SchedulerJobs(db, queue, Leases(redis), settings.engine, redis)
        ticks, idle, naive = [], [], []
        for _ in range(repeat):
            await reset(db, due)
            await redis.flushall()
            started = time.perf_counter()
            result = await jobs.tick()
            ticks.append(time.perf_counter() - started)
            assert result.created == due, result
            started = time.perf_counter()
            assert (await jobs.tick()).created == 0  # nothing due: the cost of a quiet tick
            idle.append(time.perf_counter() - started)
            if windows:
                await check_windows(db)
            started = time.perf_counter()
            async with db.connection() as conn:
                rows = await conn.fetch(
                    "SELECT user_id, next_run_at, paused_until FROM campaigns WHERE status = 'running'"
                )
                now = await conn.fetchval("SELECT now()")
            _ = [r for r in rows if r["next_run_at"] <= now]
            naive.append(time.perf_counter() - started)
    return statistics.median(ticks), statistics.median(idle), statistics.median(naive)


async def check_windows(db: Database) -> None:
    """Every advanced next run of a windowed campaign lies inside its window (the tick applied it),
    and the short windows' next runs moved past the hour to their next opening."""
    async with db.connection() as conn:
        rows = await conn.fetch(
            """SELECT c.user_id, c.next_run_at, c.window_start, c.window_end, c.window_days, u.timezone
               FROM campaigns c JOIN users u USING (user_id)
               WHERE c.window_start IS NOT NULL
                 AND EXISTS (SELECT 1 FROM rounds r WHERE r.user_id = c.user_id)""")
    assert rows, "no windowed campaign got a round"
    now = datetime.now(UTC)
    for r in rows:
        window = schedule.window_of(r["window_start"], r["window_end"], r["window_days"])
        assert schedule.is_open(window, r["timezone"], r["next_run_at"]), r
        if r["user_id"] % 4 == 2:
            assert r["next_run_at"] - now > timedelta(hours=12), r
async def legacy_reconcile(db: Database, jobs: SchedulerJobs) -> int:
    """Reconciliation's lookups as they were before issue 14: every open round, 2 commands each."""
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT round_id, user_id, account_id FROM rounds WHERE finished_at IS NULL "
            "AND created_at <= now() - interval '2 seconds' ORDER BY created_at LIMIT 20000")
    queued = await scheduler_jobs._chunked(
        lambda r: jobs.queue.is_queued(engine.job_id(r["round_id"])), rows)
    holders = await scheduler_jobs._chunked(
        lambda r: jobs.leases.holder(UserLock.name(r["user_id"], r["account_id"])), rows)
    return sum(1 for q, h in zip(queued, holders, strict=True) if not q and h is None)


async def measure(redis: aioredis.Redis, call: Any) -> dict[str, float]:
    before = await redis_server_calls(redis)
    with counting() as counts:
        started = time.perf_counter()
        await call()
        elapsed = time.perf_counter() - started
    return {"ms": elapsed * 1000, "rt": counts.redis_round_trips, "cmds": counts.redis_commands,
            "server": await redis_server_calls(redis) - before - 1}


async def reconcile_costs(
    pg_url: str, redis: aioredis.Redis, open_rounds: int
) -> dict[str, dict[str, float]]:
    url = await fresh_database(pg_url)
    settings = engine_settings()
    async with database(url, 8) as db:
        async with db.connection() as conn:
            await seed(conn, new_cipher(), range(1, open_rounds + 1), 1, due_offset=-1)
        await redis.flushall()
        queue = round_queue(redis, "reconcile", settings)
        jobs = SchedulerJobs(db, queue, Leases(redis), settings.engine, redis)
        assert (await jobs.tick()).created == open_rounds
        async with db.connection() as conn:
            # steady state: each round ran a job and waits for its continuation, queued (delayed)
            await conn.execute("UPDATE rounds SET created_at = now() - interval '1 minute', "
                               "next_job_at = now() + interval '1 minute'")
            await conn.execute("VACUUM ANALYZE rounds")
        out = {"steady": await measure(redis, jobs.reconcile),
               "steady, before issue 14": await measure(redis, lambda: legacy_reconcile(db, jobs))}
        async with db.connection() as conn:
            await conn.execute("UPDATE rounds SET next_job_at = now() - interval '1 minute'")
        await redis.flushall()  # every job lost and overdue
        out["flushed"] = await measure(redis, jobs.reconcile)
        out["flushed, before issue 14"] = await measure(redis, lambda: legacy_reconcile(db, jobs))
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--due", type=int, default=500)
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--windows", action="store_true",
                        help="schedule windows (U10) on half the campaigns")
    parser.add_argument("--open-rounds", type=int, default=5000,
                        help="reconciliation with this many open rounds (0: skip)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = {}
    with servers() as srv:
        redis = aioredis.Redis.from_url(srv.redis_url)
        try:
            for total in (10_000, 100_000):
                results[total] = await time_ticks(
                    srv.pg_url, redis, total, args.due, args.groups, args.repeat, args.windows
                )
            costs = {n: await reconcile_costs(srv.pg_url, redis, n)
                     for n in (100, args.open_rounds) if args.open_rounds}
        finally:
            await redis.aclose()
    print(f"machine: {machine()}")
    print(
        f"{args.due} campaigns due per tick, {args.groups} groups each ({args.due * args.groups} attempts); "
        f"median of {args.repeat}" + ("; schedule windows on half the campaigns" if args.windows else "")
    )
    for total, (tick, idle, naive) in results.items():
        print(
            f"{total:>7,} campaigns: tick {tick * 1000:7.1f} ms "
            f"({tick / args.due * 1e6:.0f} us per due campaign), "
            f"quiet tick {idle * 1000:5.1f} ms, naive full scan {naive * 1000:7.1f} ms"
        )
    small, big = results[10_000], results[100_000]
    print(
        f"ratio 100k/10k (baseline 10k): tick {big[0] / small[0]:.2f}, quiet tick {big[1] / small[1]:.2f}, "
        f"naive scan {big[2] / small[2]:.2f}"
    )

    for n, cost in costs.items():
        print(f"reconciliation, {n:,} open rounds (one pass):")
        for label, c in cost.items():
            print(f"  {label:<26} {c['ms']:8.1f} ms  Redis {c['rt']:>5} round trips, "
                  f"{c['cmds']:>6} commands, {c['server']:>6} server-side")
    if len(costs) == 2:
        small, big = (costs[n]["steady"] for n in costs)
        print(f"steady pass, ratio {args.open_rounds:,}/100 open rounds: Redis server-side commands "
              f"{big['server']} vs {small['server']}, time {big['ms'] / max(small['ms'], 0.001):.2f}x")



if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
