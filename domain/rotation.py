"""U9: which message each group gets in a round, as a pure rule (no I/O; the RNG is passed in).

``seq``: every group gets the same message, the one after the previous round's in the user's
order (wrapping round; the first when the previous one is gone or there was none).
``rnd``: each group gets a random message, never the one it got in the previous round when the
user has two or more.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Literal

Rotation = Literal["seq", "rnd"]
ROTATIONS: tuple[Rotation, ...] = ("seq", "rnd")


def next_in_order(active: Sequence[int], previous: int | None, order: Mapping[int, int] | None = None) -> int:
    """The message after ``previous`` in ``active`` (message ids in the user's order), wrapping.

    ``order`` maps any message id (active or not) to its place in the user's order, so that a
    previous message that was deleted meanwhile still leads to the one that followed it.
    """
    if not active:
        raise ValueError("no active message")
    if previous is None:
        return active[0]
    if previous in active:
        return active[(active.index(previous) + 1) % len(active)]
    if order is not None and previous in order:
        after = [m for m in active if order.get(m, 0) > order[previous]]
        return after[0] if after else active[0]
    return active[0]


def assign(
    mode: Rotation,
    active: Sequence[int],
    groups: Sequence[int],
    last_round: Mapping[int, int],
    rng: random.Random,
    previous_round_message: int | None = None,
    order: Mapping[int, int] | None = None,
) -> dict[int, int]:
    """group id -> message id for one round.

    ``active``: the user's active message ids in order; ``last_round``: group id -> message id
    each group got in the previous round (groups that were not in it are absent);
    ``previous_round_message``: the message of the previous round (seq).
    """
    if not active:
        raise ValueError("no active message")
    if mode == "seq":
        chosen = next_in_order(active, previous_round_message, order)
        return {group: chosen for group in groups}
    picks: dict[int, int] = {}
    for group in groups:
        choices = [m for m in active if m != last_round.get(group)] if len(active) >= 2 else list(active)
        picks[group] = rng.choice(choices)
    return picks
