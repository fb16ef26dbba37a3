"""A broadcast journey through the engine with the real Telethon adapter, over the sandbox's MTProto.

The HTTP sandbox (control API, event log) and the MTProto endpoint serve one world. The bot's
side logs in and imports groups with one ``TelethonGateway``; the worker sends with another,
as the two processes would. Against real PostgreSQL and Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric import rsa

from accounts.telethon import TelethonGateway
from accounts.telethon.sandbox import SandboxClientFactory
from config.settings import SandboxSettings, Settings
from sandbox.client import SandboxClient
from sandbox.mtproto import MTProtoServer, keys, start_mtproto
from sandbox.server import SandboxServer, run_sandbox
from storage.db import Database
from tests.integration.engine_sandbox import create_world_users
from tests.integration.engine_support import Engine, attempt_rows, new_cipher, settings_with

pytestmark = pytest.mark.integration


@dataclass
class Stack:
    sandbox: SandboxServer
    mtproto: MTProtoServer
    client: SandboxClient
    db: Database
    rsa_key: rsa.RSAPrivateKey

    def gateway(self) -> TelethonGateway:
        factory = SandboxClientFactory("127.0.0.1", self.mtproto.port, keys.public_pem(self.rsa_key))
        return TelethonGateway(Settings(), factory=factory)


@pytest.fixture
async def stack(db_url: str, rsa_key: rsa.RSAPrivateKey) -> AsyncIterator[Stack]:
    db = await Database.connect(db_url, max_size=10)
    sandbox = await run_sandbox(SandboxSettings(host="127.0.0.1", port=0, rate_limits=False, seed_file=""))
    mtproto = await start_mtproto(sandbox.world, "127.0.0.1", 0, rsa_key)
    client = SandboxClient(sandbox.url)
    yield Stack(sandbox, mtproto, client, db, rsa_key)
    await client.close()
    await mtproto.close()
    await sandbox.close()
    await db.close()


async def due_round(eng: Engine) -> int:
    await eng.jobs.tick()
    async with eng.db.connection() as conn:
        return int(await conn.fetchval("SELECT round_id FROM rounds WHERE finished_at IS NULL"))


async def test_login_import_sends_flood_wait_and_revoked_session(
    stack: Stack, redis_client: aioredis.Redis
) -> None:
    cipher = new_cipher()
    bot_side = stack.gateway()
    worker_side = stack.gateway()
    try:
        async with stack.db.connection() as conn:
            [user] = await create_world_users(stack.client, bot_side, conn, cipher, [1], 4)
        eng = Engine(stack.db, redis_client, worker_side, settings_with(), cipher)
        flooded = user.peer_ids[1]
        await stack.client.add_fault("send_message", "FLOOD_WAIT", group_id=flooded, seconds=1)

        round_id = await due_round(eng)
        await eng.run_until_done([round_id])

        for peer in user.peer_ids:  # every group exactly once, the flooded one after its hint
            assert len(await stack.client.group_messages(peer)) == 1
        sends = [e for e in await stack.client.events() if e["method"] == "send_message"]
        flood = next(e for e in sends if e.get("error") == "FLOOD_WAIT")
        assert flood["retry_after"] == 1
        retry = next(e for e in sends if e["ok"] and e.get("group_id") == flooded)
        assert retry["ts_ms"] - flood["ts_ms"] >= 1000
        rows = {r["group_id"]: r for r in await attempt_rows(stack.db, round_id)}
        row = rows[user.group_ids[user.peer_ids.index(flooded)]]
        assert (row["status"], row["tries"], row["error_code"]) == ("sent", 2, "FLOOD_WAIT")

        await stack.client.revoke_sessions(user.phone)
        async with stack.db.connection() as conn:
            await conn.execute("UPDATE campaigns SET next_run_at = now() WHERE user_id = $1", user.user_id)
        second = await due_round(eng)
        await eng.run_until_done([second])

        async with stack.db.connection() as conn:
            account = await conn.fetchrow(
                "SELECT status, disconnected_reason FROM accounts WHERE account_id = $1", user.account_id)
            campaign = await conn.fetchval("SELECT status FROM campaigns WHERE user_id = $1", user.user_id)
        assert tuple(account) == ("disconnected", "SESSION_REVOKED")
        assert campaign == "stopped"
        for peer in user.peer_ids:
            assert len(await stack.client.group_messages(peer)) == 1
    finally:
        await bot_side.close()
        await worker_side.close()
