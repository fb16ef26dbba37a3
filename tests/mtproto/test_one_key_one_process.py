"""One session key, one process at a time (issue 11.5), with the real Telethon adapter over the
sandbox's MTProto: two workers (each its own gateway, as two processes) and a group import in the
bot's process during a broadcast never hold one auth key on two connections at once; the endpoint
records the connections per key and would answer AUTH_KEY_DUPLICATED."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric import rsa

from accounts.telethon import TelethonGateway
from accounts.telethon.sandbox import SandboxClientFactory
from config.settings import SandboxSettings, Settings
from sandbox.client import SandboxClient
from sandbox.mtproto import MTProtoServer, keys, start_mtproto
from sandbox.server import SandboxServer, run_sandbox
from services.groups import GroupService
from storage.db import Database
from storage.lease import Leases
from storage.user_lock import UserLock
from tests.integration.engine_sandbox import create_world_users
from tests.integration.engine_support import Engine, new_cipher, open_round_count, settings_with

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def stack(
    db_url: str, rsa_key: rsa.RSAPrivateKey
) -> AsyncIterator[tuple[SandboxServer, MTProtoServer, Database]]:
    db = await Database.connect(db_url, max_size=10)
    sandbox = await run_sandbox(SandboxSettings(host="127.0.0.1", port=0, rate_limits=False, seed_file=""))
    mtproto = await start_mtproto(sandbox.world, "127.0.0.1", 0, rsa_key)
    try:
        yield sandbox, mtproto, db
    finally:
        await mtproto.close()
        await sandbox.close()
        await db.close()


def gateway(mtproto: MTProtoServer, rsa_key: rsa.RSAPrivateKey) -> TelethonGateway:
    factory = SandboxClientFactory("127.0.0.1", mtproto.port, keys.public_pem(rsa_key))
    return TelethonGateway(Settings(), factory=factory)


async def test_two_workers_and_an_import_never_share_a_key_at_once(
    db_url: str, rsa_key: rsa.RSAPrivateKey, redis_client: aioredis.Redis
) -> None:
    cipher = new_cipher()
    settings = settings_with(gap_min=0.05, gap_max=0.1, batch_size=2)
    async with stack(db_url, rsa_key) as (sandbox, mtproto, db):
        client = SandboxClient(sandbox.url)
        bot_side, worker_a, worker_b = (gateway(mtproto, rsa_key) for _ in range(3))
        try:
            async with db.connection() as conn:
                users = await create_world_users(client, bot_side, conn, cipher, [1, 2], 6)
            await bot_side.pool.close()  # the import below opens its own client again
            bot_side = gateway(mtproto, rsa_key)
            first = Engine(db, redis_client, worker_a, settings, cipher, consumer="wa")
            second = Engine(db, redis_client, worker_b, settings, cipher, consumer="wb")
            second.jobs = first.jobs
            await first.jobs.tick()
            runs = [asyncio.create_task(e.run_until_done(within=60)) for e in (first, second)]
            lock = UserLock(Leases(redis_client), settings.engine.lease_ttl)
            groups = GroupService(db, bot_side, cipher, Settings(engine=settings.engine), lock=lock,
                                  lock_wait=10)
            for _ in range(1500):  # until the broadcast has started (at most 30 s)
                if any(e["method"] == "send_message" for e in await client.events()):
                    break
                await asyncio.sleep(0.02)
            imported = await asyncio.gather(*(groups.import_groups(u.user_id) for u in users))  # mid-broadcast
            await asyncio.gather(*runs)
            assert await open_round_count(db) == 0
        finally:
            for each in (bot_side, worker_a, worker_b):
                await each.close()
            await client.close()
        assert all(result.total == 6 for result in imported)
        assert mtproto.key_use.conflicts == 0 and not mtproto.key_use.duplicated
        assert mtproto.key_use.peak and max(mtproto.key_use.peak.values()) == 1
        for user in users:
            for peer in user.peer_ids:
                assert len(sandbox.world.group_messages(peer)) == 1
