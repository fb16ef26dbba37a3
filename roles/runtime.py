"""The runtime view (A5) wired to Redis, as the bot and the admin API both build it."""

from __future__ import annotations

from redis.asyncio import Redis

from config.settings import Settings
from domain.models import Clock
from services.admin import AdminService
from services.engine import ROUNDS_QUEUE
from services.runtime import DEPTH_READER, RuntimeService
from storage.heartbeats import Heartbeats
from storage.queue import JobQueue


def runtime_service(admin: AdminService, redis: Redis, settings: Settings, now: Clock) -> RuntimeService:
    return RuntimeService(admin, Heartbeats(redis), JobQueue(redis, ROUNDS_QUEUE, DEPTH_READER), settings,
                          now=now)
