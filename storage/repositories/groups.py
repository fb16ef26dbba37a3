"""SQL for ``groups``: an account's chats, their selection and whether they can be written to.

The menus read and write the groups of the user's current account (``scope.current``); an import
names the account it lists (U8). Every write to the table is here (the engine disables and migrates
groups through this module too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from domain.models import GroupRecord
from storage.repositories.scope import current, named_or_current

CURRENT = current()

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
    conn: asyncpg.Connection, user_id: int, imported: Sequence[ImportedGroup], now: datetime,
    account_id: int | None = None,
) -> tuple[int, int]:
    """Upsert the imported groups of ``account_id`` (default: the current account) in one
    statement; returns (new, updated).

    Known groups keep their selection unless they cannot be written to any more; a group that
    was gone or disabled and is listed again as writable becomes active.
    """
    if not imported:
        return 0, 0
    rows = await conn.fetch(
        """
        INSERT INTO groups AS g (user_id, account_id, peer_id, access_hash, kind, title, status, reason,
                                 selected, created_at, updated_at, archived)
        SELECT $1, coalesce($10::bigint, current_account($1)), i.peer_id, i.access_hash, i.kind, i.title,
               i.status, i.reason, false, $8, $8, i.archived
        FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $9::boolean[])
             AS i (peer_id, access_hash, kind, title, status, reason, archived)
        ON CONFLICT ON CONSTRAINT groups_user_id_account_id_peer_id_key DO UPDATE SET
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
        account_id,
    )
    new = sum(1 for r in rows if r["inserted"])
    return new, len(rows) - new


async def mark_gone_except(
    conn: asyncpg.Connection, user_id: int, keep_peer_ids: Sequence[int], reason: str, now: datetime,
    account_id: int | None = None,
) -> int:
    """Groups of ``account_id`` (default: the current account) no longer listed: gone and
    unselected. Returns how many became gone now."""
    status = await conn.execute(
        f"""UPDATE groups SET status = 'gone', reason = $3, selected = false, updated_at = $4
            WHERE {named_or_current("$1", "$5")} AND status <> 'gone'
              AND NOT (peer_id = ANY($2::bigint[]))""",
        user_id, list(keep_peer_ids), reason, now, account_id,
    )
    return int(status.split()[-1])


async def page(conn: asyncpg.Connection, user_id: int, offset: int, limit: int) -> list[GroupRecord]:
    rows = await conn.fetch(
        f"""SELECT {COLUMNS} FROM groups WHERE {CURRENT}
            ORDER BY title, group_id OFFSET $2 LIMIT $3""",
        user_id, offset, limit,
    )
    return [to_record(r) for r in rows]


async def counts(conn: asyncpg.Connection, user_id: int) -> Counts:
    row = await conn.fetchrow(
        f"""SELECT count(*) AS total,
                  count(*) FILTER (WHERE selected AND status = 'active') AS selected,
                  count(*) FILTER (WHERE status = 'active') AS active,
                  count(*) FILTER (WHERE status = 'disabled') AS disabled,
                  count(*) FILTER (WHERE status = 'gone') AS gone
           FROM groups WHERE {CURRENT}""",
        user_id,
    )
    assert row is not None
    return Counts(row["total"], row["selected"], row["active"], row["disabled"], row["gone"])


async def count_selected(conn: asyncpg.Connection, user_id: int) -> int:
    return int(await conn.fetchval(
        f"SELECT count(*) FROM groups WHERE {CURRENT} AND selected AND status = 'active'", user_id
    ))


async def get_owned(
    conn: asyncpg.Connection, user_id: int, group_id: int, for_update: bool = False
) -> GroupRecord | None:
    """The group only if it is one of the current account of ``user_id`` (a forged id, or a stale
    button of another account, finds nothing)."""
    suffix = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM groups WHERE group_id = $1 AND {current('$2')}{suffix}", group_id, user_id
    )
    return None if row is None else to_record(row)


async def set_selected(
    conn: asyncpg.Connection, user_id: int, group_ids: Sequence[int], selected: bool, now: datetime
) -> int:
    """Select/unselect the current account's groups among ``group_ids``; selecting touches active
    ones only."""
    status = await conn.execute(
        f"""UPDATE groups SET selected = $3, updated_at = $4
            WHERE {CURRENT} AND group_id = ANY($2::bigint[]) AND selected <> $3
              AND (NOT $3 OR status = 'active')""",
        user_id, list(group_ids), selected, now,
    )
    return int(status.split()[-1])


async def disabled_selected(conn: asyncpg.Connection, user_id: int, limit: int) -> list[GroupRecord]:
    """Groups the user chose that can't be posted to any more (disabled or gone)."""
    rows = await conn.fetch(
        f"""SELECT {COLUMNS} FROM groups WHERE {CURRENT} AND selected AND status <> 'active'
            ORDER BY title, group_id LIMIT $2""",
        user_id, limit,
    )
    return [to_record(r) for r in rows]


async def disabled(conn: asyncpg.Connection, user_id: int, limit: int) -> list[GroupRecord]:
    rows = await conn.fetch(
        f"""SELECT {COLUMNS} FROM groups WHERE {CURRENT} AND status = 'disabled'
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

    If the group's account already has that supergroup as another row, this row is marked
    ``gone`` instead and the other row's id is returned (None otherwise).
    """
    other: int | None = await conn.fetchval(
        """SELECT o.group_id FROM groups g
           JOIN groups o ON o.user_id = g.user_id AND o.account_id IS NOT DISTINCT FROM g.account_id
                        AND o.peer_id = $2 AND o.group_id <> g.group_id
           WHERE g.group_id = $3 AND g.user_id = $1""",
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
