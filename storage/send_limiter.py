"""The account safety limiter in Redis, shared by every worker process: one Lua script per send
(concurrent sends share one call).

The rules are ``domain.limits`` (``reserve`` and ``flood`` there are the reference model; a
test runs both side by side). Here they run atomically on two keys per Telegram account: a sorted
set of send times within the longest window and a hash with the gap, the rest, the streak and
the gap factor. Times are epoch milliseconds, from an injected clock or else the Redis server's
(one clock for every worker host).

Losing the keys (a Redis flush) forgets the recent sends for a while; the database keeps what
must never be lost (attempts), so the worst case is one window's worth of sends allowed early
after a flush, never a duplicate.
"""

from __future__ import annotations

from collections.abc import Callable
from string import Template

from redis.asyncio import Redis

from domain.limits import AccountPace, Caps, Policy, Verdict
from storage import keys
from storage.concurrency import Coalescer

RESERVE_BATCH_LIMIT = 100  # reservations sent together in one script call

# Per reservation, in turn: KEYS log, state; ARGV now_ms ("" = server time), caps x3, gap_ms (before
# widening), rest_ms. Concurrent reservations (of different accounts: one job per account runs at a
# time) share one call (``SendLimiter.reserve``). The policy's figures ($-placeholders) are written into
# the script once per limiter, so each call carries only what changes. Returns, per reservation,
# "wait_ms reason count x3 widen rest_until rest_after next_at now" as one string (cheaper for the
# client to read than an array).
_RESERVE = Template("""
local function reserve(log, st, a)
  local now = tonumber(a[1])
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  local caps = {tonumber(a[2]), tonumber(a[3]), tonumber(a[4])}
  local wins = {$win1, $win2, $win3}
  local slack = $slack
  local longest = math.max(wins[1], wins[2], wins[3])
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - longest)
  local h = redis.call('HMGET', st, 'next', 'rest', 'rest_after', 'streak', 'last', 'widen')
  local nxt = tonumber(h[1]) or 0
  local rest = tonumber(h[2]) or 0
  local rest_after = tonumber(h[3]) or 0
  local streak = tonumber(h[4]) or 0
  local last = tonumber(h[5]) or 0
  local widen = tonumber(h[6]) or 1
  local best, reason = 0, 'ok'
  if rest - now > best then best, reason = rest - now, 'rest' end
  if nxt - now > best then best, reason = nxt - now, 'gap' end
  local names = {'minute', 'hour', 'day'}
  local counts = {}
  for i = 1, 3 do
    local low = '(' .. (now - wins[i])
    local inside = redis.call('ZCOUNT', log, low, '+inf')
    counts[i] = inside
    if caps[i] > 0 and inside >= caps[i] then
      local frees = redis.call('ZRANGEBYSCORE', log, low, '+inf', 'WITHSCORES', 'LIMIT', inside - caps[i], 1)
      local w = tonumber(frees[2]) + wins[i] - now + slack
      if w > best then best, reason = w, 'cap:' .. names[i] end
    end
  end
  if best > 0 then
    local w = string.format('%.6f', widen)
    return table.concat({best, reason, counts[1], counts[2], counts[3], w, rest, rest_after, nxt, now}, ' ')
  end
  if last > 0 and now - last >= $break_min then streak = 0 end
  local seq = redis.call('HINCRBY', st, 'seq', 1)
  redis.call('ZADD', log, now, now .. ':' .. seq)
  streak = streak + 1
  nxt = now + math.floor(tonumber(a[5]) * widen + 0.5)
  widen = math.max(1, widen * $recover)
  local break_after = $break_after
  if break_after > 0 and streak >= break_after then
    rest = now + tonumber(a[6])
    rest_after = streak
    streak = 0
  end
  redis.call('HSET', st, 'next', nxt, 'rest', rest, 'rest_after', rest_after, 'streak', streak, 'last', now,
             'widen', string.format('%.6f', widen))
  redis.call('PEXPIRE', log, longest + slack)
  redis.call('PEXPIRE', st, math.max(longest, rest - now, nxt - now) + slack)
  local w = string.format('%.6f', widen)
  local c1, c2, c3 = counts[1] + 1, counts[2] + 1, counts[3] + 1
  return table.concat({0, 'ok', c1, c2, c3, w, rest, rest_after, nxt, now}, ' ')
end
local out = {}
for i = 0, #KEYS / 2 - 1 do
  out[i + 1] = reserve(KEYS[2 * i + 1], KEYS[2 * i + 2], {unpack(ARGV, 6 * i + 1, 6 * i + 6)})
end
return out
""")

