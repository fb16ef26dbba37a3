"""SQL for ``messages``: versioned broadcast messages (a round snapshots the message_id).

U9: an account's *active* messages, ordered by ``position``, are the ones a broadcast rotates through;
replacing one deactivates the old version (rounds keep pointing at it), deleting one deactivates it.
An album's items are in ``message_media``; ``messages.media_id`` is its first item.
U8: the menus read and write the messages of the user's current account (``scope.current``); a new
version is written to it by the insert trigger of migration 0017. Versions stay numbered per user.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from domain.models import MessageRecord
from storage.repositories.scope import current

CURRENT = current()
CURRENT_M = current(alias="m")

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
    """The current account's first active message (message 1)."""
    row = await conn.fetchrow(_SELECT + f" WHERE {CURRENT_M} AND m.active ORDER BY m.position LIMIT 1",
                              user_id)
    return None if row is None else to_record(row)


async def active(conn: asyncpg.Connection, user_id: int) -> list[MessageRecord]:
    """The user's active messages in order (message 1, 2, ...)."""
    rows = await conn.fetch(_SELECT + f" WHERE {CURRENT_M} AND m.active ORDER BY m.position", user_id)
    return [to_record(r) for r in rows]


async def count_active(conn: asyncpg.Connection, user_id: int) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM messages WHERE {CURRENT} AND active", user_id))


async def deactivate(conn: asyncpg.Connection, message_id: int) -> int | None:
    """The message leaves the rotation (a delete or a replacement): its position, None if it was
    not active."""
    value = await conn.fetchval(
        "UPDATE messages SET active = false WHERE message_id = $1 AND active RETURNING position", message_id)
    return None if value is None else int(value)


async def next_position(conn: asyncpg.Connection, user_id: int) -> int:
    return int(await conn.fetchval(
        f"SELECT coalesce(max(position), 0) + 1 FROM messages WHERE {CURRENT} AND active", user_id))


async def album(conn: asyncpg.Connection, message_id: int) -> list[int]:
    """The media ids of an album message in order (empty: not an album)."""
    rows = await conn.fetch("SELECT media_id FROM message_media WHERE message_id = $1 ORDER BY position",
                            message_id)
    return [int(r["media_id"]) for r in rows]


async def insert_album(conn: asyncpg.Connection, message_id: int, media_ids: list[int]) -> None:
    await conn.executemany(
        "INSERT INTO message_media (message_id, position, media_id) VALUES ($1, $2, $3)",
        [(message_id, i, media_id) for i, media_id in enumerate(media_ids)],
    )


async def get(conn: asyncpg.Connection, message_id: int) -> MessageRecord | None:
    row = await conn.fetchrow(_SELECT + " WHERE m.message_id = $1", message_id)
    return None if row is None else to_record(row)


async def insert_version(
    conn: asyncpg.Connection, user_id: int, text: str, entities: list[dict[str, Any]], media_id: int | None,
    now: datetime, position: int = 1,
) -> tuple[int, int]:
    """A new active version (previous + 1) at ``position`` of the current account; the caller holds
    the user's lock so
    versions never collide, and has deactivated the message it replaces at that position."""
    row = await conn.fetchrow(
        """INSERT INTO messages (user_id, version, text, entities, media_id, created_at, active, position)
           SELECT $1, coalesce(max(version), 0) + 1, $2, $3::jsonb, $4, $5, true, $6
           FROM messages WHERE user_id = $1
           RETURNING message_id, version""",
        user_id, text, entities, media_id, now, position,
    )
    assert row is not None
    return int(row["message_id"]), int(row["version"])


async def current_version(conn: asyncpg.Connection, user_id: int) -> int | None:
    """The newest version among the active messages (None: no message to broadcast)."""
    value = await conn.fetchval(f"SELECT max(version) FROM messages WHERE {CURRENT} AND active", user_id)
    return None if value is None else int(value)
