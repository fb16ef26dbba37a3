"""Shared fixtures: real PostgreSQL and Redis for integration tests.

With ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` set, those servers are used;
otherwise the embedded servers are started once per test session in a
temporary directory. Integration tests are never skipped: a server that cannot
start fails the run.

``make test`` runs the suite in pytest-xdist worker processes (``-n N --dist loadgroup``): each worker
is a session of its own, with its own embedded servers, databases and ports. A test module is one
unit of work (as ``--dist loadfile``), except where a module splits itself with ``xdist_group`` marks
(the parity contract: one unit per pass); the heaviest units are handed out first.
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
from storage.embedded import EmbeddedPostgres, EmbeddedRedis
from tests.parity import report as parity_report

# one template per worker process: with TEST_DATABASE_URL they share a server
TEMPLATE_DB = f"broadcast_test_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
# Units of work (xdist groups) in the order they are handed to the workers: the longest first, so that no
# long one starts last while the other workers run dry (figures: make test's --durations on 2 cores).
HEAVY_FIRST = (
    "parity-contract-sandbox",  # the contract's English and Russian passes, 2-3 min each
    "parity-contract-",  # its Telethon pass
    "tests/chaos/",  # real worker processes, SIGKILLs, lease expiries
    "tests/parity/",
    "tests/browser/",
    "tests/mtproto/",
    "tests/integration/",
    "tests/sandbox/",
    "tests/app/",
    "tests/unit/",
)


def _workers(config: pytest.Config) -> int:
    count = getattr(config.option, "numprocesses", None)  # pytest-xdist's -n, an int once configured
    return count if isinstance(count, int) else 0


def pytest_configure(config: pytest.Config) -> None:
    shared = [name for name in ("TEST_REDIS_URL", "TEST_DATABASE_URL") if os.environ.get(name)]
    if shared and _workers(config) > 1 and not hasattr(config, "workerinput"):
        # the tests FLUSHALL Redis and restart or cut PostgreSQL: one server per process, never shared
        raise pytest.UsageError(f"{' and '.join(shared)} name one server for every test: run without -n "
                                "(or -n 0), or unset them so that each worker starts its own")


def _group(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("xdist_group")
    if marker is None:
        return None
    return str(marker.args[0] if marker.args else marker.kwargs.get("name", "default"))


def _rank(group: str) -> int:
    return next((i for i, prefix in enumerate(HEAVY_FIRST) if group.startswith(prefix)), len(HEAVY_FIRST))


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--dist loadgroup: every test without a group of its own goes with its module."""
    if config.getoption("dist", "no") != "loadgroup":
        return
    for item in items:
        if _group(item) is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


@pytest.hookimpl(specname="pytest_collection_modifyitems", trylast=True)
def heaviest_units_first(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--dist loadgroup: the units in HEAVY_FIRST's order (each worker hands its collection to the
    scheduler in this order). A stable sort, run after pytest's fixture-driven ordering, keeps it."""
    if config.getoption("dist", "no") != "loadgroup":
        return
    first_seen: dict[str, int] = {}
    for item in items:
        first_seen.setdefault(_group(item) or "", len(first_seen))
    items.sort(key=lambda item: (_rank(_group(item) or ""), first_seen[_group(item) or ""]))


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
