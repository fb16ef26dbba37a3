"""SQL for ``accounts``: one Telegram account per user, its session stored encrypted only."""

from __future__ import annotations

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
    suffix = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM accounts WHERE user_id = $1{suffix}", user_id)
    return None if row is None else to_record(row)


async def upsert_connected(
    conn: asyncpg.Connection,
    user_id: int,
    phone: str,
    tg_user_id: int,
    first_name: str,
    session_enc: bytes,
    now: datetime,
) -> tuple[AccountRecord, int | None]:
    """Store a freshly signed-in account; returns it and the Telegram user id it replaced (if any)."""
    previous = await conn.fetchval("SELECT tg_user_id FROM accounts WHERE user_id = $1 FOR UPDATE", user_id)
    row = await conn.fetchrow(
        f"""
        INSERT INTO accounts (user_id, phone, tg_user_id, first_name, session_enc, status,
                              disconnected_reason, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, 'connected', '', $6, $6)
        ON CONFLICT (user_id) DO UPDATE SET
            phone = EXCLUDED.phone, tg_user_id = EXCLUDED.tg_user_id, first_name = EXCLUDED.first_name,
            session_enc = EXCLUDED.session_enc, status = 'connected', disconnected_reason = '',
            updated_at = EXCLUDED.updated_at
        RETURNING {COLUMNS}
        """,
        user_id, phone, tg_user_id, first_name, session_enc, now,
    )
    assert row is not None
    return to_record(row), (int(previous) if previous is not None else None)


async def disconnect(
    conn: asyncpg.Connection, user_id: int, reason: str, now: datetime | None = None
) -> bool:
    """Delete the session (the row stays, disconnected, for the phone and the reason).

    A disconnected account never keeps its session. ``now`` None: the database clock.
    """
    status = await conn.execute(
        """UPDATE accounts SET status = 'disconnected', session_enc = NULL, disconnected_reason = $2,
                               updated_at = coalesce($3::timestamptz, now())
           WHERE user_id = $1 AND status = 'connected'""",
        user_id, reason, now,
    )
    return str(status).endswith(" 1")


async def count_connected(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM accounts WHERE status = 'connected'"))
