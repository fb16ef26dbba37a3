"""Job queue on Redis primitives: a stream with a consumer group plus a delayed sorted set.

Layout (keys in ``storage/keys.py``, ``{name}`` is the queue name):

- ``QUEUE_STREAM``: ready jobs, one entry per job (fields ``j`` job id, ``p`` payload, ``n`` earlier
  deliveries), read through the consumer group ``QUEUE_GROUP`` with one consumer per worker process.
  Entries are deleted when acknowledged, so the stream holds only ready and running jobs.
- ``QUEUE_DELAYED``: job id -> due time (server clock, ms); ``QUEUE_PAYLOADS``: their payloads.
- ``QUEUE_DEDUPE``: job id -> the stream entry id of its ready/running entry, or ``d`` while delayed.
  A job id is enqueued at most once while it has a marker; the marker goes away with the ack.

Every state change runs in one Lua script, so a job is never half-moved. Redis may be flushed at any
time: the scripts recreate the consumer group on NOGROUP, and the database (reconciliation)
re-enqueues what was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from metrics import JOBS, QUEUE_DEPTH
from storage import keys
from storage.concurrency import Coalescer, LaterTask

log = logging.getLogger(__name__)

PROMOTE_LIMIT = 500  # delayed jobs moved per promote call
BATCH_LIMIT = 1000  # enqueues or acks sent together in one script call
SETTLE_BATCH_LIMIT = 100  # jobs' ends sent together in one script call (each has a few lease keys)
_SERVER_TIMER_MS = 100  # resolution of BLOCK timeouts in redis-server (hz 10)
_PRUNE_EVERY = 60.0  # seconds between prunes of dead consumers in run_maintenance

# Shared Lua helpers, prepended to each script. Due times use the Redis server clock so that
# producers and consumers on hosts with skewed clocks agree on "due".
_LUA_PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function put(stream, delayed, payloads, dedupe, job, payload, delay_ms)
  if delay_ms > 0 then
    -- +1: now_ms() rounds down, and a job must never come out early
    redis.call('ZADD', delayed, now_ms() + 1 + delay_ms, job)
    redis.call('HSET', payloads, job, payload)
    redis.call('HSET', dedupe, job, 'd')
  else
    local id = redis.call('XADD', stream, '*', 'j', job, 'p', payload, 'n', 0)
    redis.call('HSET', dedupe, job, id)
  end
end

local function promote(stream, delayed, payloads, dedupe, now, limit)
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, limit)
  for _, job in ipairs(due) do
    local payload = redis.call('HGET', payloads, job)
    redis.call('ZREM', delayed, job)
    redis.call('HDEL', payloads, job)
    if payload then
      local id = redis.call('XADD', stream, '*', 'j', job, 'p', payload, 'n', 0)
      redis.call('HSET', dedupe, job, id)
    elseif redis.call('HGET', dedupe, job) == 'd' then
      redis.call('HDEL', dedupe, job)
    end
  end
  return #due
end

-- Entries as one JSON text, [[entry id, job id, payload, earlier deliveries], ...]: the client
-- decodes a batch in one call instead of walking nested replies element by element. Payloads are
-- JSON already (written by enqueue), so they are spliced in as they are.
local function json_string(value)
  -- entry ids and usual job ids need no escaping; anything else goes through cjson
  if string.find(value, '[^%w:_%-%.]') then return cjson.encode(value) end
  return '"' .. value .. '"'
end

local function encode_entries(entries)
  local out = {}
  for i, e in ipairs(entries) do
    local f = {}
    for k = 1, #e[2], 2 do f[e[2][k]] = e[2][k + 1] end
    out[i] = '[' .. json_string(e[1]) .. ',' .. json_string(f['j'] or '') .. ',' .. (f['p'] or '{}')
             .. ',' .. (tonumber(f['n']) or 0) .. ']'
  end
  return '[' .. table.concat(out, ',') .. ']'
end

local function read_group(stream, group, consumer, count)
  local r = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', stream, '>')
  if type(r) == 'table' and r.err then
    if not string.find(r.err, 'NOGROUP') then return redis.error_reply(r.err) end
    redis.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
    r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', stream, '>')
  end
  if r then return r[1][2] end
  return {}
end
"""

