"""Pacing held in Redis, so it holds across jobs and worker processes.

- The account limiter (``storage/send_limiter.py``, rules in ``domain/limits.py``): before each
  send ``reserve`` asks it for the account's turn (caps per minute/hour/day, breaks, the skewed gap
  widened after flood waits). A refusal moves ``next_send`` to when the turn comes.
- ``ACCOUNT_NEXT_SEND``: a flood wait's hint for the account (epoch ms); nothing before it.
- ``ACCOUNT_GROUP_HINTS``: slow mode / flood hints of the account's groups (group id -> ms), across
  rounds; one hash per account, so they are read with the account's other keys before the job
  knows which groups its batch has.

A job gets the hints with its locks (``storage.job_locks``, same round trip) or else in one
pipeline (``load``), each send costs one limiter call, and the hints are written back in one
pipeline. Losing these keys (a Redis flush) only loses pacing for a moment:
account-wide flood hints of the current round are also in the database (``attempts.not_before``)
and are passed in as ``floor``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from config.settings import EngineSettings
from domain import limits
from domain.limits import Caps, CapsCache, Policy, Verdict
from storage import keys
from storage.job_locks import PaceRead, pace_read
from storage.send_limiter import SendLimiter


@dataclass
class PaceState:
    """Pacing of one account for one job; changed in memory, written back by ``Pacing.save``."""

    tg_user_id: int  # the Telegram account's user id: pacing is the account's, whoever's row it is
    next_send: float  # epoch seconds
    group_not_before: dict[int, float]
    new_group_hints: dict[int, float] = field(default_factory=dict)
    changed: bool = False
    limit_key: int | None = None  # the limiter's account key (Telegram user id), set by ``reserve``
    caps: Caps | None = None  # the caps of the last reservation
    verdict: Verdict | None = None  # the limiter's last answer
    floods: list[float] = field(default_factory=list)  # flood waits that widen the gap (to be written)
    stale_groups: list[int] = field(default_factory=list)  # expired hints, deleted with the next save


class Pacing:
    """Reads and writes the per-account gap and per-group hints."""

    def __init__(self, redis: Redis, settings: EngineSettings, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.time, limiter: SendLimiter | None = None,
                 caps: CapsCache | None = None) -> None:
        self.redis = redis
        self.settings = settings
        self.rng = rng or random.Random()
        self.clock = clock
        self.policy = Policy.from_settings(settings)
        self.limiter = limiter or SendLimiter(redis, self.policy)
        self.caps = caps  # None: the settings' caps for everyone

    async def load(self, tg_user_id: int, group_ids: Iterable[int] = (), floor: float = 0.0) -> PaceState:
        """Read the account's pacing (one pipeline); ``group_ids`` is unused: every hint of the
        account comes with it."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys.ACCOUNT_NEXT_SEND.format(tg_user_id=tg_user_id))
        pipe.hgetall(keys.ACCOUNT_GROUP_HINTS.format(tg_user_id=tg_user_id))
        next_send, hints = await pipe.execute()
        return self.state_from(tg_user_id, pace_read(next_send, hints), floor)

    def state_from(self, tg_user_id: int, read: PaceRead, floor: float = 0.0) -> PaceState:
        """The pacing state from keys already read (``storage.job_locks`` reads them with the locks)."""
        now = self.clock()
        hints = {g: ms / 1000 for g, ms in read.group_hints_ms.items()}
        return PaceState(
            tg_user_id=tg_user_id,
            next_send=max((read.next_send_ms or 0.0) / 1000, floor),
            group_not_before={g: at for g, at in hints.items() if at > now},
            stale_groups=[g for g, at in hints.items() if at <= now],
        )

    def account_wait(self, state: PaceState) -> float:
        """Seconds until the account may send."""
        return max(0.0, state.next_send - self.clock())

    def group_wait(self, state: PaceState, group_id: int) -> float:
        return max(0.0, state.group_not_before.get(group_id, 0.0) - self.clock())

    async def reserve(self, state: PaceState, key: int, user_id: int) -> Verdict:
        """Ask the limiter for the account's turn now. Reserved: the send may go (it is counted, and
        the gap or rest after it is in ``next_send``); else ``next_send`` is when to ask again."""
        caps = Caps.from_settings(self.settings) if self.caps is None else await self.caps.for_user(user_id)
        verdict = await self.limiter.reserve(key, caps, limits.skewed_gap(self.rng, self.policy),
                                             limits.rest_length(self.rng, self.policy))
        state.limit_key, state.caps, state.verdict = key, caps, verdict
        # the limiter's times are on its clock: carry them over as durations
        wait = max(verdict.next_at, verdict.rest_until) - verdict.now if verdict.reserved else verdict.wait
        state.next_send = max(state.next_send, self.clock() + max(0.0, wait))
        return verdict

    def account_flood(self, state: PaceState, seconds: float, widen: bool) -> None:
        """Nothing from this account before the hint; optionally the limiter widens its gaps."""
        now = self.clock()
        state.next_send = max(state.next_send, now + seconds)
        state.changed = True
        if widen:
            state.floods.append(seconds)

    def group_flood(self, state: PaceState, group_id: int, seconds: float) -> None:
        at = self.clock() + seconds
        state.group_not_before[group_id] = max(state.group_not_before.get(group_id, 0.0), at)
        state.new_group_hints[group_id] = state.group_not_before[group_id]
        state.changed = True

    async def save(self, state: PaceState) -> None:
        if not state.changed:
            return
        now = self.clock()
        pipe = self.redis.pipeline(transaction=False)
        if state.next_send > now:
            pipe.set(keys.ACCOUNT_NEXT_SEND.format(tg_user_id=state.tg_user_id),
                     int(state.next_send * 1000), px=_ttl_ms(state.next_send - now))
        hints_key = keys.ACCOUNT_GROUP_HINTS.format(tg_user_id=state.tg_user_id)
        fresh = [(g, int(at * 1000)) for g, at in state.new_group_hints.items() if at > now]
        if fresh:
            pipe.hset(hints_key, items=[x for pair in fresh for x in pair])
        if state.stale_groups:
            pipe.hdel(hints_key, *state.stale_groups)
        live = [at for at in state.group_not_before.values() if at > now]
        if fresh and live:
            # the hash lives as long as its latest hint (the account's lock is held: no other writer)
            pipe.pexpire(hints_key, _ttl_ms(max(live) - now))
        if len(pipe):
            await pipe.execute()
        if state.limit_key is not None:
            for seconds in state.floods:
                await self.limiter.flood(state.limit_key, seconds)
        state.changed = False
        state.floods.clear()
        state.new_group_hints.clear()
        state.stale_groups = []

    def report(self, state: PaceState) -> dict[str, float | int]:
        """The account's pacing for the round report: sends this hour of the cap, a rest under way
        (``rest_until`` in epoch seconds on this clock, 0 when not resting)."""
        verdict, caps = state.verdict, state.caps
        if verdict is None or caps is None:
            return {}
        resting = verdict.rest_until > verdict.now
        rest_until = self.clock() + (verdict.rest_until - verdict.now) if resting else 0
        return {"hour": verdict.counts[1], "hour_cap": caps.hour,
                "rest_after": verdict.rest_after if resting else 0, "rest_until": round(rest_until, 3)}


def _ttl_ms(seconds: float) -> int:
    # a little longer than the wait itself: an expired key must never mean "send now" too early
    return max(1, int(seconds * 1000) + 1000)
