"""Shared fixtures: real PostgreSQL and Redis for integration tests.

With ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` set, those servers are used;
otherwise the embedded servers are started once per test session in a
temporary directory. Integration tests are never skipped: a server that cannot
start fails the run.

``make test`` runs the suite in pytest-xdist worker processes (``-n N --dist loadscope``): each worker
is a session of its own, with its own embedded servers, databases and ports; ``tests/xdist_units.py``
says which tests run together in one worker and in what order.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from storage.db import create_pool
from storage.embedded import EmbeddedPostgres
from tests import xdist_units
from tests.embedded import TestRedis
from tests.parity import report as parity_report
from tests.ports import free_port

# one template per worker process: with TEST_DATABASE_URL they share a server
TEMPLATE_DB = f"broadcast_test_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


def _workers(config: pytest.Config) -> int:
    count = getattr(config.option, "numprocesses", None)  # pytest-xdist's -n, an int once configured
    return count if isinstance(count, int) else 0


def pytest_configure(config: pytest.Config) -> None:
    shared = [name for name in ("TEST_REDIS_URL", "TEST_DATABASE_URL") if os.environ.get(name)]
    if shared and _workers(config) > 1 and not hasattr(config, "workerinput"):
        # the tests FLUSHALL Redis and restart or cut PostgreSQL: one server per process, never shared
        raise pytest.UsageError(f"with {' and '.join(shared)} set, every worker would share one server: "
                                "run without -n (or with -n 0), or unset it so that each worker starts its own")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """--dist loadscope (make test): a module per unit, the parity contract a unit per pass."""
    return xdist_units.make_scheduler(config, log) if config.getoption("dist") == "loadscope" else None


@pytest.hookimpl(trylast=True)  # after pytest's own fixture-driven order, which a stable sort keeps
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the scheduler takes units in this order
        xdist_units.order_heaviest_first(items)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """The controller gathers each worker's share of the parity summary."""
    share = getattr(node, "workeroutput", {}).get("parity")
    if share:
        parity_report.merge(share)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in parity_report.lines():
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def server_urls() -> Iterator[tuple[str, str]]:
    # not under pytest's basetemp: a concurrent pytest run prunes old basetemps, servers and all
    base = Path(tempfile.mkdtemp(prefix="broadcast-test-servers-"))
    pg_url = os.environ.get("TEST_DATABASE_URL", "")
    redis_url = os.environ.get("TEST_REDIS_URL", "")
    pg = EmbeddedPostgres(base / "pg", port=free_port()) if not pg_url else None
    rd = TestRedis(base / "redis", port=free_port()) if not redis_url else None
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
