"""What one round job comes to: the single value the engine returns and the worker applies."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class JobResult(StrEnum):
    DONE = "done"  # round finished (or nothing to do): acknowledged
    CONTINUED = "continued"  # pending attempts left: same job re-queued with a delay
    BUSY = "busy"  # the broadcast's (or Telegram account's) lock held elsewhere: re-queued with a short delay
    WAITING = "waiting"  # global or campaign pause: re-queued until it ends
    GONE = "gone"  # no such round: acknowledged
    DEAD = "dead"  # the job itself is broken (names no round): dropped with an error
    FAILED = "failed"  # an error (database or Redis away): re-queued after a backoff


@dataclass(frozen=True)
class JobOutcome:
    """Ack the job, requeue the same job id after ``delay`` (optionally with a new payload), or drop
    it as dead (``reason`` says why); ``result`` says what happened, for logs and tests."""

    action: Literal["ack", "requeue", "dead"]
    result: JobResult
    delay: float = 0.0
    payload: dict[str, int] | None = None
    reason: str = ""

    @classmethod
    def ack(cls, result: JobResult) -> JobOutcome:
        return cls("ack", result)

    @classmethod
    def requeue(cls, result: JobResult, delay: float, payload: dict[str, int] | None = None) -> JobOutcome:
        return cls("requeue", result, max(0.0, delay), payload)

    @classmethod
    def dead(cls, reason: str) -> JobOutcome:
        return cls("dead", JobResult.DEAD, reason=reason)
