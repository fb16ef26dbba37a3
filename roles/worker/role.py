"""The worker role: the scheduler (under its leader lease) and the worker loops of round jobs.

Like the bot and app roles, it gets the shared dependencies built once by the supervisor and runs
until ``stop`` is set; both parts share one queue of round jobs.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from accounts.gateway import AccountGateway
from config.settings import Settings
from roles.worker.loop import round_queue, run_worker
from scheduler.runner import run_scheduler
from services.engine.ports import Cipher
from storage.db import Database


async def run_worker_role(
    settings: Settings,
    db: Database,
    redis: Redis,
    gateway: AccountGateway,
    stop: asyncio.Event,
    *,
    cipher: Cipher,
    consumer: str,
) -> None:
    """Run the scheduler and the worker loops until ``stop``; a crash of either ends both."""
    queue = round_queue(redis, consumer, settings)
    async with asyncio.TaskGroup() as group:
        group.create_task(run_scheduler(db, redis, queue, settings, stop))
        group.create_task(run_worker(db, redis, gateway, settings, stop, consumer, cipher=cipher,
                                     queue=queue))
