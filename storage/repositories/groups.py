"""SQL for ``groups``: the user's chats, their selection and whether they can be written to.

Every write to the table is here (the engine disables and migrates groups through this module too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from domain.models import GroupRecord

COLUMNS = ("group_id, user_id, peer_id, access_hash, kind, title, selected, status, reason, archived, "
           "is_forum, topic_id")


def to_record(row: asyncpg.Record) -> GroupRecord:
    return GroupRecord(
        group_id=row["group_id"],
        user_id=row["user_id"],
        peer_id=row["peer_id"],
        access_hash=row["access_hash"],
        kind=row["kind"],
        title=row["title"],
        selected=row["selected"],
        status=row["status"],
        reason=row["reason"],
        archived=row["archived"],
        is_forum=row["is_forum"],
        topic_id=row["topic_id"],
    )


@dataclass(frozen=True)
class ImportedGroup:
    peer_id: int
    access_hash: int
    kind: str
    title: str
    status: str  # active | disabled
    reason: str
    archived: bool = False  # listed in the account's archive folder


@dataclass(frozen=True)
class Counts:
    total: int
    selected: int
    active: int
    disabled: int
    gone: int


async def merge(
    conn: asyncpg.Connection, user_id: int, imported: Sequence[ImportedGroup], now: datetime
) -> tuple[int, int]:
    """Upsert the imported groups in one statement; returns (new, updated).

    Known groups keep their selection unless they cannot be written to any more; a group that
    was gone or disabled and is listed again as writable becomes active.
    """
    if not imported:
        return 0, 0
    rows = await conn.fetch(
        """
        INSERT INTO groups AS g (user_id, peer_id, access_hash, kind, title, status, reason, selected,
                                 created_at, updated_at, archived)
        SELECT $1, i.peer_id, i.access_hash, i.kind, i.title, i.status, i.reason, false, $8, $8, i.archived
        FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $9::boolean[])
             AS i (peer_id, access_hash, kind, title, status, reason, archived)
        ON CONFLICT (user_id, peer_id) DO UPDATE SET
            access_hash = EXCLUDED.access_hash, kind = EXCLUDED.kind, title = EXCLUDED.title,
            status = EXCLUDED.status, reason = EXCLUDED.reason, archived = EXCLUDED.archived,
            selected = g.selected AND EXCLUDED.status = 'active' AND g.status <> 'gone',
            updated_at = EXCLUDED.updated_at
        RETURNING (xmax = 0) AS inserted
        """,
        user_id,
        [g.peer_id for g in imported],
        [g.access_hash for g in imported],
        [g.kind for g in imported],
        [g.title for g in imported],
        [g.status for g in imported],
        [g.reason for g in imported],
        now,
        [g.archived for g in imported],
    )
    new = sum(1 for r in rows if r["inserted"])
    return new, len(rows) - new


async def mark_gone_except(
    conn: asyncpg.Connection, user_id: int, keep_peer_ids: Sequence[int], reason: str, now: datetime
) -> int:
    """Groups no longer listed: gone and unselected. Returns how many became gone now."""
    status = await conn.execute(
        """UPDATE groups SET status = 'gone', reason = $3, selected = false, updated_at = $4
           WHERE user_id = $1 AND status <> 'gone' AND NOT (peer_id = ANY($2::bigint[]))""",
        user_id, list(keep_peer_ids), reason, now,
    )
    return int(status.split()[-1])


async def page(conn: asyncpg.Connection, user_id: int, offset: int, limit: int) -> list[GroupRecord]:
    rows = await conn.fetch(
        f"""SELECT {COLUMNS} FROM groups WHERE user_id = $1
            ORDER BY title, group_id OFFSET $2 LIMIT $3""",
        user_id, offset, limit,
    )
    return [to_record(r) for r in rows]


async def counts(conn: asyncpg.Connection, user_id: int) -> Counts:
    row = await conn.fetchrow(
        """SELECT count(*) AS total,
                  count(*) FILTER (WHERE selected AND status = 'active') AS selected,
                  count(*) FILTER (WHERE status = 'active') AS active,
                  count(*) FILTER (WHERE status = 'disabled') AS disabled,
                  count(*) FILTER (WHERE status = 'gone') AS gone
           FROM groups WHERE user_id = $1""",
        user_id,
    )
    assert row is not None
    return Counts(row["total"], row["selected"], row["active"], row["disabled"], row["gone"])


async def count_selected(conn: asyncpg.Connection, user_id: int) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM groups WHERE user_id = $1 AND selected AND status = 'active'", user_id
    ))


async def get_owned(
    conn: asyncpg.Connection, user_id: int, group_id: int, for_update: bool = False
) -> GroupRecord | None:
    """The group only if it belongs to ``user_id`` (a forged id finds nothing)."""
    suffix = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM groups WHERE group_id = $1 AND user_id = $2{suffix}", group_id, user_id
    )
    return None if row is None else to_record(row)


async def set_selected(
    conn: asyncpg.Connection, user_id: int, group_ids: Sequence[int], selected: bool, now: datetime
) -> int:
    """Select/unselect the user's groups among ``group_ids``; selecting touches active ones only."""
    status = await conn.execute(
        """UPDATE groups SET selected = $3, updated_at = $4
           WHERE user_id = $1 AND group_id = ANY($2::bigint[]) AND selected <> $3
             AND (NOT $3 OR status = 'active')""",
        user_id, list(group_ids), selected, now,
    )
    return int(status.split()[-1])