# KEYS: stream, delayed, payloads, dedupe. ARGV: (job id, payload, delay ms) triples, in order.
# -> per job: 1 enqueued, 0 duplicate (also of an earlier job of the same call)
_ENQUEUE = _LUA_PRELUDE + """
local out = {}
for i = 1, #ARGV, 3 do
  if redis.call('HEXISTS', KEYS[4], ARGV[i]) == 1 then
    out[#out + 1] = 0
  else
    put(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]))
    out[#out + 1] = 1
  end
end
return out
"""

# KEYS: stream, delayed, payloads, dedupe. ARGV: limit. -> number promoted
_PROMOTE = _LUA_PRELUDE + """
return promote(KEYS[1], KEYS[2], KEYS[3], KEYS[4], now_ms(), tonumber(ARGV[1]))
"""

# Promote, then a non-blocking group read: one round trip per fetch while jobs are flowing.
# KEYS: stream, delayed, payloads, dedupe. ARGV: group, consumer, count, promote limit.
# -> {ms until the next delayed job is due or -1, entries as JSON (see encode_entries)}
_FETCH = _LUA_PRELUDE + """
local now = now_ms()
promote(KEYS[1], KEYS[2], KEYS[3], KEYS[4], now, tonumber(ARGV[4]))
local entries = read_group(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
if entries.err then return entries end
local wait = -1
if #entries == 0 then  -- the wait only matters to a fetch that got nothing
  local head = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if head[2] then wait = math.max(0, tonumber(head[2]) - now) end
end
return {wait, encode_entries(entries)}
"""

# KEYS: stream, dedupe. ARGV: group, then (entry id, job id) pairs. -> entries acknowledged
# The marker is cleared only when it still names this entry: a stale ack (the job was reclaimed
# and re-queued meanwhile) must not clear the marker of the job's next instance. Variadic
# XACK/XDEL/HMGET/HDEL per chunk (unpack has a stack limit) instead of four calls per job.
_ACK = """
local acked = 0
local n = (#ARGV - 1) / 2
for first = 0, n - 1, _ACK_CHUNK do
  local last = math.min(n, first + _ACK_CHUNK) - 1
  local ids, jobs = {}, {}
  for i = first, last do
    ids[#ids + 1] = ARGV[2 + 2 * i]
    jobs[#jobs + 1] = ARGV[3 + 2 * i]
  end
  acked = acked + redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
  redis.call('XDEL', KEYS[1], unpack(ids))
  local marks = redis.call('HMGET', KEYS[2], unpack(jobs))
  local done = {}
  for k = 1, #jobs do
    if marks[k] == ids[k] then done[#done + 1] = jobs[k] end
  end
  if #done > 0 then redis.call('HDEL', KEYS[2], unpack(done)) end
end
return acked
""".replace("_ACK_CHUNK", "1000")

# KEYS: stream, delayed, payloads, dedupe. ARGV: group, entry id, job id, payload, delay ms.
# -> 1 re-enqueued, 0 another instance of the job id is already queued (nothing added)
_REQUEUE = _LUA_PRELUDE + """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
local mark = redis.call('HGET', KEYS[4], ARGV[3])
if mark and mark ~= ARGV[2] then return 0 end
put(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[3], ARGV[4], tonumber(ARGV[5]))
return 1
"""

