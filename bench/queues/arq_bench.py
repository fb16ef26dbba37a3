"""Contender: arq (run with the side virtualenv that has arq). Prints one JSON line of figures."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import urlparse

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker, func


async def noop(ctx: dict[str, Any], n: int) -> None:
    return None


async def main(url: str, count: int, concurrency: int) -> None:
    parsed = urlparse(url)
    settings = RedisSettings(host=parsed.hostname or "127.0.0.1", port=parsed.port or 6379)
    pool = await create_pool(settings)
    await pool.flushall()
    started = time.perf_counter()
    for i in range(0, count, 500):
        await asyncio.gather(
            *(pool.enqueue_job("noop", n, _job_id=f"j{n}") for n in range(i, min(count, i + 500)))
        )
    enqueued = time.perf_counter()
    worker = Worker(
        functions=[func(noop, name="noop", keep_result=0)],
        redis_settings=settings,
        max_jobs=concurrency,
        burst=True,
        poll_delay=0.01,
        handle_signals=False,
    )
    await worker.main()
    drained = time.perf_counter()
    assert worker.jobs_complete == count, worker.jobs_complete
    await worker.close()
    await pool.aclose()
    print(
        json.dumps(
            {"name": "arq", "enqueue_s": enqueued - started, "drain_s": drained - enqueued, "jobs": count}
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