async def mark_all_gone(conn: asyncpg.Connection, user_id: int, reason: str, now: datetime) -> int:
    """Another Telegram account was connected: the old account's groups are not reachable."""
    status = await conn.execute(
        """UPDATE groups SET status = 'gone', reason = $2, selected = false, updated_at = $3
           WHERE user_id = $1 AND status <> 'gone'""",
        user_id, reason, now,
    )
    return int(status.split()[-1])


async def disabled_selected(conn: asyncpg.Connection, user_id: int, limit: int) -> list[GroupRecord]:
    """Groups the user chose that can't be posted to any more (disabled or gone)."""
    rows = await conn.fetch(
        f"""SELECT {COLUMNS} FROM groups WHERE user_id = $1 AND selected AND status <> 'active'
            ORDER BY title, group_id LIMIT $2""",
        user_id, limit,
    )
    return [to_record(r) for r in rows]


async def disabled(conn: asyncpg.Connection, user_id: int, limit: int) -> list[GroupRecord]:
    rows = await conn.fetch(
        f"""SELECT {COLUMNS} FROM groups WHERE user_id = $1 AND status = 'disabled'
            ORDER BY title, group_id LIMIT $2""",
        user_id, limit,
    )
    return [to_record(r) for r in rows]


async def disable(conn: asyncpg.Connection, group_id: int, reason: str) -> str | None:
    """Disable an active group with the reason; returns its title, None if it was not active."""
    title: str | None = await conn.fetchval(
        """
        UPDATE groups SET status = 'disabled', reason = $2, updated_at = now()
        WHERE group_id = $1 AND status = 'active'
        RETURNING title
        """,
        group_id,
        reason,
    )
    return title


async def migrate(
    conn: asyncpg.Connection, user_id: int, group_id: int, new_peer_id: int, new_access_hash: int
) -> int | None:
    """The group became the supergroup ``new_peer_id``: point the row at it.

    If the user already has that supergroup as another row, this row is marked ``gone`` instead
    and the other row's id is returned (None otherwise).
    """
    other: int | None = await conn.fetchval(
        "SELECT group_id FROM groups WHERE user_id = $1 AND peer_id = $2 AND group_id <> $3",
        user_id, new_peer_id, group_id,
    )
    if other is not None:
        await conn.execute(
            "UPDATE groups SET status = 'gone', reason = 'CHAT_MIGRATED', updated_at = now() "
            "WHERE group_id = $1",
            group_id,
        )
        return other
    await conn.execute(
        """
        UPDATE groups SET peer_id = $2, access_hash = $3, kind = 'supergroup', updated_at = now()
        WHERE group_id = $1
        """,
        group_id, new_peer_id, new_access_hash,
    )
    return None
