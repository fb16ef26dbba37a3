"""A compressed-time simulation of the storage under retention (issue 14), shared by the integration
test and ``bench/retention.py``.

Each simulated day writes one day of a small realistic workload with that day's timestamps: every
running user's rounds (one every ``24 h / rounds_per_day``) with an attempt per selected group and
mostly "sent" outcomes, a "round finished" notification per round (delivered seconds later), a
message edit every few days (every other one with a new photo), a few admin audit rows and, every
week, an admin announcement delivered to every user. Then the retention job runs with its clock set to the end of that day. One user stops broadcasting early, so
their last round ages out of the window: the status view must still show it.

Plain ``VACUUM`` after each day stands in for autovacuum, which at real speed runs many times a day
on these tables; without it, compressed time measures dead tuples nobody had the time to reclaim.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from config.settings import RetentionSettings
from domain.retention import RetentionReport
from services.retention import RetentionService
from storage.db import Database
from storage.repositories import retention as retention_repo

START = datetime(2026, 1, 1, tzinfo=UTC)
FIRST_USER = 7_000


@dataclass(frozen=True)
class Workload:
    users: int = 8
    groups: int = 5
    rounds_per_day: int = 12  # one round every 2 hours
    edit_every: int = 3  # days between two message edits of a user
    media_bytes: int = 8_192  # every other edit carries a photo of this size
    admin_actions_per_day: int = 3
    stop_after: int = 5  # the last user stops broadcasting after this day
    announce_every: int = 7  # days between two admin announcements to every user

    @property
    def user_ids(self) -> list[int]:
        return [FIRST_USER + i for i in range(self.users)]

    def active(self, day: int) -> list[int]:
        ids = self.user_ids
        return ids if day <= self.stop_after else ids[:-1]


@dataclass
class DayFigures:
    day: int
    sizes: dict[str, tuple[int, int]]  # table -> (rows, bytes)
    report: RetentionReport
    seconds: float  # the retention run alone (not the day's writes nor the VACUUM)


@dataclass
class Truth:
    """What was written, per user, counted as it was written (independent of retention)."""

    rounds: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    sent: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    failed: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    skipped: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    unknown: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    last_round: dict[int, int] = field(default_factory=dict)


async def seed(conn: asyncpg.Connection, w: Workload) -> None:
    ids = w.user_ids
    await conn.execute(
        """INSERT INTO users (user_id, first_name, access_status, created_at)
           SELECT u, 'U' || u, 'granted', $2 FROM unnest($1::bigint[]) u""", ids, START)
    await conn.execute(
        """INSERT INTO groups (user_id, peer_id, kind, title, selected, created_at)
           SELECT u, -1000000000000 - u * 100 - g, 'supergroup', 'Group ' || g, true, $3
           FROM unnest($1::bigint[]) u, generate_series(1, $2) g""", ids, w.groups, START)
    await conn.execute(
        """INSERT INTO campaigns (user_id, status, interval_seconds, next_run_at, started_at)
           SELECT u, 'running', $2, $3, $3 FROM unnest($1::bigint[]) u""",
        ids, 86_400 // w.rounds_per_day, START)
    for uid in ids:
        await _new_version(conn, uid, START, None)


async def _new_version(conn: asyncpg.Connection, user_id: int, at: datetime, media_id: int | None) -> None:
    await conn.execute(
        """INSERT INTO messages (user_id, version, text, entities, media_id, created_at)
           SELECT $1, coalesce(max(version), 0) + 1, 'Weekly offer ' || (coalesce(max(version), 0) + 1)
                  || repeat(' with details', 12), '[{"type": "bold", "offset": 0, "length": 6}]'::jsonb, $2, $3
           FROM messages WHERE user_id = $1""",
        user_id, media_id, at)


async def _new_media(conn: asyncpg.Connection, user_id: int, at: datetime, size: int) -> int:
    data = hashlib.sha256(f"{user_id}:{at.isoformat()}".encode()).digest() * (size // 32)
    return int(await conn.fetchval(
        """INSERT INTO media (sha256, kind, filename, mime_type, data, width, height, created_at)
           VALUES ($1, 'photo', '', 'image/jpeg', $2, 1280, 720, $3) RETURNING media_id""",
        hashlib.sha256(data).hexdigest(), data, at))


async def write_day(conn: asyncpg.Connection, w: Workload, day: int, truth: Truth) -> None:
    """One simulated day of the workload (``day`` 0 is START's day)."""
    base = START + timedelta(days=day)
    active = w.active(day)
    if day and day % w.edit_every == 0:
        for uid in active:
            media_id = (await _new_media(conn, uid, base, w.media_bytes)
                        if (day // w.edit_every) % 2 else None)
            await _new_version(conn, uid, base, media_id)
    step = timedelta(seconds=86_400 // w.rounds_per_day)
    rounds = await conn.fetch(
        """
        INSERT INTO rounds (user_id, message_id, planned_at, created_at, started_at, finished_at, status, total)
        SELECT u, (SELECT m.message_id FROM messages m WHERE m.user_id = u ORDER BY m.version DESC LIMIT 1),
               $2::timestamptz + k * $3::interval, $2::timestamptz + k * $3::interval,
               $2::timestamptz + k * $3::interval, $2::timestamptz + k * $3::interval + interval '10 minutes',
               'done', $4
        FROM unnest($1::bigint[]) u, generate_series(0, $5 - 1) k
        ORDER BY k, u
        RETURNING round_id, user_id
        """,
        active, base, step, w.groups, w.rounds_per_day)
    round_ids = [r["round_id"] for r in rounds]
    await conn.execute(
        """
        INSERT INTO attempts (round_id, group_id, peer_id, access_hash, kind, status, tries, error_code,
                              error_detail, sent_message_id, created_at, sending_at, finished_at, updated_at)
        SELECT r.round_id, g.group_id, g.peer_id, 4242424242, g.kind, o.status, 1,
               CASE o.status WHEN 'failed' THEN 'CHAT_WRITE_FORBIDDEN' ELSE '' END,
               CASE o.status WHEN 'failed' THEN 'You can''t write in this chat' ELSE '' END,
               CASE o.status WHEN 'sent' THEN r.round_id * 10 + g.group_id END,
               r.created_at, r.started_at, r.finished_at, r.finished_at
        FROM rounds r JOIN groups g ON g.user_id = r.user_id AND g.selected
        CROSS JOIN LATERAL (SELECT CASE (r.round_id + g.group_id) % 29 WHEN 0 THEN 'failed'
                                        WHEN 1 THEN 'skipped' WHEN 2 THEN 'unknown' ELSE 'sent' END) AS o(status)
        WHERE r.round_id = ANY($1::bigint[])
        """,
        round_ids)
    counted = await conn.fetch(
        """
        WITH c AS (
            SELECT round_id, count(*) FILTER (WHERE status = 'sent')::int AS sent,
                   count(*) FILTER (WHERE status = 'failed')::int AS failed,
                   count(*) FILTER (WHERE status = 'skipped')::int AS skipped,
                   count(*) FILTER (WHERE status = 'unknown')::int AS unknown
            FROM attempts WHERE round_id = ANY($1::bigint[]) GROUP BY round_id
        )
        UPDATE rounds r SET sent = c.sent, failed = c.failed, skipped = c.skipped, unknown = c.unknown
        FROM c WHERE r.round_id = c.round_id
        RETURNING r.round_id, r.user_id, r.sent, r.failed, r.skipped, r.unknown
        """,
        round_ids)
    for r in counted:
        uid = r["user_id"]
        truth.rounds[uid] += 1
        truth.sent[uid] += r["sent"]
        truth.failed[uid] += r["failed"]
        truth.skipped[uid] += r["skipped"]
        truth.unknown[uid] += r["unknown"]
        truth.last_round[uid] = max(truth.last_round.get(uid, 0), r["round_id"])
    await conn.execute(
        """UPDATE campaigns c SET last_round_id = t.round_id
           FROM (SELECT user_id, max(round_id) AS round_id FROM rounds
                 WHERE round_id = ANY($1::bigint[]) GROUP BY user_id) t
           WHERE c.user_id = t.user_id""", round_ids)
    if day == w.stop_after:
        await conn.execute("UPDATE campaigns SET status = 'stopped', next_run_at = NULL, stopped_at = $2 "
                           "WHERE user_id = $1", w.user_ids[-1], base + timedelta(days=1))
    await conn.execute(
        """INSERT INTO notifications (user_id, kind, payload, created_at, delivered_at, tries)
           SELECT user_id, 'round_finished',
                  jsonb_build_object('round_id', round_id, 'total', total, 'sent', sent, 'failed', failed,
                                     'skipped', skipped, 'unknown', unknown),
                  finished_at, finished_at + interval '3 seconds', 1
           FROM rounds WHERE round_id = ANY($1::bigint[])""", round_ids)
    if day % w.announce_every == 0:
        announcement_id = await conn.fetchval(
            """INSERT INTO announcements (text, created_by_kind, status, total, delivered, created_at, finished_at)
               VALUES ('Maintenance tonight', 'api', 'done', $1, $1, $2::timestamptz,
                       $2::timestamptz + interval '1 minute')
               RETURNING announcement_id""", len(w.user_ids), base)
        await conn.execute(
            """INSERT INTO announcement_deliveries (announcement_id, user_id, status, attempts, updated_at)
               SELECT $1, u, 'delivered', 1, $3 FROM unnest($2::bigint[]) u""",
            announcement_id, w.user_ids, base)
    await conn.execute(
        """INSERT INTO audit_log (at, actor_kind, actor_id, action, target_user_id, detail)
           SELECT $1::timestamptz + k * interval '1 hour', 'api', NULL, 'user_card', $2, '{"via": "api"}'::jsonb
           FROM generate_series(1, $3) k""", base, w.user_ids[0], w.admin_actions_per_day)


Vacuum = Callable[[asyncpg.Connection], Awaitable[None]]


async def vacuum(conn: asyncpg.Connection) -> None:
    """Plain VACUUM (no exclusive lock), autovacuum's work at real speed."""
    for table in retention_repo.MEASURED:
        await conn.execute(f"VACUUM {table}")


async def no_pause(_: float) -> None:
    return None


async def simulate(db: Database, w: Workload, days: int, settings: RetentionSettings,
                   truth: Truth | None = None,
                   on_day: Callable[[DayFigures], None] | None = None) -> list[DayFigures]:
    """Seed, then ``days`` simulated days of workload each followed by a retention run."""
    truth = truth if truth is not None else Truth()
    async with db.transaction() as conn:
        await seed(conn, w)
    figures = []
    for day in range(days):
        async with db.transaction() as conn:
            await write_day(conn, w, day, truth)
        end_of_day = START + timedelta(days=day + 1)
        service = RetentionService(db, settings, now=lambda at=end_of_day: at, sleep=no_pause)
        started = time.perf_counter()
        report = await service.run()
        seconds = time.perf_counter() - started
        async with db.connection() as conn:
            await vacuum(conn)
            sizes = await retention_repo.table_sizes(conn)
        figure = DayFigures(day + 1, sizes, report, seconds)
        figures.append(figure)
        if on_day is not None:
            on_day(figure)
    return figures
