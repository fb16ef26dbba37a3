"""A7: an announcement to every bot user, paced within the Bot API's limits, kept in the database.

The admin's confirmation writes the announcement and all its targets in one transaction
(``AdminService.start_announcement``), on whichever replica took the callback. Only the bot's
polling/webhook leader delivers: ``Announcer.run`` is one of its helpers, picks up unfinished
announcements when it starts (a restart resumes them), is woken at once by a confirmation taken in
the same process and otherwise looks for new ones every ``idle`` seconds. So two replicas never
send the same announcement, and the admin gets one report (delivered / blocked / failed, counted
from the database) when it is done.

Sends are spaced at ``rate`` per second (Telegram allows about 30 messages a second to different
chats; 25 leaves room for the bot's other replies). A 429 pauses the whole run for the
``retry_after`` Telegram names and retries the same user. A user who blocked the bot is marked,
so later announcements and notifications skip them. The start and the outcome are written to the
audit log.

Each target is claimed (``sending``) before its send and its outcome written right after: the
delivery is *at most once*. A crash between the two leaves one target in ``sending``; the next run
counts it as failed without sending again, so that user may have got the notice or not, but never
gets it twice. A graceful stop never cuts a send: it stops between two of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError, TelegramRetryAfter
from aiogram.types import MessageEntity

from metrics import ANNOUNCEMENT_SENDS
from roles.bot import keyboards as kb
from roles.bot import texts
from roles.bot.i18n import use_locale
from services.admin import AdminService
from services.announcements import AnnouncementRow, AnnouncementService, DeliveryOutcome
from services.notifications import NotificationService

log = logging.getLogger(__name__)

DEFAULT_RATE = 25.0  # messages per second, below Telegram's ~30/s to different chats
MAX_RETRIES = 5  # 429s in a row for one user before it counts as failed
CLOSE_TIMEOUT = 10.0  # seconds a stopping announcer goes on with a running announcement
IDLE_SLEEP = 1.0  # how often the leader looks for announcements confirmed on another replica
BATCH = 100  # pending targets read at a time


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


class DeliveryJournal(Protocol):
    """Where ``deliver`` writes each target's progress as it happens."""

    async def claim(self, user_id: int) -> bool: ...

    async def release(self, user_id: int) -> None: ...

    async def record(self, user_id: int, outcome: DeliveryOutcome) -> None: ...


@dataclass(frozen=True)
class _StoredJournal:
    """The journal of one announcement in the database."""

    store: AnnouncementService
    announcement_id: int

    async def claim(self, user_id: int) -> bool:
        return await self.store.claim(self.announcement_id, user_id)

    async def release(self, user_id: int) -> None:
        await self.store.release(self.announcement_id, user_id)

    async def record(self, user_id: int, outcome: DeliveryOutcome) -> None:
        await self.store.record(self.announcement_id, user_id, outcome)


