"""Pacing held in Redis, so it holds across jobs and worker processes.

- ``ACCOUNT_NEXT_SEND``: the earliest time (epoch ms) the account may send again. Each send moves
  it a jittered gap (``gap_min``..``gap_max``) ahead; a flood wait moves it to the hint.
- ``ACCOUNT_GAP_WIDE``: after a flood wait the gap is multiplied for a while (key with a TTL).
- ``GROUP_NOT_BEFORE``: slow mode / flood hints for one group, across rounds.

One job reads everything it needs in one MGET and writes back in one pipeline. Losing these keys
(a Redis flush) only loses pacing for a moment: account-wide flood hints of the current round
are also in the database (``attempts.not_before``) and are passed in as ``floor``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from config.settings import EngineSettings
from services.engine import WIDEN_FACTOR, WIDEN_MIN_SECONDS, account_gap
from storage import keys


def _float(value: bytes | str | None) -> float:
    if value is None:
        return 0.0
    try:
        return float(value)
    except ValueError:
        return 0.0


@dataclass
class PaceState:
    """Pacing of one account for one job; changed in memory, written back by ``Pacing.save``."""

    tg_user_id: int  # the Telegram account's user id: pacing is the account's, whoever's row it is
    next_send: float  # epoch seconds
    widen: float
    group_not_before: dict[int, float]
    widen_until: float | None = None  # set when a flood wait widened the gap (to be written)
    new_group_hints: dict[int, float] = field(default_factory=dict)
    changed: bool = False


class Pacing:
    """Reads and writes the per-account gap and per-group hints."""

    def __init__(self, redis: Redis, settings: EngineSettings, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.settings = settings
        self.rng = rng or random.Random()
        self.clock = clock

    async def load(self, tg_user_id: int, group_ids: Iterable[int], floor: float = 0.0) -> PaceState:
        groups = list(dict.fromkeys(group_ids))
        names = [keys.ACCOUNT_NEXT_SEND.format(tg_user_id=tg_user_id),
                 keys.ACCOUNT_GAP_WIDE.format(tg_user_id=tg_user_id)]
        names += [keys.GROUP_NOT_BEFORE.format(group_id=g) for g in groups]
        values = await self.redis.mget(names)
        hints = {g: _float(v) / 1000 for g, v in zip(groups, values[2:], strict=True) if v is not None}
        return PaceState(
            tg_user_id=tg_user_id,
            next_send=max(_float(values[0]) / 1000, floor),
            widen=max(1.0, _float(values[1])),
            group_not_before=hints,
        )

    def account_wait(self, state: PaceState) -> float:
        """Seconds until the account may send."""
        return max(0.0, state.next_send - self.clock())

    def group_wait(self, state: PaceState, group_id: int) -> float:
        return max(0.0, state.group_not_before.get(group_id, 0.0) - self.clock())

    def sent(self, state: PaceState) -> None:
        """A send was made (whatever its outcome): the next one waits a jittered gap."""
        gap = account_gap(self.settings, self.rng, state.widen)
        if gap > 0:
            state.next_send = max(state.next_send, self.clock() + gap)
            state.changed = True

    def account_flood(self, state: PaceState, seconds: float, widen: bool) -> None:
        """Nothing from this account before the hint; optionally a wider gap for a while."""
        now = self.clock()
        state.next_send = max(state.next_send, now + seconds)
        state.changed = True
        if widen:
            state.widen = max(state.widen, WIDEN_FACTOR)
            state.widen_until = now + max(WIDEN_MIN_SECONDS, seconds * 10)

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
        if state.widen_until is not None and state.widen_until > now:
            pipe.set(keys.ACCOUNT_GAP_WIDE.format(tg_user_id=state.tg_user_id), state.widen,
                     px=_ttl_ms(state.widen_until - now))
        for group_id, at in state.new_group_hints.items():
            if at > now:
                key = keys.GROUP_NOT_BEFORE.format(group_id=group_id)
                pipe.set(key, int(at * 1000), px=_ttl_ms(at - now))
        if len(pipe):
            await pipe.execute()
        state.changed = False
        state.widen_until = None
        state.new_group_hints.clear()


def _ttl_ms(seconds: float) -> int:
    # a little longer than the wait itself: an expired key must never mean "send now" too early
    return max(1, int(seconds * 1000) + 1000)
