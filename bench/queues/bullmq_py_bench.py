"""Contender: BullMQ for Python (the ``bullmq`` package on PyPI; run with the side virtualenv that has it).

Prints one JSON line of figures. ``BENCH_ENQUEUE=add`` (default) enqueues with ``Queue.add``, 500
calls in flight at a time like every other contender; ``BENCH_ENQUEUE=bulk`` uses ``Queue.addBulk``
with the same 500 jobs per call, BullMQ's own batch API (one MULTI pipeline per call).
``BENCH_CONNECTION=pool`` (default) hands the queue and the worker a redis-py client over a pool of
up to 100 connections, the client ``ours.py`` uses; ``BENCH_CONNECTION=url`` passes the URL, and
BullMQ then opens its own single-connection client per queue and worker (its documented default),
on which concurrent calls wait for each other. Jobs are removed on completion, as in the Node run.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import redis.asyncio as aioredis
from bullmq import Job, Queue, Worker

ENQUEUE = os.environ.get("BENCH_ENQUEUE", "add")
CONNECTION = os.environ.get("BENCH_CONNECTION", "pool")


async def noop(job: Job, token: str) -> None:
    return None


async def enqueue(queue: Queue, count: int) -> None:
    opts: dict[str, Any] = {"removeOnComplete": True}
    for i in range(0, count, 500):
        batch = range(i, min(count, i + 500))
        if ENQUEUE == "bulk":
            await queue.addBulk(
                [{"name": "noop", "data": {"n": n}, "opts": {**opts, "jobId": f"j{n}"}} for n in batch]
            )
        else:
            await asyncio.gather(*(queue.add("noop", {"n": n}, {**opts, "jobId": f"j{n}"}) for n in batch))


async def main(url: str, count: int, concurrency: int) -> None:
    connection: str | aioredis.Redis = url
    if CONNECTION == "pool":
        # BullMQ parses replies as text, hence decode_responses (its own clients set it too)
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=100, decode_responses=True)
        connection = aioredis.Redis(connection_pool=pool)
    queue = Queue("bench", {"connection": connection})
    await queue.client.flushall()
    started = time.perf_counter()
    await enqueue(queue, count)
    enqueued = time.perf_counter()
    if (waiting := await queue.getJobCountByTypes("wait")) != count:
        raise SystemExit(f"expected {count} waiting jobs, found {waiting}")
    done = 0
    finished = asyncio.Event()

    def completed(job: Job, result: Any) -> None:
        nonlocal done
        done += 1
        if done == count:
            finished.set()

    worker = Worker("bench", noop, {"connection": connection, "concurrency": concurrency})
    worker.on("completed", completed)
    await finished.wait()
    drained = time.perf_counter()
    await worker.close()
    await queue.close()
    name = f"BullMQ for Python ({ENQUEUE}, {CONNECTION})"
    figures = {"name": name, "enqueue_s": enqueued - started, "drain_s": drained - enqueued, "jobs": count}
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
