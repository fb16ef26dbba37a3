"""The runtime view (A5): the database's counts plus what only Redis knows.

``AdminService.runtime`` answers from PostgreSQL (running campaigns, sends of the last hour,
flood pauses, scheduler lag); the queue depth and the worker heartbeats live in Redis. This
service joins them so the bot's ``adm:runtime`` and the HTTP admin API show the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from config.settings import Settings
from domain.models import Clock, utc_now
from services.admin import Actor, AdminService, RuntimeCounts
from storage.queue import QueueDepth

DEPTH_READER = "admin-runtime"  # consumer name of the depth reader; it never reads jobs


class WorkerBeats(Protocol):
    """The workers' heartbeats (``storage.heartbeats.Heartbeats``)."""

    async def live(self, since_ms: int) -> list[tuple[str, int]]: ...


class QueueDepthReader(Protocol):
    """The round queue's depth (``storage.queue.JobQueue`` opened as ``DEPTH_READER``)."""

    async def depth(self) -> QueueDepth: ...


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

    def __init__(self, admin: AdminService, workers: WorkerBeats, queue: QueueDepthReader, settings: Settings,
                 now: Clock = utc_now) -> None:
        self.admin = admin
        self.workers = workers
        self.queue = queue
        self.settings = settings
        self.now = now

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
        beats = []
        for consumer, at_ms in await self.workers.live(oldest):
            beats.append(WorkerBeat(
                consumer=consumer,
                last_heartbeat_at=datetime.fromtimestamp(at_ms / 1000, UTC),
                age_seconds=max(0.0, (now_ms - at_ms) / 1000),
            ))
        return beats
