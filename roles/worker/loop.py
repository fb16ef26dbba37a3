"""The worker loop: fetch round jobs, run up to ``worker_concurrency`` at once, heartbeat, stop cleanly.

The engine (``services.engine.RoundEngine``) decides what becomes of a job; ``JobRunner.apply`` is
the one place that acks, requeues or drops it.

Graceful stop: no new job is fetched; running jobs finish the send in flight, write its outcome
and hand their job back to the queue (same job id, no delay) before the lock is released, so
another worker continues the round at once. Jobs still running after the lease are abandoned:
the queue reclaims them from this consumer and their lock expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from accounts.gateway import AccountGateway
from config.settings import Settings
from domain.limits import Caps, CapsCache
from metrics import WORKER_HEARTBEATS, WORKERS_LIVE
from roles.worker.pacing import Pacing
from services import engine
from services.engine.outcome import JobOutcome, JobResult
from services.engine.ports import Cipher
from services.engine.rounds import RoundEngine
from services.send_limits import load_book
from storage import keys
from storage.account_lock import TelegramAccountLock
from storage.db import DB_ERRORS, Database
from storage.heartbeats import Heartbeats
from storage.job_locks import JobLocks
from storage.lease import Lease, Leases
from storage.queue import Job, JobQueue
from storage.round_store import RoundStore
from storage.user_lock import UserLock

log = logging.getLogger(__name__)

FETCH_BLOCK_MS = 1000
BUSY_BLOCK_MIN_MS, BUSY_BLOCK_MAX_MS = 10, 250
# a job failing with these is retried after a pause (database or Redis restarting, a flush)
RETRYABLE: tuple[type[BaseException], ...] = (*DB_ERRORS, RedisError)
ERROR_BACKOFF = 1.0


def round_queue(redis: Redis, consumer_name: str, settings: Settings) -> JobQueue:
    """The queue of round jobs as every engine component opens it."""
    lease_ms = int(settings.engine.lease_ttl * 1000)
    return JobQueue(redis, engine.ROUNDS_QUEUE, consumer_name, lease_ms=lease_ms)


async def run_worker(
    db: Database,
    redis: Redis,
    gateway: AccountGateway,
    settings: Settings,
    stop: asyncio.Event,
    consumer_name: str,
    *,
    cipher: Cipher | None = None,
    queue: JobQueue | None = None,
) -> None:
    """Run round jobs until ``stop`` is set, then finish or hand back the jobs in flight."""
    if cipher is None:
        from accounts.crypto import load_or_create_key

        cipher = load_or_create_key(settings)
    queue = queue or round_queue(redis, consumer_name, settings)
    stopping = asyncio.Event()
    runner = JobRunner(build_engine(db, redis, gateway, cipher, settings, stopping), queue)
    worker = _Worker(runner, queue, redis, settings, consumer_name, stopping)
    await worker.run(stop)


def build_engine(db: Database, redis: Redis, gateway: AccountGateway, cipher: Cipher, settings: Settings,
                 stopping: asyncio.Event) -> RoundEngine:
    """The round engine on its adapters: the database store, the user and Telegram account locks and
    pacing in Redis (the account limiter behind it, with the admin-set caps)."""
    leases = Leases(redis)
    lock = UserLock(leases, settings.engine.lease_ttl)
    account_lock = TelegramAccountLock(leases, settings.engine.lease_ttl)
    pacing = Pacing(redis, settings.engine, caps=caps_cache(db, settings))
    return RoundEngine(RoundStore(db), lock, gateway, cipher, settings.engine, pacing, account_lock, stopping,
                       job_start=JobLocks(redis, settings.engine.lease_ttl))


def caps_cache(db: Database, settings: Settings) -> CapsCache:
    """The admin-set send caps as a worker reads them: one query every ``SEND_LIMIT_REFRESH`` s."""
    defaults = Caps.from_settings(settings.engine)
    return CapsCache(lambda: load_book(db, defaults), settings.engine.limit_refresh, time.monotonic)


class JobRunner:
    """Runs one round job: the engine decides, ``apply`` carries its outcome out on the queue (the
    engine calls it while it still holds the user's lock)."""

    def __init__(self, engine: RoundEngine, queue: JobQueue) -> None:
        self.engine = engine
        self.queue = queue

    async def run(self, job: Job) -> JobResult:
        """Run the job and apply its outcome; errors propagate (the loop then calls ``failed``)."""
        async with self.queue.claimed(job):
            outcome = await self.engine.run(job.id, job.payload,
                                            settle=lambda o, held: self.apply(job, o, held))
        return outcome.result

    async def failed(self, job: Job, delay: float) -> None:
        """Give a job back after an unexpected error; if Redis is down too, reclaim will do it."""
        with contextlib.suppress(Exception):
            await self.apply(job, JobOutcome.requeue(JobResult.FAILED, delay))

    async def apply(self, job: Job, outcome: JobOutcome, held: Sequence[Lease] = ()) -> None:
        """Requeue or acknowledge the job, then release the leases ``held`` for it: one script."""
        if outcome.action == "dead":
            # no dead-letter list: the job is dropped, loudly (nothing of it can ever run)
            log.error("job %s dropped: %s", job.id, outcome.reason)
        requeue = outcome.action == "requeue"
        if held:
            leases = [(keys.LEASE.format(name=lease.name), lease.token) for lease in held]
            await self.queue.settle(job, requeue, outcome.delay, outcome.payload, leases)
        elif requeue:
            await self.queue.requeue(job, outcome.delay, outcome.payload)
        else:
            await self.queue.ack(job)  # acks of concurrent jobs share round trips


class _Worker:
    def __init__(self, runner: JobRunner, queue: JobQueue, redis: Redis, settings: Settings,
                 consumer: str, stopping: asyncio.Event) -> None:
        self.runner = runner
        self.queue = queue
        self.redis = redis
        self.settings = settings
        self.consumer = consumer
        self.stopping = stopping
        self.concurrency = max(1, settings.engine.worker_concurrency)
        self.running: set[asyncio.Task[None]] = set()
        self.slots = asyncio.Semaphore(self.concurrency)
        self.rng = random.Random()
        self.heartbeats = Heartbeats(redis)

    async def run(self, stop: asyncio.Event) -> None:
        lease = self.settings.engine.lease_ttl
        background = asyncio.Event()  # maintenance and heartbeats outlive the fetch loop a little
        tasks = [
            asyncio.create_task(self.queue.run_maintenance(background, interval=min(1.0, lease / 10))),
            asyncio.create_task(self._heartbeats(background)),
            asyncio.create_task(_relay(stop, self.stopping)),  # jobs see the stop before the next send
        ]
        log.info("worker %s: started, %d concurrent jobs", self.consumer, self.concurrency)
        try:
            await self._fetch_loop(stop)
        finally:
            self.stopping.set()
            if self.running:
                log.info("worker %s: stopping, %d jobs in flight", self.consumer, len(self.running))
                _, late = await asyncio.wait(self.running, timeout=lease)
                for task in late:
                    task.cancel()
            background.set()
            tasks[-1].cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(RedisError, OSError):
                await self.heartbeats.forget(self.consumer)
            log.info("worker %s: stopped", self.consumer)

    async def _fetch_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.slots.acquire()
            free = 1
            while free < self.concurrency and not self.slots.locked():
                await self.slots.acquire()
                free += 1
            jobs: list[Job] = []
            try:
                if not stop.is_set():
                    jobs = await self.queue.fetch(count=free, block_ms=self._block_ms())
            except (RedisError, OSError) as exc:
                log.warning("worker %s: fetch failed: %s", self.consumer, exc)
                jobs = []
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), ERROR_BACKOFF)
            for job in jobs:
                task = asyncio.create_task(self._run_job(job))
                self.running.add(task)
                task.add_done_callback(self.running.discard)
            for _ in range(free - len(jobs)):
                self.slots.release()

    def _block_ms(self) -> int:
        """How long a fetch may wait for a ready job.

        A continuation re-queued by a running job lands in the delayed set, which does not wake a
        fetch already blocked on the stream; while jobs run, short blocks keep that extra wait to
        a fraction of the gap.
        """
        if not self.running:
            return FETCH_BLOCK_MS
        return int(min(BUSY_BLOCK_MAX_MS, max(BUSY_BLOCK_MIN_MS, self.settings.engine.gap_min * 1000 / 4)))

    async def _run_job(self, job: Job) -> None:
        try:
            result = await self.runner.run(job)
            log.debug("job %s: %s", job.id, result.value)
        except asyncio.CancelledError:
            raise
        except RETRYABLE as exc:
            log.warning("job %s failed: %s; retried later", job.id, exc)
            await self.runner.failed(job, ERROR_BACKOFF + self.rng.uniform(0, ERROR_BACKOFF))
        except Exception:
            log.exception("job %s failed", job.id)
            await self.runner.failed(job, ERROR_BACKOFF * 5)
        finally:
            self.slots.release()

    async def _heartbeats(self, stop: asyncio.Event) -> None:
        interval = max(0.5, min(5.0, self.settings.engine.lease_ttl / 3))
        while not stop.is_set():
            now_ms = int(time.time() * 1000)
            stale = now_ms - int(self.settings.engine.lease_ttl * 1000)
            try:
                WORKERS_LIVE.set(await self.heartbeats.beat(self.consumer, now_ms, stale))
                WORKER_HEARTBEATS.inc()
            except (RedisError, OSError) as exc:
                log.warning("worker %s: heartbeat failed: %s", self.consumer, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)


async def _relay(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()
