"""Contender: this project's JobQueue (storage/queue.py). Prints one JSON line of figures.

Runs on uvloop, the event loop every role of the project runs on (app.py); ``BENCH_LOOP=asyncio``
runs it on the standard loop instead. The consumer acknowledges job by job, as the worker does;
concurrent acknowledgements (and enqueues) share round trips inside JobQueue.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import orjson
import redis.asyncio as aioredis

from storage.queue import Job, JobQueue


async def main(url: str, count: int, concurrency: int) -> None:
    redis = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(url, max_connections=100))
    await redis.flushall()
    queue = JobQueue(redis, "bench", "c1", lease_ms=30_000)
    started = time.perf_counter()
    for i in range(0, count, 500):
        await asyncio.gather(*(queue.enqueue(f"j{n}", {"n": n}) for n in range(i, min(count, i + 500))))
    enqueued = time.perf_counter()
    done = 0
    slots = asyncio.Semaphore(concurrency)

    async def handle(job: Job) -> None:
        nonlocal done
        async with slots:
            await asyncio.sleep(0)  # the no-op job
            await queue.ack(job)
            done += 1

    while done < count:
        jobs = await queue.fetch(count=concurrency, block_ms=100)
        await asyncio.gather(*(handle(job) for job in jobs))
    drained = time.perf_counter()
    await redis.aclose()
    print(
        orjson.dumps(
            {
                "name": f"ours ({LOOP})",
                "enqueue_s": enqueued - started,
                "drain_s": drained - enqueued,
                "jobs": count,
            }
        ).decode()
    )


LOOP = os.environ.get("BENCH_LOOP", "uvloop")

if __name__ == "__main__":
    if LOOP == "uvloop":
        import uvloop

        uvloop.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    else:
        asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
