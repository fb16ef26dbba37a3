"""A fake sending gateway, a seeded world and the engine wired to a test database and Redis.

Shared by tests/integration/test_scheduler.py and test_worker.py (and the benchmarks): imported
by module name, pytest puts this directory on sys.path for test modules without a package.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from redis.asyncio import Redis

from accounts.crypto import SessionCipher, generate_key
from accounts.gateway import AccountRef, GroupInfo, GroupRef, LoginState, OutgoingMessage, SignedIn
from config.settings import EngineSettings, Settings
from roles.worker.loop import JobRunner, build_engine, round_queue
from scheduler.jobs import SchedulerJobs
from services.engine import JobResult
from storage.db import Database
from storage.lease import Leases

FAST = EngineSettings(
    batch_size=5, gap_min=0.0, gap_max=0.0, lease_ttl=3.0, tick=0.1, flood_inline_max=120,
    peer_flood_pause=3600, retry_base=0.05, retry_max=0.2, retry_tries=3, worker_concurrency=4,
)


def settings_with(**engine: Any) -> Settings:
    return Settings(engine=replace(FAST, **engine))


@dataclass(frozen=True)
class SendCall:
    account_id: int
    peer_id: int
    text: str
    media: Any
    started: float  # wall clock, seconds
    ended: float
    error: str | None = None
    message_id: int | None = None


class SendOnlyGateway:
    """The AccountGateway methods an engine run never calls: no login, no group list."""

    async def send_code(self, name: str, phone: str) -> LoginState:
        raise NotImplementedError

    async def resend_code(self, state: LoginState) -> LoginState:
        raise NotImplementedError

    async def sign_in(self, state: LoginState, code: str) -> SignedIn:
        raise NotImplementedError

    async def check_password(self, state: LoginState, password: str) -> SignedIn:
        raise NotImplementedError

    async def cancel_login(self, state: LoginState) -> None:
        return None

    async def list_groups(self, account: AccountRef) -> list[GroupInfo]:
        return []

    async def log_out(self, account: AccountRef) -> None:
        return None

    async def close(self) -> None:
        return None


Hook = Callable[["FakeSender", AccountRef, GroupRef], Awaitable[None]]


@dataclass
class FakeSender(SendOnlyGateway):
    """An AccountGateway whose sends are recorded; faults per peer id raise domain errors in order."""

    latency: float = 0.0
    calls: list[SendCall] = field(default_factory=list)
    faults: dict[int, list[BaseException]] = field(default_factory=dict)
    before_send: Hook | None = None
    in_flight: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    max_in_flight: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def sent(self) -> list[SendCall]:
        return [c for c in self.calls if c.error is None]

    def sent_to(self, peer_id: int) -> list[SendCall]:
        return [c for c in self.sent() if c.peer_id == peer_id]

    async def send_message(self, account: AccountRef, group: GroupRef, message: OutgoingMessage) -> int:
        started = time.time()
        self.in_flight[account.account_id] += 1
        self.max_in_flight[account.account_id] = max(self.max_in_flight[account.account_id],
                                                      self.in_flight[account.account_id])
        try:
            if self.before_send is not None:
                await self.before_send(self, account, group)
            if self.latency:
                await asyncio.sleep(self.latency)
            queued = self.faults.get(group.peer_id)
            if queued:
                error = queued.pop(0)
                self.calls.append(SendCall(account.account_id, group.peer_id, message.text, message.media,
                                           started, time.time(), error=type(error).__name__))
                raise error
            message_id = next(self._ids)
            self.calls.append(SendCall(account.account_id, group.peer_id, message.text, message.media,
                                       started, time.time(), message_id=message_id))
            return message_id
        finally:
            self.in_flight[account.account_id] -= 1


@dataclass(frozen=True)
class Seeded:
    user_id: int
    account_id: int
    group_ids: list[int]
    peer_ids: list[int]
    message_id: int


def new_cipher() -> SessionCipher:
    return SessionCipher(generate_key())


async def seed_user(
    conn: asyncpg.Connection,
    cipher: SessionCipher,
    user_id: int,
    groups: int,
    *,
    text: str = "hello",
    interval: int = 3600,
    running: bool = True,
    due_in: float = -1.0,
    media: bytes | None = None,
    phone: str | None = None,
    peer_base: int | None = None,
) -> Seeded:
    """A user with a connected account, ``groups`` selected groups, a message and a campaign."""
    await conn.execute("INSERT INTO users (user_id, first_name, access_status) VALUES ($1, 'U', 'granted')",
                       user_id)
    account_id = await conn.fetchval(
        """INSERT INTO accounts (user_id, phone, tg_user_id, first_name, session_enc)
           VALUES ($1, $2, $3, 'U', $4) RETURNING account_id""",
        user_id, phone or f"+1555{user_id:07d}", 10_000 + user_id, cipher.encrypt(f"session-{user_id}"))
    base = peer_base if peer_base is not None else user_id * 10_000
    peers = [base + i for i in range(1, groups + 1)]
    rows = await conn.fetch(
        """INSERT INTO groups (user_id, peer_id, access_hash, kind, title, selected)
           SELECT $1, p, p * 7, 'supergroup', 'group ' || p, true FROM unnest($2::bigint[]) AS p
           RETURNING group_id""",
        user_id, peers)
    media_id = None
    if media is not None:
        media_id = await conn.fetchval(
            """INSERT INTO media (sha256, kind, filename, mime_type, data)
               VALUES ('x', 'photo', 'p.jpg', 'image/jpeg', $1) RETURNING media_id""", media)
    message_id = await conn.fetchval(
        """INSERT INTO messages (user_id, version, text, entities, media_id)
           VALUES ($1, 1, $2, $3::text::jsonb, $4) RETURNING message_id""",
        user_id, text, orjson.dumps([{"type": "bold", "offset": 0, "length": 1}]).decode(), media_id)
    await conn.execute(
        """INSERT INTO campaigns (user_id, status, interval_seconds, next_run_at, started_at)
           VALUES ($1, $2, $3, now() + make_interval(secs => $4), now() - interval '1 day')""",
        user_id, "running" if running else "stopped", interval, due_in)
    return Seeded(user_id, account_id, sorted(r["group_id"] for r in rows), peers, message_id)


class Engine:
    """Scheduler jobs and one engine on a shared queue, driven step by step from a test.

    ``executor.run(job)`` runs a job and applies its outcome, as the worker loop does.
    """

    def __init__(self, db: Database, redis: Redis, gateway: Any, settings: Settings, cipher: SessionCipher,
                 consumer: str = "test-worker") -> None:
        self.db = db
        self.redis = redis
        self.settings = settings
        self.queue = round_queue(redis, consumer, settings)
        self.leases = Leases(redis)
        self.stopping = asyncio.Event()
        self.engine = build_engine(db, redis, gateway, cipher, settings, self.stopping)
        self.executor = JobRunner(self.engine, self.queue)
        self.jobs = SchedulerJobs(db, self.queue, self.leases, settings.engine, redis)

    async def run_jobs(self, max_jobs: int = 1000, idle: float = 0.5) -> list[JobResult]:
        """Fetch and run jobs one at a time until the queue stays empty for ``idle`` seconds."""
        results: list[JobResult] = []
        deadline = time.monotonic() + idle
        while len(results) < max_jobs:
            await self.queue.promote_due()
            jobs = await self.queue.fetch(count=1, block_ms=20)
            if not jobs:
                if time.monotonic() > deadline:
                    break
                continue
            results.append(await self.executor.run(jobs[0]))
            deadline = time.monotonic() + idle
        return results

    async def run_until_done(self, round_ids: list[int] | None = None, within: float = 20.0) -> None:
        """Run jobs until no round (or none of ``round_ids``) is open."""
        deadline = time.monotonic() + within
        while True:
            if await open_round_count(self.db, round_ids) == 0:
                return
            assert time.monotonic() < deadline, "rounds still open"
            await self.queue.promote_due()
            jobs = await self.queue.fetch(count=1, block_ms=50)
            if jobs:
                await self.executor.run(jobs[0])


async def open_round_count(db: Database, round_ids: list[int] | None = None) -> int:
    async with db.connection() as conn:
        if round_ids is None:
            return int(await conn.fetchval("SELECT count(*) FROM rounds WHERE finished_at IS NULL"))
        return int(await conn.fetchval(
            "SELECT count(*) FROM rounds WHERE finished_at IS NULL AND round_id = ANY($1::bigint[])", round_ids))


async def attempt_rows(db: Database, round_id: int) -> list[asyncpg.Record]:
    async with db.connection() as conn:
        return await conn.fetch(
            "SELECT * FROM attempts WHERE round_id = $1 ORDER BY attempt_id", round_id)


async def db_now(db: Database) -> datetime:
    async with db.connection() as conn:
        value: datetime = await conn.fetchval("SELECT now()")
        return value
