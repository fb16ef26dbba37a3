"""Shared pieces of the engine benchmarks: servers, a seeded world, counters, a null gateway.

Each benchmark starts its own embedded PostgreSQL and Redis (under a temp dir, removed at the
end) so that figures are not disturbed by anything else, and prints its figures with a ratio
against a baseline measured in the same run.
"""

from __future__ import annotations

import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from accounts.crypto import SessionCipher
from accounts.gateway import AccountRef, GroupRef, OutgoingMessage
from config.settings import EngineSettings, Settings
from storage.db import Database
from storage.migrator import apply_migrations

# the test suite's servers, send-only gateway and cipher: the same world the engine tests run in
from tests.chaos.cluster import Servers
from tests.integration.engine_support import SendOnlyGateway
from tests.integration.engine_support import new_cipher as new_cipher


@contextlib.contextmanager
def servers() -> Iterator[Servers]:
    started = Servers.start()
    try:
        yield started
    finally:
        started.stop()


async def fresh_database(pg_url: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    head = pg_url.rpartition("/")[0]
    conn = await asyncpg.connect(head + "/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = f"{head}/{name}"
    await apply_migrations(url)
    return url


def engine_settings(**changes: Any) -> Settings:
    return Settings(engine=replace(EngineSettings(), **changes))


async def seed(
    conn: asyncpg.Connection,
    cipher: SessionCipher,
    users: range,
    groups: int,
    *,
    interval: int = 3600,
    due_offset: float = -1.0,
    session: str = "s",
) -> None:
    """Users with a connected account, ``groups`` selected groups, a message and a due campaign (bulk SQL)."""
    ids = list(users)
    enc = cipher.encrypt(session)
    await conn.execute(
        "INSERT INTO users (user_id, access_status) SELECT u, 'granted' FROM unnest($1::bigint[]) u", ids
    )
    await conn.execute(
        """INSERT INTO accounts (user_id, phone, tg_user_id, session_enc)
           SELECT u, '+1' || (5550000000 + u), u, $2 FROM unnest($1::bigint[]) u""",
        ids,
        enc,
    )
    await conn.execute(
        """INSERT INTO groups (user_id, peer_id, access_hash, kind, selected)
           SELECT u, u * 100000 + g, 1, 'supergroup', true
           FROM unnest($1::bigint[]) u, generate_series(1, $2) g""",
        ids,
        groups,
    )
    await conn.execute(
        "INSERT INTO messages (user_id, version, text) SELECT u, 1, 'bench' FROM unnest($1::bigint[]) u", ids
    )
    await conn.execute(
        """INSERT INTO campaigns (user_id, status, interval_seconds, next_run_at, started_at)
           SELECT u, 'running', $2, now() + make_interval(secs => $3) + make_interval(secs => u * 0.000001),
                  now() - interval '1 day'
           FROM unnest($1::bigint[]) u""",
        ids,
        interval,
        due_offset,
    )


async def seed_history(conn: asyncpg.Connection, rounds_per_user: int) -> int:
    """``rounds_per_user`` finished rounds per seeded user, each with a sent attempt per selected
    group, planned an hour apart, the latest two hours ago (bulk SQL); then VACUUM ANALYZE, so the planner's
    statistics are those of a database with history and no open round. Returns the attempts added."""
    await conn.execute(
        """INSERT INTO rounds (user_id, message_id, planned_at, created_at, started_at, finished_at, status,
                               total, sent)
           SELECT m.user_id, m.message_id, t, t, t, t + interval '1 minute', 'done',
                  (SELECT count(*) FROM groups g WHERE g.user_id = m.user_id AND g.selected),
                  (SELECT count(*) FROM groups g WHERE g.user_id = m.user_id AND g.selected)
           FROM messages m, generate_series(1, $1) h,
                LATERAL (SELECT now() - make_interval(hours => h + 1) AS t) p""",
        rounds_per_user,
    )
    status = await conn.execute(
        """INSERT INTO attempts (round_id, group_id, peer_id, access_hash, kind, status, tries,
                                 sent_message_id, created_at, sending_at, finished_at, updated_at)
           SELECT r.round_id, g.group_id, g.peer_id, g.access_hash, g.kind, 'sent', 1, g.group_id,
                  r.created_at, r.started_at, r.finished_at, r.finished_at
           FROM rounds r JOIN groups g ON g.user_id = r.user_id AND g.selected
           WHERE r.finished_at IS NOT NULL"""
    )
    await conn.execute("VACUUM ANALYZE")
    await conn.execute("CHECKPOINT")  # the bulk load's writes are not left to the timed run
    return int(status.split()[-1])


class NullGateway(SendOnlyGateway):
    """A zero-latency gateway: every send succeeds at once."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.sends = 0

    async def send_message(self, account: AccountRef, group: GroupRef, message: OutgoingMessage) -> int:
        self.sends += 1
        return next(self.ids)


@dataclass
class Counts:
    db_statements: int = 0  # round trips to PostgreSQL: statements, BEGIN/COMMIT, pool resets
    redis_commands: int = 0  # commands the client sent (an EVALSHA counts one; a pipeline its items)
    redis_round_trips: int = 0  # requests the client waited for (a pipeline counts one)


COUNTS = Counts()


@contextlib.contextmanager
def counting() -> Iterator[Counts]:
    """Count client-side DB statements and Redis commands while the block runs (monkeypatched)."""
    from redis.asyncio.client import Pipeline, Redis

    conn_cls = asyncpg.connection.Connection
    original_execute, original_inner = conn_cls.execute, conn_cls._execute
    original_command, original_pipeline = Redis.execute_command, Pipeline.execute
    counts = Counts()

    async def execute(self: Any, query: str, *args: Any, **kw: Any) -> Any:
        if not args:  # with args it goes through _execute, counted there
            counts.db_statements += 1
        return await original_execute(self, query, *args, **kw)

    async def inner(self: Any, *args: Any, **kw: Any) -> Any:
        counts.db_statements += 1
        return await original_inner(self, *args, **kw)

    async def command(self: Any, *args: Any, **kw: Any) -> Any:
        counts.redis_commands += 1
        counts.redis_round_trips += 1
        return await original_command(self, *args, **kw)

    async def pipeline(self: Any, *args: Any, **kw: Any) -> Any:
        counts.redis_commands += len(self.command_stack)
        counts.redis_round_trips += 1
        return await original_pipeline(self, *args, **kw)

    conn_cls.execute, conn_cls._execute = execute, inner  # type: ignore[method-assign]
    Redis.execute_command, Pipeline.execute = command, pipeline  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        conn_cls.execute, conn_cls._execute = original_execute, original_inner  # type: ignore[method-assign]
        Redis.execute_command, Pipeline.execute = original_command, original_pipeline  # type: ignore[method-assign]


async def redis_server_calls(client: aioredis.Redis) -> int:
    """Commands executed by the Redis server so far (INFO commandstats; scripts' inner calls included)."""
    stats = await client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k.startswith("cmdstat_") and k != "cmdstat_info")


async def pg_transactions(conn: asyncpg.Connection) -> int:
    value = await conn.fetchval(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
    )
    return int(value)


@contextlib.asynccontextmanager
async def database(url: str, size: int = 20) -> AsyncIterator[Database]:
    db = await Database.connect(url, min_size=2, max_size=size)
    try:
        yield db
    finally:
        await db.close()


def machine() -> str:
    import os
    import platform

    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores ({cpu}), {system}, Python {platform.python_version()}"


def now() -> float:
    return time.perf_counter()
