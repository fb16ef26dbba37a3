"""U9.4/U9.5: the message each group gets, decided when the scheduler plans a round.

The choice is ``domain.rotation.assign`` (pure, with the RNG passed in); this module reads what it
needs and writes the choice onto the round and its attempts, in the scheduler's transaction. What a
group got is kept on its attempt, so "never the same message twice in a row" survives restarts.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

from domain import rotation
from storage.db import Connection
from storage.repositories import rotation as rotation_repo

log = logging.getLogger(__name__)


async def plan(conn: Connection, round_ids: Sequence[int], rng: random.Random) -> int:
    """Choose the messages of the new rounds ``round_ids``; returns how many rounds rotate."""
    inputs = await rotation_repo.plan_inputs(conn, round_ids)
    round_messages: dict[int, int] = {}
    attempt_messages: dict[int, int] = {}
    for each in inputs:
        if len(each.active) < 2:
            continue  # one message: the round's message is it (create_rounds chose it)
        if each.rotation == "rnd":  # each attempt its own message
            picks = rotation.assign("rnd", each.active, list(each.attempts), each.last_round, rng)
            attempt_messages.update((each.attempts[group], message) for group, message in picks.items())
        else:  # seq: one message for the round, which its attempts post
            round_messages[each.round_id] = rotation.next_in_order(each.active, each.previous_message,
                                                                   each.positions)
        log.debug("user %s round %s: %s rotation over %d messages", each.user_id, each.round_id,
                  each.rotation, len(each.active))
    await rotation_repo.assign(conn, round_messages, attempt_messages)
    return sum(1 for each in inputs if len(each.active) >= 2)
