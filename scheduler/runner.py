"""The scheduler of the worker role: APScheduler's AsyncIOScheduler under a leader lease, running the
due scan, reconciliation and retention.

Every worker replica runs ``run_scheduler``; only the holder of the ``SCHEDULER_LEADER`` lease
runs the jobs. When the leader dies its lease expires and a standby takes over within one lease.
A leader that loses its lease stops its APScheduler at once; should it still finish a tick, the
database constraints keep it from creating a second round for any due time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from redis.asyncio import Redis
from redis.exceptions import RedisError

from config.settings import Settings
from scheduler.jobs import SchedulerJobs
from services.retention import RetentionService
from storage import keys
from storage.db import Database
from storage.lease import HeldLease, Leases
from storage.queue import JobQueue

log = logging.getLogger(__name__)


def reconcile_interval(tick: float, lease_ttl: float) -> float:
    """Often enough that a lost job is found within two leases (seen twice, a lease apart)."""
    return max(tick, min(lease_ttl / 6, 10.0))


RETENTION_FIRST_RUN = 60.0  # seconds after taking the lead: a new leader runs it soon, not at start-up


def build_scheduler(jobs: SchedulerJobs, tick: float, lease_ttl: float,
                    retention: RetentionService | None = None) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=UTC)
    common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None,
              "next_run_time": datetime.now(UTC)}
    scheduler.add_job(_quiet(jobs.tick), "interval", seconds=tick, id="due-scan", **common)
    scheduler.add_job(_quiet(jobs.reconcile), "interval", seconds=reconcile_interval(tick, lease_ttl),
                      id="reconcile", **common)
    if retention is not None:
        interval = retention.settings.interval
        first = datetime.now(UTC) + timedelta(seconds=min(interval, RETENTION_FIRST_RUN))
        scheduler.add_job(_quiet(retention.run_logged), "interval", seconds=interval, id="retention",
                          **{**common, "next_run_time": first})
    return scheduler


def _quiet(job: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
    """A job that is cut short when the leader stands down ends quietly (APScheduler would log
    the cancellation as an error); the next leader's tick redoes whatever it did not finish."""

    async def run() -> None:
        try:
            await job()
        except asyncio.CancelledError:
            log.debug("scheduler: %s cut short by standing down", getattr(job, "__name__", "job"))

    run.__name__ = run.__qualname__ = getattr(job, "__name__", "job")
    return run


async def run_scheduler(db: Database, redis: Redis, queue: JobQueue, settings: Settings,
                        stop: asyncio.Event) -> None:
    """Stand by for the scheduler lease; while holding it, run the due scan and reconciliation."""
    engine = settings.engine
    # a tick still running when the next is due is skipped on purpose (coalesced); not a warning
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    leases = Leases(redis)
    jobs = SchedulerJobs(db, queue, leases, engine, redis=redis)
    retention = RetentionService(db, settings.retention)

    async def lead(held: HeldLease) -> None:
        scheduler = build_scheduler(jobs, engine.tick, engine.lease_ttl, retention)
        scheduler.start()
        log.info("scheduler: leading (token %d), tick %.2fs", held.token, engine.tick)
        try:
            await asyncio.Future()  # until the lease is lost or stop is set (cancelled)
        finally:
            scheduler.shutdown(wait=False)
            log.info("scheduler: standing down")

    while not stop.is_set():
        try:
            await leases.run_as_leader(keys.SCHEDULER_LEADER, engine.lease_ttl, lead, stop,
                                       retry=min(engine.lease_ttl / 3, 1.0))
        except (RedisError, OSError) as exc:
            log.warning("scheduler: leader election failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
