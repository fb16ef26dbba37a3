"""What U9's rotation adds to a scheduler tick: one message each vs three in order vs three at random.

    .venv/bin/python -m bench.rotation_tick [--due 500] [--groups 5] [--repeat 5]

``--due`` campaigns are due at each tick with ``--groups`` selected groups each. The baseline, in
the same run, is every user with one message (the round's message is it: one extra read per tick).
Then every user has three messages, rotated in order (the round's message and each attempt's are
written) and at random (each group's message of the previous round is read too). Between ticks the
rounds are finished, not deleted, so each tick has a previous round to rotate from.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import redis.asyncio as aioredis

from bench.common import database, engine_settings, fresh_database, machine, new_cipher, seed, servers
from roles.worker.loop import round_queue
from scheduler.jobs import SchedulerJobs
from storage.db import Database
from storage.lease import Leases

CASES = (("one message", 1, "seq"), ("3 messages, in order", 3, "seq"), ("3 messages, random", 3, "rnd"))


async def build(pg_url: str, due: int, groups: int, messages: int, rotation: str) -> str:
    url = await fresh_database(pg_url)
    async with database(url, 4) as db, db.connection() as conn:
        await seed(conn, new_cipher(), range(1, due + 1), groups, due_offset=-1)
        for position in range(2, messages + 1):
            await conn.execute(
                """INSERT INTO messages (user_id, version, text, position)
                   SELECT g, $2::int, 'bench ' || $2::int, $2::int FROM generate_series(1, $1::bigint) g""",
                due, position)
        await conn.execute("UPDATE campaigns SET rotation = $1", rotation)
        await conn.execute("VACUUM ANALYZE")
    return url


async def due_again(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute("UPDATE attempts SET status = 'sent', finished_at = now() "
                           "WHERE finished_at IS NULL")
        await conn.execute("UPDATE rounds SET status = 'done', finished_at = now() WHERE finished_at IS NULL")
        await conn.execute("UPDATE campaigns SET next_run_at = now() - interval '1 second'")


async def time_ticks(pg_url: str, redis: aioredis.Redis, due: int, groups: int, repeat: int,
                     messages: int, rotation: str) -> float:
    url = await build(pg_url, due, groups, messages, rotation)
    settings = engine_settings()
    async with database(url, 8) as db:
        queue = round_queue(redis, "rotation", settings)
        jobs = SchedulerJobs(db, queue, Leases(redis), settings.engine, redis)
        ticks = []
        for i in range(repeat + 1):
            await due_again(db)
            await redis.flushall()
            started = time.perf_counter()
            result = await jobs.tick()
            if i:  # the first tick has no previous round: not counted
                ticks.append(time.perf_counter() - started)
            assert result.created == due, result
        async with db.connection() as conn:
            posted = await conn.fetchval(  # the rounds did rotate (or not): distinct messages posted per user
                "SELECT count(DISTINCT coalesce(a.message_id, r.message_id)) FROM attempts a "
                "JOIN rounds r USING (round_id) WHERE r.user_id = 1")
        assert posted == messages, posted
    return statistics.median(ticks)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--due", type=int, default=500)
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = {}
    with servers() as srv:
        redis = aioredis.Redis.from_url(srv.redis_url)
        try:
            for name, messages, rotation in CASES:
                results[name] = await time_ticks(srv.pg_url, redis, args.due, args.groups, args.repeat,
                                                 messages, rotation)
        finally:
            await redis.aclose()
    print(f"machine: {machine()}")
    print(f"{args.due} campaigns due per tick, {args.groups} groups each; median of {args.repeat}")
    baseline = results[CASES[0][0]]
    for name, tick in results.items():
        print(f"{name:>22}: tick {tick * 1000:7.1f} ms ({tick / args.due * 1e6:.0f} us per due campaign), "
              f"ratio to one message {tick / baseline:.2f}")


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
