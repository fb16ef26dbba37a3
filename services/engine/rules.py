"""Rules of the broadcast engine (engine.md), as pure functions: no I/O, no clock of their own.

The scheduler and the round engine (``scheduler/``, ``services.engine.rounds``) do the I/O;
what to do with a due time, a gap, a retry or an error from Telegram is decided here, so each
rule is testable on its own and the error table of engine.md lives in one function (``decide``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from config.settings import EngineSettings
from domain.errors import (
    AccountThrottled,
    ClientError,
    FloodWait,
    GatewayError,
    GroupClosed,
    GroupMigrated,
    MaybeSent,
    MessageRejected,
    SessionDead,
    TransientError,
)
from domain.models import UnknownHistory as UnknownHistory  # re-exported: judge_unknown reads it

ROUNDS_QUEUE = "rounds"  # name of the job queue that carries round jobs
JOB_PREFIX = "round:"

# notification kinds the engine queues (rendered by the bot, see services/notifications.py)
ROUND_SUMMARY = "round_summary"
SESSION_ENDED = "session_ended"
GROUP_DISABLED = "group_disabled"
FLOOD_PAUSE = "flood_pause"
MESSAGE_REJECTED = "message_rejected"
ACCOUNT_RESTRICTED = "account_restricted"
BROADCAST_HALTED = "broadcast_halted"

AttemptStatus = Literal["pending", "sending", "sent", "failed", "skipped", "flood_wait", "unknown"]
FINAL_STATUSES: frozenset[str] = frozenset({"sent", "failed", "skipped", "unknown"})
OPEN_STATUSES: frozenset[str] = frozenset({"pending", "sending", "flood_wait"})

# A job waits for the account's gap inline up to gap_max x WIDEN_FACTOR; a longer (widened) gap sends
# it back to the queue. How gaps widen after a flood wait is domain/limits.py's rule.
WIDEN_FACTOR = 2.0


def job_id(round_id: int) -> str:
    """The dedupe id of a round's job (continuations reuse it)."""
    return f"{JOB_PREFIX}{round_id}"


def job_payload(round_id: int, user_id: int, tg_user_id: int | None = None, *,
                account_id: int | None = None) -> dict[str, int]:
    """A round job's payload. ``account_id`` (the round's account row) keys the broadcast's lock
    (U8); without it the worker reads it from the round before locking. With the Telegram account's
    id the worker takes both leases and reads the account's pacing in one round trip (the engine
    checks both against the round)."""
    payload = {"round_id": round_id, "user_id": user_id}
    if account_id is not None:
        payload["account_id"] = account_id
    if tg_user_id is not None:
        payload["tg_user_id"] = tg_user_id
    return payload


def round_id_of(job: str) -> int | None:
    if not job.startswith(JOB_PREFIX):
        return None
    try:
        return int(job[len(JOB_PREFIX):])
    except ValueError:
        return None


def next_run_after(planned: datetime, interval_seconds: int, now: datetime) -> datetime:
    """The next due time after a round planned at ``planned``: no drift, missed rounds skipped.

    ``planned + interval`` when that is still in the future; otherwise the first multiple of the
    interval after ``now`` (a late round is never followed by a burst of catch-up rounds).
    """
    step = timedelta(seconds=interval_seconds)
    following = planned + step
    if following > now:
        return following
    missed = (now - planned) // step
    return planned + step * (missed + 1)


def jitter(settings: EngineSettings, rng: random.Random) -> float:
    """Extra delay added to continuations so jobs of many users don't line up."""
    spread = min(1.0, (settings.gap_max - settings.gap_min) / 4 + settings.gap_min / 4)
    return rng.uniform(0.0, max(0.0, spread))


def retry_delay(tries: int, settings: EngineSettings) -> float:
    """Exponential backoff for transient errors: retry_base doubling per try, capped at retry_max."""
    return float(min(settings.retry_max, settings.retry_base * 2 ** max(0, tries - 1)))


@dataclass(frozen=True)
class Decision:
    """What one failed send leads to (engine.md's error table, one row)."""

    status: AttemptStatus  # new status of the attempt
    code: str
    detail: str
    outcome: str  # SENDS metric label
    retry_in: float | None = None  # attempt may be tried again after this many seconds
    account_wait: float = 0.0  # nothing from this account before this many seconds
    group_wait: float = 0.0  # nothing to this group before this many seconds
    widen_gap: bool = False
    pause_for: float | None = None  # campaign paused this many seconds; the round ends here
    stop_campaign: bool = False  # account dead: disconnect it, stop the campaign, end the round
    disable_group: bool = False
    notify: str | None = None
    end_batch: bool = False  # no further send in this job
    flood_kind: str | None = None  # FLOOD_WAITS metric label
    unknown: bool = False  # an error no table knows: judged by its history (``judge_unknown``)
    halt: bool = False  # stop the broadcast (the account stays connected), end the round, tell the user
    group_blame: bool = True  # an unknown error that may be the group's (not our client's own)

    @property
    def ends_round(self) -> bool:
        return self.pause_for is not None or self.stop_campaign or self.halt

    @property
    def has_side_effects(self) -> bool:
        return self.ends_round or self.disable_group or self.notify is not None


