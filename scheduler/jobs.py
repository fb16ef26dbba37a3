"""The scheduler's two periodic jobs: the due scan (tick) and reconciliation.

Tick: running, due, unpaused campaigns without an unfinished round get a round with its attempts
(one transaction), then a job ``round:<id>`` each, and ``next_run_at`` moves to
``planned + interval`` (missed rounds skipped). The database constraints (one round per
``(user, planned_at)``, one open round per user) make double rounds impossible even when two
schedulers run at once; ``FOR UPDATE SKIP LOCKED`` makes them split the due rows.

Reconciliation: an unfinished round whose job is not queued and whose user lock has no holder,
seen so for longer than the lease, is enqueued again. This is what makes losing Redis (a flush, a
restart) harmless: the database knows every round that still has work. Only rounds whose next job
is overdue (``rounds.next_job_at``) are looked at, so its cost does not grow with the open rounds.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from config.settings import EngineSettings
from domain import schedule
from metrics import CAMPAIGNS_RUNNING, ROUNDS, SCHEDULER_LAG, SCHEDULER_TICKS, WORKERS_LIVE
from services import engine, rotation
from services.notifications import NO_GROUPS_LEFT
from storage import keys
from storage.db import DB_ERRORS, Database
from storage.heartbeats import Heartbeats
from storage.lease import Leases
from storage.queue import JobQueue
from storage.repositories import campaigns, rounds
from storage.repositories import notifications as outbox
from storage.repositories import settings as settings_repo

log = logging.getLogger(__name__)

DUE_BATCH = 500  # campaigns locked and turned into rounds per transaction
MAX_PER_TICK = 5_000  # bound on one tick's work; the rest is due at the next tick
RECONCILE_SLICE = 1_000  # overdue rounds looked up in Redis per reconciliation pass
REDIS_CHUNK = 64  # concurrent Redis calls per chunk (one connection each in the pool)

T = TypeVar("T")
Item = TypeVar("Item")


REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)


@dataclass(frozen=True)
class TickResult:
    due: int
    created: int
    enqueued: int
    paused: bool = False


class SchedulerJobs:
    """State and logic of the scheduler's jobs; the runner calls them under the leader lease."""

    def __init__(self, db: Database, queue: JobQueue, leases: Leases, settings: EngineSettings,
                 redis: Redis | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.queue = queue
        self.leases = leases
        self.settings = settings
        self.redis = redis
        self.clock = clock  # reconciliation's lease count (monotonic seconds)
        self._suspects: dict[int, float] = {}  # round id -> first seen without job and holder
        self.rng = random.Random()  # U9 random rotation
        self._cursor: tuple[datetime, int] | None = None  # where the next reconciliation slice starts

    async def tick(self) -> TickResult:
        """One due scan; errors are counted and logged, never raised (the next tick retries)."""
        try:
            result = await self._tick()
        except DB_ERRORS + REDIS_ERRORS as exc:
            SCHEDULER_TICKS.labels("error").inc()
            log.warning("scheduler tick failed: %s", exc)
            return TickResult(0, 0, 0)
        SCHEDULER_TICKS.labels("paused" if result.paused else "ok").inc()
        return result

    async def _tick(self) -> TickResult:
        async with self.db.connection() as conn:
            if await settings_repo.global_pause(conn):
                SCHEDULER_LAG.set(0)
                return TickResult(0, 0, 0, paused=True)
        due_total = created_total = enqueued = 0
        first = True
        while created_total < MAX_PER_TICK:
            async with self.db.transaction() as conn:
                now, due = await campaigns.lock_due(conn, DUE_BATCH)
                created = await rounds.create_rounds(conn, due)
                await rotation.plan(conn, [c.round_id for c in created], self.rng)
                await _tell_no_groups_left(conn, [d.account_id for d in due], now)
                await campaigns.advance(conn, [(d.account_id, _next_run(d, now)) for d in due])
            if first:
                SCHEDULER_LAG.set(max(0.0, (now - due[0].next_run_at).total_seconds()) if due else 0.0)
                first = False
            due_total += len(due)
            created_total += len(created)
            if created:
                ROUNDS.labels("created").inc(len(created))
                log.info("scheduler: %d rounds created for %d due campaigns", len(created), len(due))
            # after the commit: a crash in between leaves rounds without a job, which
            # reconciliation finds; enqueueing first could run a job for a round that never was
            added = await _chunked(self._enqueue, created)
            enqueued += sum(added)
            if len(due) < DUE_BATCH:
                break
        return TickResult(due_total, created_total, enqueued)

    async def reconcile(self) -> int:
        """Enqueue again the rounds that lost their job; returns how many were enqueued."""
        try:
            enqueued = await self._reconcile()
            await self._gauges()
        except DB_ERRORS + REDIS_ERRORS as exc:
            log.warning("reconciliation failed: %s", exc)
            return 0
        return enqueued

    async def _reconcile(self) -> int:
        """Only rounds whose next job is overdue (``rounds.next_job_at``, written by each job's last
        statement) are looked up in Redis, a slice of ``RECONCILE_SLICE`` a pass in due order, so a
        pass costs what is overdue (jobs running or backed up, lost ones), not what is open."""
        lease = self.settings.lease_ttl
        async with self.db.connection() as conn:
            # No grace after the due time: a job is marked in the queue from its enqueue to its ack
            # (a continuation is re-queued in the script that acknowledges it), and a round just
            # created is at worst a suspect for one pass; what costs time after a flush is the
            # lease that must pass between two sightings, as engine.md asks.
            overdue = await rounds.overdue_rounds(conn, timedelta(0), self._cursor, RECONCILE_SLICE)
        # a full slice: the next pass goes on after it; a short one: the next pass starts over
        self._cursor = (overdue[-1].due, overdue[-1].round_id) if len(overdue) == RECONCILE_SLICE else None
        lost = await self.queue.lost([
            (engine.job_id(r.round_id), keys.LEASE.format(name=keys.USER_LOCK.format(user_id=r.user_id)))
            for r in overdue])
        now = self.clock()
        orphans = []
        for r, is_lost in zip(overdue, lost, strict=True):
            if not is_lost:
                self._suspects.pop(r.round_id, None)
                continue
            first = self._suspects.setdefault(r.round_id, now)
            if now - first >= lease:
                orphans.append(r)
        # a suspect not seen again for long is gone (finished, or its job came back)
        self._suspects = {k: v for k, v in self._suspects.items() if now - v < lease * 10}
        added = await _chunked(self._enqueue, orphans)
        for r, ok in zip(orphans, added, strict=True):
            self._suspects.pop(r.round_id, None)
            if ok:
                log.warning("user %s round %s: no job and no lock holder for %.0fs; enqueued again",
                            r.user_id, r.round_id, lease)
        if orphans:
            ROUNDS.labels("reconciled").inc(sum(added))
        return sum(added)

    async def _enqueue(self, r: rounds.CreatedRound | rounds.OverdueRound) -> bool:
        return await self.queue.enqueue(engine.job_id(r.round_id), engine.job_payload(r.round_id, r.user_id))

    async def _gauges(self) -> None:
        async with self.db.connection() as conn:
            CAMPAIGNS_RUNNING.set(await campaigns.count_running(conn))
        await self.queue.depth()
        if self.redis is not None:
            fresh_since = int((time.time() - self.settings.lease_ttl) * 1000)
            WORKERS_LIVE.set(await Heartbeats(self.redis).count_live(fresh_since))


def _next_run(due: campaigns.DueCampaign, now: datetime) -> datetime:
    """The round after this one: planned + interval (missed ones skipped), at the window's next
    opening when that falls outside it (U10.4), so the due scan stays a range scan of next_run_at."""
    wanted = engine.next_run_after(due.next_run_at, due.interval_seconds, now)
    return schedule.due_at(due.window, due.timezone, wanted)


async def _tell_no_groups_left(conn: asyncpg.Connection, account_ids: Sequence[int], now: datetime) -> None:
    """U6.6: a due campaign with no selected active group posts nothing; its user is told once."""
    for user_id, account_id in await campaigns.mark_no_groups(conn, account_ids, now):
        await outbox.enqueue(conn, user_id, NO_GROUPS_LEFT, {"account_id": account_id},
                             f"no_groups:{user_id}:{account_id}:{now.isoformat()}", now)


async def _chunked(call: Callable[[Item], Awaitable[T]], items: Sequence[Item]) -> list[T]:
    """``call`` for each item, a chunk at a time, so a big batch doesn't open a connection per call."""
    out: list[T] = []
    for i in range(0, len(items), REDIS_CHUNK):
        out.extend(await asyncio.gather(*(call(item) for item in items[i:i + REDIS_CHUNK])))
    return out
