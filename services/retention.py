"""Retention (issue 14): the storage keeps a window of history, whatever the workload.

One run deletes, oldest first and a small batch per transaction with a pause in between:
finished rounds older than ``RETENTION_DAYS`` with their attempts (their counters folded into
``round_summaries`` in the same transaction), then the message versions no stored round sends any
more, then the media no message uses, delivered notifications, the per-user delivery rows of
finished announcements (the announcement keeps its totals), and audit rows older than
``AUDIT_RETENTION_DAYS``. The order matters: deleting rounds is what frees message versions, and
deleting versions frees media. The scheduler leader runs it every ``RETENTION_INTERVAL``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from config.settings import RetentionSettings
from domain.models import Clock, utc_now
from domain.retention import HistoryTotals, RetentionReport, cutoffs, media_batch, rounds_within
from metrics import RETENTION_DELETED, RETENTION_RUNS, RETENTION_SECONDS, RETENTION_SUMMARISED
from storage.db import DB_ERRORS, Database
from storage.repositories import retention as repo

log = logging.getLogger(__name__)

MAX_BATCHES = 10_000  # one run's bound (10 M rows at the default batch); the next run goes on
Sleep = Callable[[float], Awaitable[None]]
Step = Callable[..., Awaitable[int]]


class RetentionService:
    """Deletes history older than the window in bounded batches; reads the totals that survive it."""

    def __init__(self, db: Database, settings: RetentionSettings, now: Clock = utc_now,
                 sleep: Sleep = asyncio.sleep, max_batches: int = MAX_BATCHES) -> None:
        self.db = db
        self.settings = settings
        self.now = now
        self.sleep = sleep
        self.max_batches = max_batches

    async def run(self) -> RetentionReport:
        """One pass over every table; returns the rows deleted by table."""
        cut = cutoffs(self.now(), self.settings.days, self.settings.audit_days)
        report = RetentionReport.empty()
        batch = self.settings.batch
        await self._rounds(cut.history, report)
        await self._drain("messages", repo.delete_old_messages, cut.history, batch, report)
        await self._drain("media", repo.delete_unused_media, cut.history, media_batch(batch), report)
        await self._drain("notifications", repo.delete_delivered_notifications, cut.history, batch, report)
        await self._drain("announcement_deliveries", repo.delete_announcement_deliveries, cut.history, batch,
                          report)
        if cut.audit is not None:
            await self._drain("audit_log", repo.delete_old_audit, cut.audit, batch, report)
        return report

    async def run_logged(self) -> RetentionReport | None:
        """``run`` for the scheduler: counted and logged, a database error never raised."""
        started = time.monotonic()
        try:
            report = await self.run()
        except DB_ERRORS as exc:
            RETENTION_RUNS.labels("error").inc()
            log.warning("retention run failed: %s", exc)
            return None
        RETENTION_SECONDS.observe(time.monotonic() - started)
        RETENTION_RUNS.labels("complete" if report.complete else "partial").inc()
        if any(report.deleted.values()):
            log.info("retention: deleted %s in %d batches (%d rounds summarised)%s",
                     ", ".join(f"{n} {t}" for t, n in report.deleted.items() if n), report.batches,
                     report.summarised_rounds, "" if report.complete else "; the rest at the next run")
        return report

    async def history(self, user_id: int) -> HistoryTotals:
        """Every finished round of the user: summarised days plus the rounds still stored."""
        async with self.db.connection() as conn:
            return await repo.history_totals(conn, user_id)

    async def _rounds(self, cutoff: datetime, report: RetentionReport) -> None:
        budget = self.settings.batch
        while self._may_continue(report):
            async with self.db.transaction() as conn:
                candidates = await repo.old_rounds(conn, cutoff, budget)
                chosen = rounds_within(candidates, budget)
                attempts, rounds = await repo.summarise_and_delete_rounds(conn, chosen)
            report.batches += 1
            self._count(report, "attempts", attempts)
            self._count(report, "rounds", rounds)
            report.summarised_rounds += rounds
            RETENTION_SUMMARISED.inc(rounds)
            if len(chosen) == len(candidates) and len(candidates) < budget:
                return
            await self.sleep(self.settings.pause)

    async def _drain(self, table: str, step: Step, cutoff: datetime, limit: int,
                     report: RetentionReport) -> None:
        while self._may_continue(report):
            async with self.db.transaction() as conn:
                deleted = await step(conn, cutoff, limit)
            report.batches += 1
            self._count(report, table, deleted)
            if deleted < limit:
                return
            await self.sleep(self.settings.pause)

    def _may_continue(self, report: RetentionReport) -> bool:
        if report.batches < self.max_batches:
            return True
        report.complete = False
        return False

    @staticmethod
    def _count(report: RetentionReport, table: str, n: int) -> None:
        report.deleted[table] += n
        if n:
            RETENTION_DELETED.labels(table).inc(n)
