"""Real processes for the chaos tests: PostgreSQL and Redis of their own, worker replicas, checks.

The servers belong to the chaos module (not the session's), so a test may restart PostgreSQL or
flush Redis without disturbing anything else. Worker replicas are the real supervisor,
``python app.py`` with ROLE=worker (``worker_proc.py`` only when the scheduler must run without
its leader lease); the sandbox runs in the test process and the replicas reach it over HTTP.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from storage.db import Database
from storage.embedded import EmbeddedPostgres, EmbeddedRedis
from storage.migrator import apply_migrations
from tests.embedded import TestRedis
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
PROC = Path(__file__).with_name("worker_proc.py")

# short figures so that the whole chaos suite runs in a few minutes
ENGINE_ENV = {
    "LEASE_TTL": "2",
    "SCHEDULER_TICK": "0.2",
    "GAP_MIN": "0.05",
    "GAP_MAX": "0.1",
    "BATCH_SIZE": "5",
    "WORKER_CONCURRENCY": "8",
    "RETRY_BASE": "0.2",
    "RETRY_MAX": "1",
    "RETRY_TRIES": "3",
    "FLOOD_INLINE_MAX": "120",
    "PEER_FLOOD_PAUSE": "3600",
    "DATABASE_POOL_MAX": "12",
    # the account limiter's caps and breaks are off here; test_account_safety.py turns them on
    "SEND_LIMIT_MINUTE": "0",
    "SEND_LIMIT_HOUR": "0",
    "SEND_LIMIT_DAY": "0",
    "BREAK_AFTER": "0",
}
LEASE = float(ENGINE_ENV["LEASE_TTL"])


@dataclass
class Servers:
    """The chaos module's servers: its own embedded ones, or those named by TEST_DATABASE_URL /
    TEST_REDIS_URL like the rest of the suite (CI's Redis 7 pass)."""

    base: Path
    pg: EmbeddedPostgres | None
    redis: EmbeddedRedis | None
    pg_url: str
    redis_url: str

    @classmethod
    def start(cls) -> Servers:
        # not under pytest's tmp_path: concurrent pytest sessions prune each other's old tmp dirs
        base = Path(tempfile.mkdtemp(prefix="chaos-servers-"))
        pg_url = os.environ.get("TEST_DATABASE_URL", "")
        redis_url = os.environ.get("TEST_REDIS_URL", "")
        pg = EmbeddedPostgres(base / "pg", port=free_port()) if not pg_url else None
        redis = TestRedis(base / "redis", port=free_port()) if not redis_url else None
        if pg is not None:
            pg_url = pg.start()
        if redis is not None:
            redis_url = redis.start()
        return cls(base, pg, redis, pg_url, redis_url)

    def stop(self) -> None:
        if self.redis is not None:
            self.redis.stop()
        if self.pg is not None:
            self.pg.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def restart_postgres(self, down_for: float) -> None:
        if self.pg is None:
            # a server this suite does not own: every connection to its chaos databases is cut instead,
            # which is what the workers see of a restart (their pools must reconnect)
            asyncio.run(self._terminate_chaos_connections())
            time.sleep(down_for)
            return
        self.pg.stop()
        time.sleep(down_for)
        self.pg.start()

    async def _terminate_chaos_connections(self) -> None:
        conn = await asyncpg.connect(self.pg_url.rpartition("/")[0] + "/postgres")
        try:
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname LIKE 'chaos\\_%' AND pid <> pg_backend_pid()")
        finally:
            await conn.close()

    async def fresh_database(self) -> str:
        name = f"chaos_{uuid.uuid4().hex[:10]}"
        admin = self.pg_url.rpartition("/")[0] + "/postgres"
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        url = self.pg_url.rpartition("/")[0] + "/" + name
        await apply_migrations(url)
        return url


@dataclass
class Cluster:
    """Worker replicas as processes; logs under ``logs``."""

    db_url: str
    redis_url: str
    sandbox_url: str
    session_key: str
    logs: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    started: int = 0

    def start(self, name: str | None = None, **extra: str) -> str:
        name = name or f"w{self.started}"
        self.started += 1
        host, _, port = self.sandbox_url.removeprefix("http://").partition(":")
        env = {
            **os.environ, **ENGINE_ENV, **self.env, **extra,
            "PYTHONPATH": str(ROOT), "ROLE": "worker", "DATABASE_URL": self.db_url, "REDIS_URL": self.redis_url,
            "ACCOUNT_GATEWAY": "sandbox", "SANDBOX_HOST": host, "SANDBOX_PORT": port, "SANDBOX_ENABLED": "0",
            "SESSION_ENCRYPTION_KEY": self.session_key, "METRICS_PORT": "0", "LOG_LEVEL": "WARNING",
            "DATA_DIR": str(self.logs),
        }
        log = (self.logs / f"{name}.log").open("ab")
        script = PROC if env.get("CHAOS_FREE_SCHEDULER") == "1" else APP
        self.procs[name] = subprocess.Popen([sys.executable, str(script)], env=env, cwd=ROOT, stdout=log,
                                            stderr=subprocess.STDOUT)
        return name

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(10)

    def alive(self) -> dict[str, bool]:
        return {name: proc.poll() is None for name, proc in self.procs.items()}

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)


