"""Shared fixtures: real PostgreSQL and Redis for integration tests.

With ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` set, those servers are used;
otherwise the embedded servers are started once per test session in a
temporary directory. Integration tests are never skipped: a server that cannot
start fails the run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from storage.db import create_pool
from storage.embedded import EmbeddedPostgres, EmbeddedRedis

TEMPLATE_DB = "broadcast_test_template"


@pytest.fixture(scope="session")
def server_urls() -> Iterator[tuple[str, str]]:
    # not under pytest's basetemp: a concurrent pytest run prunes old basetemps, servers and all
    base = Path(tempfile.mkdtemp(prefix="broadcast-test-servers-"))
    pg_url = os.environ.get("TEST_DATABASE_URL", "")
    redis_url = os.environ.get("TEST_REDIS_URL", "")
    pg = EmbeddedPostgres(base / "pg", port=0) if not pg_url else None
    rd = EmbeddedRedis(base / "redis", port=0) if not redis_url else None
    try:
        if pg is not None:
            pg_url = pg.start()
        if rd is not None:
            redis_url = rd.start()
        yield pg_url, redis_url
    finally:
        if rd is not None:
            rd.stop()
        if pg is not None:
            pg.stop()
        shutil.rmtree(base, ignore_errors=True)


def _with_database(url: str, name: str) -> str:
    head, _, _ = url.rpartition("/")
    return f"{head}/{name}"


@pytest.fixture(scope="session")
def pg_server_url(server_urls: tuple[str, str]) -> str:
    """URL of the test server's maintenance database (for CREATE/DROP DATABASE)."""
    return _with_database(server_urls[0], "postgres")


@pytest.fixture
async def empty_db_url(pg_server_url: str) -> AsyncIterator[str]:
    """A brand-new empty database, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(pg_server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    yield _with_database(pg_server_url, name)
    conn = await asyncpg.connect(pg_server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


_template_ready: set[str] = set()


@pytest.fixture
async def db_url(pg_server_url: str) -> AsyncIterator[str]:
    """A fresh database at the migration head (copied from a template migrated once)."""
    from storage.migrator import apply_migrations

    conn = await asyncpg.connect(pg_server_url)
    try:
        if pg_server_url not in _template_ready:
            await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
            await apply_migrations(_with_database(pg_server_url, TEMPLATE_DB))
            _template_ready.add(pg_server_url)
        name = f"t_{uuid.uuid4().hex[:12]}"
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    finally:
        await conn.close()
    yield _with_database(pg_server_url, name)
    conn = await asyncpg.connect(pg_server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def db_pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(db_url, min_size=1, max_size=10)  # with the JSON codec, as the roles have it
    yield pool
    await pool.close()


@pytest.fixture
async def redis_url(server_urls: tuple[str, str]) -> AsyncIterator[str]:
    """The test Redis, flushed before each test."""
    url = server_urls[1]
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    await client.aclose()
    yield url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()
