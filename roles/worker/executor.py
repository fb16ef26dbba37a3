"""The round executor: one job = one micro-batch of at most ``batch_size`` sends for one round.

Order of a job (engine.md, "Worker"):
1. take the user's lock (lease with a fencing token, renewed while held); busy -> the job goes
   back to the queue after a short jittered delay;
2. one statement: attempts left in ``sending`` by a crash become ``unknown``, the round's context
   and the next attempts that may go now are read;
3. per send: wait for the account's gap, claim the attempt (``sending``, committed, with every
   "before each send" check in the same statement), send, keep the outcome; outcomes are written
   right away when a wait follows, otherwise together with the next claim;
4. the last outcome is written with the count of what is left; nothing left -> the round is
   finished (counters, summary notification) and the job acknowledged; otherwise the same job id
   goes to the back of the queue with the gap plus jitter as its delay;
5. the lock is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import asyncpg

from accounts.gateway import AccountGateway, AccountRef, GroupRef, Media, OutgoingMessage
from accounts.gateway import release as release_account
from config.settings import EngineSettings
from domain.errors import FloodWait, GatewayError, GroupMigrated
from metrics import FLOOD_WAIT_SECONDS, FLOOD_WAITS, ROUND_LAG, ROUNDS, SENDS
from roles.worker.pacing import PaceState, Pacing
from services import engine
from services.notifications import NotificationService
from storage.account_lock import TelegramAccountLock
from storage.db import Database
from storage.lease import HeldLease, Leases
from storage.queue import Job, JobQueue
from storage.repositories import attempts, error_history, rounds
from storage.repositories.attempts import Candidate, Claimed, Outcome, Remaining, RoundContext
from storage.user_lock import UserLock

# what a database restart looks like from here (InternalClientError: a connection cut mid-query)
DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)

log = logging.getLogger(__name__)

MEDIA_CACHE_BYTES = 64 * 1024 * 1024
# A wait shorter than this is not worth giving the DB connection back for.
SHORT_WAIT = 0.005


class Cipher(Protocol):
    def decrypt(self, token: bytes) -> str: ...


class JobResult(StrEnum):
    DONE = "done"  # round finished (or nothing to do): acknowledged
    CONTINUED = "continued"  # pending attempts left: same job re-queued with a delay
    BUSY = "busy"  # user lock held elsewhere: re-queued with a short delay
    WAITING = "waiting"  # global or campaign pause: re-queued until it ends
    GONE = "gone"  # no such round: acknowledged


@dataclass
class _Batch:
    """Mutable state of one job's batch."""

    ctx: RoundContext
    account: AccountRef
    message: OutgoingMessage
    pace: PaceState
    held: HeldLease
    unwritten: Outcome | None = None  # outcome kept to be written with the next statement
    sends: int = 0
    deferred_until: float = 0.0  # latest group hint among attempts put off in this batch
    blocked: str | None = None  # why the batch stopped early (see _blocker)


