"""Account safety keyed by the Telegram account (issue 11.4): one sandbox account used by two bot
users in turn keeps its pace; the sandbox's event log is the witness."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
import redis.asyncio as aioredis

from accounts.crypto import SessionCipher
from accounts.gateway import AccountRef
from accounts.sandbox_gateway import SandboxGateway
from config.settings import SandboxSettings
from sandbox.client import SandboxClient
from sandbox.server import run_sandbox
from storage.db import Database
from tests.integration.engine_sandbox import login
from tests.integration.engine_support import Engine, open_round_count, settings_with

pytestmark = pytest.mark.integration

PHONE = "+19990000077"
TG_USER_ID = 19990000077  # the world's user id of PHONE (its digits)
GAP_MIN, GAP_MAX = 0.4, 0.5


async def _add_bot_user(db: Database, cipher: SessionCipher, uid: int, session: str | None,
                        peers: list[tuple[int, int]]) -> None:
    async with db.connection() as conn:
        await conn.execute("INSERT INTO users (user_id, access_status) VALUES ($1, 'granted')", uid)
        if session is not None:
            await _connect(db, cipher, uid, session)
        await conn.executemany(
            "INSERT INTO groups (user_id, peer_id, access_hash, kind, title, selected) "
            "VALUES ($1, $2, $3, 'supergroup', 't', true)", [(uid, p, h) for p, h in peers])
        await conn.execute("INSERT INTO messages (user_id, version, text) VALUES ($1, 1, $2)", uid, f"from {uid}")
        await conn.execute(
            """INSERT INTO campaigns (user_id, status, interval_seconds, next_run_at, started_at)
               VALUES ($1, 'running', 3600, now() + interval '1 hour', now() - interval '1 minute')""", uid)


async def _connect(db: Database, cipher: SessionCipher, uid: int, session: str) -> None:
    async with db.connection() as conn:
        await conn.execute(
            """INSERT INTO accounts (user_id, phone, tg_user_id, first_name, session_enc)
               VALUES ($1, $2, $3, 'Same', $4)
               ON CONFLICT (user_id, tg_user_id) DO UPDATE SET status = 'connected',
                                                         session_enc = EXCLUDED.session_enc""",
            uid, PHONE, TG_USER_ID, cipher.encrypt(session))


async def test_one_telegram_account_from_two_bot_users_keeps_every_gap(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    server = await run_sandbox(SandboxSettings(host="127.0.0.1", port=0, rate_limits=False, seed_file=""))
    client = SandboxClient(server.url)
    gateway = SandboxGateway(server.url)
    settings = settings_with(gap_min=GAP_MIN, gap_max=GAP_MAX, batch_size=2)
    tasks: list[asyncio.Task[None]] = []
    try:
        await client.add_accounts([{"phone": PHONE, "first_name": "Same", "groups": [
            {"id": 77_000 + i, "title": f"g{i}", "kind": "supergroup"} for i in range(1, 7)]}])
        first_session = await login(client, gateway, PHONE)
        second_session = await login(client, gateway, PHONE)  # the second bot user's own login
        peers = [(g.peer_id, g.access_hash) for g in await gateway.list_groups(AccountRef(0, first_session))]
        await _add_bot_user(db, cipher, 1, first_session, peers)
        await _add_bot_user(db, cipher, 2, None, peers)
        # two workers, each with its own queue consumer
        first, second = (Engine(db, redis_client, gateway, settings, cipher, consumer=f"w{n}") for n in (1, 2))
        since = max((e["seq"] for e in await client.events()), default=0)

        async with db.connection() as conn:
            await conn.execute("UPDATE campaigns SET next_run_at = now() WHERE user_id = 1")
        await first.jobs.tick()
        tasks.append(asyncio.create_task(first.run_until_done(within=60)))

        async def sends() -> list[dict[str, object]]:
            return [e for e in await client.events(since) if e["method"] == "send_message" and e["ok"]]

        deadline = time.monotonic() + 30
        while len(await sends()) < 3:  # mid-round: user 1 hands the account over to user 2
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        async with db.connection() as conn:
            await conn.execute("UPDATE accounts SET status = 'disconnected', session_enc = NULL WHERE user_id = 1")
        await _connect(db, cipher, 2, second_session)
        async with db.connection() as conn:
            await conn.execute("UPDATE campaigns SET next_run_at = now() WHERE user_id = 2")
        await second.jobs.tick()
        tasks.append(asyncio.create_task(second.run_until_done(within=60)))
        await asyncio.gather(*tasks)
        assert await open_round_count(db) == 0

        posted = await sends()
        feeds = [await client.group_messages(g) for g, _ in peers]
        texts = [post["text"] for feed in feeds for post in feed]
        assert texts.count("from 2") == len(peers) and 3 <= texts.count("from 1") < len(peers)
        stamps = sorted(float(str(e["ts_ms"])) for e in posted if e["phone"] == PHONE)
        assert len(stamps) == len(texts)
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        # every gap between two sends of the account, across the two bot users, is at least GAP_MIN
        assert min(gaps) >= GAP_MIN * 1000 * 0.95, gaps
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await gateway.close()
        await client.close()
        await server.close()
