"""A worker replica for the chaos tests: the scheduler (under its leader lease) plus the worker loop.

    PYTHONPATH=. python tests/chaos/worker_proc.py

Configured like ``python app.py`` with ROLE=worker, from the environment: DATABASE_URL,
REDIS_URL, SANDBOX_HOST/SANDBOX_PORT (an already running sandbox), SESSION_ENCRYPTION_KEY and the
engine settings (GAP_MIN, LEASE_TTL, SCHEDULER_TICK ...). With CHAOS_FREE_SCHEDULER=1 the
scheduler's jobs run without the leader lease, so that several replicas schedule at once (the
database alone must keep them from creating two rounds for one due time). SIGTERM stops it
cleanly; the tests mostly SIGKILL it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

import redis.asyncio as aioredis

from accounts.crypto import load_or_create_key
from accounts.sandbox_gateway import SandboxGateway
from config.settings import Settings, load_settings
from roles.worker.loop import round_queue, run_worker
from scheduler.jobs import SchedulerJobs
from scheduler.runner import reconcile_interval, run_scheduler
from storage.db import Database
from storage.lease import Leases
from storage.queue import JobQueue, consumer_name


async def free_scheduler(db: Database, redis: aioredis.Redis, queue: JobQueue, settings: Settings,
                         stop: asyncio.Event) -> None:
    """The scheduler's jobs on a plain timer, no leader lease: every replica schedules."""
    jobs = SchedulerJobs(db, queue, Leases(redis), settings.engine, redis)
    every = reconcile_interval(settings.engine.tick, settings.engine.lease_ttl)
    loop = asyncio.get_running_loop()
    next_reconcile = loop.time()
    while not stop.is_set():
        await jobs.tick()
        if loop.time() >= next_reconcile:
            await jobs.reconcile()
            next_reconcile = loop.time() + every
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.engine.tick)


async def connect(url: str, size: int) -> Database:
    while True:  # the database may be restarting when a replacement replica starts
        try:
            return await Database.connect(url, min_size=1, max_size=size)
        except Exception as exc:  # anything while it comes up: retry
            logging.getLogger("worker_proc").warning("database not reachable yet: %s", exc)
            await asyncio.sleep(0.5)


async def main() -> None:
    settings = load_settings(env_file=None)
    logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(levelname)s %(name)s %(message)s")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    db = await connect(settings.database.url, settings.database.pool_max)
    # a blocking pool: with many jobs in flight, a burst of calls waits for a connection instead
    # of failing with "Too many connections" (redis-py's default pool raises past 100)
    pool = aioredis.BlockingConnectionPool.from_url(settings.redis.url, max_connections=200, timeout=20)
    redis = aioredis.Redis(connection_pool=pool)
    gateway = SandboxGateway(settings.sandbox.url)
    consumer = consumer_name()
    queue = round_queue(redis, consumer, settings)
    schedule = free_scheduler if os.environ.get("CHAOS_FREE_SCHEDULER") == "1" else run_scheduler
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(schedule(db, redis, queue, settings, stop))
            group.create_task(run_worker(db, redis, gateway, settings, stop, consumer,
                                         cipher=load_or_create_key(settings), queue=queue))
    finally:
        await gateway.close()
        await redis.aclose()
        await db.close()


if __name__ == "__main__":
    asyncio.run(main())
