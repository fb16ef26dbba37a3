"""A7: an announcement to every bot user, paced within the Bot API's limits.

The delivery runs in the background of the replica that took the admin's confirmation, so the
callback is answered at once and no update waits behind it; the admin gets a report
(delivered / blocked / failed) when it is done. Sends are spaced at ``rate`` per second (Telegram
allows about 30 messages a second to different chats; 25 leaves room for the bot's other
replies). A 429 pauses the whole run for the ``retry_after`` Telegram names and retries the same
user. A user who blocked the bot is marked, so later announcements and notifications skip them.
Both the start and the outcome are written to the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError, TelegramRetryAfter
from aiogram.types import MessageEntity

from roles.bot import keyboards as kb
from roles.bot import texts
from services.admin import Actor, AdminService
from services.notifications import NotificationService

log = logging.getLogger(__name__)

DEFAULT_RATE = 25.0  # messages per second, below Telegram's ~30/s to different chats
MAX_RETRIES = 5  # 429s in a row for one user before it counts as failed
CLOSE_TIMEOUT = 10.0  # seconds a shutdown waits for a running announcement before cutting it


@dataclass(frozen=True)
class Announcement:
    text: str
    entities: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class AnnounceReport:
    total: int
    delivered: int = 0
    blocked: int = 0
    failed: int = 0
    retries: int = 0  # 429 answers honoured

    def as_detail(self) -> dict[str, int]:
        return {"targets": self.total, "delivered": self.delivered, "blocked": self.blocked,
                "failed": self.failed, "retries": self.retries}


class Announcer:
    """Sends announcements in the background, one at a time per replica."""

    def __init__(self, outbox: NotificationService, admin: AdminService, rate: float = DEFAULT_RATE,
                 max_retries: int = MAX_RETRIES) -> None:
        self.outbox = outbox
        self.admin = admin
        self.interval = 1.0 / rate
        self.max_retries = max_retries
        self._tasks: set[asyncio.Task[AnnounceReport]] = set()

    @property
    def busy(self) -> bool:
        return any(not task.done() for task in self._tasks)

    def start(self, bot: Bot, actor: Actor, targets: Sequence[int], announcement: Announcement,
              report_to: int) -> asyncio.Task[AnnounceReport]:
        task = asyncio.create_task(self._run(bot, actor, list(targets), announcement, report_to),
                                   name="announcement")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def deliver(self, bot: Bot, targets: Sequence[int], announcement: Announcement,
                      report: AnnounceReport | None = None) -> AnnounceReport:
        """Send ``announcement`` to each of ``targets`` at the paced rate; ``report`` fills as it goes."""
        report = report or AnnounceReport(len(targets))
        entities = [MessageEntity.model_validate(e) for e in announcement.entities] or None
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        for user_id in targets:
            for _ in range(self.max_retries + 1):
                delay = next_at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_at = loop.time() + self.interval
                try:
                    await bot.send_message(user_id, announcement.text, entities=entities, parse_mode=None)
                except TelegramRetryAfter as exc:
                    # Telegram's flood control: nobody gets a message before the time it names
                    report.retries += 1
                    log.info("announcement paused %ss by Telegram", exc.retry_after)
                    next_at = loop.time() + max(float(exc.retry_after), self.interval)
                    continue
                except TelegramForbiddenError:
                    report.blocked += 1
                    await self.outbox.mark_bot_blocked(user_id)
                except TelegramAPIError as exc:
                    report.failed += 1
                    log.info("announcement to user=%s failed: %s", user_id, type(exc).__name__)
                else:
                    report.delivered += 1
                break
            else:
                report.failed += 1
        return report

    async def _run(self, bot: Bot, actor: Actor, targets: list[int], announcement: Announcement,
                   report_to: int) -> AnnounceReport:
        report = AnnounceReport(len(targets))
        log.info("announcement to %d users started by actor=%s", len(targets), actor.user_id)
        try:
            await self.deliver(bot, targets, announcement, report)
        except asyncio.CancelledError:
            await self._record(actor, report, "failed", "interrupted")
            raise
        except Exception:
            log.exception("announcement failed after %d sends", report.delivered)
            await self._record(actor, report, "failed", "error")
            return report
        await self._record(actor, report, "ok", "done")
        log.info("announcement done: %s", report.as_detail())
        try:
            await bot.send_message(
                report_to,
                texts.announce_report(report.delivered, report.blocked, report.failed, report.total),
                reply_markup=kb.admin_only(),
            )
        except TelegramAPIError as exc:
            log.warning("announcement report not delivered: %s", type(exc).__name__)
        return report

    async def _record(self, actor: Actor, report: AnnounceReport, outcome: str, state: str) -> None:
        try:
            await self.admin.record(actor, "announce", outcome="ok" if outcome == "ok" else "failed",
                                    detail={**report.as_detail(), "state": state})
        except Exception:  # the audit row is best effort here: the sends happened either way
            log.exception("announcement audit row not written")

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:  # noqa: ASYNC109
        """Wait up to ``timeout`` for running announcements, then cut them (their audit row says so)."""
        tasks = list(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*pending, return_exceptions=True)
