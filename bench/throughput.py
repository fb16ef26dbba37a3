"""Throughput: durable sends per second of one worker process, and its cost per send.

    .venv/bin/python -m bench.throughput [--users 200] [--groups 50] [--concurrency 32]

The worker (run_worker: queue, per-user lock, micro-batches of 5, every send claimed durably
before it is made and its outcome written after) runs against a zero-latency gateway with pacing
off: gaps of 0 and the account limiter on but set wide (caps and breaks far above the workload),
so every send still makes its limiter call. A second engine run in the same process replaces the
limiter call with an immediate grant (the engine as it was before the limiter), so the limiter's
cost per send (Redis commands and time) is shown beside the old figures. Counted per send: client
round trips to PostgreSQL (statements, BEGIN/COMMIT and the pool's reset on release) and commands
sent to Redis (an EVALSHA is one; a pipeline counts its items), plus what the Redis server
executed including the calls inside Lua scripts.

Baseline, same run, same data shape: a plain loop with no queue and no lock doing the same durable
writes (claim ``sending`` committed, send, write ``sent``), once sequentially and once with the
same concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import redis.asyncio as aioredis

from bench.common import (
    NullGateway,
    counting,
    database,
    engine_settings,
    fresh_database,
    machine,
    new_cipher,
    now,
    pg_transactions,
    redis_server_calls,
    seed,
    servers,
)
from domain.limits import Verdict
from roles.worker.loop import round_queue, run_worker
from scheduler.jobs import SchedulerJobs
from storage.db import Database
from storage.lease import Leases
from storage.send_limiter import SendLimiter

# the limiter on, but no cap or break the workload can reach
WIDE = 10**9


@contextlib.contextmanager
def limiter_timed(enabled: bool) -> Iterator[list[float]]:
    """Time every limiter call; with ``enabled`` False each call is granted at once, without Redis."""
    original = SendLimiter.reserve
    spent: list[float] = []

    async def timed(self: SendLimiter, *args: Any, **kw: Any) -> Verdict:
        started = time.perf_counter()
        try:
            if enabled:
                return await original(self, *args, **kw)
            return Verdict(0.0, "ok", (0, 0, 0), 1.0, 0.0, 0, 0.0, 0.0)
        finally:
            spent.append(time.perf_counter() - started)

    SendLimiter.reserve = timed  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        SendLimiter.reserve = original  # type: ignore[method-assign]


async def prepare(
    pg_url: str, redis: aioredis.Redis, users: int, groups: int, concurrency: int, batch: int
) -> tuple[str, object]:
    url = await fresh_database(pg_url)
    settings = engine_settings(
        gap_min=0.0, gap_max=0.0, batch_size=batch, worker_concurrency=concurrency, lease_ttl=30.0,
        limit_minute=WIDE, limit_hour=WIDE, limit_day=WIDE, break_after=WIDE,
    )
    cipher = new_cipher()
    async with database(url, 4) as db:
        async with db.connection() as conn:
            await seed(conn, cipher, range(1, users + 1), groups)
        await redis.flushall()
        queue = round_queue(redis, "bench", settings)
        created = await SchedulerJobs(db, queue, Leases(redis), settings.engine, redis).tick()
        assert created.created == users, created
    return url, (settings, cipher)


async def run_engine(
    pg_url: str, redis: aioredis.Redis, users: int, groups: int, concurrency: int, batch: int,
    limiter: bool = True,
) -> dict[str, float]:
    url, (settings, cipher) = await prepare(pg_url, redis, users, groups, concurrency, batch)  # type: ignore[misc]
    total = users * groups
    async with database(url, concurrency + 8) as db:
        gateway = NullGateway()
        stop = asyncio.Event()
        queue = round_queue(redis, "bench", settings)
        async with db.connection() as conn:
            tx_before = await pg_transactions(conn)
        server_before = await redis_server_calls(redis)
        with counting() as counts, limiter_timed(limiter) as spent:
            started = now()
            worker = asyncio.create_task(
                run_worker(db, redis, gateway, settings, stop, "bench", cipher=cipher, queue=queue)
            )
            while gateway.sends < total:  # noqa: ASYNC110 - polling a counter, no DB or Redis
                await asyncio.sleep(0.005)
            elapsed = now() - started
            stop.set()
            await worker
        server_calls = await redis_server_calls(redis) - server_before - 1
        async with db.connection() as conn:
            tx = await pg_transactions(conn) - tx_before - 1
            done = await conn.fetchval("SELECT count(*) FROM rounds WHERE status = 'done'")
            sent = await conn.fetchval("SELECT count(*) FROM attempts WHERE status = 'sent'")
    assert (done, sent) == (users, total), (done, sent)
    return {
        "sends_per_s": total / elapsed,
        "elapsed": elapsed,
        "db_per_send": counts.db_statements / total,
        "pg_tx_per_send": tx / total,
        "redis_per_send": counts.redis_commands / total,
        "redis_server_per_send": server_calls / total,
        "limiter_calls_per_send": len(spent) / total,
        "limiter_ms_per_call": 1000 * sum(spent) / max(1, len(spent)),
    }


async def run_baseline(
    pg_url: str, redis: aioredis.Redis, users: int, groups: int, concurrency: int
) -> float:
    """The same durable writes in a plain loop: no queue, no lock, no batching."""
    url, _ = await prepare(pg_url, redis, users, groups, 1, 5)
    total = users * groups
    gateway = NullGateway()
    async with database(url, concurrency + 2) as db:
        async with db.connection() as conn:
            rows = await conn.fetch("SELECT attempt_id, round_id FROM attempts ORDER BY round_id, attempt_id")
        by_round: dict[int, list[int]] = {}
        for row in rows:
            by_round.setdefault(row["round_id"], []).append(row["attempt_id"])
        started = now()
        slots = asyncio.Semaphore(concurrency)

        async def one_round(ids: list[int]) -> None:
            async with slots:
                await plain_loop(db, gateway, ids)

        await asyncio.gather(*(one_round(ids) for ids in by_round.values()))
        elapsed = now() - started
    assert gateway.sends == total
    return total / elapsed


async def plain_loop(db: Database, gateway: NullGateway, ids: list[int]) -> None:
    from accounts.gateway import AccountRef, GroupRef, OutgoingMessage

    account, message = AccountRef(1, "s"), OutgoingMessage("bench")
    async with db.connection() as conn:
        for attempt_id in ids:
            peer = await conn.fetchval(
                "UPDATE attempts SET status = 'sending', tries = tries + 1, sending_at = now() "
                "WHERE attempt_id = $1 AND status = 'pending' RETURNING peer_id",
                attempt_id,
            )
            sent_id = await gateway.send_message(account, GroupRef(peer, 1, "supergroup"), message)
            await conn.execute(
                "UPDATE attempts SET status = 'sent', sent_message_id = $2, finished_at = now() "
                "WHERE attempt_id = $1 AND status = 'sending'",
                attempt_id,
                sent_id,
            )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with servers() as srv:
        redis = aioredis.Redis.from_url(srv.redis_url)
        try:
            seq = await run_baseline(srv.pg_url, redis, args.users, args.groups, 1)
            par = await run_baseline(srv.pg_url, redis, args.users, args.groups, args.concurrency)
            off = await run_engine(srv.pg_url, redis, args.users, args.groups, args.concurrency, args.batch,
                                   limiter=False)
            res = await run_engine(srv.pg_url, redis, args.users, args.groups, args.concurrency, args.batch)
        finally:
            await redis.aclose()
    total = args.users * args.groups
    print(f"machine: {machine()}")
    print(
        f"workload: {args.users} users x {args.groups} groups = {total} sends, batch {args.batch}, "
        f"concurrency {args.concurrency}, zero-latency gateway, pacing off, fsync on"
    )
    print(f"engine (one worker process, limiter on, wide): {res['sends_per_s']:,.0f} durable sends/s "
          f"({res['elapsed']:.2f} s)")
    print(
        f"  DB round trips per send:       {res['db_per_send']:.2f} "
        f"(PostgreSQL transactions per send: {res['pg_tx_per_send']:.2f})"
    )
    print(
        f"  Redis commands per send:       {res['redis_per_send']:.2f} "
        f"(server-side incl. Lua inner calls: {res['redis_server_per_send']:.2f})"
    )
    print(
        f"  limiter: {res['limiter_calls_per_send']:.2f} calls per send (one EVALSHA each), "
        f"{res['limiter_ms_per_call']:.2f} ms per call under this load"
    )
    print(
        f"engine without the limiter call: {off['sends_per_s']:,.0f} durable sends/s ({off['elapsed']:.2f} s)"
        f"   -> with/without = {res['sends_per_s'] / off['sends_per_s']:.2f}"
    )
    print(
        f"  Redis commands per send:       {off['redis_per_send']:.2f} "
        f"(server-side incl. Lua inner calls: {off['redis_server_per_send']:.2f})   -> the limiter's cost: "
        f"{res['redis_per_send'] - off['redis_per_send']:+.2f} client, "
        f"{res['redis_server_per_send'] - off['redis_server_per_send']:+.2f} server-side per send"
    )
    print(
        f"baseline plain loop, sequential: {seq:,.0f} sends/s   "
        f"-> engine/baseline = {res['sends_per_s'] / seq:.2f}"
    )
    print(
        f"baseline plain loop, {args.concurrency} at once: {par:,.0f} sends/s   "
        f"-> engine/baseline = {res['sends_per_s'] / par:.2f}"
    )


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
