"""The round engine: one job = one micro-batch of at most ``batch_size`` sends for one round.

Order of a job (engine.md, "Worker"):
1. take the broadcast's lock (U8: keyed by the user and the round's account row, so one user's
   accounts run side by side; a payload without the account reads it from the round first; a
   lease with a fencing token, renewed while held); busy -> the job goes
   back to the queue after a short jittered delay. When the payload names the Telegram account
   (the scheduler puts it there), the account's lock and its pacing keys come in the same Redis
   round trip (``JobStart``);
2. one statement: attempts left in ``sending`` by a crash become ``unknown``, the round's context
   and the next attempts that may go now are read; then the Telegram account's own lock, keyed by
   its Telegram user id like its pacing, is the one taken in 1 if the payload named the round's
   account, else it is taken now (busy -> back to the queue as in 1); the gateway's connection for
   the account is released when the batch ends (issue 11);
3. per send: wait for the account's turn (the limiter's gap, caps and breaks; a cap or a break sends
   the job back to the queue with the wait), claim the attempt (``sending``, committed, with every
   "before each send" check in the same statement), send, keep the outcome; outcomes are written
   right away when a wait follows, otherwise together with the next claim;
4. one statement writes the last outcome and counts what is left; nothing left -> the same
   statement finishes the round (counters, summary notification) and the job is to be
   acknowledged; otherwise it records when the next job is due (reconciliation reads it) and the
   same job id is to go to the back of the queue with the gap plus jitter as its delay;
5. the worker's ``settle`` applies that outcome to the queue, then the lock is released (a job
   handed back after the release could be overtaken: the chaos suite's SIGKILL run stalled).

``RoundEngine.run`` returns that decision as one ``JobOutcome``; the worker role applies it to the
queue. Every read and write goes through the ports (``services.engine.ports``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Literal, cast

from accounts.gateway import AccountGateway, AccountRef, GroupRef, Media, MediaKind, OutgoingMessage
from accounts.gateway import release as release_account
from config.settings import EngineSettings
from domain import schedule
from domain.errors import FloodWait, GatewayError, GroupMigrated, TransientError
from metrics import FLOOD_WAIT_SECONDS, FLOOD_WAITS, ROUND_LAG, ROUNDS, SENDS
from services.engine import rules
from services.engine.outcome import JobOutcome, JobResult
from services.engine.ports import (
    AccountLock,
    Cipher,
    EngineClock,
    HeldLock,
    JobStart,
    LoopClock,
    Pacer,
    RoundLock,
    RoundStore,
    RoundUnit,
)
from storage.db import DB_ERRORS
from storage.job_locks import Taken
from storage.repositories.attempts import Candidate, Claimed, Outcome, Remaining, RoundContext
from storage.repositories.rounds import FinishedRound

log = logging.getLogger(__name__)

# A media send may have to upload the file first: its timeout grows with the size, as if the
# upload ran at this rate at least (a slow but working link), on top of the base timeout.
MIN_UPLOAD_RATE = 256 * 1024  # bytes per second

# A wait shorter than this is not worth giving the DB connection back for.
SHORT_WAIT = 0.005
Step = Literal["next", "stop", "ended"]
# the worker's apply: the job's outcome and the leases to release once it is applied
Settle = Callable[[JobOutcome, Sequence[Any]], Awaitable[None]]


@dataclass
class _Start:
    """How a job started: the round's account row whose broadcast lock it takes (U8) and whether
    the payload named it, the Telegram account its payload named, what ``JobStart.take`` got for
    it, and the round's own Telegram account key once the context is read."""

    tg_user_id: int | None
    account_id: int | None = None
    named: bool = True  # False: the payload lacked the account (a job of the previous release)
    taken: Taken | None = None
    account_key: int | None = None


