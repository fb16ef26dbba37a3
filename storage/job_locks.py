"""A round job's start in Redis in one round trip: the broadcast's lock (``UserLock``, keyed by the
user and the round's account row), the Telegram account's lock and the account's pacing (its
next-send hint and its groups' hints).

Taken one by one that was three round trips per job (two lease scripts and an MGET), which is what
a 1-group round pays per send. The Telegram account's id comes with the job (the scheduler puts it
in the payload); the engine checks it against the round's account and falls back to the separate
calls when they differ. The leases are the ordinary ``storage.lease`` ones (same keys, fencing
tokens raised to the server clock, compare-and-delete release), so ``Leases.keep``, ``release`` and
the queue's settle script treat them as before. Concurrent jobs' starts share one call (issue 14),
taken in call order, as separate calls would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from metrics import LOCK_ACQUIRES, LOCK_CONTENTION
from storage import keys
from storage.concurrency import Coalescer
from storage.lease import _ACQUIRE_BODY, _COUNTER_TTL_MS, Lease, lease_kind
from storage.user_lock import lock_name

TAKE_BATCH_LIMIT = 100  # jobs' starts sent together in one script call

# Per job, in turn, six KEYS: user lease, user fence counter, account lease, account fence counter,
# account next send, account group hints. ARGV: ttl ms, counter ttl ms. Concurrent jobs' starts share
# one call (``JobLocks.take``).
# -> per job: {0} user busy | {user token, 0} account busy (the user's lease is held) |
#    {user token, account token, next send ms or '', group id, hint ms, ...}
_TAKE = """
local function acquire(lease, counter)
""" + _ACQUIRE_BODY + """
end
local function take(k)
  local user = acquire(KEYS[k], KEYS[k + 1])
  if not user then return {0} end
  local account = acquire(KEYS[k + 2], KEYS[k + 3])
  if not account then return {user, 0} end
  local out = {user, account, redis.call('GET', KEYS[k + 4]) or ''}
  local hints = redis.call('HGETALL', KEYS[k + 5])
  for i = 1, #hints do out[#out + 1] = hints[i] end
  return out
end
local all = {}
for k = 1, #KEYS, 6 do all[#all + 1] = take(k) end
return all
"""


@dataclass(frozen=True)
class PaceRead:
    """The account's pacing keys as read: next send (epoch ms, None when unset) and group hints."""

    next_send_ms: float | None
    group_hints_ms: dict[int, float]


@dataclass(frozen=True)
class Taken:
    """What ``JobLocks.take`` got: no user lease (busy), or it and maybe the account's with its pace."""

    tg_user_id: int
    user: Lease | None
    account: Lease | None = None
    pace: PaceRead | None = None


def pace_read(next_send: Any, hints: Any) -> PaceRead:
    """A ``PaceRead`` from raw replies (bytes or str); unreadable values count as unset."""
    return PaceRead(_number(next_send), {int(k): v for k, v in _pairs(hints) if v is not None})


class JobLocks:
    """Takes both leases of a job and reads the account's pacing, atomically, in one script call."""

    def __init__(self, redis: Redis, ttl: float) -> None:
        self.ttl = ttl
        self._take = redis.register_script(_TAKE)
        # concurrent jobs' starts share a round trip (redis-py spends ~100 us of CPU per call)
        self._starts: Coalescer[list[str], Any] = Coalescer(self._take_batch, TAKE_BATCH_LIMIT)

    async def _take_batch(self, items: list[list[str]]) -> list[Any]:
        script_keys = [key for item in items for key in item]
        return list(await self._take(keys=script_keys, args=[max(1, int(self.ttl * 1000)), _COUNTER_TTL_MS]))

    async def take(self, user_id: int, account_id: int | None, tg_user_id: int) -> Taken:
        user_name = lock_name(user_id, account_id)
        account_name = keys.ACCOUNT_LOCK.format(tg_user_id=tg_user_id)
        reply = await self._starts.submit(
            [keys.LEASE.format(name=user_name), keys.FENCE_COUNTER.format(name=user_name),
             keys.LEASE.format(name=account_name), keys.FENCE_COUNTER.format(name=account_name),
             keys.ACCOUNT_NEXT_SEND.format(tg_user_id=tg_user_id),
             keys.ACCOUNT_GROUP_HINTS.format(tg_user_id=tg_user_id)])
        user_token = int(reply[0])
        _count(user_name, user_token != 0)
        if not user_token:
            return Taken(tg_user_id, None)
        user = Lease(user_name, user_token, self.ttl)
        account_token = int(reply[1])
        _count(account_name, account_token != 0)
        if not account_token:
            return Taken(tg_user_id, user)
        return Taken(tg_user_id, user, Lease(account_name, account_token, self.ttl),
                     pace_read(reply[2], reply[3:]))


def _count(name: str, acquired: bool) -> None:
    # counted as ``Leases.acquire`` counts a try
    kind = lease_kind(name)
    LOCK_ACQUIRES.labels(kind, "acquired" if acquired else "busy").inc()
    if not acquired:
        LOCK_CONTENTION.labels(kind).inc()


def _number(value: Any) -> float | None:
    if value is None or value in (b"", ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _pairs(flat: Any) -> list[tuple[int, float | None]]:
    """(group id, hint ms) from an HGETALL reply: a flat list, or a dict (RESP3)."""
    items = list(flat.items()) if isinstance(flat, dict) else list(zip(flat[::2], flat[1::2], strict=True))
    out = []
    for key, value in items:
        try:
            out.append((int(key), _number(value)))
        except (TypeError, ValueError):
            continue
    return out
