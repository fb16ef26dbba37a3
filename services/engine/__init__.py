"""The broadcast engine as a service (engine.md).

``rules`` holds the pure decisions (due times, gaps, backoff, the error table); ``rounds`` runs one
round job over the ports of ``ports`` and returns one ``JobOutcome`` (ack, requeue with a delay,
or dead) that the worker role applies to the queue. The rules are re-exported here, so callers
write ``engine.decide(...)`` and ``engine.ROUNDS_QUEUE``.
"""

from services.engine.outcome import JobOutcome, JobResult
from services.engine.rules import (
    ACCOUNT_RESTRICTED,
    BROADCAST_HALTED,
    FINAL_STATUSES,
    FLOOD_PAUSE,
    GROUP_DISABLED,
    JOB_PREFIX,
    KEY_NOT_FOUND,
    MESSAGE_REJECTED,
    OPEN_STATUSES,
    ROUND_SUMMARY,
    ROUNDS_QUEUE,
    SESSION_ENDED,
    WIDEN_FACTOR,
    AttemptStatus,
    Decision,
    UnknownHistory,
    decide,
    jitter,
    job_id,
    job_payload,
    judge_unknown,
    next_run_after,
    retry_delay,
    round_id_of,
)

__all__ = [
    "ACCOUNT_RESTRICTED", "BROADCAST_HALTED", "FINAL_STATUSES", "FLOOD_PAUSE", "GROUP_DISABLED", "JOB_PREFIX",
    "KEY_NOT_FOUND", "MESSAGE_REJECTED", "OPEN_STATUSES", "ROUNDS_QUEUE", "ROUND_SUMMARY", "SESSION_ENDED",
    "WIDEN_FACTOR", "AttemptStatus", "Decision", "JobOutcome", "JobResult",
    "UnknownHistory", "decide", "jitter", "job_id", "job_payload", "judge_unknown",
    "next_run_after", "retry_delay", "round_id_of",
]
