"""A7's delivery bookkeeping: which targets of an announcement are left, and how each one went.

``AdminService.start_announcement`` writes an announcement with all its targets in one
transaction (authorized and audited there). The bot's announcer, as the polling/webhook leader,
then works through it with this service: ``claim`` a target before sending to it, ``record`` the
outcome after, ``release`` it when Telegram answered 429, and ``finish`` when none is left. Every
step is its own short transaction, so a restart resumes where the last one stopped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from domain.models import Clock, utc_now
from storage.db import Database
from storage.repositories import announcements as repo
from storage.repositories import audit
from storage.repositories.announcements import AnnouncementRow, DeliveryOutcome

log = logging.getLogger(__name__)

__all__ = ["AnnouncementBusy", "AnnouncementRow", "AnnouncementService", "DeliveryOutcome",
           "StartedAnnouncement"]


class AnnouncementBusy(RuntimeError):
    """Another announcement is still being sent (one runs at a time)."""


@dataclass(frozen=True)
class StartedAnnouncement:
    announcement_id: int
    targets: int


class AnnouncementService:
    """Delivery state of the announcements (no authorization: only the bot's announcer calls it)."""

    def __init__(self, db: Database, now: Clock = utc_now) -> None:
        self.db = db
        self.now = now

    async def running(self) -> bool:
        """Whether an announcement is being sent (or waits to be resumed)."""
        async with self.db.connection() as conn:
            return bool(await repo.running(conn))

    async def unfinished(self) -> list[int]:
        """Ids of the announcements not done yet, oldest first."""
        async with self.db.connection() as conn:
            return await repo.running(conn)

    async def get(self, announcement_id: int) -> AnnouncementRow | None:
        async with self.db.connection() as conn:
            return await repo.get(conn, announcement_id)

    async def fail_in_flight(self, announcement_id: int) -> list[int]:
        """Targets whose send was in flight when a previous run stopped: counted as failed, never resent."""
        async with self.db.transaction() as conn:
            lost = await repo.fail_in_flight(conn, announcement_id, self.now())
        if lost:
            log.warning("announcement=%s: %d sends of an earlier run have no recorded outcome; "
                        "counted as failed", announcement_id, len(lost))
        return lost

    async def pending(self, announcement_id: int, limit: int) -> list[int]:
        """The next ``limit`` targets still to send to, in user id order."""
        async with self.db.connection() as conn:
            return await repo.pending(conn, announcement_id, limit)

    async def claim(self, announcement_id: int, user_id: int) -> bool:
        """Mark the send to ``user_id`` as in flight; False if it is not pending (someone else took it)."""
        async with self.db.transaction() as conn:
            return await repo.claim(conn, announcement_id, user_id, self.now())

    async def release(self, announcement_id: int, user_id: int) -> None:
        """Telegram refused the send (429): the target is pending again and the retry is counted."""
        async with self.db.transaction() as conn:
            await repo.release(conn, announcement_id, user_id, self.now())

    async def record(self, announcement_id: int, user_id: int, outcome: DeliveryOutcome) -> None:
        async with self.db.transaction() as conn:
            await repo.settle(conn, announcement_id, user_id, outcome, self.now())

    async def finish(self, announcement_id: int) -> AnnouncementRow | None:
        """Close an announcement with no target left: counts stored and audit-logged in one transaction.

        Returns None if targets are still pending or in flight, or if it was finished already.
        """
        now = self.now()
        async with self.db.transaction() as conn:
            counts = await repo.counts(conn, announcement_id)
            if counts["pending"] or counts["sending"]:
                return None
            row = await repo.finish(conn, announcement_id, counts["delivered"], counts["blocked"],
                                    counts["failed"], now)
            if row is None:
                return None
            detail = {"announcement_id": row.announcement_id, "targets": row.total,
                      "delivered": row.delivered, "blocked": row.blocked, "failed": row.failed,
                      "retries": row.retries, "state": "done"}
            await audit.write(conn, actor_kind=row.created_by_kind, actor_id=row.created_by,
                              action="announce", target_user_id=None, outcome="ok", detail=detail, now=now)
        log.info("announcement=%s done: %s", announcement_id, detail)
        return row