# Jobs' ends in one round trip: for each job in turn, acknowledge it, or re-enqueue it as _REQUEUE
# does, then release the leases its run held (compare-and-delete, as ``storage.lease`` releases),
# in this order and atomically, so the job is back in the queue before anyone can take its lock.
# Concurrent jobs' ends share the call (``JobQueue.settle``).
# KEYS: stream, delayed, payloads, dedupe, then each job's lease keys in turn.
# ARGV: group, then per job: entry id, job id, payload (empty: acknowledge), delay ms, its number of
# leases, one token per lease. -> per job 1 re-enqueued | 0 acknowledged
_SETTLE = _LUA_PRELUDE + """
local out = {}
local a, k = 2, 5
while a <= #ARGV do
  local entry, job, payload, n = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 4])
  local added = 0
  redis.call('XACK', KEYS[1], ARGV[1], entry)
  redis.call('XDEL', KEYS[1], entry)
  local mark = redis.call('HGET', KEYS[4], job)
  if payload == '' then
    if mark == entry then redis.call('HDEL', KEYS[4], job) end
  elseif not mark or mark == entry then
    put(KEYS[1], KEYS[2], KEYS[3], KEYS[4], job, payload, tonumber(ARGV[a + 3]))
    added = 1
  end
  for i = 1, n do
    if redis.call('GET', KEYS[k]) == ARGV[a + 4 + i] then redis.call('DEL', KEYS[k]) end
    k = k + 1
  end
  out[#out + 1] = added
  a = a + 5 + n
end
return out
"""

# Reconciliation's question for a slice of rounds: which jobs are neither queued nor running
# (dedupe marker) nor covered by a held lease (the user's lock). One call, 2 reads per pair.
# KEYS: dedupe, then one lease key per job. ARGV: job ids, in KEYS' order. -> {1 | 0, ...}, 1: lost
_LOST = """
local out = {}
for i = 1, #ARGV do
  local lost = redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 and redis.call('EXISTS', KEYS[i + 1]) == 0
  out[i] = lost and 1 or 0
end
return out
"""

