"""One worker replica for ``bench.scale_out``: the worker role on a zero-latency gateway.

    PYTHONPATH=. python -m bench.scale_worker

Configured from the environment like ``python app.py`` with ROLE=worker (DATABASE_URL, REDIS_URL,
the engine settings), and it runs what that role runs, ``run_worker_role``: the scheduler under
its leader lease and the worker loops on the shared queue. The one difference is the account
gateway: every send succeeds at once in this process (``bench.common.NullGateway``), so the
figures are the engine's, PostgreSQL's and Redis's cost, not a sandbox's.

It prints ``ready`` once its pools are up, and on SIGTERM one JSON line with the sends it made
and the DB round trips and Redis commands its client sent (counted as in ``bench.throughput``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys

import redis.asyncio as aioredis

from accounts.crypto import load_or_create_key
from bench.common import NullGateway, counting
from config.settings import load_settings
from roles.worker.role import run_worker_role
from storage.db import Database
from storage.queue import consumer_name


async def main() -> None:
    settings = load_settings(env_file=None)
    logging.basicConfig(level=settings.log_level, stream=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    db = await Database.connect(settings.database.url, min_size=2, max_size=settings.database.pool_max)
    pool = aioredis.BlockingConnectionPool.from_url(settings.redis.url, max_connections=200, timeout=20)
    redis = aioredis.Redis(connection_pool=pool)
    await redis.ping()
    gateway = NullGateway()
    try:
        with counting() as counts:
            print("ready", flush=True)
            await run_worker_role(settings, db, redis, gateway, stop,  # type: ignore[arg-type]
                                  cipher=load_or_create_key(settings), consumer=consumer_name())
        figures = {"sends": gateway.sends, "db": counts.db_statements, "redis": counts.redis_commands}
        print(json.dumps(figures), flush=True)
    finally:
        await redis.aclose()
        await db.close()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
