"""The runtime view (A5): the database's counts plus what only Redis knows.

``AdminService.runtime`` answers from PostgreSQL (running campaigns, sends of the last hour,
flood pauses, scheduler lag); the queue depth and the worker heartbeats live in Redis. This
service joins them so the bot's ``adm:runtime`` and the HTTP admin API show the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

from config.settings import Settings
from domain.models import Clock, utc_now
from services.admin import Actor, AdminService, RuntimeCounts
from services.engine import ROUNDS_QUEUE
from storage import keys
from storage.queue import JobQueue, QueueDepth

DEPTH_READER = "admin-runtime"  # consumer name of the depth reader; it never reads jobs


@dataclass(frozen=True)
class WorkerBeat:
    consumer: str
    last_heartbeat_at: datetime
    age_seconds: float


@dataclass(frozen=True)
class RuntimeView:
    """A5 in full. ``workers`` holds only live ones: a heartbeat younger than the lease."""

    queue: QueueDepth
    workers: list[WorkerBeat]
    counts: RuntimeCounts

    @property
    def live_workers(self) -> int:
        return len(self.workers)


class RuntimeService:
    """Queue depth, live workers and the admin service's runtime counts in one view."""

    def __init__(self, admin: AdminService, redis: Redis, settings: Settings, now: Clock = utc_now,
                 queue_name: str = ROUNDS_QUEUE) -> None:
        self.admin = admin
        self.redis = redis
        self.settings = settings
        self.now = now
        self.queue = JobQueue(redis, queue_name, DEPTH_READER)

    async def snapshot(self, actor: Actor) -> RuntimeView:
        counts = await self.admin.runtime(actor)
        depth = await self.queue.depth()
        return RuntimeView(queue=depth, workers=await self.live_workers(), counts=counts)

    async def live_workers(self) -> list[WorkerBeat]:
        """Workers whose last heartbeat is younger than ``engine.lease_ttl``, freshest first.

        A worker silent for longer than the lease has its queue entries reclaimed by others, so it
        no longer counts as live.
        """
        now_ms = int(self.now().timestamp() * 1000)
        oldest = now_ms - int(self.settings.engine.lease_ttl * 1000)
        rows = await self.redis.zrevrangebyscore(keys.WORKER_HEARTBEAT, "+inf", oldest, withscores=True)
        beats = []
        for row in rows:
            member, score = row[0], row[1]
            consumer = member.decode() if isinstance(member, bytes) else str(member)
            at_ms = int(score)
            beats.append(WorkerBeat(
                consumer=consumer,
                last_heartbeat_at=datetime.fromtimestamp(at_ms / 1000, UTC),
                age_seconds=max(0.0, (now_ms - at_ms) / 1000),
            ))
        return beats