@contextlib.asynccontextmanager
async def _stops_with(account: HeldLock | None, job: HeldLock) -> AsyncIterator[None]:
    """While the block runs, losing the Telegram account's lease stops the batch as losing the job's
    own lock does (``job.lost``): no send goes out on an account someone else may hold by then
    (engine.md: one send at a time per account). ``None``: no account lease kept here."""
    lost = getattr(account, "lost", None)
    if not isinstance(lost, asyncio.Event):
        yield
        return

    async def watch(event: asyncio.Event) -> None:
        await event.wait()
        log.warning("the Telegram account's lease was lost mid-batch: the batch stops")
        job.lost.set()

    task = asyncio.ensure_future(watch(lost))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _with_account(outcome: JobOutcome, round_id: int, user_id: int, start: _Start) -> JobOutcome:
    """A continuation carries the round's account row and Telegram account when the payload lacked
    them or named another Telegram account (reconciliation's jobs, an account connected anew, a job
    of the previous release), so its next job starts in one round trip with the right leases."""
    if outcome.action != "requeue" or outcome.payload is not None:
        return outcome
    tg_stale = start.account_key is not None and start.account_key != start.tg_user_id
    if start.named and not tg_stale:
        return outcome
    tg_user_id = start.account_key if start.account_key is not None else start.tg_user_id
    payload = rules.job_payload(round_id, user_id, tg_user_id, account_id=start.account_id)
    return replace(outcome, payload=payload)


@dataclass
class _Batch:
    """Mutable state of one job's batch."""

    ctx: RoundContext
    account: AccountRef
    message: OutgoingMessage
    pace: Any
    held: HeldLock
    messages: dict[int, OutgoingMessage] = field(default_factory=dict)  # U9: loaded per message id
    unwritten: Outcome | None = None  # outcome kept to be written with the next statement
    sends: int = 0
    deferred_until: float = 0.0  # latest group hint among attempts put off in this batch
    blocked: str | None = None  # why the batch stopped early (a ``campaign_blocker`` reason)
    opened: float = 0.0  # the engine clock's monotonic time when ``ctx.now`` was read
    window_wait: float | None = None  # U10.5: the window closed; seconds until it opens again