# MTProto's -404: the server doesn't know the account's auth key (Telethon's AuthKeyNotFound)
KEY_NOT_FOUND = "AUTH_KEY_NOT_FOUND"


def _session_dead(code: str, detail: str) -> Decision:
    return Decision("failed", code, detail, "session_dead", stop_campaign=True, notify=SESSION_ENDED,
                    end_batch=True)


def decide(error: GatewayError, tries: int, settings: EngineSettings) -> Decision:
    """Map a domain error from the gateway to what happens, as engine.md's table says.

    ``tries`` counts sends of this attempt including the one that failed. ``GroupMigrated`` is
    not decided here: the engine re-targets the attempt and sends again.
    """
    code, detail = error.code, error.detail
    if isinstance(error, FloodWait):
        seconds = float(error.seconds)
        if error.is_slow_mode:
            # slow mode limits one group, not the account: other groups go on
            if seconds <= settings.flood_inline_max:
                return Decision("flood_wait", code, detail, "flood_wait", retry_in=seconds,
                                group_wait=seconds, flood_kind="slow_mode")
            return Decision("skipped", code, detail, "skipped", group_wait=seconds, flood_kind="slow_mode")
        if seconds <= settings.flood_inline_max:
            return Decision("flood_wait", code, detail, "flood_wait", retry_in=seconds, account_wait=seconds,
                            widen_gap=True, end_batch=True, flood_kind="flood_wait")
        return Decision("skipped", code, detail, "flood_wait", account_wait=seconds, widen_gap=True,
                        pause_for=seconds, notify=FLOOD_PAUSE, end_batch=True, flood_kind="flood_wait_long")
    if isinstance(error, AccountThrottled):
        # the whole account is limited: pause it, never disable a group for it; tell the user once
        # per restriction and where Telegram explains it (@SpamBot)
        pause = float(settings.peer_flood_pause)
        notify = ACCOUNT_RESTRICTED if error.spambot and code != "PEER_FLOOD" else FLOOD_PAUSE
        return Decision("skipped", code, detail, "peer_flood", account_wait=pause, pause_for=pause,
                        notify=notify, end_batch=True, flood_kind="peer_flood")
    if isinstance(error, GroupClosed):
        return Decision("failed", code, detail, "group_closed", disable_group=True, notify=GROUP_DISABLED)
    if isinstance(error, SessionDead):
        return _session_dead(code, detail)
    if isinstance(error, TransientError):
        if tries < settings.retry_tries:
            return Decision("pending", code, detail, "retry", retry_in=retry_delay(tries, settings))
        if code == KEY_NOT_FOUND:
            # the server may forget an auth key for a while, so this was retried like any outage; still
            # unknown after every backoff, the session is gone and the user must connect again
            return _session_dead(code, detail)
        return Decision("failed", code, detail, "failed")
    if isinstance(error, MessageRejected):
        return Decision("failed", code, detail, "rejected", notify=MESSAGE_REJECTED)
    if isinstance(error, GroupMigrated):
        # a second migration in a row for the same attempt: give up on this group for the round
        return Decision("failed", code, detail, "failed")
    if isinstance(error, MaybeSent):
        # the same request already reached Telegram: it may be posted, so never send it again
        return Decision("unknown", code, detail, "unknown")
    if isinstance(error, ClientError):
        # our client's request was refused: not this group's fault, so no group is ever disabled
        # for it; if every group of a round meets it, the broadcast stops (``judge_unknown``)
        return Decision("failed", code, detail, "failed", unknown=True, group_blame=False)
    # a name no table knows: decided by where it happens (``judge_unknown``)
    return Decision("failed", code, detail, "failed", unknown=True)


def judge_unknown(decision: Decision, history: UnknownHistory) -> Decision:
    """The safe default for an error nobody listed (docs/telegram-errors.md, "Unknown errors").

    - every attempt of the round failed with it -> the broadcast stops and the user is told;
    - the same group failed with it in the previous round too, while other groups of the account
      were sent -> that group is disabled with the name as its reason (never for our client's own
      errors, ``Decision.group_blame``);
    - otherwise the attempt just fails; nothing is retried within the round.
    """
    if not decision.unknown:
        return decision
    base = Decision(decision.status, decision.code, decision.detail, decision.outcome)
    if history.others_not_failed_alike == 0 and history.sent_this_round == 0:
        return Decision("failed", decision.code, decision.detail, "failed", halt=True,
                        notify=BROADCAST_HALTED, end_batch=True)
    others_fine = history.sent_this_round > 0 or history.sent_last_round > 0
    if decision.group_blame and history.group_failed_alike_last_round and others_fine:
        return Decision("failed", decision.code, decision.detail, "group_closed", disable_group=True,
                        notify=GROUP_DISABLED)
    return base
