"""A process the kill tests SIGKILL: it takes a job or a lease, says so in Redis, then hangs.

    python queue_worker_proc.py job REDIS_URL QUEUE CONSUMER LEASE_MS SIGNAL_KEY
        fetch one job, keep it claimed (touching it), SET SIGNAL_KEY to the job id, sleep
    python queue_worker_proc.py lease REDIS_URL NAME TTL_SECONDS SIGNAL_KEY
        hold the lease (renewing it), SET SIGNAL_KEY to the token, sleep
"""

from __future__ import annotations

import asyncio
import sys

import redis.asyncio as aioredis

from storage.lease import Leases
from storage.queue import JobQueue


async def hold_job(url: str, queue: str, consumer: str, lease_ms: int, signal_key: str) -> None:
    client = aioredis.Redis.from_url(url)
    jobs = JobQueue(client, queue, consumer, lease_ms=lease_ms)
    while not (got := await jobs.fetch(count=1, block_ms=1000)):
        pass
    async with jobs.claimed(got[0]):
        await client.set(signal_key, got[0].id)
        await asyncio.Event().wait()


async def hold_lease(url: str, name: str, ttl: float, signal_key: str) -> None:
    client = aioredis.Redis.from_url(url)
    async with Leases(client).hold(name, ttl, wait=10.0) as held:
        await client.set(signal_key, held.token)
        await asyncio.Event().wait()


def main(argv: list[str]) -> None:
    mode, url, *rest = argv
    if mode == "job":
        queue, consumer, lease_ms, signal_key = rest
        asyncio.run(hold_job(url, queue, consumer, int(lease_ms), signal_key))
    elif mode == "lease":
        name, ttl, signal_key = rest
        asyncio.run(hold_lease(url, name, float(ttl), signal_key))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
