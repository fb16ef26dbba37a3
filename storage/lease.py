"""Leases (locks with a TTL) on Redis, with fencing tokens.

A lease is a key ``LEASE.format(name=...)`` whose value is the holder's token. Renew and release
compare the token first (Lua), so a holder whose lease expired and was taken by someone else can
do nothing to it. Tokens come from ``INCR`` of a per-name counter that is first raised to the
server clock in microseconds: a newer holder always has a larger token, also after Redis lost
the counter (flush, restart), as long as the server clock does not go back.

Metrics are labelled by the lease kind (``user`` for ``user:42``), never by the full name. An
acquisition is counted once, whether it is one try or a bounded wait that polls; a wait also goes
into ``lock_wait_seconds``. Elections for a leader lease count as elections, not as acquisitions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from metrics import (
    LEADER,
    LEADER_CHANGES,
    LEADER_ELECTIONS,
    LOCK_ACQUIRES,
    LOCK_CONTENTION,
    LOCK_WAIT_SECONDS,
)
from storage import keys
from storage.concurrency import LaterTask

log = logging.getLogger(__name__)

# The counter only has to outlive bursts of acquisitions; after it expires the clock floor
# keeps tokens increasing.
_COUNTER_TTL_MS = 24 * 3600 * 1000

# The body of a Lua function ``acquire(lease, counter)`` with ARGV[1] the ttl ms and ARGV[2] the
# counter's ttl ms: the new token, or nil and the holder's token (storage.job_locks uses it too).
_ACQUIRE_BODY = """
local held = redis.call('GET', lease)
if held then return nil, tonumber(held) end
local t = redis.call('TIME')
local floor = t[1] .. string.format('%06d', tonumber(t[2]))
local last = redis.call('GET', counter)
if not last or tonumber(last) < tonumber(floor) then redis.call('SET', counter, floor) end
local token = redis.call('INCR', counter)
redis.call('PEXPIRE', counter, ARGV[2])
redis.call('SET', lease, string.format('%d', token), 'PX', ARGV[1])
return token
"""

# KEYS: lease, counter. ARGV: ttl ms, counter ttl ms. -> {1, token} acquired | {0, holder token}
_ACQUIRE = "local function acquire(lease, counter)" + _ACQUIRE_BODY + """end
local token, held = acquire(KEYS[1], KEYS[2])
if not token then return {0, held} end
return {1, token}
"""

# KEYS: lease. ARGV: token, ttl ms. -> 1 renewed | 0 not ours
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: lease. ARGV: token. -> 1 released | 0 not ours
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


def lease_kind(name: str) -> str:
    """The low-cardinality metric label of a lease name: ``user:42`` -> ``user``."""
    return name.split(":", 1)[0]


class LeaseBusy(Exception):
    """The lease is held by someone else (``holder`` is their token, if known)."""

    def __init__(self, name: str, holder: int | None = None) -> None:
        super().__init__(f"lease {name!r} is held")
        self.name = name
        self.holder = holder


@dataclass(frozen=True)
class Lease:
    name: str
    token: int
    ttl: float  # seconds


@dataclass
class HeldLease:
    """A lease kept renewed in the background; ``lost`` is set once it can no longer be proven ours."""

    lease: Lease
    lost: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def token(self) -> int:
        return self.lease.token


class Leases:
    """Acquire, renew and release leases; keep them renewed; run a body as the leader."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self, name: str, ttl: float) -> Lease | None:
        """Take the lease for ``ttl`` seconds if it is free; None if someone holds it."""
        lease = await self._try(name, ttl)
        kind = lease_kind(name)
        if lease is None:
            LOCK_ACQUIRES.labels(kind, "busy").inc()
            LOCK_CONTENTION.labels(kind).inc()
            return None
        LOCK_ACQUIRES.labels(kind, "acquired").inc()
        return lease

    async def _try(self, name: str, ttl: float) -> Lease | None:
        """One attempt, not counted (the callers count acquisitions and elections)."""
        acquired, token = await self._acquire(
            keys=[keys.LEASE.format(name=name), keys.FENCE_COUNTER.format(name=name)],
            args=[_ms(ttl), _COUNTER_TTL_MS])
        return Lease(name, int(token), ttl) if int(acquired) else None

    async def renew(self, lease: Lease, ttl: float | None = None) -> bool:
        """Extend the lease to ``ttl`` (default: its own) from now; False if it is no longer ours."""
        ok = await self._renew(keys=[keys.LEASE.format(name=lease.name)],
                               args=[lease.token, _ms(lease.ttl if ttl is None else ttl)])
        return bool(ok)

    async def release(self, lease: Lease) -> bool:
        """Delete the lease if it is still ours (compare-and-delete); False otherwise."""
        return bool(await self._release(keys=[keys.LEASE.format(name=lease.name)], args=[lease.token]))

    async def holder(self, name: str) -> int | None:
        """Token of the current holder, None when the lease is free."""
        value = await self.redis.get(keys.LEASE.format(name=name))
        return None if value is None else int(value)

    @contextlib.asynccontextmanager
    async def keep(self, lease: Lease, release: bool = True) -> AsyncIterator[HeldLease]:
        """Renew an acquired lease every ttl/3 while the block runs, release it on exit (unless
        ``release`` is False: the caller then releases it, e.g. in the job queue's settle script)."""
        held = HeldLease(lease)
        done = asyncio.Event()
        # conservative: the lease may have been written just before
        expires = asyncio.get_running_loop().time() + lease.ttl * 2 / 3
        # the renewing starts when the first renewal is due: a hold shorter than ttl/3 (most round
        # jobs, issue 14) costs a timer instead of a task created and cancelled
        renewing = LaterTask(lease.ttl / 3, lambda: self._renew_until_lost(held, done, expires, slept=True))
        try:
            yield held
        finally:
            done.set()
            await renewing.stop()
            if release and not held.lost.is_set():
                try:
                    await self.release(lease)
                except (RedisError, OSError) as exc:
                    # it expires on its own after the TTL
                    log.warning("lease %s: release failed: %s", lease_kind(lease.name), exc)

    @contextlib.asynccontextmanager
    async def hold(self, name: str, ttl: float, wait: float = 0.0) -> AsyncIterator[HeldLease]:
        """Acquire (retrying for up to ``wait`` seconds) and keep the lease; raise LeaseBusy if held."""
        loop = asyncio.get_running_loop()
        kind = lease_kind(name)
        started = loop.time()
        deadline = started + wait
        contended = False
        while (lease := await self._try(name, ttl)) is None:
            if not contended:
                contended = True
                LOCK_CONTENTION.labels(kind).inc()
            if loop.time() >= deadline:
                LOCK_ACQUIRES.labels(kind, "timeout").inc()
                LOCK_WAIT_SECONDS.labels(kind).observe(loop.time() - started)
                raise LeaseBusy(name, await self.holder(name))
            await asyncio.sleep(min(0.05, ttl / 10))
        LOCK_ACQUIRES.labels(kind, "acquired").inc()
        LOCK_WAIT_SECONDS.labels(kind).observe(loop.time() - started)
        async with self.keep(lease) as held:
            yield held

    async def run_as_leader(
        self,
        name: str,
        ttl: float,
        body: Callable[[HeldLease], Awaitable[None]],
        stop: asyncio.Event,
        retry: float | None = None,
    ) -> None:
        """Run ``body`` while holding the lease ``name``, until ``stop`` or until ``body`` returns.

        Waits (polling every ``retry`` seconds, default ttl/3) until the lease is free; when the
        lease is lost the body is cancelled and the election starts again. An exception from
        ``body`` releases the lease and propagates.
        """
        kind = lease_kind(name)
        pause = ttl / 3 if retry is None else retry
        while not stop.is_set():
            try:
                lease = await self._try(name, ttl)
            except (RedisError, OSError) as exc:
                log.warning("leader %s: acquire failed: %s", kind, exc)
                lease = None
            if lease is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
                continue
            log.info("leader %s: elected (token %d)", kind, lease.token)
            LEADER_ELECTIONS.labels(kind).inc()
            LEADER.labels(kind).set(1)
            lost = False
            try:
                async with self.keep(lease) as held:
                    finished = await _run_until(body(held), held.lost, stop)
                    lost = held.lost.is_set()
            finally:
                LEADER.labels(kind).set(0)
                LEADER_CHANGES.labels(kind, "lost" if lost else "stepped_down").inc()
            if finished:
                return
            if lost:
                log.warning("leader %s: lease lost, body cancelled", kind)

    async def _renew_until_lost(self, held: HeldLease, done: asyncio.Event | None = None,
                                expires: float | None = None, slept: bool = False) -> None:
        """Renew until ``done`` or the lease is lost; ``expires`` (loop time): when it may run out,
        ``slept``: the first wait (ttl/3 from the acquisition) is already over."""
        lease = held.lease
        loop = asyncio.get_running_loop()
        if expires is None:
            # conservative: the lease may have been written just before this task started
            expires = loop.time() + lease.ttl * 2 / 3
        # ``done`` ends the loop even if the cancellation meant to end it is lost: a cancel that
        # lands inside a Redis call can be swallowed by the client (seen in the chaos suite: the
        # task stayed "cancelling", renewing the lease forever while ``keep`` waited for it)
        while True:
            if done is not None and done.is_set():
                return
            if not slept:
                await asyncio.sleep(max(0.0, min(lease.ttl / 3, expires - loop.time())))
            slept = False
            if done is not None and done.is_set():
                return
            if loop.time() >= expires:
                break
            started = loop.time()
            try:
                if not await self.renew(lease):
                    break
            except (RedisError, OSError) as exc:
                log.warning("lease %s: renew failed: %s", lease_kind(lease.name), exc)
                continue
            expires = started + lease.ttl
        log.warning("lease %s: lost (token %d)", lease_kind(lease.name), lease.token)
        held.lost.set()


async def _run_until(work: Awaitable[None], lost: asyncio.Event, stop: asyncio.Event) -> bool:
    """Run ``work`` until it finishes (True) or ``lost``/``stop`` is set (cancelled, False)."""
    task = asyncio.ensure_future(work)
    lost_wait = asyncio.create_task(lost.wait())
    stop_wait = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, lost_wait, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in (lost_wait, stop_wait):
            waiter.cancel()
        if not task.done():
            await _cancel(task)
    if task.cancelled():
        return False
    task.result()  # re-raise the body's exception
    return True


async def _cancel(task: asyncio.Future[Any]) -> None:
    # gather, unlike awaiting the task under suppress(CancelledError), lets a cancellation of
    # the caller itself propagate
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
