"""SQL about Telegram accounts as such (not bot users' rows): who holds one now.

A Telegram account is connected by at most one bot user (index ``accounts_tg_user_id_connected_key``,
migration 0005). ``holder_elsewhere`` serialises logins of one Telegram account with a transaction-
scoped advisory lock, so a second login in flight waits for the first one's commit and then sees it.
"""

from __future__ import annotations

import asyncpg

# advisory lock class of "one Telegram account" (two-key form: the class, then the account's low bits)
_LOCK_CLASS = 11


async def holder_elsewhere(conn: asyncpg.Connection, tg_user_id: int, user_id: int) -> int | None:
    """The bot user other than ``user_id`` who has ``tg_user_id`` connected, else None.

    Call inside the transaction that then connects the account: the advisory lock is held until it ends.
    """
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashint8($2))", _LOCK_CLASS, tg_user_id)
    holder = await conn.fetchval(
        "SELECT user_id FROM accounts WHERE tg_user_id = $1 AND status = 'connected' AND user_id <> $2",
        tg_user_id, user_id,
    )
    return None if holder is None else int(holder)
