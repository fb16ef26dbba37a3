"""Account safety rules (issue 17), as pure functions: send caps over sliding windows, breaks, gaps.

One Telegram account may send at most ``Caps`` posts in any minute, hour and day (sliding windows);
after ``break_after`` sends in a row it rests for a random ``break_min``..``break_max``; between two
sends it waits a gap drawn from a right-skewed distribution between ``gap_min`` and ``gap_max``,
multiplied by a widening factor that doubles on every FLOOD_WAIT (up to ``widen_max``) and halves
back over every ``widen_recover`` clean sends.

``reserve`` is the reference model of the limiter: ``storage/send_limiter.py`` runs the same rules
atomically in Redis (one Lua call per send) and a test checks the two agree step by step. The
model is also what the status view uses to say when the next send and the end of a round come.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from config.settings import EngineSettings

WINDOW_NAMES: tuple[str, str, str] = ("minute", "hour", "day")
WINDOW_SECONDS: tuple[float, float, float] = (60.0, 3600.0, 86400.0)
# the gap is ``gap_min + (gap_max - gap_min) * Beta(2, 4)``: mostly a little above gap_min, a long tail
# up to gap_max (mode at a quarter of the span, mean at a third), like a person's rhythm
GAP_SHAPE: tuple[float, float] = (2.0, 4.0)
WIDEN_STEP = 2.0  # each FLOOD_WAIT doubles the gap factor

OK, GAP, REST, CAP = "ok", "gap", "rest", "cap"
MAX_CAP = 100_000
REASONS: tuple[str, ...] = (OK, GAP, REST, "cap:minute", "cap:hour", "cap:day")


@dataclass(frozen=True)
class Caps:
    """Sends allowed per sliding minute, hour and day; 0 means no cap for that window."""

    minute: int
    hour: int
    day: int

    @classmethod
    def from_settings(cls, settings: EngineSettings) -> Caps:
        return cls(settings.limit_minute, settings.limit_hour, settings.limit_day)

    def values(self) -> tuple[int, int, int]:
        return (self.minute, self.hour, self.day)

    def with_changes(self, changes: Mapping[str, int | None]) -> Caps:
        """These caps with the given windows replaced (None or a missing name keeps the value)."""
        kept = {name: value for name, value in changes.items() if value is not None}
        return replace(self, **kept)

    def as_dict(self) -> dict[str, int]:
        return dict(zip(WINDOW_NAMES, self.values(), strict=True))


def parse_caps(raw: Mapping[str, Any]) -> dict[str, int]:
    """Window caps from admin input: ``{"minute": 10, ...}``; each a whole number 0..MAX_CAP.

    Raises ``ValueError`` naming the field; unknown names are refused, nothing is half-applied.
    """
    out: dict[str, int] = {}
    for name, value in raw.items():
        if name not in WINDOW_NAMES:
            raise ValueError(f"unknown window {name!r} (minute, hour, day)")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be a whole number")
        if not 0 <= value <= MAX_CAP:
            raise ValueError(f"{name} must be between 0 (no cap) and {MAX_CAP}")
        out[name] = value
    return out


@dataclass(frozen=True)
class Policy:
    """The rules' figures, from settings (durations in seconds, already time-scaled)."""

    windows: tuple[float, float, float] = WINDOW_SECONDS
    slack: float = 1.0  # a cap wait ends this much after the window frees a slot (network jitter)
    gap_min: float = 4.0
    gap_max: float = 8.0
    break_after: int = 50
    break_min: float = 600.0
    break_max: float = 1200.0
    widen_max: float = 10.0
    widen_recover: int = 10  # clean sends over which a widened gap halves back

    @classmethod
    def from_settings(cls, s: EngineSettings) -> Policy:
        scale = s.limit_time_scale
        return cls(
            windows=(WINDOW_SECONDS[0] * scale, WINDOW_SECONDS[1] * scale, WINDOW_SECONDS[2] * scale),
            slack=s.limit_slack, gap_min=s.gap_min, gap_max=max(s.gap_min, s.gap_max),
            break_after=s.break_after, break_min=s.break_min * scale,
            break_max=max(s.break_min, s.break_max) * scale, widen_max=max(1.0, s.gap_widen_max),
            widen_recover=s.gap_widen_recover,
        )

    @property
    def recover_factor(self) -> float:
        """What the gap factor is multiplied by after each clean send (it halves every N sends)."""
        return 0.5 ** (1.0 / self.widen_recover) if self.widen_recover > 0 else 0.0


