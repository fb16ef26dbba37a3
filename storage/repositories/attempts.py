"""SQL for attempts: the durable state machine behind "at most one send per (round, group)".

``pending | flood_wait -> sending`` is a conditional UPDATE committed before the send: only the
caller whose UPDATE returned the row may send, and a row left in ``sending`` by a crash becomes
``unknown`` and is never sent again. The statements are shaped for the engine's budget of
about one statement per send: a job opens with one statement (context, crash recovery and the
batch), each send claims its attempt in the statement that also records the previous outcome,
and the last outcome is written together with the question "what is left in this round?".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from domain.models import UnknownHistory
from domain.schedule import Window, window_of
from storage.repositories.rounds import FinishedRound

FINAL = ("sent", "failed", "skipped", "unknown")


@dataclass(frozen=True)
class Candidate:
    """An attempt that may be sent now."""

    attempt_id: int
    group_id: int
    peer_id: int
    access_hash: int
    kind: str
    tries: int
    message_id: int | None = None  # U9: the message this attempt posts (None: the round's)


@dataclass(frozen=True)
class RoundContext:
    """Everything a job needs, read in its first statement."""

    round_id: int
    user_id: int
    message_id: int
    planned_at: datetime
    started_at: datetime | None
    finished: bool
    blocker: str | None  # why the round may not send now (``campaign_blocker``), None: it may
    account_id: int | None
    tg_user_id: int | None  # the account's Telegram user id: account safety is keyed by it
    account_status: str | None
    session_enc: bytes | None
    text: str
    entities: list[dict[str, Any]]
    media_id: int | None
    lost: int  # attempts found in ``sending`` and turned ``unknown``
    account_hint: datetime | None  # end of the latest account-wide flood wait of this round
    now: datetime
    candidates: list[Candidate]
    album_items: int = 0  # U9.3: the round's message is an album of this many items
    window: Window | None = None  # U10.5: no send starts outside it (read on ``timezone``'s clock)
    timezone: str = "UTC"


@dataclass(frozen=True)
class StoredMessage:
    """U9: a message an attempt posts, when it is not the round's: caption/text and media ids
    (one, or an album's items in order)."""

    message_id: int
    text: str
    entities: list[dict[str, Any]]
    media_ids: list[int]


@dataclass(frozen=True)
class Outcome:
    """The result of one send, written where the attempt is still ``sending``."""

    attempt_id: int
    status: str  # sent | failed | skipped | unknown | pending (retry) | flood_wait
    code: str = ""
    detail: str = ""
    sent_message_id: int | None = None
    retry_in: float | None = None  # not_before = now + retry_in
    flood: bool = False  # retry_in is a flood hint (also kept in retry_after)

    @property
    def is_open(self) -> bool:
        return self.status not in FINAL


@dataclass(frozen=True)
class Claimed:
    attempt_id: int
    peer_id: int
    access_hash: int
    kind: str
    tries: int
    topic_id: int | None = None  # a forum's chosen topic (U11); None: General or not a forum
    # this claim started the round (its first): how long after the planned time; None: started before
    started_lag: timedelta | None = None


@dataclass(frozen=True)
class Remaining:
    """Open attempts of a round: how many, how many may go now, when the next waiting one may."""

    open: int
    ready: int
    earliest: datetime | None
    now: datetime


_START = """
WITH lost AS (
    UPDATE attempts
    SET status = 'unknown', error_code = 'INTERRUPTED',
        error_detail = 'the worker stopped during the send', finished_at = now(), updated_at = now()
    WHERE attempt_id IN (SELECT attempt_id FROM attempts WHERE round_id = $1 AND status = 'sending'
                         ORDER BY attempt_id FOR UPDATE)
      AND (status = 'sending') IS TRUE
      AND EXISTS (SELECT 1 FROM rounds WHERE round_id = $1 AND user_id = $3
                  AND account_id IS NOT DISTINCT FROM $4::bigint)
    RETURNING attempt_id
), ctx AS (
    SELECT r.round_id, r.user_id, r.message_id, r.planned_at,
           coalesce(r.started_at, now()) AS started_at,
           r.finished_at IS NOT NULL AS finished,
           campaign_blocker(c.status, c.started_at, c.paused_until, r.planned_at) AS blocker,
           a.account_id, a.tg_user_id, a.status AS account_status, a.session_enc,
           m.text, m.entities, m.media_id,
           (SELECT count(*) FROM message_media mm WHERE mm.message_id = m.message_id)::int AS album_items,
           (SELECT count(*) FROM lost)::int AS lost,
           (SELECT max(f.not_before) FROM attempts f
            WHERE f.round_id = $1 AND f.status = 'flood_wait' AND f.error_code = 'FLOOD_WAIT')
               AS account_hint,
           now() AS now,
           c.window_start, c.window_end, c.window_days,
           (SELECT u.timezone FROM users u WHERE u.user_id = r.user_id) AS timezone
    FROM rounds r
    JOIN campaigns c ON c.user_id = r.user_id AND c.account_id IS NOT DISTINCT FROM r.account_id
    JOIN messages m ON m.message_id = r.message_id
    LEFT JOIN accounts a ON a.account_id = r.account_id
    WHERE r.round_id = $1
)
SELECT ctx.*, t.attempt_id, t.group_id, t.peer_id, t.access_hash, t.kind, t.tries, t.attempt_message_id
FROM ctx
LEFT JOIN LATERAL (
    SELECT t.attempt_id, t.group_id, t.peer_id, t.access_hash, t.kind, t.tries,
           t.message_id AS attempt_message_id
    FROM attempts t
    WHERE t.round_id = ctx.round_id AND ctx.user_id = $3 AND ctx.account_id IS NOT DISTINCT FROM $4::bigint
      AND t.status IN ('pending', 'flood_wait')
      AND (t.not_before IS NULL OR t.not_before <= now())
    ORDER BY t.attempt_id
    LIMIT $2
) t ON NOT ctx.finished
ORDER BY t.attempt_id
"""

def _outcome_sql(n: int) -> str:
    """The outcome CTE ``done``; its seven parameters start at ``$n`` (see ``_outcome_args``)."""
    a = [f"${n + i}" for i in range(7)]
    return f"""
done AS (
    UPDATE attempts
    SET status = {a[1]}::text,
        error_code = CASE WHEN {a[2]}::text = '' THEN error_code ELSE {a[2]}::text END,
        error_detail = CASE WHEN {a[2]}::text = '' THEN error_detail ELSE {a[3]}::text END,
        sent_message_id = coalesce({a[4]}::bigint, sent_message_id),
        not_before = CASE WHEN {a[5]}::float8 IS NULL THEN NULL
                          ELSE now() + make_interval(secs => {a[5]}::float8) END,
        retry_after = CASE WHEN {a[6]}::bool THEN now() + make_interval(secs => {a[5]}::float8)
                           ELSE retry_after END,
        finished_at = CASE WHEN {a[1]}::text IN ('sent', 'failed', 'skipped', 'unknown') THEN now() END,
        updated_at = now()
    WHERE attempt_id = {a[0]}::bigint AND (status = 'sending') IS TRUE
    RETURNING attempt_id, status, not_before
)"""


# The claim re-checks, in the same statement, everything engine.md lists "before each send":
# campaign running and not paused, no global pause (``campaign_blocker``), attempt still pending,
# round open with the message version this job loaded.
#
# Rounds are reached by their key, and "open" is written ``(finished_at IS NULL) IS TRUE`` (the same
# truth value): the planner cannot match that to the partial indexes on open rounds, so it uses the
# primary key whatever its statistics. With a plain ``finished_at IS NULL`` it picked
# ``rounds_open_idx`` (every open round, filtered) whenever the statistics said few rounds were
# open, and did once history made ``rounds`` big (issue 14: throughput halved);
# tests/integration/test_engine_history.py checks the generic plans.
_CLAIM = "WITH " + _outcome_sql(2) + """, claim AS (
    UPDATE attempts t
    SET status = 'sending', tries = t.tries + 1, sending_at = now(), updated_at = now()
    FROM rounds r, campaigns c
    WHERE t.attempt_id = $1 AND t.round_id = $10 AND t.status IN ('pending', 'flood_wait')
      AND (t.not_before IS NULL OR t.not_before <= now())
      AND r.round_id = $10 AND (r.finished_at IS NULL) IS TRUE AND r.message_id = $9
      AND c.user_id = r.user_id AND c.account_id IS NOT DISTINCT FROM r.account_id
      AND campaign_blocker(c.status, c.started_at, c.paused_until, r.planned_at) IS NULL
    RETURNING t.attempt_id, t.peer_id, t.access_hash, t.kind, t.tries,
              (SELECT g.topic_id FROM groups g WHERE g.group_id = t.group_id AND g.is_forum) AS topic_id
), started AS (
    -- the round's first claim marks it started: the opening statement writes nothing when no send
    -- was interrupted, so it commits without a WAL flush (issue 14: -12-15 % of PostgreSQL's CPU per
    -- send at 1 group)
    UPDATE rounds SET started_at = now()
    WHERE round_id = $10 AND started_at IS NULL AND (finished_at IS NULL) IS TRUE
      AND EXISTS (SELECT 1 FROM claim)
    RETURNING started_at - planned_at AS lag
)
SELECT (SELECT count(*) FROM done)::int AS written, (SELECT lag FROM started) AS started_lag, claim.*
FROM (SELECT 1) AS one LEFT JOIN claim ON true
"""

# The job's last statement: the last outcome, what is left, and then either the round's end (when
# nothing is left and the job may finish it: counters, ``campaigns.last_round_id`` and the summary
# notification, as ``rounds.finish_round`` and ``notifications.enqueue`` write them) or when its next
# job is due (``rounds.next_job_at``, read by reconciliation): one round trip instead of four.
# Every CTE sees the snapshot before ``done``: the outcome written is counted from its RETURNING.
_SETTLE = "WITH " + _outcome_sql(2) + """, open_left AS (
    SELECT t.not_before FROM attempts t
    WHERE t.round_id = $1 AND t.status IN ('pending', 'sending', 'flood_wait')
      AND t.attempt_id NOT IN (SELECT attempt_id FROM done)
    UNION ALL
    SELECT not_before FROM done WHERE status IN ('pending', 'sending', 'flood_wait')
), left_now AS (
    SELECT count(*)::int AS open,
           count(*) FILTER (WHERE not_before IS NULL OR not_before <= now())::int AS ready,
           min(not_before) FILTER (WHERE not_before > now()) AS earliest,
           now() AS now
    FROM open_left
), fin AS (
    UPDATE rounds r
    SET finished_at = now(), status = 'done', started_at = coalesce(r.started_at, now()),
        (sent, failed, skipped, unknown) = (
            SELECT count(*) FILTER (WHERE s.status = 'sent')::int,
                   count(*) FILTER (WHERE s.status = 'failed')::int,
                   count(*) FILTER (WHERE s.status = 'skipped')::int,
                   count(*) FILTER (WHERE s.status = 'unknown')::int
            FROM (SELECT a.status FROM attempts a
                  WHERE a.round_id = $1 AND a.attempt_id NOT IN (SELECT attempt_id FROM done)
                  UNION ALL SELECT status FROM done) s)
    FROM left_now
    WHERE r.round_id = $1 AND (r.finished_at IS NULL) IS TRUE AND left_now.open = 0 AND $9::bool
    RETURNING r.round_id, r.user_id, r.account_id, r.status, r.total, r.sent, r.failed, r.skipped,
              r.unknown, r.planned_at, r.started_at, r.finished_at
), camp AS (
    UPDATE campaigns c SET last_round_id = fin.round_id, updated_at = now()
    FROM fin WHERE c.user_id = fin.user_id AND c.account_id IS NOT DISTINCT FROM fin.account_id
), note AS (
    INSERT INTO notifications (user_id, kind, payload, dedupe_key, created_at)
    SELECT u.user_id, 'round_summary',
           jsonb_build_object('round_id', fin.round_id, 'total', fin.total, 'sent', fin.sent,
                              'failed', fin.failed, 'skipped', fin.skipped, 'unknown', fin.unknown,
                              'account_id', fin.account_id)
               || $10::jsonb,
           'round_summary:' || fin.round_id, now()
    FROM fin JOIN users u ON u.user_id = fin.user_id
    WHERE u.notify_rounds
    ON CONFLICT (dedupe_key) DO NOTHING
), next_job AS (
    UPDATE rounds r
    SET next_job_at = now() + make_interval(secs => greatest($11::float8, CASE
            WHEN left_now.ready = 0 AND left_now.earliest IS NOT NULL
            THEN extract(epoch FROM left_now.earliest - now())::float8 ELSE 0 END) + $12::float8)
    FROM left_now
    WHERE r.round_id = $1 AND (r.finished_at IS NULL) IS TRUE AND left_now.open > 0 AND $9::bool
)
SELECT (SELECT count(*) FROM done)::int AS written, left_now.*, fin.*
FROM left_now LEFT JOIN fin ON true
"""

_WRITE = "WITH " + _outcome_sql(1) + " SELECT count(*)::int AS written FROM done"


def _outcome_args(outcome: Outcome | None) -> list[Any]:
    if outcome is None:
        return [0, "sent", "", "", None, None, False]
    return [outcome.attempt_id, outcome.status, outcome.code, outcome.detail[:500], outcome.sent_message_id,
            outcome.retry_in, outcome.flood]


async def start_batch(
    conn: asyncpg.Connection, round_id: int, user_id: int, account_id: int | None, limit: int
) -> RoundContext | None:
    """Open a job: recover interrupted sends, read context and batch (the round's first claim marks
    it started, so that this statement writes nothing when no send was interrupted).

    Must run while holding the broadcast lock of ``(user_id, account_id)`` (U8: keyed by the round's
    account row): any attempt still in ``sending`` then belongs to a holder that is gone, so it
    becomes ``unknown`` (never sent again). When the round is not that broadcast's (a wrong job
    payload), nothing is changed and the context has no candidates: the caller compares ``user_id``
    and ``account_id``. None: no such round.
    """
    rows = await conn.fetch(_START, round_id, limit, user_id, account_id)
    if not rows:
        return None
    head = rows[0]
    candidates = [
        Candidate(r["attempt_id"], r["group_id"], r["peer_id"], r["access_hash"], r["kind"], r["tries"],
                  r["attempt_message_id"])
        for r in rows if r["attempt_id"] is not None
    ]
    entities = head["entities"]
    return RoundContext(
        round_id=head["round_id"], user_id=head["user_id"], message_id=head["message_id"],
        planned_at=head["planned_at"], started_at=head["started_at"],
        finished=head["finished"], blocker=head["blocker"], account_id=head["account_id"],
        tg_user_id=head["tg_user_id"],
        account_status=head["account_status"],
        session_enc=bytes(head["session_enc"]) if head["session_enc"] is not None else None,
        text=head["text"], entities=list(entities) if isinstance(entities, list) else [],
        media_id=head["media_id"], lost=head["lost"], account_hint=head["account_hint"], now=head["now"],
        candidates=candidates, album_items=head["album_items"],
        window=window_of(head["window_start"], head["window_end"], head["window_days"]),
        timezone=head["timezone"] or "UTC",
    )


async def stored_message(conn: asyncpg.Connection, message_id: int) -> StoredMessage | None:
    """U9: the text and media of a message an attempt posts (an album's items in order)."""
    row = await conn.fetchrow(
        """SELECT m.message_id, m.text, m.entities, m.media_id,
                  array(SELECT mm.media_id FROM message_media mm WHERE mm.message_id = m.message_id
                        ORDER BY mm.position) AS album
           FROM messages m WHERE m.message_id = $1""",
        message_id,
    )
    if row is None:
        return None
    album = [int(x) for x in row["album"] or []]
    media_ids = album or ([int(row["media_id"])] if row["media_id"] is not None else [])
    entities = row["entities"]
    return StoredMessage(row["message_id"], row["text"], list(entities) if isinstance(entities, list) else [],
                         media_ids)


async def claim(
    conn: asyncpg.Connection, round_id: int, attempt_id: int, message_id: int, previous: Outcome | None = None
) -> tuple[Claimed | None, bool]:
    """Write ``previous`` (if any) and move ``attempt_id`` to ``sending`` if every check passes.

    Returns the claimed attempt (None: not claimable now) and whether ``previous`` was written.
    """
    row = await conn.fetchrow(_CLAIM, attempt_id, *_outcome_args(previous), message_id, round_id)
    assert row is not None
    claimed = None
    if row["attempt_id"] is not None:
        claimed = Claimed(row["attempt_id"], row["peer_id"], row["access_hash"], row["kind"], row["tries"],
                          row["topic_id"], row["started_lag"])
    return claimed, bool(row["written"])


async def write_outcome(conn: asyncpg.Connection, outcome: Outcome) -> bool:
    """Record the result of a send; False if the attempt was no longer ``sending``."""
    row = await conn.fetchrow(_WRITE, *_outcome_args(outcome))
    return bool(row and row["written"])


@dataclass(frozen=True)
class Settled:
    """What a job's last statement found: what is left, and the round if it finished it."""

    remaining: Remaining
    finished: FinishedRound | None


async def settle(
    conn: asyncpg.Connection, round_id: int, last: Outcome | None, *, finish: bool,
    summary_extra: dict[str, Any], wait_floor: float, jitter: float,
) -> Settled:
    """Write the job's last outcome (if any) and count what is left in the round; with ``finish``,
    a round with nothing left is finished here (counters, ``last_round_id``, the summary
    notification with ``summary_extra`` merged in), and one with something left gets its next
    job's due time: ``max(wait_floor, earliest waiting attempt if none is ready) + jitter`` from now
    (the continuation delay ``RoundEngine`` computes from the same figures)."""
    row = await conn.fetchrow(_SETTLE, round_id, *_outcome_args(last), finish, summary_extra,
                              float(wait_floor), float(jitter))
    assert row is not None
    remaining = Remaining(row["open"], row["ready"], row["earliest"], row["now"])
    finished = None
    if row["round_id"] is not None:
        finished = FinishedRound(
            round_id=row["round_id"], user_id=row["user_id"], status=row["status"], total=row["total"],
            sent=row["sent"], failed=row["failed"], skipped=row["skipped"], unknown=row["unknown"],
            planned_at=row["planned_at"], started_at=row["started_at"], finished_at=row["finished_at"],
        )
    return Settled(remaining, finished)


async def claim_blocker(conn: asyncpg.Connection, attempt_id: int) -> str:
    """Why ``claim`` returned nothing: ``finished`` (round closed), a ``campaign_blocker`` reason, or
    ``taken`` (the attempt itself was not claimable: another holder, or not due yet)."""
    row = await conn.fetchrow(
        """
        SELECT r.finished_at IS NOT NULL AS finished,
               campaign_blocker(c.status, c.started_at, c.paused_until, r.planned_at) AS blocker
        FROM attempts t JOIN rounds r USING (round_id)
        JOIN campaigns c ON c.user_id = r.user_id AND c.account_id IS NOT DISTINCT FROM r.account_id
        WHERE t.attempt_id = $1
        """,
        attempt_id,
    )
    if row is None or row["finished"]:
        return "finished"
    return str(row["blocker"] or "taken")


async def skip_open(conn: asyncpg.Connection, round_id: int, code: str, detail: str) -> int:
    """End the round early: every attempt not yet sent becomes ``skipped`` with the reason."""
    result = await conn.execute(
        """
        UPDATE attempts
        SET status = 'skipped', error_code = $2, error_detail = $3, finished_at = now(), updated_at = now()
        WHERE round_id = $1 AND status IN ('pending', 'flood_wait')
        """,
        round_id,
        code,
        detail[:500],
    )
    return int(result.split()[-1])


async def mark_skipped(conn: asyncpg.Connection, attempt_id: int, code: str, detail: str) -> bool:
    """Skip one attempt that was never claimed (e.g. its group is in a long slow mode)."""
    result = await conn.execute(
        """
        UPDATE attempts
        SET status = 'skipped', error_code = $2, error_detail = $3, finished_at = now(), updated_at = now()
        WHERE attempt_id = $1 AND status IN ('pending', 'flood_wait')
        """,
        attempt_id,
        code,
        detail[:500],
    )
    return bool(result.endswith(" 1"))


async def defer(conn: asyncpg.Connection, attempt_id: int, seconds: float) -> None:
    """Put off a pending attempt (its group has a slow-mode hint) so the round's count knows when."""
    await conn.execute(
        """
        UPDATE attempts SET not_before = now() + make_interval(secs => $2), updated_at = now()
        WHERE attempt_id = $1 AND status IN ('pending', 'flood_wait')
        """,
        attempt_id,
        float(seconds),
    )


async def in_round(conn: asyncpg.Connection, round_id: int, group_id: int) -> bool:
    """Whether the round has an attempt for the group."""
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM attempts WHERE round_id = $1 AND group_id = $2)", round_id, group_id))


