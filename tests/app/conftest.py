"""Fixtures for the admin API: the real app on a test server, real PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from accounts.crypto import SessionCipher, generate_key
from accounts.gateway import AccountRef
from config.settings import AdminToken, AppSettings, Secret, Settings
from roles.app.deps import Services, build_services
from roles.app.server import build_app
from storage.db import Database

TOKENS = ("tok-alpha-0123456789", "tok-beta-9876543210")
TOKEN_NAMES = ("alice", "ci")
AUTH = {"Authorization": f"Bearer {TOKENS[0]}"}


def admin_tokens() -> tuple[AdminToken, ...]:
    return tuple(AdminToken(name, Secret(token)) for name, token in zip(TOKEN_NAMES, TOKENS, strict=True))


@dataclass
class FixedClock:
    """The services' clock: fixed so runtime figures can be checked exactly."""

    at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.at


class RecordingGateway:
    """The account gateway port as the admin API needs it: only log_out is reached (force logout)."""

    def __init__(self) -> None:
        self.logged_out: list[AccountRef] = []

    async def log_out(self, account: AccountRef) -> None:
        self.logged_out.append(account)

    async def close(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the admin API must not call gateway.{name}")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def api_settings() -> Settings:
    # the failed-login lockout has its own tests; here it must not answer 429 to the many wrong tokens
    return Settings(app=AppSettings(admin_tokens=admin_tokens(), auth_max_failures=0))


@pytest.fixture
def gateway() -> RecordingGateway:
    return RecordingGateway()


@pytest.fixture
def cipher() -> SessionCipher:
    return SessionCipher(generate_key())


@pytest.fixture
def services(api_settings: Settings, db_pool: asyncpg.Pool, redis_client: aioredis.Redis,
             gateway: RecordingGateway, cipher: SessionCipher, clock: FixedClock) -> Services:
    return build_services(api_settings, Database(db_pool), redis_client, gateway, cipher, now=clock)


@pytest.fixture
def admin_app(api_settings: Settings, db_pool: asyncpg.Pool, redis_client: aioredis.Redis,
              services: Services) -> web.Application:
    return build_app(Database(db_pool), redis_client, api_settings, services)


@pytest.fixture
async def client(admin_app: web.Application) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(admin_app, host="127.0.0.1")) as test_client:
        yield test_client