class Announcer:
    """Delivers the stored announcements while this replica leads, one at a time, at ``rate`` a second."""

    def __init__(self, outbox: NotificationService, admin: AdminService, rate: float = DEFAULT_RATE,
                 max_retries: int = MAX_RETRIES, *, store: AnnouncementService | None = None,
                 idle: float = IDLE_SLEEP, batch: int = BATCH) -> None:
        self.outbox = outbox
        self.admin = admin
        self.interval = 1.0 / rate
        self.max_retries = max_retries
        self.idle = idle
        self.batch = batch
        self._store = store
        self._next_at = 0.0  # loop time of the next send: the pace holds across batches and announcements
        self._wake = asyncio.Event()
        self.idling = asyncio.Event()  # set while the loop has found nothing to do and waits
        self._closing = asyncio.Event()
        self._halts: set[asyncio.Event] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._current: int | None = None

    @property
    def store(self) -> AnnouncementService:
        if self._store is None:
            self._store = AnnouncementService(self.admin.db, self.admin.now)
        return self._store

    @property
    def busy(self) -> bool:
        """Whether this replica is sending an announcement right now."""
        return self._current is not None

    def wake(self) -> None:
        """An announcement was just confirmed: look for it now rather than at the next idle check."""
        self._wake.set()

    def halt(self) -> None:
        """Stop every running delivery between two sends, at once (the lease is lost)."""
        for event in self._halts:
            event.set()

    def start(self, bot: Bot, stop: asyncio.Event, grace: float = CLOSE_TIMEOUT) -> asyncio.Task[None]:
        """``run`` as a task that ``close`` waits for."""
        task = asyncio.create_task(self.run(bot, stop, grace), name="announcer")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def run(self, bot: Bot, stop: asyncio.Event, grace: float = CLOSE_TIMEOUT) -> None:
        """Deliver unfinished announcements until ``stop``; errors are logged and retried after a pause.

        Once ``stop`` is set a running announcement goes on for ``grace`` seconds, then stops between
        two sends: what is left stays pending for the next leader.
        """
        halt = asyncio.Event()
        self._halts.add(halt)
        timer = asyncio.create_task(self._halt_after(stop, halt, grace))
        try:
            while not (stop.is_set() or self._closing.is_set() or halt.is_set()):
                self._wake.clear()
                try:
                    for announcement_id in await self.store.unfinished():
                        if halt.is_set() or await self.resume(bot, announcement_id, halt) is None:
                            break
                except Exception:
                    log.exception("announcer: delivery failed; trying again")
                await self._idle(stop)
        finally:
            timer.cancel()
            self._halts.discard(halt)

    async def resume(self, bot: Bot, announcement_id: int, halt: asyncio.Event | None = None
                     ) -> AnnounceReport | None:
        """Deliver what is left of a stored announcement, finish it and report to the admin.

        Returns the whole announcement's counts, or None if it was halted first (or isn't running).
        """
        store = self.store
        row = await store.get(announcement_id)
        if row is None or row.status != "running":
            return None
        await store.fail_in_flight(announcement_id)  # an earlier run's cut send: failed, never resent
        journal = _StoredJournal(store, announcement_id)
        announcement = Announcement(row.text, row.entities)
        this_run = AnnounceReport(row.total)
        log.info("announcement=%s: delivering (%d targets)", announcement_id, row.total)
        self._current = announcement_id
        try:
            while batch := await store.pending(announcement_id, self.batch):
                await self.deliver(bot, batch, announcement, this_run, journal=journal, halt=halt)
                if halt is not None and halt.is_set():
                    log.info("announcement=%s stopped after %d sends; the rest is resumed by the next leader",
                             announcement_id, this_run.delivered + this_run.blocked + this_run.failed)
                    return None
        finally:
            self._current = None
        done = await store.finish(announcement_id)
        if done is None:
            return None
        await self._report(bot, done)
        return AnnounceReport(done.total, done.delivered, done.blocked, done.failed, done.retries)

    async def deliver(self, bot: Bot, targets: Sequence[int], announcement: Announcement,
                      report: AnnounceReport | None = None, *, journal: DeliveryJournal | None = None,
                      halt: asyncio.Event | None = None) -> AnnounceReport:
        """Send ``announcement`` to each of ``targets`` at the paced rate; ``report`` fills as it goes,
        ``journal`` (if any) records each target as it happens. Returns early once ``halt`` is set."""
        report = report or AnnounceReport(len(targets))
        entities = [MessageEntity.model_validate(e) for e in announcement.entities] or None
        for user_id in targets:
            if not await self._send(bot, user_id, announcement.text, entities, report, journal, halt):
                break
        return report

    async def _send(self, bot: Bot, user_id: int, text: str, entities: list[MessageEntity] | None,
                    report: AnnounceReport, journal: DeliveryJournal | None,
                    halt: asyncio.Event | None) -> bool:
        """One target, 429s retried; False if halted before its outcome (it stays pending)."""
        outcome: DeliveryOutcome = "failed"
        for _ in range(self.max_retries + 1):
            if not await self._pace(halt):
                return False
            if journal is not None and not await journal.claim(user_id):
                return True  # not pending any more: another run has it
            try:
                await bot.send_message(user_id, text, entities=entities, parse_mode=None)
            except TelegramRetryAfter as exc:
                # Telegram's flood control: nobody gets a message before the time it names
                report.retries += 1
                ANNOUNCEMENT_SENDS.labels("retry_after").inc()
                log.info("announcement paused %ss by Telegram", exc.retry_after)
                self._next_at = asyncio.get_running_loop().time() + max(float(exc.retry_after), self.interval)
                if journal is not None:
                    await journal.release(user_id)
                continue
            except TelegramForbiddenError:
                report.blocked += 1
                outcome = "blocked"
                await self.outbox.mark_bot_blocked(user_id)
            except TelegramAPIError as exc:
                report.failed += 1
                log.info("announcement to user=%s failed: %s", user_id, type(exc).__name__)
            else:
                report.delivered += 1
                outcome = "delivered"
            break
        else:
            report.failed += 1
        ANNOUNCEMENT_SENDS.labels(outcome).inc()
        if journal is not None:
            await journal.record(user_id, outcome)
        return True

    async def _pace(self, halt: asyncio.Event | None) -> bool:
        """Wait for the next send's turn; False if ``halt`` came first."""
        loop = asyncio.get_running_loop()
        delay = self._next_at - loop.time()
        if halt is None:
            if delay > 0:
                await asyncio.sleep(delay)
        elif halt.is_set():
            return False
        elif delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(halt.wait(), delay)
            if halt.is_set():
                return False
        self._next_at = loop.time() + self.interval
        return True

    async def _report(self, bot: Bot, done: AnnouncementRow) -> None:
        # after the finish is committed: a crash here loses the message, never the counts (audit log)
        if done.report_to is None:
            return
        try:
            with use_locale(await self.outbox.language_of(done.report_to)):  # U12: the admin's language
                text = texts.announce_report(done.delivered, done.blocked, done.failed, done.total)
                markup = kb.admin_only()
            await bot.send_message(done.report_to, text, reply_markup=markup)
        except TelegramAPIError as exc:
            log.warning("announcement report not delivered: %s", type(exc).__name__)

    async def _idle(self, stop: asyncio.Event) -> None:
        waits = [asyncio.create_task(e.wait()) for e in (stop, self._closing, self._wake)]
        self.idling.set()
        try:
            await asyncio.wait(waits, timeout=self.idle, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.idling.clear()
            for waiter in waits:
                waiter.cancel()

    async def _halt_after(self, stop: asyncio.Event, halt: asyncio.Event, grace: float) -> None:
        await stop.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(halt.wait(), grace)
        halt.set()

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:  # noqa: ASYNC109
        """Stop the loops started here: a running announcement goes on for up to ``timeout`` seconds,
        then stops between two sends; the rest stays in the database and is resumed on the next start."""
        tasks = list(self._tasks)
        if not tasks:
            return
        self._closing.set()
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        if not pending:
            return
        self.halt()
        # a send in flight has its own HTTP timeout; a hung one is cut (its target then counts as failed)
        _, pending = await asyncio.wait(pending, timeout=timeout)
        for task in pending:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*pending, return_exceptions=True)
