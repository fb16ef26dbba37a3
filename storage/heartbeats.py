"""Worker heartbeats (``keys.WORKER_HEARTBEAT``): a sorted set of consumer -> last beat in ms.

Written by every worker, read by the scheduler's gauges and the runtime view (A5); a worker
silent for longer than the lease no longer counts as live.
"""

from __future__ import annotations

from redis.asyncio import Redis

from storage import keys


class Heartbeats:
    """The heartbeat set: beat, list and count the live workers, forget one."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def beat(self, consumer: str, now_ms: int, stale_before_ms: int) -> int:
        """Record ``consumer``'s beat, drop beats older than ``stale_before_ms``; returns the live count."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(keys.WORKER_HEARTBEAT, {consumer: now_ms})
        pipe.zremrangebyscore(keys.WORKER_HEARTBEAT, "-inf", stale_before_ms)
        pipe.zcard(keys.WORKER_HEARTBEAT)
        _, _, live = await pipe.execute()
        return int(live)

    async def live(self, since_ms: int) -> list[tuple[str, int]]:
        """Consumers with a beat at or after ``since_ms`` and their last beat (ms), freshest first."""
        rows = await self.redis.zrevrangebyscore(keys.WORKER_HEARTBEAT, "+inf", since_ms, withscores=True)
        out = []
        for row in rows:
            member, score = row[0], row[1]
            out.append((member.decode() if isinstance(member, bytes) else str(member), int(score)))
        return out

    async def count_live(self, since_ms: int) -> int:
        return int(await self.redis.zcount(keys.WORKER_HEARTBEAT, since_ms, "+inf"))

    async def forget(self, consumer: str) -> None:
        await self.redis.zrem(keys.WORKER_HEARTBEAT, consumer)
