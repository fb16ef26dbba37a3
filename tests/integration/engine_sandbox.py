"""Users of the engine backed by the sandbox world: accounts logged in through the sandbox gateway.

Used by the end-to-end tests in test_worker.py, the chaos tests and the benchmarks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

from accounts.crypto import SessionCipher
from accounts.gateway import AccountGateway, AccountRef, release
from sandbox.client import SandboxClient


@dataclass(frozen=True)
class WorldUser:
    user_id: int
    phone: str
    account_id: int
    group_ids: list[int]  # our database ids
    peer_ids: list[int]  # the sandbox world's group ids


def phone_of(user_id: int) -> str:
    return f"+1999{user_id:07d}"


async def login(client: SandboxClient, gateway: AccountGateway, phone: str) -> str:
    """A durable session for ``phone`` through the real login steps of the gateway."""
    state = await gateway.send_code(f"login_{phone[1:]}", phone)
    code = await client.latest_code(phone)
    signed = await gateway.sign_in(state, code)
    return signed.session


async def create_world_users(
    client: SandboxClient,
    gateway: AccountGateway,
    conn: asyncpg.Connection,
    cipher: SessionCipher,
    user_ids: list[int],
    groups: int,
    *,
    interval: int = 3600,
    text: str = "broadcast",
    slow_mode: dict[int, int] | None = None,
) -> list[WorldUser]:
    """Sandbox accounts with ``groups`` groups each, logged in, imported and running in our database."""
    slow_mode = slow_mode or {}
    specs = []
    for uid in user_ids:
        specs.append({
            "phone": phone_of(uid), "first_name": f"U{uid}",
            "groups": [{"id": uid * 1000 + i, "title": f"g{uid}-{i}", "kind": "supergroup",
                        **({"slow_mode": slow_mode[uid * 1000 + i]} if uid * 1000 + i in slow_mode else {})}
                       for i in range(1, groups + 1)],
        })
    for i in range(0, len(specs), 200):
        await client.add_accounts(specs[i:i + 200])
    sessions = await asyncio.gather(*(login(client, gateway, phone_of(uid)) for uid in user_ids))
    out = []
    for uid, session in zip(user_ids, sessions, strict=True):
        dialogs = await gateway.list_groups(AccountRef(0, session))
        await release(gateway, AccountRef(0, session))  # as the import does: one process per key at once
        await conn.execute("INSERT INTO users (user_id, first_name, access_status) VALUES ($1, 'U', 'granted')",
                           uid)
        account_id = await conn.fetchval(
            """INSERT INTO accounts (user_id, phone, tg_user_id, first_name, session_enc)
               VALUES ($1, $2, $3, 'U', $4) RETURNING account_id""",
            uid, phone_of(uid), uid, cipher.encrypt(session))
        rows = await conn.fetch(
            """INSERT INTO groups (user_id, peer_id, access_hash, kind, title, selected)
               SELECT $1, p, h, 'supergroup', 't', true FROM unnest($2::bigint[], $3::bigint[]) AS x(p, h)
               RETURNING group_id, peer_id""",
            uid, [d.peer_id for d in dialogs], [d.access_hash for d in dialogs])
        await conn.execute("INSERT INTO messages (user_id, version, text) VALUES ($1, 1, $2)", uid, text)
        await conn.execute(
            """INSERT INTO campaigns (user_id, status, interval_seconds, next_run_at, started_at)
               VALUES ($1, 'running', $2, now(), now() - interval '1 minute')""", uid, interval)
        rows = sorted(rows, key=lambda r: r["peer_id"])
        out.append(WorldUser(uid, phone_of(uid), account_id, [r["group_id"] for r in rows],
                             [r["peer_id"] for r in rows]))
    return out
