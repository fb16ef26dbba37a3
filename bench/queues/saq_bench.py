"""Contender: saq (run with the side virtualenv that has saq). Prints one JSON line of figures."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from saq import Queue, Worker

done = 0


async def noop(ctx: dict[str, Any], *, n: int) -> None:
    global done
    done += 1


async def main(url: str, count: int, concurrency: int) -> None:
    queue = Queue.from_url(url)
    await queue.redis.flushall()
    started = time.perf_counter()
    for i in range(0, count, 500):
        await asyncio.gather(
            *(queue.enqueue("noop", key=f"j{n}", n=n) for n in range(i, min(count, i + 500)))
        )
    enqueued = time.perf_counter()
    worker = Worker(queue, functions=[noop], concurrency=concurrency)
    task = asyncio.create_task(worker.start())
    while done < count:  # noqa: ASYNC110 - polling a counter the jobs bump
        await asyncio.sleep(0.005)
    drained = time.perf_counter()
    await worker.stop()
    task.cancel()
    await queue.disconnect()
    print(
        json.dumps(
            {"name": "saq", "enqueue_s": enqueued - started, "drain_s": drained - enqueued, "jobs": count}
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