async def wait_until(predicate: Any, within: float, step: float = 0.1, what: str = "condition") -> float:
    """Poll an async predicate; returns the seconds it took."""
    start = time.monotonic()
    while not await predicate():
        if time.monotonic() - start > within:
            raise AssertionError(f"{what} not reached within {within:.0f}s")
        await asyncio.sleep(step)
    return time.monotonic() - start


async def open_rounds(db: Database) -> int:
    async with db.connection() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM rounds WHERE finished_at IS NULL"))


async def hold_schedules(db: Database) -> None:
    """No new round from now on (the rounds already created go on)."""
    async with db.connection() as conn:
        await conn.execute("UPDATE campaigns SET next_run_at = now() + interval '1 day' WHERE status = 'running'")


@dataclass
class Audit:
    """What the sandbox's feeds say against what the attempts say."""

    posts: int
    sent: int
    unknown: int
    extra_posts: int  # posts no sent attempt accounts for
    duplicates: list[str]  # groups with more posts than sent + unknown attempts
    open_attempts: int
    statuses: Counter[str]


async def audit(db: Database, client: Any) -> Audit:
    """Every post in every group feed must be a ``sent`` attempt's message or an ``unknown`` one.

    A group with more posts than its sent and unknown attempts together got a send twice in some
    round: that is a duplicate. (Each attempt is sent at most once by construction; this checks it
    from the outside, from what "Telegram" received.)
    """
    async with db.connection() as conn:
        rows = await conn.fetch("""
            SELECT t.peer_id, t.status, t.sent_message_id, a.phone
            FROM attempts t JOIN rounds r USING (round_id) JOIN accounts a ON a.account_id = r.account_id""")
    by_peer: dict[int, list[asyncpg.Record]] = defaultdict(list)
    for row in rows:
        by_peer[row["peer_id"]].append(row)
    posts = extra = 0
    duplicates = []
    for peer, attempts in by_peer.items():
        feed = await client.group_messages(peer)
        ids = [p["message_id"] for p in feed]
        posts += len(ids)
        sent_ids = [a["sent_message_id"] for a in attempts if a["status"] == "sent"]
        assert len(set(sent_ids)) == len(sent_ids), f"group {peer}: one post claimed by two attempts"
        assert set(sent_ids) <= set(ids), f"group {peer}: a sent attempt's post is missing"
        unaccounted = len(set(ids) - set(sent_ids))
        extra += unaccounted
        unknown = sum(1 for a in attempts if a["status"] == "unknown")
        if unaccounted > unknown:
            duplicates.append(f"group {peer}: {len(ids)} posts, {len(sent_ids)} sent, {unknown} unknown")
    statuses = Counter(r["status"] for r in rows)
    return Audit(
        posts=posts, sent=statuses["sent"], unknown=statuses["unknown"], extra_posts=extra,
        duplicates=duplicates, open_attempts=sum(statuses[s] for s in ("pending", "sending", "flood_wait")),
        statuses=statuses,
    )


async def double_rounds(db: Database) -> list[str]:
    """Rounds of one user closer together than the interval (two schedules for one due time)."""
    async with db.connection() as conn:
        rows = await conn.fetch("""
            SELECT r.user_id, r.planned_at, lag(r.planned_at) OVER (PARTITION BY r.user_id ORDER BY r.planned_at)
                   AS previous, c.interval_seconds
            FROM rounds r JOIN campaigns c USING (user_id)""")
    return [f"user {r['user_id']}: {r['previous']} and {r['planned_at']}" for r in rows
            if r["previous"] is not None
            and (r["planned_at"] - r["previous"]).total_seconds() < r["interval_seconds"] - 1e-6]
