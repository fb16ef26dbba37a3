"""U9.4/U9.5: the rotation rule (domain/rotation.py) with an injected RNG."""

from __future__ import annotations

import random

import pytest

from domain.rotation import assign, next_in_order


def test_seq_gives_every_group_the_message_after_the_previous_one_wrapping() -> None:
    active = [11, 22, 33]
    rng = random.Random(1)
    assert assign("seq", active, [1, 2], {}, rng, None) == {1: 11, 2: 11}
    assert assign("seq", active, [1, 2], {}, rng, 11) == {1: 22, 2: 22}
    assert assign("seq", active, [1, 2], {}, rng, 33) == {1: 11, 2: 11}


def test_seq_after_a_deleted_message_goes_on_with_the_one_that_followed_it() -> None:
    # message 22 (position 2) was deleted after the round that posted it
    order = {11: 1, 22: 2, 33: 3}
    assert next_in_order([11, 33], 22, order) == 33
    assert next_in_order([11, 33], 99, order) == 11  # unknown: from the start
    assert next_in_order([11], 11, order) == 11


@pytest.mark.parametrize("seed", range(20))
def test_rnd_never_repeats_a_groups_last_message_when_there_are_two_or_more(seed: int) -> None:
    rng = random.Random(seed)
    active = [11, 22, 33]
    last: dict[int, int] = {}
    for _ in range(30):
        picks = assign("rnd", active, [1, 2, 3, 4], last, rng)
        assert all(picks[g] != last.get(g) for g in picks)
        assert set(picks.values()) <= set(active)
        last = picks


def test_rnd_with_two_messages_alternates_and_with_one_repeats_it() -> None:
    rng = random.Random(7)
    last = {1: 11}
    for _ in range(5):
        last = assign("rnd", [11, 22], [1], last, rng)
    assert last[1] == 22  # 11, 22, 11, 22, 11, 22: forced alternation
    assert assign("rnd", [11], [1, 2], {1: 11}, rng) == {1: 11, 2: 11}


def test_rnd_is_random_across_groups_and_reproducible_with_the_same_seed() -> None:
    groups = list(range(50))
    first = assign("rnd", [11, 22, 33], groups, {}, random.Random(3))
    assert len(set(first.values())) == 3
    assert assign("rnd", [11, 22, 33], groups, {}, random.Random(3)) == first


def test_no_active_message_is_an_error() -> None:
    with pytest.raises(ValueError):
        assign("seq", [], [1], {}, random.Random())
