"""POST /api/users/{id}/logout while a broadcast batch holds the user's lock: 409 ``busy``, the broadcast
stopped, the account still connected and its session untouched; once the lock is free it logs out.
The services are the app's own (``roles.app.deps.build_services``), on real PostgreSQL and Redis."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from accounts.crypto import SessionCipher
from config.settings import AppSettings, EngineSettings, Settings
from roles.app.deps import Services
from roles.app.server import OPENAPI_PATH
from storage.lease import Leases
from storage.user_lock import UserLock
from tests.app.conftest import AUTH, FixedClock, RecordingGateway, admin_tokens
from tests.app.test_admin_api import add_campaign, add_user, assert_error, audit_rows, connect_account

pytestmark = pytest.mark.integration

UID = 1001
PATH = f"/api/users/{UID}/logout"


@pytest.fixture
def api_settings() -> Settings:
    # a short pacing gap keeps the logout's wait for the lock (a widened gap plus the lock wait) short
    return Settings(app=AppSettings(admin_tokens=admin_tokens()),
                    engine=replace(EngineSettings(), gap_min=0.05, gap_max=0.1))


@pytest.fixture
def lock(services: Services, redis_client: aioredis.Redis, api_settings: Settings) -> UserLock:
    services.admin.login.lock_wait = 0.2  # the wait is the service's setting; short here, 5 s by default
    return UserLock(Leases(redis_client), api_settings.engine.lease_ttl)


async def account(db_pool: asyncpg.Pool) -> tuple[str, str]:
    row = await db_pool.fetchrow(
        "SELECT a.status, c.status AS campaign FROM accounts a JOIN campaigns c USING (user_id) "
        "WHERE a.user_id = $1", UID)
    return row["status"], row["campaign"]


async def test_logout_is_409_busy_while_a_batch_holds_the_lock(
    client: TestClient[web.Request, web.Application], db_pool: asyncpg.Pool, clock: FixedClock,
    cipher: SessionCipher, gateway: RecordingGateway, lock: UserLock,
) -> None:
    now = clock()
    await add_user(db_pool, UID, now - timedelta(days=1), first_name="Ann")
    await connect_account(db_pool, UID, cipher.encrypt("session-of-ann"))
    await add_campaign(db_pool, UID, "running", next_run_at=now + timedelta(minutes=5))

    account_id = await db_pool.fetchval("SELECT account_id FROM accounts WHERE user_id = $1", UID)
    lease = await lock.try_acquire(UID, account_id)  # taken the way the worker takes it for a batch
    assert lease is not None
    async with lock.keep(lease) as held:
        response = await client.post(PATH, headers=AUTH)
        body = await assert_error(response, 409, "busy")
        assert "try again" in body["error"]["message"]
        assert await account(db_pool) == ("connected", "stopped")  # stopped before the wait
        assert gateway.logged_out == []  # the session was not used while the batch held it
        assert not held.lost.is_set() and await lock.holder(UID, account_id) == lease.token
        busy_row = (await audit_rows(db_pool))[-1]
        assert (busy_row["action"], busy_row["outcome"]) == ("logout", "failed")
        assert '"result": "busy"' in busy_row["detail"]
    assert await lock.holder(UID, account_id) is None

    response = await client.post(PATH, headers=AUTH)
    assert response.status == 200, await response.text()
    assert (await response.json())["outcome"] == "ok"
    assert [ref.session for ref in gateway.logged_out] == ["session-of-ann"]
    assert (await account(db_pool))[0] == "disconnected"
    last = (await audit_rows(db_pool))[-1]
    assert (last["action"], last["outcome"], last["actor_kind"]) == ("logout", "ok", "api")


def test_the_409_is_documented_with_the_error_shape() -> None:
    document = json.loads(Path(OPENAPI_PATH).read_text(encoding="utf-8"))
    responses = document["paths"]["/api/users/{user_id}/logout"]["post"]["responses"]
    ref = responses["409"]["$ref"].rpartition("/")[2]
    schema = document["components"]["responses"][ref]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Error"}
    codes = document["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
    assert "busy" in codes