def skewed_gap(rng: random.Random, policy: Policy) -> float:
    """One gap before widening: right-skewed between gap_min and gap_max."""
    return policy.gap_min + (policy.gap_max - policy.gap_min) * rng.betavariate(*GAP_SHAPE)


def mean_gap(policy: Policy) -> float:
    a, b = GAP_SHAPE
    return policy.gap_min + (policy.gap_max - policy.gap_min) * a / (a + b)


def rest_length(rng: random.Random, policy: Policy) -> float:
    return rng.uniform(policy.break_min, policy.break_max)


def widened(widen: float, policy: Policy) -> float:
    """The gap factor after a FLOOD_WAIT: doubled, at most ``widen_max``."""
    return min(policy.widen_max, max(1.0, widen) * WIDEN_STEP)


def recovered(widen: float, policy: Policy) -> float:
    """The gap factor after a clean send: one step back towards 1."""
    return max(1.0, widen * policy.recover_factor)


@dataclass
class AccountPace:
    """One account's limiter state (what Redis keeps): send times of the longest window and the rest."""

    sends: list[float] = field(default_factory=list)  # ascending
    next_at: float = 0.0  # end of the gap after the last send
    rest_until: float = 0.0
    rest_after: int = 0  # sends in a row that started the current/last rest
    streak: int = 0  # sends in a row since the last break
    last: float = 0.0  # time of the last send
    widen: float = 1.0

    def counts(self, now: float, policy: Policy) -> tuple[int, int, int]:
        """Sends in each window ending now."""
        c = [len(self.sends) - bisect.bisect_right(self.sends, now - w) for w in policy.windows]
        return (c[0], c[1], c[2])


@dataclass(frozen=True)
class Verdict:
    """The limiter's answer: ``wait == 0`` -> the send is reserved; else try again in ``wait`` s."""

    wait: float
    reason: str  # ok | gap | rest | cap:minute | cap:hour | cap:day (the longest wait)
    counts: tuple[int, int, int]  # sends in each window, this one included when reserved
    widen: float
    rest_until: float
    rest_after: int
    next_at: float
    now: float  # the limiter's clock when it answered (the times above are on that clock)

    @property
    def reserved(self) -> bool:
        return self.wait <= 0

    @property
    def yields(self) -> bool:
        """A cap or a break (not just the gap): the job goes back to the queue with the wait, so
        the user's lock is not held through a long pause."""
        return not self.reserved and self.reason != GAP


def _waits(state: AccountPace, now: float, caps: Caps, policy: Policy) -> list[tuple[float, str]]:
    waits = [(state.rest_until - now, REST), (state.next_at - now, GAP)]
    for name, window, cap in zip(WINDOW_NAMES, policy.windows, caps.values(), strict=True):
        if cap <= 0:
            continue
        start = bisect.bisect_right(state.sends, now - window)
        inside = len(state.sends) - start
        if inside >= cap:
            # the send that must leave the window before one more fits
            frees = state.sends[start + inside - cap] + window
            waits.append((frees - now + policy.slack, f"{CAP}:{name}"))
    return waits