class _Conn:
    """One pooled connection for a job, handed back to the pool during long waits.

    Holding it across the statements of a batch saves the pool's reset query per statement;
    giving it back during pacing waits keeps the pool free for other jobs.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.conn: asyncpg.Connection | None = None

    async def get(self) -> asyncpg.Connection:
        if self.conn is None:
            self.conn = await self.db.pool.acquire()
        return self.conn

    async def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            await self.db.pool.release(conn)

    async def release_if_scarce(self) -> None:
        """Give the connection back during a send when no other is free (sends may take a while)."""
        pool = self.db.pool
        if self.conn is not None and pool.get_idle_size() == 0 and pool.get_size() >= pool.get_max_size():
            await self.release()


class MediaCache:
    """Media rows are immutable: keep recently used ones in memory, bounded by total size."""

    def __init__(self, max_bytes: int = MEDIA_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[int, Media] = OrderedDict()
        self._size = 0

    async def get(self, conn: asyncpg.Connection, media_id: int) -> Media | None:
        media = self._items.get(media_id)
        if media is not None:
            self._items.move_to_end(media_id)
            return media
        row = await conn.fetchrow(
            "SELECT kind, data, filename, mime_type FROM media WHERE media_id = $1", media_id)
        if row is None:
            return None
        media = Media(kind=row["kind"], data=bytes(row["data"]), filename=row["filename"],
                      mime_type=row["mime_type"])
        self._items[media_id] = media
        self._size += len(media.data)
        while self._size > self.max_bytes and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self._size -= len(old.data)
        return media


class RoundExecutor:
    """Runs round jobs; one instance per worker process, shared by its concurrent jobs."""

    def __init__(
        self,
        db: Database,
        queue: JobQueue,
        leases: Leases,
        gateway: AccountGateway,
        cipher: Cipher,
        settings: EngineSettings,
        pacing: Pacing,
        stopping: asyncio.Event | None = None,
        rng: random.Random | None = None,
        media: MediaCache | None = None,
    ) -> None:
        self.db = db
        self.queue = queue
        self.leases = leases
        self.gateway = gateway
        self.cipher = cipher
        self.settings = settings
        self.pacing = pacing
        self.stopping = stopping or asyncio.Event()
        self.rng = rng or random.Random()
        self.media = media or MediaCache()
        # a continuation that would wait longer than this inside the job goes back to the queue
        self.max_inline_wait = max(settings.gap_max * engine.WIDEN_FACTOR + 1.0, 2.0)
        self.send_timeout = max(settings.lease_ttl, 30.0)

    @property
    def account_lock(self) -> TelegramAccountLock:
        """The lock of the Telegram account itself (keyed by its Telegram user id)."""
        return TelegramAccountLock(self.leases, self.settings.lease_ttl)

    @property
    def user_lock(self) -> UserLock:
        """The per-user lock, as the services take it around their own uses of the session."""
        return UserLock(self.leases, self.settings.lease_ttl)

    # --- job -----------------------------------------------------------------------------------

    async def run(self, job: Job) -> JobResult:
        round_id = _int(job.payload.get("round_id")) or engine.round_id_of(job.id)
        user_id = _int(job.payload.get("user_id"))
        if round_id is None:
            log.error("job %s names no round; dropped", job.id)
            await self.queue.ack(job)
            return JobResult.GONE
        if user_id is None:
            async with self.db.connection() as conn:
                user_id = await conn.fetchval("SELECT user_id FROM rounds WHERE round_id = $1", round_id)
            if user_id is None:
                await self.queue.ack(job)
                return JobResult.GONE
        lease = await self.user_lock.try_acquire(user_id)
        if lease is None:
            await self.queue.requeue(job, self._busy_delay())
            return JobResult.BUSY
        async with self.user_lock.keep(lease) as held, self.queue.claimed(job):
            conn = _Conn(self.db)
            try:
                return await self._locked(job, round_id, user_id, held, conn)
            finally:
                await conn.release()

    async def _locked(
        self, job: Job, round_id: int, user_id: int, held: HeldLease, db: _Conn
    ) -> JobResult:
        ctx = await attempts.start_batch(await db.get(), round_id, user_id, self.settings.batch_size)
        if ctx is None:
            await self.queue.ack(job)
            return JobResult.GONE
        if ctx.user_id != user_id:
            # the job named the wrong user, so the lock held is the wrong one: fix and retry
            log.error("job %s named user %s, the round is user %s's", job.id, user_id, ctx.user_id)
            await self.queue.requeue(job, 0, engine.job_payload(round_id, ctx.user_id))
            return JobResult.BUSY
        if ctx.lost:
            SENDS.labels("unknown").inc(ctx.lost)
            log.warning("user %s round %s: %d interrupted sends marked unknown", ctx.user_id, round_id,
                        ctx.lost)
        if ctx.finished:
            await self.queue.ack(job)
            return JobResult.DONE
        if ctx.first_start and ctx.started_at is not None:
            ROUND_LAG.observe(max(0.0, (ctx.started_at - ctx.planned_at).total_seconds()))
            ROUNDS.labels("started").inc()
        blocker = _blocker(ctx.campaign_status, ctx.paused_until, ctx.global_pause, ctx.now)
        if blocker is None and (ctx.account_status != "connected" or ctx.session_enc is None):
            blocker = "no_account"
        account = None
        if blocker is None:
            try:
                account = AccountRef(ctx.account_id or 0, self.cipher.decrypt(ctx.session_enc or b""))
            except Exception:  # a key mismatch: this worker can't use the session at all
                log.exception("user %s round %s: session cannot be decrypted", ctx.user_id, round_id)
                blocker = "no_account"
        if blocker is not None or account is None:
            return await self._blocked(job, ctx, blocker or "no_account", db)
        # pacing and the account's lock belong to the Telegram account, whichever bot user's row it is
        tg_user_id = ctx.tg_user_id if ctx.tg_user_id is not None else -(ctx.account_id or 0)
        account_lease = await self.account_lock.try_acquire(tg_user_id)
        if account_lease is None:  # the account's session is in use elsewhere (an import, another job)
            await self.queue.requeue(job, self._busy_delay())
            return JobResult.BUSY
        async with self.account_lock.keep(account_lease):
            message = await self._message(ctx, await db.get())
            floor = ctx.account_hint.timestamp() if ctx.account_hint else 0.0
            pace = await self.pacing.load(tg_user_id, [c.group_id for c in ctx.candidates], floor)
            batch = _Batch(ctx, account, message, pace, held)
            try:
                try:
                    ended = await self._send_batch(batch, db)
                finally:
                    # the session's connection lives only as long as this lease (AUTH_KEY_DUPLICATED)
                    await release_account(self.gateway, account)
            except DB_ERRORS:
                await self._rescue(batch, db)
                raise
            return await self._settle(job, batch, ended, db)

    async def _send_batch(self, batch: _Batch, db: _Conn) -> bool:
        """Send up to batch_size attempts; True when an error ended the round (pause, dead account)."""
        ctx = batch.ctx
        for cand in ctx.candidates:
            if batch.sends >= self.settings.batch_size:
                break
            if self.stopping.is_set() or batch.held.lost.is_set():
                break
            hint = self.pacing.group_wait(batch.pace, cand.group_id)
            if hint > 0:
                await self._group_hinted(batch, cand, hint, db)
                continue
            wait = self.pacing.account_wait(batch.pace)
            if wait > self.max_inline_wait:
                break
            if wait > SHORT_WAIT and not await self._pause(batch, wait, db):
                break
            conn = await db.get()
            claimed, _ = await attempts.claim(conn, cand.attempt_id, ctx.message_id, batch.unwritten)
            batch.unwritten = None
            if claimed is None:
                batch.blocked = await self._why_not_claimed(conn, cand.attempt_id)
                if batch.blocked == "taken":
                    batch.blocked = None
                    continue
                break
            step = await self._send(batch, cand, claimed, db)
            if step == "ended":
                return True
            if step == "stop":
                break
        return False

    async def _send(self, batch: _Batch, cand: Candidate, claimed: Claimed, db: _Conn) -> str:
        """One send and its outcome: "next", "stop" (no more sends in this job) or "ended" (round)."""
        ctx = batch.ctx
        group = GroupRef(claimed.peer_id, claimed.access_hash, _kind(claimed.kind))
        await db.release_if_scarce()
        outcome, decision = await self._deliver(batch, cand, claimed, group, db)
        if decision is not None and decision.unknown:
            outcome, decision = await self._judge_unknown(batch, cand, decision, db)
        batch.sends += 1
        self.pacing.sent(batch.pace)
        SENDS.labels(_label(outcome.status)).inc()
        if decision is None:
            log.debug("user %s round %s group %s: %s", ctx.user_id, ctx.round_id, cand.group_id,
                      outcome.status)
            batch.unwritten = outcome
            return "next"
        log.info("user %s round %s group %s: %s %s (%s)", ctx.user_id, ctx.round_id, cand.group_id,
                 outcome.status, decision.code, decision.detail)
        if decision.flood_kind:
            FLOOD_WAITS.labels(decision.flood_kind).inc()
        if decision.account_wait:
            self.pacing.account_flood(batch.pace, decision.account_wait, decision.widen_gap)
        if decision.group_wait:
            self.pacing.group_flood(batch.pace, cand.group_id, decision.group_wait)
        if decision.has_side_effects:
            await self._apply(batch, cand, outcome, decision, await db.get())
            if decision.ends_round:
                return "ended"
        else:
            batch.unwritten = outcome
        return "stop" if decision.end_batch else "next"

    async def _deliver(
        self, batch: _Batch, cand: Candidate, claimed: Claimed, group: GroupRef, db: _Conn
    ) -> tuple[Outcome, engine.Decision | None]:
        """Call the gateway (again after a group migration); map the result to an outcome."""
        ctx = batch.ctx
        migrated = False
        while True:
            try:
                sent_id = await asyncio.wait_for(
                    self.gateway.send_message(batch.account, group, batch.message), self.send_timeout)
                return Outcome(cand.attempt_id, "sent", sent_message_id=sent_id), None
            except GroupMigrated as exc:
                if migrated:
                    decision = engine.decide(exc, claimed.tries, self.settings)
                    return self._outcome(cand, decision), decision
                migrated = True
                conn = await db.get()
                async with conn.transaction():
                    target = await attempts.retarget(conn, cand.attempt_id, ctx.round_id, ctx.user_id,
                                                     cand.group_id, exc.new_peer_id, exc.new_access_hash)
                log.info("user %s round %s group %s: migrated to %s", ctx.user_id, ctx.round_id,
                         cand.group_id, exc.new_peer_id)
                if not target.send:
                    skipped = Outcome(cand.attempt_id, "skipped", exc.code, "the supergroup is in this round")
                    return skipped, None
                group = GroupRef(target.peer_id, target.access_hash, "supergroup")
            except GatewayError as exc:
                decision = engine.decide(exc, claimed.tries, self.settings)
                if isinstance(exc, FloodWait):
                    FLOOD_WAIT_SECONDS.observe(exc.seconds)
                return self._outcome(cand, decision), decision
            except TimeoutError:
                # it may or may not have been posted: never send it again in this round
                log.error("user %s round %s group %s: send timed out", ctx.user_id, ctx.round_id,
                          cand.group_id)
                return Outcome(cand.attempt_id, "unknown", "SEND_TIMEOUT", "no answer from Telegram"), None
            except Exception as exc:
                log.exception("user %s round %s group %s: send failed unexpectedly", ctx.user_id,
                              ctx.round_id, cand.group_id)
                return Outcome(cand.attempt_id, "unknown", "INTERNAL", type(exc).__name__), None

    async def _judge_unknown(
        self, batch: _Batch, cand: Candidate, decision: engine.Decision, db: _Conn
    ) -> tuple[Outcome, engine.Decision]:
        """An error no table knows: decided by this round's and the last round's attempts."""
        conn = await db.get()
        if batch.unwritten is not None:
            await attempts.write_outcome(conn, batch.unwritten)
            batch.unwritten = None
        history = await error_history.unknown_error_history(
            conn, batch.ctx.round_id, batch.ctx.user_id, cand.group_id, cand.attempt_id, decision.code)
        judged = engine.judge_unknown(decision, history)
        return self._outcome(cand, judged), judged

    @staticmethod
    def _outcome(cand: Candidate, decision: engine.Decision) -> Outcome:
        return Outcome(cand.attempt_id, decision.status, decision.code, decision.detail,
                       retry_in=decision.retry_in, flood=decision.status == "flood_wait")

    async def _apply(
        self, batch: _Batch, cand: Candidate, outcome: Outcome, decision: engine.Decision,
        conn: asyncpg.Connection,
    ) -> None:
        """An outcome with consequences beyond the attempt, written in one transaction."""
        ctx = batch.ctx
        notify = NotificationService.enqueue
        async with conn.transaction():
            await attempts.write_outcome(conn, outcome)
            if decision.disable_group:
                title = await attempts.disable_group(conn, cand.group_id, decision.code)
                if title is not None:
                    await notify(conn, ctx.user_id, engine.GROUP_DISABLED,
                                 {"group_id": cand.group_id, "title": title, "reason": decision.code},
                                 f"group_disabled:{cand.group_id}:{decision.code}")
            elif decision.notify == engine.MESSAGE_REJECTED:
                await notify(conn, ctx.user_id, engine.MESSAGE_REJECTED,
                             {"round_id": ctx.round_id, "code": decision.code, "detail": decision.detail},
                             f"message_rejected:{ctx.round_id}")
            if decision.pause_for is not None:
                # an account restriction (PEER_FLOOD too) that goes on is told once, not every pause
                told = (decision.flood_kind == "peer_flood"
                        and await error_history.restriction_told(conn, ctx.user_id, decision.code))
                until = await rounds.pause_campaign(conn, ctx.user_id, decision.pause_for, decision.code)
                await attempts.skip_open(conn, ctx.round_id, decision.code, "campaign paused by Telegram")
                if until is not None and not told:
                    pause = {"seconds": int(decision.pause_for), "until": until.isoformat(),
                             "code": decision.code}
                    if decision.notify == engine.ACCOUNT_RESTRICTED:
                        await notify(conn, ctx.user_id, engine.ACCOUNT_RESTRICTED, pause,
                                     f"account_restricted:{ctx.round_id}")
                    else:
                        await notify(conn, ctx.user_id, engine.FLOOD_PAUSE, pause,
                                     f"flood_pause:{ctx.round_id}")
                await self._finish(conn, ctx, "done")
            if decision.halt:
                await rounds.stop_campaign(conn, ctx.user_id)
                await attempts.skip_open(conn, ctx.round_id, decision.code, "every group failed alike")
                await notify(conn, ctx.user_id, engine.BROADCAST_HALTED, {"code": decision.code},
                             f"broadcast_halted:{ctx.round_id}")
                await self._finish(conn, ctx, "cancelled")
            if decision.stop_campaign:
                await rounds.stop_campaign(conn, ctx.user_id)
                await rounds.disconnect_account(conn, ctx.user_id, decision.code)
                await attempts.skip_open(conn, ctx.round_id, decision.code, "the account's session ended")
                await notify(conn, ctx.user_id, engine.SESSION_ENDED, {"reason": decision.code},
                             f"session_ended:{ctx.round_id}")
                await self._finish(conn, ctx, "cancelled")

    # --- end of a job --------------------------------------------------------------------------

    async def _settle(self, job: Job, batch: _Batch, ended: bool, db: _Conn) -> JobResult:
        ctx = batch.ctx
        conn = await db.get()
        _, remaining = await attempts.flush_and_remaining(conn, ctx.round_id, batch.unwritten)
        batch.unwritten = None
        await self.pacing.save(batch.pace)
        if ended:
            await self.queue.ack(job)
            return JobResult.DONE
        if batch.blocked is not None:
            return await self._blocked(job, ctx, batch.blocked, db)
        if remaining.open == 0:
            async with conn.transaction():
                await self._finish(conn, ctx, "done")
            await self.queue.ack(job)
            return JobResult.DONE
        await self.queue.requeue(job, self._continuation_delay(batch, remaining))
        return JobResult.CONTINUED

    async def _blocked(self, job: Job, ctx: RoundContext, blocker: str, db: _Conn) -> JobResult:
        """The round can't go on now: stopped -> cancelled; paused -> wait; account gone -> end."""
        if blocker in ("paused", "global_pause"):
            conn = await db.get()
            state = await conn.fetchrow(
                "SELECT paused_until, now() AS now FROM campaigns WHERE user_id = $1", ctx.user_id)
            delay = self._pause_poll()
            if blocker == "paused" and state is not None and state["paused_until"] is not None:
                delay = max(delay, (state["paused_until"] - state["now"]).total_seconds())
            await self.queue.requeue(job, delay + engine.jitter(self.settings, self.rng))
            return JobResult.WAITING
        conn = await db.get()
        async with conn.transaction():
            if blocker == "no_account":
                await rounds.stop_campaign(conn, ctx.user_id)
                await attempts.skip_open(conn, ctx.round_id, "NO_ACCOUNT", "no connected account")
                await NotificationService.enqueue(conn, ctx.user_id, engine.SESSION_ENDED,
                                                  {"reason": "NO_ACCOUNT"}, f"session_ended:{ctx.round_id}")
            else:  # stopped, or the round was closed meanwhile
                await attempts.skip_open(conn, ctx.round_id, "STOPPED", "the broadcast was stopped")
            await self._finish(conn, ctx, "cancelled")
        await self.queue.ack(job)
        return JobResult.DONE

    async def _finish(self, conn: asyncpg.Connection, ctx: RoundContext, status: str) -> None:
        finished = await rounds.finish_round(conn, ctx.round_id, status)
        if finished is None:
            return
        ROUNDS.labels(status).inc()
        log.info("user %s round %s: %s, %d sent, %d failed, %d skipped, %d unknown of %d", ctx.user_id,
                 ctx.round_id, status, finished.sent, finished.failed, finished.skipped, finished.unknown,
                 finished.total)
        if status == "done":
            await NotificationService.enqueue(conn, ctx.user_id, engine.ROUND_SUMMARY, finished.summary(),
                                              f"round_summary:{ctx.round_id}")

    # --- helpers -------------------------------------------------------------------------------

    async def _rescue(self, batch: _Batch, db: _Conn) -> None:
        """The database went away mid-batch: keep trying to record the last send's outcome for a
        while (we still hold the lock), so that a send that did go out is not left ``unknown``."""
        outcome, batch.unwritten = batch.unwritten, None
        if outcome is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.lease_ttl / 2
        while loop.time() < deadline and not batch.held.lost.is_set():
            with contextlib.suppress(*DB_ERRORS):
                await db.release()
            try:
                await attempts.write_outcome(await db.get(), outcome)
                return
            except DB_ERRORS:
                await asyncio.sleep(0.2)
        log.warning("user %s round %s: outcome of attempt %s not recorded; it will be unknown",
                    batch.ctx.user_id, batch.ctx.round_id, outcome.attempt_id)

    async def _why_not_claimed(self, conn: asyncpg.Connection, attempt_id: int) -> str:
        row = await conn.fetchrow(
            """
            SELECT CASE WHEN c.started_at IS NOT NULL AND r.planned_at < c.started_at THEN 'stopped'
                        ELSE c.status END AS status,
                   c.paused_until, r.finished_at IS NOT NULL AS finished, now() AS now,
                   coalesce((SELECT s.value = 'true'::jsonb FROM settings s WHERE s.key = 'global_pause'),
                            false) AS global_pause
            FROM attempts t JOIN rounds r USING (round_id) JOIN campaigns c ON c.user_id = r.user_id
            WHERE t.attempt_id = $1
            """,
            attempt_id,
        )
        if row is None:
            return "finished"
        if row["finished"]:
            return "finished"
        return _blocker(row["status"], row["paused_until"], row["global_pause"], row["now"]) or "taken"

    async def _group_hinted(self, batch: _Batch, cand: Candidate, hint: float, db: _Conn) -> None:
        """A group with a slow-mode/flood hint: put off within the inline limit, else skip it."""
        conn = await db.get()
        if hint <= self.settings.flood_inline_max:
            batch.deferred_until = max(batch.deferred_until, hint)
            await attempts.defer(conn, cand.attempt_id, hint)
            return
        if batch.unwritten is not None:
            await attempts.write_outcome(conn, batch.unwritten)
            batch.unwritten = None
        detail = f"slow mode for {int(hint)}s"
        if await attempts.mark_skipped(conn, cand.attempt_id, "SLOWMODE_WAIT", detail):
            SENDS.labels("skipped").inc()

    async def _pause(self, batch: _Batch, wait: float, db: _Conn) -> bool:
        """Wait for the account's gap with the outcome written and the connection given back.

        False when the worker is stopping or the lock was lost meanwhile (no further send).
        """
        if batch.unwritten is not None:
            await attempts.write_outcome(await db.get(), batch.unwritten)
            batch.unwritten = None
        await db.release()
        waiters = [asyncio.ensure_future(self.stopping.wait()), asyncio.ensure_future(batch.held.lost.wait())]
        try:
            await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return not (self.stopping.is_set() or batch.held.lost.is_set())

    async def _message(self, ctx: RoundContext, conn: asyncpg.Connection) -> OutgoingMessage:
        media = await self.media.get(conn, ctx.media_id) if ctx.media_id is not None else None
        return OutgoingMessage(text=ctx.text, entities=ctx.entities, media=media)

    def _continuation_delay(self, batch: _Batch, remaining: Remaining) -> float:
        wait = self.pacing.account_wait(batch.pace)
        if remaining.ready == 0 and remaining.earliest is not None:
            wait = max(wait, (remaining.earliest - remaining.now).total_seconds())
        if batch.sends == 0 and batch.deferred_until:
            wait = max(wait, batch.deferred_until)
        return wait + engine.jitter(self.settings, self.rng)

    def _busy_delay(self) -> float:
        base = max(0.05, min(1.0, self.settings.gap_min / 2))
        return base + self.rng.uniform(0.0, base)

    def _pause_poll(self) -> float:
        return max(1.0, self.settings.tick * 5)


def _blocker(campaign_status: str, paused_until: Any, global_pause: bool, now: Any) -> str | None:
    if campaign_status != "running":
        return "stopped"
    if global_pause:
        return "global_pause"
    if paused_until is not None and paused_until > now:
        return "paused"
    return None


def _label(status: str) -> str:
    return "retry" if status == "pending" else status


def _kind(kind: str) -> Any:
    return kind if kind in ("group", "supergroup", "channel") else "group"


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


async def settle_quietly(queue: JobQueue, job: Job, delay: float) -> None:
    """Give a job back after an unexpected error; if Redis is down too, reclaim will do it."""
    with contextlib.suppress(Exception):
        await queue.requeue(job, delay)
