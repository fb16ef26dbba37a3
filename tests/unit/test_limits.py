"""domain.limits: windows, breaks, the skewed gap, widening after floods and recovery (no I/O)."""

from __future__ import annotations

import itertools
import random
import statistics

import pytest

from config.settings import EngineSettings
from domain import limits
from domain.limits import AccountPace, Caps, CapsBook, CapsCache, Policy

NO_BREAKS = Policy(gap_min=0.0, gap_max=0.0, break_after=0, slack=0.0)


def run(state: AccountPace, start: float, sends: int, caps: Caps, policy: Policy, gap: float = 0.0,
        rest: float = 0.0) -> list[float]:
    """Send ``sends`` times as soon as the rules allow; returns the send times."""
    t, times = start, []
    while len(times) < sends:
        verdict = limits.reserve(state, t, caps, policy, gap, rest)
        if verdict.reserved:
            times.append(t)
        else:
            t += verdict.wait
    return times


def max_in_window(times: list[float], window: float) -> int:
    return max(sum(1 for u in times if t - window < u <= t) for t in times)


def test_sliding_windows_are_never_exceeded_and_waits_end_when_a_slot_frees() -> None:
    caps = Caps(minute=5, hour=12, day=0)
    times = run(AccountPace(), 1000.0, 30, caps, NO_BREAKS)
    assert max_in_window(times, 60) == 5
    assert max_in_window(times, 3600) == 12
    assert times[5] == pytest.approx(times[0] + 60)  # the sixth waits for the first to leave the minute
    assert times[12] == pytest.approx(times[0] + 3600)  # the 13th for the first to leave the hour


def test_a_refusal_names_the_longest_wait_and_changes_nothing() -> None:
    state = AccountPace()
    caps = Caps(minute=2, hour=0, day=0)
    policy = Policy(gap_min=0, gap_max=0, break_after=0, slack=1.0)
    run(state, 0.0, 2, caps, policy)
    before = (list(state.sends), state.streak, state.next_at)
    verdict = limits.reserve(state, 10.0, caps, policy, 0.0, 0.0)
    assert not verdict.reserved and verdict.reason == "cap:minute"
    assert verdict.wait == pytest.approx(60 - 10 + 1.0)  # the window frees at 60, plus the slack
    assert verdict.counts == (2, 2, 2)
    assert (state.sends, state.streak, state.next_at) == before


def test_a_break_follows_n_sends_in_a_row_and_a_long_pause_counts_as_one() -> None:
    policy = Policy(gap_min=0, gap_max=0, break_after=3, break_min=600, break_max=1200, slack=0)
    state = AccountPace()
    caps = Caps(0, 0, 0)
    for t in (0.0, 1.0, 2.0):
        assert limits.reserve(state, t, caps, policy, 0.0, 900.0).reserved
    assert state.rest_until == 902.0 and state.rest_after == 3
    refused = limits.reserve(state, 3.0, caps, policy, 0.0, 900.0)
    assert (refused.reason, refused.wait) == ("rest", 899.0)
    assert limits.reserve(state, 902.0, caps, policy, 0.0, 900.0).reserved
    # two sends, then a natural pause as long as a break: the streak starts again
    assert limits.reserve(state, 903.0, caps, policy, 0.0, 900.0).reserved
    assert limits.reserve(state, 903.0 + 600, caps, policy, 0.0, 900.0).reserved
    assert state.streak == 1


def test_the_gap_is_skewed_towards_gap_min_with_a_tail_to_gap_max() -> None:
    policy = Policy(gap_min=4.0, gap_max=8.0)
    rng = random.Random(3)
    gaps = [limits.skewed_gap(rng, policy) for _ in range(20000)]
    assert min(gaps) >= 4.0 and max(gaps) <= 8.0
    assert statistics.mean(gaps) == pytest.approx(limits.mean_gap(policy), abs=0.03)
    assert statistics.median(gaps) < statistics.mean(gaps) < 6.0  # right-skewed, unlike uniform(4, 8)
    assert max(gaps) > 7.0  # the tail reaches towards gap_max
    uniform = [rng.uniform(4, 8) for _ in range(20000)]
    assert statistics.quantiles(gaps, n=4)[0] < statistics.quantiles(uniform, n=4)[0]