class RoundEngine:
    """Runs round jobs; one instance per worker process, shared by its concurrent jobs."""

    def __init__(
        self,
        store: RoundStore,
        lock: RoundLock,
        gateway: AccountGateway,
        cipher: Cipher,
        settings: EngineSettings,
        pacing: Pacer,
        account_lock: AccountLock,
        stopping: asyncio.Event | None = None,
        rng: random.Random | None = None,
        clock: EngineClock | None = None,
        job_start: JobStart | None = None,
    ) -> None:
        self.store = store
        self.lock = lock
        self.gateway = gateway
        self.cipher = cipher
        self.settings = settings
        self.pacing = pacing
        self.account_lock = account_lock
        self.stopping = stopping or asyncio.Event()
        self.rng = rng or random.Random()
        self.clock = clock or LoopClock()
        self.job_start = job_start  # None: the leases and the pacing read one by one
        # a continuation that would wait longer than this inside the job goes back to the queue
        self.max_inline_wait = max(settings.gap_max * rules.WIDEN_FACTOR + 1.0, 2.0)
        self.send_timeout = max(settings.lease_ttl, 30.0)

    def timeout_for(self, message: OutgoingMessage) -> float:
        """The send timeout, scaled by the media's size (its upload may come first)."""
        return self.send_timeout + message.upload_bytes / MIN_UPLOAD_RATE

    # --- job -----------------------------------------------------------------------------------

    async def run(self, job_id: str, payload: dict[str, Any], settle: Settle | None = None) -> JobOutcome:
        """Run one job of the round named by ``payload`` (or ``job_id``) and say what becomes of it.

        ``settle`` (the worker's apply) is called with the outcome and the leases still held (the
        user's lock, the account's lock): it puts the job back or acknowledges it and then releases
        them, so the job is back in the queue before another holder can take the round (engine.md:
        a job hands its job back before it releases the lock); one Redis round trip for all three.
        Errors of the database or Redis propagate (the worker requeues the job after a backoff).
        """
        outcome, settled = await self._run(job_id, payload, settle)
        if not settled and settle is not None:  # decided without the lock: nothing held to hand back
            await settle(outcome, ())
        return outcome

    async def _run(self, job_id: str, payload: dict[str, Any],
                   settle: Settle | None) -> tuple[JobOutcome, bool]:
        """The outcome and whether ``settle`` was already called with it (under the lock)."""
        round_id = _int(payload.get("round_id")) or rules.round_id_of(job_id)
        user_id = _int(payload.get("user_id"))
        start = _Start(tg_user_id=_int(payload.get("tg_user_id")), account_id=_int(payload.get("account_id")))
        if round_id is None:
            return JobOutcome.dead(f"job {job_id} names no round"), False
        async with self.store.unit() as unit:
            if user_id is None or start.account_id is None:
                # U8: the lock is the round's broadcast's, keyed by its account row. A payload without
                # it (queued by the previous release, or a round with no account) reads the round's
                # owner first: locking by the user alone would not keep out a service or a job that
                # holds the account's lock
                owner = await unit.round_owner(round_id)
                if owner is None:
                    return JobOutcome.ack(JobResult.GONE), False
                user_id, start.account_id = owner
                start.named = False
                await unit.release()
            if self.job_start is not None and start.tg_user_id is not None:
                # the payload names the Telegram account: both leases and its pacing in one round trip
                start.taken = await self.job_start.take(user_id, start.account_id, start.tg_user_id)
                lease = start.taken.user
            else:
                lease = await self.lock.try_acquire(user_id, start.account_id)
            if lease is None:
                # a payload that lacked the account comes back with it (no second read of the round)
                fixed = None if start.named else rules.job_payload(round_id, user_id, start.tg_user_id,
                                                                   account_id=start.account_id)
                return JobOutcome.requeue(JobResult.BUSY, self._busy_delay(), fixed), False
            held_leases: list[tuple[Any, Any]] = [(self.lock, lease)]  # (lock, lease), the user's last
            if start.taken is not None and start.taken.account is not None:
                held_leases.insert(0, (self.account_lock, start.taken.account))
            try:
                async with contextlib.AsyncExitStack() as kept:
                    held = await kept.enter_async_context(self.lock.keep(lease, release=False))
                    if start.taken is not None and start.taken.account is not None:
                        # renewed from now on, whether or not this job sends (released with the settle)
                        account = start.taken.account
                        account_held = await kept.enter_async_context(
                            self.account_lock.keep(account, release=False))
                        await kept.enter_async_context(_stops_with(account_held, held))
                    outcome = await self._locked(job_id, round_id, user_id, held, unit, held_leases, start)
                outcome = _with_account(outcome, round_id, user_id, start)
                await unit.release()
                if settle is None:
                    await self._release(held_leases)
                    return outcome, False
                await settle(outcome, [lease for _, lease in held_leases])
            except BaseException:
                await self._release(held_leases)
                raise
            return outcome, True

    async def _release(self, held_leases: list[tuple[Any, Any]]) -> None:
        """Release what ``settle`` did not (it failed, or there was none); a failure here leaves the
        lease to expire on its own after its TTL."""
        for lock, lease in held_leases:  # the account's first, the user's last
            try:
                await lock.release(lease)
            except Exception as exc:  # Redis down: the TTL frees it
                log.warning("releasing a lease failed: %s", exc)

    async def _locked(
        self, job_id: str, round_id: int, user_id: int, held: HeldLock, unit: RoundUnit,
        held_leases: list[tuple[Any, Any]], start: _Start,
    ) -> JobOutcome:
        ctx = await unit.start_batch(round_id, user_id, start.account_id, self.settings.batch_size)
        if ctx is None:
            return JobOutcome.ack(JobResult.GONE)
        if ctx.user_id != user_id or ctx.account_id != start.account_id:
            # the job named the wrong broadcast, so the lock held is the wrong one (and nothing was
            # changed): fix and retry
            log.error("job %s named user %s account %s, the round is user %s's account %s", job_id, user_id,
                      start.account_id, ctx.user_id, ctx.account_id)
            return JobOutcome.requeue(JobResult.BUSY, 0,
                                      rules.job_payload(round_id, ctx.user_id, account_id=ctx.account_id))
        if ctx.lost:
            SENDS.labels("unknown").inc(ctx.lost)
            log.warning("user %s round %s: %d interrupted sends marked unknown", ctx.user_id, round_id,
                        ctx.lost)
        if ctx.finished:
            return JobOutcome.ack(JobResult.DONE)
        blocker = ctx.blocker
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
            return await self._blocked(ctx, blocker or "no_account", unit)
        # pacing and the account's lock belong to the Telegram account, whichever bot user's row it is
        tg_user_id = _account_key(ctx)
        start.account_key = tg_user_id
        taken = start.taken if start.taken is not None and start.taken.tg_user_id == tg_user_id else None
        if taken is not None:  # taken with the user's lease, already renewed (see ``_run``)
            if taken.account is None:  # the account's session is in use elsewhere (an import, another job)
                return JobOutcome.requeue(JobResult.BUSY, self._busy_delay())
            keep: contextlib.AbstractAsyncContextManager[Any] = contextlib.nullcontext()
        else:
            # no account in the payload, or another one (the user connected another account): a
            # lease taken for that one stays held until the settle releases it with the others
            account_lease = await self.account_lock.try_acquire(tg_user_id)
            if account_lease is None:  # the account's session is in use elsewhere (an import, another job)
                return JobOutcome.requeue(JobResult.BUSY, self._busy_delay())
            held_leases.insert(0, (self.account_lock, account_lease))  # released with the job's settle
            keep = self.account_lock.keep(account_lease, release=False)
        async with keep as account_held, _stops_with(account_held, held):
            if ctx.album_items:  # U9.3: an album's items are read with the message
                message = await _load_message(unit, ctx.message_id)
            else:
                media = await _media(unit, ctx.media_id) if ctx.media_id is not None else None
                message = OutgoingMessage(text=ctx.text, entities=ctx.entities, media=media)
            floor = ctx.account_hint.timestamp() if ctx.account_hint else 0.0
            if taken is not None and taken.pace is not None:
                pace = self.pacing.state_from(tg_user_id, taken.pace, floor)
            else:
                pace = await self.pacing.load(tg_user_id, [c.group_id for c in ctx.candidates], floor)
            batch = _Batch(ctx, account, message, pace, held, {ctx.message_id: message},
                           opened=self.clock.monotonic())
            try:
                try:
                    ended = await self._send_batch(batch, unit)
                finally:
                    # the session's connection lives only as long as this lease (AUTH_KEY_DUPLICATED)
                    await release_account(self.gateway, account)
            except DB_ERRORS:
                await self._rescue(batch, unit)
                raise
            return await self._settle(batch, ended, unit)

    async def _send_batch(self, batch: _Batch, unit: RoundUnit) -> bool:
        """Send up to batch_size attempts; True when an error ended the round (pause, dead account)."""
        ctx = batch.ctx
        for cand in ctx.candidates:
            if batch.sends >= self.settings.batch_size:
                break
            if self.stopping.is_set() or batch.held.lost.is_set():
                break
            hint = self.pacing.group_wait(batch.pace, cand.group_id)
            if hint > 0:
                await self._group_hinted(batch, cand, hint, unit)
                continue
            if not await self._take_turn(batch, unit):
                break
            if self._window_closed(batch):  # U10.5: no send starts outside the schedule window
                break
            batch.message = await self._message_of(batch, cand, unit)
            claimed = await unit.claim(ctx.round_id, cand.attempt_id, ctx.message_id, batch.unwritten)
            batch.unwritten = None
            if claimed is not None and claimed.started_lag is not None:  # the round's first claim: once
                ROUND_LAG.observe(max(0.0, claimed.started_lag.total_seconds()))
                ROUNDS.labels("started").inc()
            if claimed is None:
                batch.blocked = await unit.claim_blocker(cand.attempt_id)
                if batch.blocked == "taken":
                    batch.blocked = None
                    continue
                break
            step = await self._send(batch, cand, claimed, unit)
            if step == "ended":
                return True
            if step == "stop":
                break
        return False

    async def _message_of(self, batch: _Batch, cand: Candidate, unit: RoundUnit) -> OutgoingMessage:
        """U9: the message this attempt posts (rotation chose it when the round was planned)."""
        wanted = batch.ctx.message_id if cand.message_id is None else cand.message_id
        if wanted not in batch.messages:
            batch.messages[wanted] = await _load_message(unit, wanted)
        return batch.messages[wanted]

    async def _send(self, batch: _Batch, cand: Candidate, claimed: Claimed, unit: RoundUnit) -> Step:
        """One send and its outcome: "next", "stop" (no more sends in this job) or "ended" (round)."""
        ctx = batch.ctx
        group = GroupRef(claimed.peer_id, claimed.access_hash, _kind(claimed.kind), claimed.topic_id)
        await unit.release_if_scarce()
        outcome, decision = await self._deliver(batch, cand, claimed, group, unit)
        if decision is not None and decision.unknown:
            outcome, decision = await self._judge_unknown(batch, cand, decision, unit)
        batch.sends += 1
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
            await self._apply(batch, cand, outcome, decision, unit)
            if decision.ends_round:
                return "ended"
        else:
            batch.unwritten = outcome
        return "stop" if decision.end_batch else "next"

    async def _deliver(
        self, batch: _Batch, cand: Candidate, claimed: Claimed, group: GroupRef, unit: RoundUnit
    ) -> tuple[Outcome, rules.Decision | None]:
        """Call the gateway (again after a group migration); map the result to an outcome."""
        ctx = batch.ctx
        migrated = False
        while True:
            try:
                sent_id = await asyncio.wait_for(
                    self.gateway.send_message(batch.account, group, batch.message),
                    self.timeout_for(batch.message))
                return Outcome(cand.attempt_id, "sent", sent_message_id=sent_id), None
            except GroupMigrated as exc:
                if migrated:
                    decision = rules.decide(exc, claimed.tries, self.settings)
                    return _outcome(cand, decision), decision
                migrated = True
                send = await unit.migrate_group(ctx.round_id, ctx.user_id, cand.attempt_id, cand.group_id,
                                                exc.new_peer_id, exc.new_access_hash)
                log.info("user %s round %s group %s: migrated to %s", ctx.user_id, ctx.round_id,
                         cand.group_id, exc.new_peer_id)
                if not send:
                    skipped = Outcome(cand.attempt_id, "skipped", exc.code, "the supergroup is in this round")
                    return skipped, None
                group = GroupRef(exc.new_peer_id, exc.new_access_hash, "supergroup")
            except GatewayError as exc:
                decision = rules.decide(exc, claimed.tries, self.settings)
                if isinstance(exc, FloodWait):
                    FLOOD_WAIT_SECONDS.observe(exc.seconds)
                return _outcome(cand, decision), decision
            except TimeoutError:
                if batch.message.upload_bytes:
                    # Most of a media send's time is the upload, before anything is posted: the
                    # transient rule retries it (with backoff, then failed) instead of losing it.
                    log.warning("user %s round %s group %s: media send timed out", ctx.user_id, ctx.round_id,
                                cand.group_id)
                    timeout = TransientError("TIMEOUT", "no answer from Telegram within the send timeout")
                    decision = rules.decide(timeout, claimed.tries, self.settings)
                    return _outcome(cand, decision), decision
                # it may or may not have been posted: never send it again in this round
                log.error("user %s round %s group %s: send timed out", ctx.user_id, ctx.round_id,
                          cand.group_id)
                return Outcome(cand.attempt_id, "unknown", "SEND_TIMEOUT", "no answer from Telegram"), None
            except Exception as exc:
                log.exception("user %s round %s group %s: send failed unexpectedly", ctx.user_id,
                              ctx.round_id, cand.group_id)
                return Outcome(cand.attempt_id, "unknown", "INTERNAL", type(exc).__name__), None

    async def _judge_unknown(
        self, batch: _Batch, cand: Candidate, decision: rules.Decision, unit: RoundUnit
    ) -> tuple[Outcome, rules.Decision]:
        """An error no table knows: decided by this round's and the last round's attempts."""
        if batch.unwritten is not None:  # the history must see the previous send's outcome
            await unit.write_outcome(batch.unwritten)
            batch.unwritten = None
        ctx = batch.ctx
        history = await unit.unknown_error_history(ctx.round_id, ctx.user_id, cand.group_id, cand.attempt_id,
                                                   decision.code)
        judged = rules.judge_unknown(decision, history)
        return _outcome(cand, judged), judged

    async def _apply(
        self, batch: _Batch, cand: Candidate, outcome: Outcome, decision: rules.Decision, unit: RoundUnit
    ) -> None:
        """An outcome with consequences beyond the attempt, written in one transaction."""
        ctx = batch.ctx
        async with unit.transaction():
            await unit.write_outcome(outcome)
            if decision.disable_group:
                title = await unit.disable_group(cand.group_id, decision.code)
                if title is not None:
                    await unit.notify(ctx.user_id, rules.GROUP_DISABLED,
                                      {"group_id": cand.group_id, "title": title, "reason": decision.code,
                                       "account_id": ctx.account_id},
                                      f"group_disabled:{cand.group_id}:{decision.code}")
            elif decision.notify == rules.MESSAGE_REJECTED:
                rejected = {"round_id": ctx.round_id, "code": decision.code, "detail": decision.detail,
                            "account_id": ctx.account_id}
                await unit.notify(ctx.user_id, rules.MESSAGE_REJECTED, rejected,
                                  f"message_rejected:{ctx.round_id}")
            if decision.pause_for is not None:
                # an account restriction (PEER_FLOOD too) that goes on is told once, not every pause
                told = (decision.flood_kind == "peer_flood"
                        and await unit.restriction_told(ctx.account_id, decision.code))
                until = await unit.pause_campaign(ctx.account_id, decision.pause_for, decision.code)
                await unit.skip_open(ctx.round_id, decision.code, "campaign paused by Telegram")
                if until is not None and not told:
                    pause = {"seconds": int(decision.pause_for), "until": until.isoformat(),
                             "code": decision.code, "account_id": ctx.account_id}
                    if decision.notify == rules.ACCOUNT_RESTRICTED:
                        await unit.notify(ctx.user_id, rules.ACCOUNT_RESTRICTED, pause,
                                          f"account_restricted:{ctx.round_id}")
                    else:
                        await unit.notify(ctx.user_id, rules.FLOOD_PAUSE, pause,
                                          f"flood_pause:{ctx.round_id}")
                await self._finish(unit, ctx, "done")
            if decision.halt:
                await unit.stop_campaign(ctx.account_id)
                await unit.skip_open(ctx.round_id, decision.code, "every group failed alike")
                await unit.notify(ctx.user_id, rules.BROADCAST_HALTED,
                                  {"code": decision.code, "account_id": ctx.account_id},
                                  f"broadcast_halted:{ctx.round_id}")
                await self._finish(unit, ctx, "cancelled")
            if decision.stop_campaign:
                await unit.stop_campaign(ctx.account_id)
                await unit.disconnect_account(ctx.account_id, decision.code)
                await unit.skip_open(ctx.round_id, decision.code, "the account's session ended")
                await unit.notify(ctx.user_id, rules.SESSION_ENDED,
                                  {"reason": decision.code, "account_id": ctx.account_id},
                                  f"session_ended:{ctx.round_id}")
                await self._finish(unit, ctx, "cancelled")

    # --- end of a job --------------------------------------------------------------------------

    async def _settle(self, batch: _Batch, ended: bool, unit: RoundUnit) -> JobOutcome:
        ctx = batch.ctx
        go_on = not ended and batch.blocked is None
        jitter = rules.jitter(self.settings, self.rng)
        report = self.pacing.report(batch.pace) if go_on else {}
        # one statement: the last outcome, what is left, and the round's end or its next job's time
        settled = await unit.settle(ctx.round_id, batch.unwritten, finish=go_on,
                                    summary_extra={"pacing": report} if report else {},
                                    wait_floor=self._wait_floor(batch), jitter=jitter)
        batch.unwritten = None
        await self.pacing.save(batch.pace)
        if ended:
            return JobOutcome.ack(JobResult.DONE)
        if batch.blocked is not None:
            return await self._blocked(ctx, batch.blocked, unit)
        if settled.finished is not None:
            self._finished(ctx, settled.finished)
        remaining = settled.remaining
        if batch.window_wait is not None and remaining.open:
            # the rest of the round goes on at the window's next opening (U10.5); ``settle`` wrote
            # that time as the round's next job time (the window's wait is in the wait floor)
            return JobOutcome.requeue(JobResult.WAITING, self._wait_floor(batch) + jitter)
        if remaining.open == 0:  # finished here, or already by a job before this one
            return JobOutcome.ack(JobResult.DONE)
        return JobOutcome.requeue(JobResult.CONTINUED, self._continuation_delay(batch, remaining, jitter))

    async def _blocked(self, ctx: RoundContext, blocker: str, unit: RoundUnit) -> JobOutcome:
        """The round can't go on now: stopped -> cancelled; paused -> wait; account gone -> end."""
        if blocker in ("paused", "global_pause"):
            state = await unit.paused_until(ctx.account_id)
            delay = self._pause_poll()
            if blocker == "paused" and state is not None and state[0] is not None:
                delay = max(delay, (state[0] - state[1]).total_seconds())
            delay += rules.jitter(self.settings, self.rng)
            await unit.expect_job(ctx.round_id, delay)  # reconciliation leaves it alone until then
            return JobOutcome.requeue(JobResult.WAITING, delay)
        async with unit.transaction():
            if blocker == "no_account":
                await unit.stop_campaign(ctx.account_id)
                await unit.skip_open(ctx.round_id, "NO_ACCOUNT", "no connected account")
                await unit.notify(ctx.user_id, rules.SESSION_ENDED,
                                  {"reason": "NO_ACCOUNT", "account_id": ctx.account_id},
                                  f"session_ended:{ctx.round_id}")
            else:  # stopped, or the round was closed meanwhile
                await unit.skip_open(ctx.round_id, "STOPPED", "the broadcast was stopped")
            await self._finish(unit, ctx, "cancelled")
        return JobOutcome.ack(JobResult.DONE)

    async def _finish(self, unit: RoundUnit, ctx: RoundContext, status: str) -> None:
        finished = await unit.finish_round(ctx.round_id, status)
        if finished is None:
            return
        self._finished(ctx, finished)
        if status == "done":
            await unit.notify(ctx.user_id, rules.ROUND_SUMMARY,
                              {**finished.summary(), "account_id": ctx.account_id},
                              f"round_summary:{ctx.round_id}")

    def _finished(self, ctx: RoundContext, finished: FinishedRound) -> None:
        ROUNDS.labels(finished.status).inc()
        log.info("user %s round %s: %s, %d sent, %d failed, %d skipped, %d unknown of %d", ctx.user_id,
                 ctx.round_id, finished.status, finished.sent, finished.failed, finished.skipped,
                 finished.unknown, finished.total)

    # --- helpers -------------------------------------------------------------------------------

    async def _rescue(self, batch: _Batch, unit: RoundUnit) -> None:
        """The database went away mid-batch: keep trying to record the last send's outcome for a
        while (we still hold the lock), so that a send that did go out is not left ``unknown``."""
        outcome, batch.unwritten = batch.unwritten, None
        if outcome is None:
            return
        deadline = self.clock.monotonic() + self.settings.lease_ttl / 2
        while self.clock.monotonic() < deadline and not batch.held.lost.is_set():
            with contextlib.suppress(*DB_ERRORS):
                await unit.reset()
            try:
                await unit.write_outcome(outcome)
                return
            except DB_ERRORS:
                await self.clock.sleep(0.2)
        log.warning("user %s round %s: outcome of attempt %s not recorded; it will be unknown",
                    batch.ctx.user_id, batch.ctx.round_id, outcome.attempt_id)

    async def _group_hinted(self, batch: _Batch, cand: Candidate, hint: float, unit: RoundUnit) -> None:
        """A group with a slow-mode/flood hint: put off within the inline limit, else skip it."""
        if hint <= self.settings.flood_inline_max:
            batch.deferred_until = max(batch.deferred_until, hint)
            await unit.defer(cand.attempt_id, hint)
            return
        if batch.unwritten is not None:
            await unit.write_outcome(batch.unwritten)
            batch.unwritten = None
        if await unit.skip(cand.attempt_id, "SLOWMODE_WAIT", f"slow mode for {int(hint)}s"):
            SENDS.labels("skipped").inc()

    async def _take_turn(self, batch: _Batch, unit: RoundUnit) -> bool:
        """Wait for the account's turn and reserve the send with the limiter (caps, breaks, gaps).

        False: no send in this job (a cap or a break, a wait longer than an inline one, or the
        worker stops); the continuation then waits ``pacing.account_wait``, the lock released.
        """
        while True:
            wait = self.pacing.account_wait(batch.pace)
            if wait > self.max_inline_wait:
                return False
            if wait > SHORT_WAIT and not await self._pause(batch, wait, unit):
                return False
            verdict = await self.pacing.reserve(batch.pace, _account_key(batch.ctx), batch.ctx.user_id)
            if verdict.reserved:
                return True
            if verdict.yields:  # a cap or a break: re-queued with the wait, the lock released
                return False

    async def _pause(self, batch: _Batch, wait: float, unit: RoundUnit) -> bool:
        """Wait for the account's gap with the outcome written and the connection given back.

        False when the worker is stopping or the lock was lost meanwhile (no further send).
        """
        if batch.unwritten is not None:
            await unit.write_outcome(batch.unwritten)
            batch.unwritten = None
        await unit.release()
        waiters = [asyncio.ensure_future(self.stopping.wait()), asyncio.ensure_future(batch.held.lost.wait()),
                   asyncio.ensure_future(self.clock.sleep(wait))]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return not (self.stopping.is_set() or batch.held.lost.is_set())

    def _window_closed(self, batch: _Batch) -> bool:
        """Whether the schedule window is closed now (the database's now at the batch start plus
        the engine clock's time since); if so, the wait until it opens is kept on the batch."""
        ctx = batch.ctx
        if ctx.window is None:
            return False
        now = ctx.now + timedelta(seconds=self.clock.monotonic() - batch.opened)
        wait = schedule.seconds_until_open(ctx.window, ctx.timezone, now)
        if wait <= 0:
            return False
        log.info("user %s round %s: the schedule window closed; the rest waits %.0fs", ctx.user_id,
                 ctx.round_id, wait)
        batch.window_wait = wait
        return True

    def _wait_floor(self, batch: _Batch) -> float:
        """The continuation's delay before the round's waiting attempts and the jitter count (the
        schedule window's wait when it closed during the batch)."""
        wait = self.pacing.account_wait(batch.pace)
        if batch.sends == 0 and batch.deferred_until:
            wait = max(wait, batch.deferred_until)
        if batch.window_wait is not None:
            wait = max(wait, batch.window_wait)
        return wait

    def _continuation_delay(self, batch: _Batch, remaining: Remaining, jitter: float) -> float:
        # the same figures ``settle`` wrote as the round's next job time
        wait = self._wait_floor(batch)
        if remaining.ready == 0 and remaining.earliest is not None:
            wait = max(wait, (remaining.earliest - remaining.now).total_seconds())
        return wait + jitter

    def _busy_delay(self) -> float:
        base = max(0.05, min(1.0, self.settings.gap_min / 2))
        return base + self.rng.uniform(0.0, base)

    def _pause_poll(self) -> float:
        return max(1.0, self.settings.tick * 5)


