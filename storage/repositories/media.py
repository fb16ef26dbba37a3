"""SQL for ``media``: bytes captured from the bot chat, uploaded later by the worker."""

from __future__ import annotations

import asyncpg

from domain.models import MediaRecord

COLUMNS = ("media_id, sha256, kind, filename, mime_type, bot_file_id, octet_length(data) AS size, "
           "width, height, duration")


def to_record(row: asyncpg.Record) -> MediaRecord:
    return MediaRecord(
        media_id=row["media_id"],
        sha256=row["sha256"],
        kind=row["kind"],
        filename=row["filename"],
        mime_type=row["mime_type"],
        bot_file_id=row["bot_file_id"],
        size=row["size"],
        width=row["width"],
        height=row["height"],
        duration=row["duration"],
    )


async def find(conn: asyncpg.Connection, sha256: str, kind: str, filename: str) -> int | None:
    value = await conn.fetchval(
        """SELECT media_id FROM media WHERE sha256 = $1 AND kind = $2 AND filename = $3
           ORDER BY media_id LIMIT 1""",
        sha256, kind, filename,
    )
    return None if value is None else int(value)


async def insert(
    conn: asyncpg.Connection, sha256: str, kind: str, filename: str, mime_type: str, bot_file_id: str,
    data: bytes, *, width: int = 0, height: int = 0, duration: float = 0.0, thumb: bytes | None = None,
) -> int:
    return int(await conn.fetchval(
        """INSERT INTO media (sha256, kind, filename, mime_type, bot_file_id, data, width, height, duration,
                              thumb)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING media_id""",
        sha256, kind, filename, mime_type, bot_file_id, data, width, height, duration, thumb,
    ))


async def get(conn: asyncpg.Connection, media_id: int) -> MediaRecord | None:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM media WHERE media_id = $1", media_id)
    return None if row is None else to_record(row)


async def data(conn: asyncpg.Connection, media_id: int) -> bytes | None:
    value = await conn.fetchval("SELECT data FROM media WHERE media_id = $1", media_id)
    return None if value is None else bytes(value)


async def thumb(conn: asyncpg.Connection, media_id: int) -> bytes | None:
    value = await conn.fetchval("SELECT thumb FROM media WHERE media_id = $1", media_id)
    return None if value is None else bytes(value)
