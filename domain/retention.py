"""Retention rules (issue 14): what is old enough to go, and how much one statement may delete.

The storage keeps a window of history; older finished rounds are folded into per-user daily totals
(``round_summaries``) before they are deleted, so totals stay exact. Deleting happens in batches of a
few hundred rows, a short transaction each, with a pause in between: never one long statement that
holds locks the engine needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

# media rows carry the file's bytes (up to tens of MB each): far fewer of them per statement
MEDIA_BATCH_DIVISOR = 20

TABLES = ("attempts", "rounds", "messages", "media", "notifications", "announcement_deliveries", "audit_log")


@dataclass(frozen=True)
class Cutoffs:
    """Rows older than these go; ``audit`` is None when the audit log is kept forever."""

    history: datetime
    audit: datetime | None


def cutoffs(now: datetime, days: int, audit_days: int) -> Cutoffs:
    if days < 1:
        raise ValueError("the retention window is at least a day")
    return Cutoffs(now - timedelta(days=days), now - timedelta(days=audit_days) if audit_days > 0 else None)


def media_batch(batch: int) -> int:
    return max(1, batch // MEDIA_BATCH_DIVISOR)


def rounds_within(candidates: Sequence[tuple[int, int]], budget: int) -> list[int]:
    """Of ``(round_id, attempts)`` candidates oldest first, the prefix whose rows fit ``budget``.

    A round and its attempts go in one transaction (its totals are summarised exactly once), so the
    budget counts both; a single round bigger than the budget still goes alone.
    """
    taken: list[int] = []
    used = 0
    for round_id, attempts in candidates:
        cost = 1 + max(0, attempts)
        if taken and used + cost > budget:
            break
        taken.append(round_id)
        used += cost
    return taken


@dataclass(frozen=True)
class HistoryTotals:
    """Every finished round of a user, ever: the summarised days plus the rounds still stored."""

    rounds: int = 0
    cancelled: int = 0
    total: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    unknown: int = 0
    since: date | None = None  # the first day counted (UTC); None: no finished round yet


@dataclass
class RetentionReport:
    """Rows deleted by table in one run, and the summary rows written."""

    deleted: dict[str, int]
    summarised_rounds: int = 0
    batches: int = 0
    complete: bool = True  # False: the run stopped at its batch limit; the next run goes on

    @classmethod
    def empty(cls) -> RetentionReport:
        return cls({table: 0 for table in TABLES})