async def _media(unit: RoundUnit, media_id: int) -> Media | None:
    stored = await unit.media(media_id)
    # the media table's CHECK keeps ``kind`` to the gateway's MediaKind values
    return None if stored is None else Media(
        kind=cast(MediaKind, stored.kind), data=stored.data, filename=stored.filename,
        mime_type=stored.mime_type, width=stored.width, height=stored.height,
        duration=stored.duration, thumb=stored.thumb, key=stored.sha256)


async def _load_message(unit: RoundUnit, message_id: int) -> OutgoingMessage:
    """U9: a message by id: text, one media or an album (the caption on its first item)."""
    stored = await unit.message(message_id)
    if stored is None:  # messages are never deleted (a delete deactivates): not expected
        raise LookupError(f"message {message_id} not found")
    items = [m for m in [await _media(unit, media_id) for media_id in stored.media_ids] if m is not None]
    if len(stored.media_ids) > 1:
        return OutgoingMessage(text=stored.text, entities=stored.entities, album=tuple(items))
    return OutgoingMessage(text=stored.text, entities=stored.entities, media=items[0] if items else None)


def _outcome(cand: Candidate, decision: rules.Decision) -> Outcome:
    return Outcome(cand.attempt_id, decision.status, decision.code, decision.detail,
                   retry_in=decision.retry_in, flood=decision.status == "flood_wait")


def _account_key(ctx: RoundContext) -> int:
    """Whose pacing, limits and lock these are: the Telegram account's user id (a row not yet
    linked to one falls back to its negated row id, which no Telegram id can equal)."""
    return ctx.tg_user_id if ctx.tg_user_id is not None else -(ctx.account_id or 0)


def _label(status: str) -> str:
    return "retry" if status == "pending" else status


def _kind(kind: str) -> Any:
    return kind if kind in ("group", "supergroup", "channel") else "group"


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