# Reset the idle time of entries still owned by this consumer (XCLAIM JUSTID does not count a
# delivery). An entry another consumer has reclaimed is left alone and reported as lost.
# KEYS: stream. ARGV: group, consumer, entry ids... -> {1 kept | 0 lost, ...}
_TOUCH = """
local out = {}
for i = 3, #ARGV do
  local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if type(p) == 'table' and not p.err and p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""

# Claim entries idle longer than the lease and put them back at the tail of the stream as fresh
# entries (delivery count carried in ``n``), so whichever consumer reads next runs them. An entry
# whose job id already has another live instance is dropped instead.
# KEYS: stream, dedupe. ARGV: group, consumer, min idle ms, cursor, count. -> {cursor, moved, dropped}
_RECLAIM = """
local r = redis.pcall('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
if type(r) == 'table' and r.err then
  if not string.find(r.err, 'NOGROUP') then return redis.error_reply(r.err) end
  redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
  return {'0-0', 0, 0}
end
local moved, dropped = 0, 0
for _, e in ipairs(r[2]) do
  -- Redis 6.2 reports an entry deleted while pending as nil (false here); 7.x lists it apart
  if e then
    local id, f = e[1], {}
    for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
    redis.call('XACK', KEYS[1], ARGV[1], id)
    redis.call('XDEL', KEYS[1], id)
    local mark = f['j'] and redis.call('HGET', KEYS[2], f['j'])
    if f['j'] and (not mark or mark == id) then
      local nid = redis.call('XADD', KEYS[1], '*', 'j', f['j'], 'p', f['p'] or '{}',
                             'n', (tonumber(f['n']) or 0) + 1)
      redis.call('HSET', KEYS[2], f['j'], nid)
      moved = moved + 1
    else
      dropped = dropped + 1
    end
  end
end
return {r[1], moved, dropped}
"""

# Consumers of processes that are gone stay in the group; drop those idle for long with nothing
# pending. Atomic, because deleting a consumer drops its pending entries with it.
# KEYS: stream. ARGV: group, min idle ms, own consumer name. -> consumers deleted
_PRUNE = """
local r = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if type(r) == 'table' and r.err then return 0 end
local deleted = 0
for _, c in ipairs(r) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['pending'] == 0 and f['idle'] >= tonumber(ARGV[2]) and f['name'] ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    deleted = deleted + 1
  end
end
return deleted
"""

# KEYS: stream, delayed. ARGV: group. -> {stream length, delayed, pending, {{consumer, count}...}}
_DEPTH = """
local len = redis.call('XLEN', KEYS[1])
local delayed = redis.call('ZCARD', KEYS[2])
local p = redis.pcall('XPENDING', KEYS[1], ARGV[1])
if type(p) == 'table' and not p.err then return {len, delayed, p[1], p[4] or {}} end
return {len, delayed, 0, {}}
"""


@dataclass(frozen=True)
class Job:
    """One delivery of a job: ``id`` is the dedupe id, ``entry_id`` the stream entry to ack."""

    id: str
    entry_id: str
    payload: dict[str, Any]
    deliveries: int = 1


@dataclass(frozen=True)
class QueueDepth:
    """``ready``: in the stream, not yet delivered; ``pending``: delivered, not yet acknowledged."""

    ready: int
    delayed: int
    pending: int
    pending_by_consumer: dict[str, int] = field(default_factory=dict)


def consumer_name() -> str:
    """A consumer name unique to this process (host, pid and a random suffix)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _ms(seconds: float) -> int:
    return max(0, math.ceil(seconds * 1000))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return {_text(k): v for k, v in raw.items()}
    items = list(raw or ())
    return {_text(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


def _decode_entries(raw: Any) -> list[Job]:
    """Jobs from the fetch script's JSON (see ``encode_entries`` in the Lua prelude)."""
    return [Job(id=job_id, entry_id=entry_id, payload=payload, deliveries=int(earlier) + 1)
            for entry_id, job_id, payload, earlier in orjson.loads(raw)]


def _stream_entries(resp: Any) -> list[Any]:
    """Entries of the single stream in an XREADGROUP reply (RESP2 list or RESP3 dict)."""
    if not resp:
        return []
    if isinstance(resp, dict):
        entries = next(iter(resp.values()))
        return list(entries[0] if entries and isinstance(entries[0], list) else entries)
    return list(resp[0][1])


# a job's end as ``JobQueue.settle`` queues it: the job, its payload to re-enqueue (empty: ack), the
# delay in ms and the (lease key, token) pairs to release
_Settle = tuple["Job", bytes, int, tuple[tuple[str, int], ...]]


class JobQueue:
    """A named job queue: dedupe by job id, delays, explicit acks, lease-based redelivery.

    ``lease_ms`` is how long a delivered entry may stay idle (not acked, not touched) before
    another consumer's ``reclaim_stale`` puts it back in the stream.
    """

    def __init__(self, redis: Redis, name: str, consumer: str, lease_ms: int = 30_000) -> None:
        self.redis = redis
        self.name = name
        self.consumer = consumer
        self.lease_ms = lease_ms
        self.group = keys.QUEUE_GROUP
        self.stream = keys.QUEUE_STREAM.format(name=name)
        self.delayed = keys.QUEUE_DELAYED.format(name=name)
        self.payloads = keys.QUEUE_PAYLOADS.format(name=name)
        self.dedupe = keys.QUEUE_DEDUPE.format(name=name)
        self._all_keys = [self.stream, self.delayed, self.payloads, self.dedupe]
        self._enqueue = redis.register_script(_ENQUEUE)
        self._promote = redis.register_script(_PROMOTE)
        self._fetch = redis.register_script(_FETCH)
        self._ack = redis.register_script(_ACK)
        self._requeue = redis.register_script(_REQUEUE)
        self._settle = redis.register_script(_SETTLE)
        self._lost = redis.register_script(_LOST)
        self._touch = redis.register_script(_TOUCH)
        self._reclaim = redis.register_script(_RECLAIM)
        self._depth = redis.register_script(_DEPTH)
        self._prune = redis.register_script(_PRUNE)
        self._enqueues: Coalescer[tuple[str, bytes, int], bool] = Coalescer(self._enqueue_batch, BATCH_LIMIT)
        self._acks: Coalescer[Job, None] = Coalescer(self._ack_batch, BATCH_LIMIT)
        # jobs' ends (ack or requeue, then their leases released) of concurrent jobs share a call
        self._settles: Coalescer[_Settle, bool] = Coalescer(self._settle_batch, SETTLE_BATCH_LIMIT)

    async def ensure_group(self) -> None:
        """Create the stream and its consumer group if missing (fetch and reclaim also do it)."""
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def enqueue(self, job_id: str, payload: dict[str, Any], delay: float = 0.0) -> bool:
        """Add a job unless its id is already ready, delayed or running; False for a duplicate.

        Concurrent enqueues share round trips (one script call per batch, in call order).
        """
        return await self._enqueues.submit((job_id, orjson.dumps(payload), _ms(delay)))

    async def _enqueue_batch(self, items: list[tuple[str, bytes, int]]) -> list[bool]:
        args: list[str | bytes | int] = []
        for item in items:
            args += item
        added = [bool(int(a)) for a in await self._enqueue(keys=self._all_keys, args=args)]
        if n := sum(added):
            JOBS.labels("enqueued").inc(n)
        if len(added) - n:
            JOBS.labels("duplicate").inc(len(added) - n)
        return added

    async def fetch(self, count: int = 10, block_ms: int = 1000) -> list[Job]:
        """Up to ``count`` jobs for this consumer, waiting at most ``block_ms`` for the first.

        Due delayed jobs are promoted first, and the wait is cut short when a delayed job becomes
        due, so one worker needs no maintenance loop to see its delayed jobs.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block_ms / 1000
        promote_limit = max(count, 100)
        while True:
            wait_ms, raw = await self._fetch(
                keys=self._all_keys, args=[self.group, self.consumer, count, promote_limit])
            jobs = _decode_entries(raw)
            remaining = int((deadline - loop.time()) * 1000)
            if jobs or remaining <= 0:
                break
            block = remaining if int(wait_ms) < 0 else min(remaining, int(wait_ms))
            if block <= 0:
                continue  # more delayed jobs were due than one promote takes
            if block < _SERVER_TIMER_MS:
                # Redis checks blocking timeouts on its ~100 ms timer; a short wait is kept here
                await asyncio.sleep(block / 1000)
                continue
            try:
                resp = await self.redis.xreadgroup(
                    self.group, self.consumer, {self.stream: ">"}, count=count, block=block)
            except ResponseError as exc:
                # flushed while blocked: Redis 6 answers NOGROUP at the next read, Redis 7 unblocks the
                # reader at once with "UNBLOCKED the stream key no longer exists"; either way the
                # fetch script recreates the group on the next turn
                if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                    raise
                continue
            jobs = self._jobs(_stream_entries(resp))
            if jobs:
                break
        if jobs:
            JOBS.labels("fetched").inc(len(jobs))
        return jobs

    async def ack(self, job: Job) -> None:
        """Acknowledge one job after its outcome is durable; frees its dedupe id.

        Acks of concurrent jobs share round trips; this returns once this job's ack is done.
        """
        await self._acks.submit(job)

    async def ack_many(self, jobs: Sequence[Job]) -> None:
        """Acknowledge several jobs in one round trip."""
        if jobs:
            await self._ack_batch(list(jobs))

    async def _ack_batch(self, jobs: list[Job]) -> list[None]:
        args: list[str] = [self.group]
        for job in jobs:
            args += [job.entry_id, job.id]
        await self._ack(keys=[self.stream, self.dedupe], args=args)
        JOBS.labels("acked").inc(len(jobs))
        return [None] * len(jobs)

    async def requeue(self, job: Job, delay: float, payload: dict[str, Any] | None = None) -> bool:
        """Acknowledge ``job`` and enqueue the same job id with ``delay``, atomically.

        Returns False (and only acknowledges) when another instance of the job id is already
        queued, e.g. reconciliation re-enqueued it while this one was running.
        """
        data = orjson.dumps(job.payload if payload is None else payload)
        added = await self._requeue(
            keys=self._all_keys, args=[self.group, job.entry_id, job.id, data, _ms(delay)])
        JOBS.labels("requeued" if added else "acked").inc()
        return bool(added)

    async def settle(self, job: Job, requeue: bool, delay: float = 0.0, payload: dict[str, Any] | None = None,
                     leases: Sequence[tuple[str, int]] = ()) -> bool:
        """``ack`` (``requeue`` False) or ``requeue`` the job, then release ``leases`` ((key, token)
        pairs, each deleted only while it still holds that token): one script call. Returns
        whether the job was re-enqueued."""
        data = orjson.dumps(job.payload if payload is None else payload) if requeue else b""
        return await self._settles.submit((job, data, _ms(delay), tuple(leases)))

    async def _settle_batch(self, items: list[_Settle]) -> list[bool]:
        lease_keys: list[str] = []
        args: list[str | bytes | int] = [self.group]
        for job, data, delay_ms, leases in items:
            args += [job.entry_id, job.id, data, delay_ms, len(leases)]
            args += [token for _, token in leases]
            lease_keys += [key for key, _ in leases]
        added = [bool(int(a)) for a in await self._settle(keys=[*self._all_keys, *lease_keys], args=args)]
        if n := sum(added):
            JOBS.labels("requeued").inc(n)
        if len(added) - n:
            JOBS.labels("acked").inc(len(added) - n)
        return added

    async def touch(self, job: Job) -> bool:
        """Reset the idle time of a running job so it is not reclaimed; False if it was lost."""
        kept = await self._touch(keys=[self.stream], args=[self.group, self.consumer, job.entry_id])
        return bool(kept and int(kept[0]))

    @contextlib.asynccontextmanager
    async def claimed(self, job: Job) -> AsyncIterator[asyncio.Event]:
        """Touch ``job`` every lease/3 while the block runs; the event is set if the job is lost."""
        lost = asyncio.Event()
        done = asyncio.Event()
        # the touching starts when the first touch is due: a job shorter than lease/3 (most round
        # jobs, issue 14) costs a timer instead of a task created and cancelled
        touching = LaterTask(self.lease_ms / 3000, lambda: self._keep_touching(job, lost, done, slept=True))
        try:
            yield lost
        finally:
            done.set()  # ends the loop even if the cancel is swallowed inside a Redis call
            await touching.stop()

    async def _keep_touching(self, job: Job, lost: asyncio.Event, done: asyncio.Event,
                             slept: bool = False) -> None:
        while not done.is_set():
            if not slept:
                await asyncio.sleep(self.lease_ms / 3000)
            slept = False
            if done.is_set():
                return
            try:
                if not await self.touch(job):
                    log.warning("queue %s: job %s was taken by another consumer", self.name, job.id)
                    lost.set()
                    return
            except (RedisError, OSError) as exc:
                log.warning("queue %s: touching job %s failed: %s", self.name, job.id, exc)

    async def promote_due(self, limit: int = PROMOTE_LIMIT) -> int:
        """Move up to ``limit`` due delayed jobs to the stream; returns how many moved."""
        moved = int(await self._promote(keys=self._all_keys, args=[limit]))
        if moved:
            JOBS.labels("promoted").inc(moved)
        return moved

    async def reclaim_stale(self, batch: int = 100, max_batches: int = 20) -> int:
        """Put entries idle longer than the lease (dead consumers) back in the stream.

        Returns the number of jobs made ready again. They are not handed to this consumer:
        any consumer's next ``fetch`` gets them, with ``deliveries`` counting this redelivery.
        """
        cursor, moved = "0-0", 0
        for _ in range(max_batches):
            resp = await self._reclaim(
                keys=[self.stream, self.dedupe],
                args=[self.group, self.consumer, self.lease_ms, cursor, batch])
            cursor = _text(resp[0])
            moved += int(resp[1])
            if int(resp[2]):
                JOBS.labels("dropped").inc(int(resp[2]))
            if cursor == "0-0":
                break
        if moved:
            JOBS.labels("reclaimed").inc(moved)
            log.info("queue %s: %d stale jobs made ready again", self.name, moved)
        return moved

    async def depth(self) -> QueueDepth:
        """Ready, delayed and pending counts (one atomic read); also sets the QUEUE_DEPTH gauges."""
        length, delayed, pending, by_consumer = await self._depth(
            keys=[self.stream, self.delayed], args=[self.group])
        # acked entries are deleted, so the stream holds exactly the ready and the pending ones
        depth = QueueDepth(
            ready=max(0, int(length) - int(pending)),
            delayed=int(delayed),
            pending=int(pending),
            pending_by_consumer={_text(c): int(n) for c, n in by_consumer},
        )
        QUEUE_DEPTH.labels("ready").set(depth.ready)
        QUEUE_DEPTH.labels("delayed").set(depth.delayed)
        QUEUE_DEPTH.labels("pending").set(depth.pending)
        return depth

    async def prune_consumers(self, idle_ms: int | None = None) -> int:
        """Delete other consumers idle for ``idle_ms`` (default 10 leases) with nothing pending."""
        idle = self.lease_ms * 10 if idle_ms is None else idle_ms
        return int(await self._prune(keys=[self.stream], args=[self.group, idle, self.consumer]))

    async def is_queued(self, job_id: str) -> bool:
        """True while the job id is ready, delayed or running (not yet acknowledged)."""
        return bool(await self.redis.hexists(self.dedupe, job_id))

    async def lost(self, jobs: Sequence[tuple[str, str]]) -> list[bool]:
        """For (job id, lease key) pairs: True where the job is neither queued nor running and the
        lease has no holder. One script call per ``BATCH_LIMIT`` pairs."""
        out: list[bool] = []
        for i in range(0, len(jobs), BATCH_LIMIT):
            chunk = jobs[i:i + BATCH_LIMIT]
            flags = await self._lost(keys=[self.dedupe, *(lease for _, lease in chunk)],
                                     args=[job for job, _ in chunk])
            out += [bool(int(f)) for f in flags]
        return out

    async def run_maintenance(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Until ``stop``: promote due jobs, reclaim stale entries, refresh gauges, prune consumers.

        Redis errors (connection loss, a flush) are logged and retried at the next interval.
        """
        loop = asyncio.get_running_loop()
        next_prune = loop.time()
        while not stop.is_set():
            try:
                while await self.promote_due() == PROMOTE_LIMIT:
                    pass
                await self.reclaim_stale()
                await self.depth()
                if loop.time() >= next_prune:
                    next_prune = loop.time() + _PRUNE_EVERY
                    await self.prune_consumers()
            except (RedisError, OSError) as exc:
                log.warning("queue %s: maintenance failed: %s", self.name, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    def _jobs(self, entries: Iterable[Any]) -> list[Job]:
        jobs = []
        for entry in entries:
            if not entry:
                continue
            entry_id, raw = entry[0], entry[1]
            data = _fields(raw)
            jobs.append(Job(
                id=_text(data["j"]),
                entry_id=_text(entry_id),
                payload=orjson.loads(data.get("p") or b"{}"),
                deliveries=int(data.get("n") or 0) + 1,
            ))
        return jobs
