"""SQL for ``messages``: versioned broadcast messages (a round snapshots the message_id)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from domain.models import MessageRecord

_SELECT = """
    SELECT m.message_id, m.user_id, m.version, m.text, m.entities, m.media_id,
           m.created_at, md.kind AS media_kind, coalesce(md.filename, '') AS media_filename,
           coalesce(md.bot_file_id, '') AS media_bot_file_id
    FROM messages m LEFT JOIN media md ON md.media_id = m.media_id
"""


def to_record(row: asyncpg.Record) -> MessageRecord:
    entities: list[dict[str, Any]] = list(row["entities"] or [])  # jsonb through the pool's codec
    return MessageRecord(
        message_id=row["message_id"],
        user_id=row["user_id"],
        version=row["version"],
        text=row["text"],
        entities=entities,
        media_id=row["media_id"],
        media_kind=row["media_kind"],
        media_filename=row["media_filename"],
        media_bot_file_id=row["media_bot_file_id"],
        created_at=row["created_at"],
    )


async def latest(conn: asyncpg.Connection, user_id: int) -> MessageRecord | None:
    row = await conn.fetchrow(_SELECT + " WHERE m.user_id = $1 ORDER BY m.version DESC LIMIT 1", user_id)
    return None if row is None else to_record(row)


async def get(conn: asyncpg.Connection, message_id: int) -> MessageRecord | None:
    row = await conn.fetchrow(_SELECT + " WHERE m.message_id = $1", message_id)
    return None if row is None else to_record(row)


async def insert_version(
    conn: asyncpg.Connection, user_id: int, text: str, entities: list[dict[str, Any]], media_id: int | None,
    now: datetime,
) -> tuple[int, int]:
    """A new version (previous + 1); the caller holds the user's lock so versions never collide."""
    row = await conn.fetchrow(
        """INSERT INTO messages (user_id, version, text, entities, media_id, created_at)
           SELECT $1, coalesce(max(version), 0) + 1, $2, $3::jsonb, $4, $5
           FROM messages WHERE user_id = $1
           RETURNING message_id, version""",
        user_id, text, entities, media_id, now,
    )
    assert row is not None
    return int(row["message_id"]), int(row["version"])


async def current_version(conn: asyncpg.Connection, user_id: int) -> int | None:
    value = await conn.fetchval("SELECT max(version) FROM messages WHERE user_id = $1", user_id)
    return None if value is None else int(value)
