"""Admin API hardening: failed tokens logged and locked out per address (shared in Redis), /metrics off
the admin port, malformed HTTP requests logged as one line without a traceback."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from config.settings import AppSettings, Settings
from roles.app.deps import Services
from roles.app.logs import quiet_client_garbage
from roles.app.server import build_app
from storage.auth_failures import AuthFailures
from storage.db import Database
from tests.app.conftest import AUTH, TOKENS, admin_tokens

pytestmark = pytest.mark.integration

WRONG = {"Authorization": "Bearer guess-0000"}


def settings(max_failures: int = 3, window: int = 60) -> Settings:
    return Settings(app=AppSettings(admin_tokens=admin_tokens(), auth_max_failures=max_failures,
                                    auth_failure_window=window))


async def test_failures_past_the_limit_answer_429_with_retry_after_on_every_replica(
        db_pool: asyncpg.Pool, redis_client: aioredis.Redis, services: Services,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    replica_a = build_app(Database(db_pool), redis_client, settings(), services)
    replica_b = build_app(Database(db_pool), redis_client, settings(), services)
    async with TestClient(TestServer(replica_a, host="127.0.0.1")) as a, \
            TestClient(TestServer(replica_b, host="127.0.0.1")) as b:
        assert (await a.get("/api/control", headers=AUTH)).status == 200  # success never counts
        for client in (a, b, a):
            assert (await client.get("/api/control", headers=WRONG)).status == 401
        for client in (a, b):
            # locked out, even with a valid token: a guesser learns nothing more from this address
            for headers in (WRONG, AUTH):
                response = await client.get("/api/control", headers=headers)
                assert response.status == 429
                assert 1 <= int(response.headers["Retry-After"]) <= 60
                assert (await response.json())["error"]["code"] == "too_many_requests"
        assert (await a.get("/healthz")).status == 200  # probes stay public
    warnings = [r for r in caplog.records if r.name == "roles.app.auth"]
    assert len(warnings) == 3 and all(r.levelno == logging.WARNING for r in warnings)
    assert "127.0.0.1" in warnings[0].getMessage()
    logged = caplog.text
    assert "guess-0000" not in logged and TOKENS[0] not in logged


async def test_the_lockout_ends_with_its_window_and_is_per_address(redis_client: aioredis.Redis) -> None:
    failures = AuthFailures(redis_client, max_failures=2, window=60)
    assert [await failures.record("10.0.0.1") for _ in range(2)] == [1, 2]
    assert 55 <= await failures.retry_after("10.0.0.1") <= 60
    assert await failures.retry_after("10.0.0.2") == 0
    # the window is the key's TTL from the first failure: when it expires the address may try again
    await redis_client.expire(AuthFailures.key("10.0.0.1"), 1)
    await asyncio.sleep(1.2)  # Redis' own clock ends the window; nothing in the app waits on this
    assert await failures.retry_after("10.0.0.1") == 0
    assert await redis_client.ttl(AuthFailures.key("10.0.0.1")) == -2


async def test_a_zero_limit_never_locks_out(redis_client: aioredis.Redis) -> None:
    failures = AuthFailures(redis_client, max_failures=0, window=60)
    for _ in range(5):
        await failures.record("10.0.0.3")
    assert await failures.retry_after("10.0.0.3") == 0


async def test_metrics_are_not_served_on_the_admin_port(client) -> None:
    assert (await client.get("/metrics")).status == 401  # not public; no such route behind the token either
    assert (await client.get("/metrics", headers=AUTH)).status == 404


@pytest.mark.parametrize("garbage", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",  # TLS ClientHello on the plain port
])
async def test_malformed_requests_are_one_info_line_without_a_traceback(
        client, garbage: bytes, caplog: pytest.LogCaptureFixture) -> None:
    quiet_client_garbage()
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(garbage)
    await writer.drain()
    assert (await reader.read(64)).startswith(b"HTTP/1.0 400")  # aiohttp answers 400 and closes
    writer.close()
    await asyncio.sleep(0.05)  # let the server's log call run; the assertion below is on its content
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert records, "aiohttp logged nothing: the filter's input changed"
    for record in records:
        assert record.levelno == logging.INFO and record.exc_info is None and record.exc_text is None
        assert "malformed HTTP request refused" in record.getMessage()
    assert "Traceback" not in caplog.text
