"""Failed admin API logins per client address, counted in Redis so every app replica shares the count."""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from storage import keys

log = logging.getLogger(__name__)


class AuthFailures:
    """A fixed window per address: ``max_failures`` wrong tokens within ``window`` seconds lock it out
    until the window ends. Redis trouble never locks anyone out (the token check still applies)."""

    def __init__(self, redis: aioredis.Redis, max_failures: int, window: int) -> None:
        self.redis = redis
        self.max_failures = max_failures
        self.window = max(1, window)

    @staticmethod
    def key(address: str) -> str:
        return keys.ADMIN_AUTH_FAILURES.format(address=address)

    async def retry_after(self, address: str) -> int:
        """Seconds until ``address`` may try again; 0 when it is not locked out."""
        if self.max_failures <= 0:
            return 0
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.get(self.key(address))
                pipe.ttl(self.key(address))
                count, ttl = await pipe.execute()
        except RedisError:
            log.warning("admin API: failed-login count unavailable (Redis error)", exc_info=True)
            return 0
        if count is None or int(count) < self.max_failures:
            return 0
        return max(1, int(ttl))

    async def record(self, address: str) -> int:
        """Count one failure; the window starts with the first one (SET NX EX; INCR keeps the TTL)."""
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(self.key(address), 0, ex=self.window, nx=True)
                pipe.incr(self.key(address))
                _, count = await pipe.execute()
        except RedisError:
            log.warning("admin API: failed-login count unavailable (Redis error)", exc_info=True)
            return 0
        return int(count)