async def retarget(conn: asyncpg.Connection, attempt_id: int, peer_id: int, access_hash: int) -> None:
    """Point the attempt at the supergroup its group became (``groups.migrate``)."""
    await conn.execute(
        "UPDATE attempts SET peer_id = $2, access_hash = $3, kind = 'supergroup', updated_at = now() "
        "WHERE attempt_id = $1",
        attempt_id, peer_id, access_hash,
    )


# an error no table knows: this round's and the previous round's attempts around it
# (``services.engine.judge_unknown`` decides from them)
async def unknown_error_history(
    conn: asyncpg.Connection, round_id: int, user_id: int, group_id: int, attempt_id: int, code: str
) -> UnknownHistory:
    row = await conn.fetchrow(
        """
        WITH this AS (
            SELECT count(*) FILTER (WHERE status = 'sent')::int AS sent,
                   count(*) FILTER (WHERE attempt_id <> $4
                                    AND NOT (status = 'failed' AND error_code = $5))::int AS others
            FROM attempts WHERE round_id = $1
        ), previous AS (
            SELECT p.round_id FROM rounds p
            WHERE p.user_id = $2 AND round_id < $1 AND finished_at IS NOT NULL
              AND p.account_id IS NOT DISTINCT FROM (SELECT o.account_id FROM rounds o WHERE o.round_id = $1)
            ORDER BY round_id DESC LIMIT 1
        ), before AS (
            SELECT coalesce(bool_or(group_id = $3 AND status = 'failed' AND error_code = $5), false) AS alike,
                   count(*) FILTER (WHERE status = 'sent')::int AS sent
            FROM attempts WHERE round_id = (SELECT round_id FROM previous)
        )
        SELECT this.sent, this.others, before.alike, before.sent AS sent_before FROM this, before
        """,
        round_id, user_id, group_id, attempt_id, code,
    )
    assert row is not None
    return UnknownHistory(
        sent_this_round=row["sent"],
        others_not_failed_alike=row["others"],
        group_failed_alike_last_round=row["alike"],
        sent_last_round=row["sent_before"],
    )