def check(state: AccountPace, now: float, caps: Caps, policy: Policy) -> Verdict:
    """What ``reserve`` would answer now, changing nothing."""
    wait, reason = 0.0, OK
    for candidate, why in _waits(state, now, caps, policy):  # the first longest wait names the reason
        if candidate > wait:
            wait, reason = candidate, why
    return Verdict(wait, reason, state.counts(now, policy), state.widen, state.rest_until, state.rest_after,
                   state.next_at, now)


def prune(state: AccountPace, now: float, policy: Policy) -> None:
    longest = max(policy.windows)
    del state.sends[:bisect.bisect_right(state.sends, now - longest)]


def reserve(state: AccountPace, now: float, caps: Caps, policy: Policy, gap: float, rest: float) -> Verdict:
    """Reserve one send now if every rule allows it (``state`` is updated), else say how long to wait.

    ``gap`` (before widening) and ``rest`` are drawn by the caller (``skewed_gap``, ``rest_length``).
    """
    prune(state, now, policy)
    verdict = check(state, now, caps, policy)
    if not verdict.reserved:
        return verdict
    if state.last and now - state.last >= policy.break_min:
        state.streak = 0  # a pause as long as a break counts as one
    bisect.insort(state.sends, now)
    state.streak += 1
    state.last = now
    state.next_at = now + gap * state.widen
    state.widen = recovered(state.widen, policy)
    if policy.break_after > 0 and state.streak >= policy.break_after:
        state.rest_until = now + rest
        state.rest_after = state.streak
        state.streak = 0
    return Verdict(0.0, OK, state.counts(now, policy), state.widen, state.rest_until, state.rest_after,
                   state.next_at, now)


def flood(state: AccountPace, now: float, seconds: float, policy: Policy) -> None:
    """A FLOOD_WAIT: nothing before the hint, and the gaps widen."""
    state.widen = widened(state.widen, policy)
    state.next_at = max(state.next_at, now + seconds)


def estimate_finish(state: AccountPace, now: float, remaining: int, caps: Caps, policy: Policy,
                    per_send: float = 0.0) -> float:
    """When ``remaining`` more sends will likely be done, replaying the rules with average draws.

    ``per_send`` is the time a send itself takes. Runs on a copy; cost grows with ``remaining``.
    """
    sim = AccountPace(list(state.sends), state.next_at, state.rest_until, state.rest_after, state.streak,
                      state.last, state.widen)
    gap, rest = mean_gap(policy), (policy.break_min + policy.break_max) / 2
    t = now
    for _ in range(max(0, remaining)):
        for _ in range(8):  # each retry moves past at least one blocking rule
            verdict = reserve(sim, t, caps, policy, gap, rest)
            if verdict.reserved:
                break
            t += verdict.wait
        t += per_send
    return t


# --- admin-set caps: settings, then the global override, then the user's --------------------------


@dataclass(frozen=True)
class CapsBook:
    """The caps in force: the settings' defaults, the admin's global override, per-user overrides."""

    defaults: Caps
    global_changes: Mapping[str, int] = field(default_factory=dict)
    per_user: Mapping[int, Mapping[str, int | None]] = field(default_factory=dict)

    @property
    def global_caps(self) -> Caps:
        return self.defaults.with_changes(self.global_changes)

    def for_user(self, user_id: int) -> Caps:
        return self.global_caps.with_changes(self.per_user.get(user_id, {}))


class CapsCache:
    """The book as the worker sees it: reloaded at most every ``refresh`` seconds (one query)."""

    def __init__(self, loader: Callable[[], Awaitable[CapsBook]], refresh: float,
                 clock: Callable[[], float]) -> None:
        self.loader = loader
        self.refresh = refresh
        self.clock = clock
        self._book: CapsBook | None = None
        self._loaded_at = -math.inf

    async def for_user(self, user_id: int) -> Caps:
        now = self.clock()
        if self._book is None or now - self._loaded_at >= self.refresh:
            self._book = await self.loader()
            self._loaded_at = now
        return self._book.for_user(user_id)
