"""Fairness: one user with 500 groups and 50 users with 5 groups each, on one worker.

    .venv/bin/python -m bench.fairness [--concurrency 2] [--gap 0.01]

All 51 rounds are due together, the big one first in line. The engine runs them in micro-batches
of 5 with the continuation at the back of the queue (round-robin). Baseline, same run: naive FIFO,
the same worker with one job per whole round (batch size unlimited), so a round runs to its end
once started. Printed: when the small rounds end (seconds from the start, and how far the big
round had got by then) and Jain's fairness index over the users' normalised speed
(x = time the round needs alone / time it took; 1.0 = perfectly fair).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time

import redis.asyncio as aioredis

from accounts.gateway import AccountRef, GroupRef, OutgoingMessage
from bench.common import (
    NullGateway,
    database,
    engine_settings,
    fresh_database,
    machine,
    new_cipher,
    seed,
    servers,
)
from roles.worker.loop import round_queue, run_worker
from scheduler.jobs import SchedulerJobs
from storage.lease import Leases

BIG, SMALL, SMALL_USERS = 500, 5, 50


class Recorder(NullGateway):
    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[float, int]] = []  # (time, user id)

    async def send_message(self, account: AccountRef, group: GroupRef, message: OutgoingMessage) -> int:
        self.log.append((time.perf_counter(), group.peer_id // 100000))
        return await super().send_message(account, group, message)


async def run(
    pg_url: str, redis: aioredis.Redis, concurrency: int, gap: float, batch: int
) -> dict[str, float]:
    url = await fresh_database(pg_url)
    settings = engine_settings(
        gap_min=gap, gap_max=gap * 2, batch_size=batch, worker_concurrency=concurrency, lease_ttl=60.0
    )
    cipher = new_cipher()
    await redis.flushall()
    gateway = Recorder()
    async with database(url, concurrency + 6) as db:
        async with db.connection() as conn:
            await seed(conn, cipher, range(1, 2), BIG, due_offset=-10)  # first in line
            await seed(conn, cipher, range(2, 2 + SMALL_USERS), SMALL, due_offset=-5)
        queue = round_queue(redis, "fair", settings)
        assert (await SchedulerJobs(db, queue, Leases(redis), settings.engine, redis).tick()).created == 51
        stop = asyncio.Event()
        started = time.perf_counter()
        worker = asyncio.create_task(
            run_worker(db, redis, gateway, settings, stop, "fair", cipher=cipher, queue=queue)
        )
        total = BIG + SMALL * SMALL_USERS
        while gateway.sends < total:  # noqa: ASYNC110 - polling a counter is the point here
            await asyncio.sleep(0.01)
        stop.set()
        await worker
    ends: dict[int, float] = {}
    big_done_at: list[float] = []
    for at, user in gateway.log:
        ends[user] = at - started
        if user == 1:
            big_done_at.append(at - started)
    mean_gap = gap * 1.5
    speed = [((BIG if u == 1 else SMALL) - 1) * mean_gap / max(end, 1e-9) for u, end in ends.items()]
    jain = sum(speed) ** 2 / (len(speed) * sum(x * x for x in speed))
    small_ends = sorted(end for u, end in ends.items() if u != 1)
    last_small = small_ends[-1]
    big_progress = sum(1 for t in big_done_at if t <= last_small) / BIG
    return {
        "median_small_end": statistics.median(small_ends),
        "last_small_end": last_small,
        "big_end": ends[1],
        "big_progress": big_progress,
        "jain": jain,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--gap", type=float, default=0.01, help="gap_min; gap_max is twice that")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with servers() as srv:
        redis = aioredis.Redis.from_url(srv.redis_url)
        try:
            rr = await run(srv.pg_url, redis, args.concurrency, args.gap, 5)
            fifo = await run(srv.pg_url, redis, args.concurrency, args.gap, 1_000_000)
        finally:
            await redis.aclose()
    print(f"machine: {machine()}")
    print(
        f"workload: 1 user x {BIG} groups + {SMALL_USERS} users x {SMALL} groups, one worker, "
        f"concurrency {args.concurrency}, gap {args.gap}-{args.gap * 2}s"
    )
    for name, r in (
        ("engine (micro-batches, round-robin)", rr),
        ("baseline naive FIFO (whole round per job)", fifo),
    ):
        print(f"{name}:")
        print(
            f"  small rounds end: median {r['median_small_end']:.2f}s, last {r['last_small_end']:.2f}s; "
            f"big round {r['big_progress']:.0%} done when the last small one ended; big round ends "
            f"{r['big_end']:.2f}s"
        )
        print(f"  Jain's index {r['jain']:.3f}")
    print(
        f"ratio engine/baseline: last small round ends {rr['last_small_end'] / fifo['last_small_end']:.2f}x "
        f"as late; Jain {rr['jain'] / fifo['jain']:.2f}x; big round ends "
        f"{rr['big_end'] / fifo['big_end']:.2f}x as late"
    )


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