# KEYS: state. ARGV: now_ms ("" = server time), hint_ms, widen_max, ttl_ms. Returns the new gap factor.
_FLOOD = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local h = redis.call('HMGET', KEYS[1], 'widen', 'next')
local widen = math.min(tonumber(ARGV[3]), math.max(1, tonumber(h[1]) or 1) * 2)
local nxt = math.max(tonumber(h[2]) or 0, now + tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'widen', string.format('%.6f', widen), 'next', nxt)
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[4]), nxt - now))
return string.format('%.6f', widen)
"""


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _text(value: bytes | str | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SendLimiter:
    """Caps, breaks and gaps of every Telegram account, held in Redis (``domain.limits`` rules)."""

    def __init__(self, redis: Redis, policy: Policy, clock: Callable[[], float] | None = None) -> None:
        self.redis = redis
        self.policy = policy
        self.clock = clock  # None: the Redis server's clock
        p = policy
        self._reserve = redis.register_script(_RESERVE.substitute(
            win1=_ms(p.windows[0]), win2=_ms(p.windows[1]), win3=_ms(p.windows[2]), slack=_ms(p.slack),
            break_min=_ms(p.break_min), break_after=p.break_after, recover=repr(p.recover_factor)))
        self._flood = redis.register_script(_FLOOD)
        # concurrent jobs' reservations share a round trip (redis-py spends ~100 us of CPU per call)
        self._reservations: Coalescer[tuple[int, list[str | int]], bytes | str] = Coalescer(
            self._reserve_batch, RESERVE_BATCH_LIMIT)

    async def _reserve_batch(self, items: list[tuple[int, list[str | int]]]) -> list[bytes | str]:
        script_keys: list[str] = []
        args: list[str | int] = []
        for account, item_args in items:
            script_keys += self._keys(account)
            args += item_args
        return list(await self._reserve(keys=script_keys, args=args))

    def _now(self) -> str:
        return "" if self.clock is None else str(_ms(self.clock()))

    @staticmethod
    def _keys(account: int) -> list[str]:
        return [keys.LIMIT_LOG.format(account=account), keys.LIMIT_STATE.format(account=account)]

    async def reserve(self, account: int, caps: Caps, gap: float, rest: float) -> Verdict:
        """Reserve one send of ``account`` now, or say how long to wait (one round trip)."""
        args: list[str | int] = [self._now(), caps.minute, caps.hour, caps.day, _ms(gap), _ms(rest)]
        raw = await self._reservations.submit((account, args))
        wait, reason, c1, c2, c3, widen, rest_until, rest_after, next_at, now = _text(raw).split()
        return Verdict(
            wait=float(wait) / 1000, reason=reason, counts=(int(c1), int(c2), int(c3)), widen=float(widen),
            rest_until=float(rest_until) / 1000, rest_after=int(rest_after), next_at=float(next_at) / 1000,
            now=float(now) / 1000,
        )

    async def flood(self, account: int, seconds: float) -> float:
        """A FLOOD_WAIT: nothing before the hint, gaps doubled (up to ``widen_max``); the new factor."""
        ttl = _ms(max(self.policy.windows) + self.policy.slack)
        key = keys.LIMIT_STATE.format(account=account)
        args: list[str | int] = [self._now(), _ms(seconds), repr(self.policy.widen_max), ttl]
        raw = await self._flood(keys=[key], args=args)
        return float(_text(raw))

    async def snapshot(self, account: int) -> AccountPace:
        """The account's state as the rules see it (for the status view and estimates)."""
        log, state = self._keys(account)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrange(log, 0, -1, withscores=True)
        pipe.hmget(state, "next", "rest", "rest_after", "streak", "last", "widen")
        sends, fields = await pipe.execute()

        def number(value: bytes | None, default: float = 0.0) -> float:
            return float(_text(value)) if value is not None else default

        return AccountPace(
            sends=sorted(score / 1000 for _, score in sends),
            next_at=number(fields[0]) / 1000, rest_until=number(fields[1]) / 1000,
            rest_after=int(number(fields[2])), streak=int(number(fields[3])), last=number(fields[4]) / 1000,
            widen=number(fields[5], 1.0),
        )

    def now(self) -> float | None:
        """The injected clock's time, or None when the server's clock is used."""
        return None if self.clock is None else self.clock()