def test_floods_widen_the_gap_times_two_up_to_ten_and_clean_sends_bring_it_back() -> None:
    policy = Policy(gap_min=1, gap_max=1, break_after=0, widen_max=10.0, widen_recover=10, slack=0)
    state = AccountPace()
    factors = []
    for _ in range(5):
        limits.flood(state, 0.0, 5.0, policy)
        factors.append(state.widen)
    assert factors == [2.0, 4.0, 8.0, 10.0, 10.0]
    assert state.next_at == 5.0  # nothing before the hint
    times = run(state, 0.0, 40, Caps(0, 0, 0), policy, gap=1.0)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] == pytest.approx(10.0)  # the first send after the flood waits the full factor
    assert gaps[1] == pytest.approx(10 * 0.5 ** 0.1)  # each clean send takes one step back
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(gaps))  # step by step, never up
    assert gaps[10] == pytest.approx(gaps[0] / 2)  # halved after ten clean sends
    assert gaps[-1] < 1.2


def test_caps_from_settings_and_admin_layers() -> None:
    defaults = Caps.from_settings(EngineSettings())
    assert defaults == Caps(10, 200, 1500)
    book = CapsBook(defaults, {"hour": 100}, {7: {"minute": 3, "hour": None, "day": 0}})
    assert book.global_caps == Caps(10, 100, 1500)
    assert book.for_user(7) == Caps(3, 100, 0)
    assert book.for_user(8) == Caps(10, 100, 1500)


@pytest.mark.parametrize(("raw", "error"), [
    ({"week": 3}, "unknown window"), ({"hour": -1}, "between"), ({"hour": 100001}, "between"),
    ({"hour": "10"}, "whole number"), ({"hour": True}, "whole number"), ({"hour": 1.5}, "whole number"),
])
def test_bad_caps_are_refused_with_the_field_named(raw: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        limits.parse_caps(raw)


def test_policy_scales_windows_and_breaks_for_compressed_time() -> None:
    policy = Policy.from_settings(EngineSettings(limit_time_scale=0.001))
    assert policy.windows == pytest.approx((0.06, 3.6, 86.4))
    assert (policy.break_min, policy.break_max) == pytest.approx((0.6, 1.2))
    assert policy.gap_min == 4.0  # gaps are their own settings, not scaled


def test_the_estimate_replays_caps_and_breaks() -> None:
    policy = Policy(gap_min=2, gap_max=2, break_after=50, break_min=600, break_max=600, slack=0)
    caps = Caps(minute=0, hour=80, day=0)
    # 100 sends: 49 gaps of 2 s, a 600 s rest, then the hour cap holds the 81st until the first is an hour old
    end = limits.estimate_finish(AccountPace(), 0.0, 100, caps, policy)
    assert end == pytest.approx(3600 + 19 * 2, abs=1)
    assert limits.estimate_finish(AccountPace(), 0.0, 0, caps, policy) == 0.0


async def test_the_caps_cache_reads_the_book_again_only_after_the_refresh() -> None:
    now = [0.0]
    loads: list[float] = []

    async def loader() -> CapsBook:
        loads.append(now[0])
        return CapsBook(Caps(1, 2, 3), {"minute": len(loads)})

    cache = CapsCache(loader, refresh=10.0, clock=lambda: now[0])
    assert (await cache.for_user(1)).minute == 1
    now[0] = 9.9
    assert (await cache.for_user(2)).minute == 1
    now[0] = 10.0
    assert (await cache.for_user(1)).minute == 2
    assert loads == [0.0, 10.0]
