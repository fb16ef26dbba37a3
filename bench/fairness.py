"""Fairness: one user with 500 groups and 50 users with 5 groups each, on one worker.

    .venv/bin/python -m bench.fairness [--concurrency 2] [--gap 0.01]

All 51 rounds are due together, the big one first in line. The engine runs them in micro-batches
of 5 with the continuation at the back of the queue (round-robin). Baseline, same run: naive FIFO,
the same worker with one job per whole round (batch size unlimited), so a round runs to its end
once started. Printed: when the small rounds end (seconds from the start, and how far the big
round had got by then) and Jain's fairness index of send shares over the contention window.

The contention window is the time while the big user and the small users all have pending
sends: from the start until the earlier of the big round's last send and the last small round's
last send (after that one side is alone and there is nothing to share). A user's share is the
number of its sends in the window; Jain's index is (sum x)^2 / (n * sum x^2) over all 51 users,
1.0 when every user got the same number of sends, 1/n when one user got them all.

Also printed, for comparison with earlier figures: Jain's index of normalised speed
(x = time the round needs alone / time it took). That measures slowdown, not shares: 51 rounds
due at once on two slots must queue behind each other whatever the order, so even an ideal
scheduler scores about 0.4 on it here.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from collections import Counter
from collections.abc import Iterable

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
BIG_USER = 1


def jain(values: Iterable[float]) -> float:
    xs = list(values)
    total = sum(xs)
    return total * total / (len(xs) * sum(x * x for x in xs)) if total else 0.0


def contention_shares(log: list[tuple[float, int]], users: Iterable[int]) -> tuple[float, dict[int, int]]:
    """End of the contention window (seconds, as in ``log``) and each user's sends within it."""
    big_last = max(at for at, user in log if user == BIG_USER)
    small_last = max(at for at, user in log if user != BIG_USER)
    end = min(big_last, small_last)
    sends = Counter(user for at, user in log if at <= end)
    return end, {user: sends.get(user, 0) for user in users}


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
    log = [(at - started, user) for at, user in gateway.log]
    ends: dict[int, float] = {}
    for at, user in log:
        ends[user] = at
    mean_gap = gap * 1.5
    speed = [((BIG if u == BIG_USER else SMALL) - 1) * mean_gap / max(end, 1e-9) for u, end in ends.items()]
    small_ends = sorted(end for u, end in ends.items() if u != BIG_USER)
    last_small = small_ends[-1]
    big_progress = sum(1 for at, user in log if user == BIG_USER and at <= last_small) / BIG
    window, shares = contention_shares(log, range(1, 2 + SMALL_USERS))
    small_shares = [n for user, n in shares.items() if user != BIG_USER]
    return {
        "median_small_end": statistics.median(small_ends),
        "last_small_end": last_small,
        "big_end": ends[BIG_USER],
        "big_progress": big_progress,
        "window": window,
        "big_share": shares[BIG_USER],
        "small_share_mean": statistics.mean(small_shares),
        "jain": jain(shares.values()),
        "jain_speed": jain(speed),
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
        print(
            f"  contention window {r['window']:.2f}s: big user {r['big_share']:.0f} sends, small users "
            f"{r['small_share_mean']:.1f} on average; Jain's index of send shares {r['jain']:.3f}"
        )
        print(f"  (Jain's index of normalised speed {r['jain_speed']:.3f})")
    print(
        f"ratio engine/baseline: last small round ends {rr['last_small_end'] / fifo['last_small_end']:.2f}x "
        f"as late; Jain of send shares {rr['jain'] / fifo['jain']:.2f}x; big round ends "
        f"{rr['big_end'] / fifo['big_end']:.2f}x as late"
    )


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
