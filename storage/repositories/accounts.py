"""SQL for ``accounts``: a user's Telegram accounts (U8: up to ``ACCOUNTS_PER_USER``), each session
stored encrypted only, and which one is the user's current account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from domain.models import AccountRecord

COLUMNS = """account_id, user_id, phone, tg_user_id, first_name, session_enc, status,
    disconnected_reason, updated_at"""


def to_record(row: asyncpg.Record) -> AccountRecord:
    enc = row["session_enc"]
    return AccountRecord(
        account_id=row["account_id"],
        user_id=row["user_id"],
        phone=row["phone"],
        tg_user_id=row["tg_user_id"],
        first_name=row["first_name"],
        session_enc=bytes(enc) if enc is not None else None,
        status=row["status"],
        disconnected_reason=row["disconnected_reason"],
        updated_at=row["updated_at"],
    )


async def get(conn: asyncpg.Connection, user_id: int, for_update: bool = False) -> AccountRecord | None:
    """The user's current account (the one the menus act on); None when they never connected one."""
    suffix = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM accounts WHERE account_id = current_account($1) AND user_id = $1{suffix}",
        user_id,
    )
    return None if row is None else to_record(row)


async def get_owned(
    conn: asyncpg.Connection, user_id: int, account_id: int, for_update: bool = False
) -> AccountRecord | None:
    """The account only if it belongs to ``user_id`` (a forged id finds nothing)."""
    suffix = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM accounts WHERE account_id = $2 AND user_id = $1{suffix}", user_id, account_id
    )
    return None if row is None else to_record(row)


async def connected_of(conn: asyncpg.Connection, user_id: int) -> list[AccountRecord]:
    """The user's connected accounts, oldest first (U8.1)."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM accounts WHERE user_id = $1 AND status = 'connected' ORDER BY account_id",
        user_id,
    )
    return [to_record(r) for r in rows]


async def all_of(conn: asyncpg.Connection, user_id: int) -> list[AccountRecord]:
    """Every account row of the user, connected first, then oldest first (the admin views)."""
    rows = await conn.fetch(
        f"""SELECT {COLUMNS} FROM accounts WHERE user_id = $1
            ORDER BY status = 'connected' DESC, account_id""",
        user_id,
    )
    return [to_record(r) for r in rows]


async def count_connected_of(conn: asyncpg.Connection, user_id: int) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM accounts WHERE user_id = $1 AND status = 'connected'", user_id
    ))


@dataclass(frozen=True)
class Connected:
    record: AccountRecord
    replaced: bool  # U8.4: the same Telegram account was connected already: its session was replaced
    previous_session: bytes | None = None  # the replaced session (sealed), to log it out


async def upsert_connected(
    conn: asyncpg.Connection,
    user_id: int,
    phone: str,
    tg_user_id: int,
    first_name: str,
    session_enc: bytes,
    now: datetime,
) -> Connected:
    """Store a freshly signed-in account and make it the current one.

    The same Telegram account signed in again by this user keeps its row (its groups, messages and
    broadcast) and gets the new session; the first account a user connects takes over what they set
    before it (trigger of migration 0017). Call with the user's row locked (``users.lock``).
    """
    was = await conn.fetchrow(
        "SELECT status, session_enc FROM accounts WHERE user_id = $1 AND tg_user_id = $2 FOR UPDATE",
        user_id, tg_user_id,
    )
    row = await conn.fetchrow(
        f"""
        INSERT INTO accounts (user_id, phone, tg_user_id, first_name, session_enc, status,
                              disconnected_reason, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, 'connected', '', $6, $6)
        ON CONFLICT (user_id, tg_user_id) DO UPDATE SET
            phone = EXCLUDED.phone, first_name = EXCLUDED.first_name,
            session_enc = EXCLUDED.session_enc, status = 'connected', disconnected_reason = '',
            updated_at = EXCLUDED.updated_at
        RETURNING {COLUMNS}
        """,
        user_id, phone, tg_user_id, first_name, session_enc, now,
    )
    assert row is not None
    record = to_record(row)
    await conn.execute("UPDATE users SET current_account_id = $2 WHERE user_id = $1",
                       user_id, record.account_id)
    previous = was["session_enc"] if was is not None else None
    return Connected(record, replaced=was is not None and was["status"] == "connected",
                     previous_session=bytes(previous) if previous is not None else None)


async def set_current(conn: asyncpg.Connection, user_id: int, account_id: int) -> bool:
    """U8.2: the menus now act on this account; False when it is not one of the user's."""
    status = await conn.execute(
        """UPDATE users SET current_account_id = $2 WHERE user_id = $1
             AND EXISTS (SELECT 1 FROM accounts WHERE account_id = $2 AND user_id = $1)""",
        user_id, account_id,
    )
    return str(status).endswith(" 1")


async def disconnect(
    conn: asyncpg.Connection, account_id: int | None, reason: str, now: datetime | None = None
) -> bool:
    """Delete the session (the row stays, disconnected, for the phone and the reason).

    A disconnected account never keeps its session. When it was the user's current account, another
    connected one (the most recently used) becomes current (U8); with none left it stays current,
    so the menus still show what was set. ``now`` None: the database clock.
    """
    done = await conn.fetchval(
        """
        WITH gone AS (
            UPDATE accounts SET status = 'disconnected', session_enc = NULL, disconnected_reason = $2,
                                updated_at = coalesce($3::timestamptz, now())
            WHERE account_id = $1 AND status = 'connected'
            RETURNING user_id
        ), successor AS (
            SELECT a.account_id FROM accounts a, gone
            WHERE a.user_id = gone.user_id AND a.status = 'connected' AND a.account_id <> $1
            ORDER BY a.updated_at DESC, a.account_id DESC LIMIT 1
        ), moved AS (
            UPDATE users u SET current_account_id = successor.account_id FROM gone, successor
            WHERE u.user_id = gone.user_id AND u.current_account_id = $1
        )
        SELECT count(*) FROM gone
        """,
        account_id, reason, now,
    )
    return bool(done)


async def count_connected(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM accounts WHERE status = 'connected'"))
