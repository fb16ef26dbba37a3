"""SQL for ``group_topics`` and the topic a forum group posts to (``groups.topic_id``, U11).

An import replaces a forum's topics with what Telegram listed; the user's choice is kept in
``groups.topic_id`` (NULL: the General topic). A group whose chosen topic is closed or no longer
listed is disabled with ``TOPIC_CLOSED`` / ``TOPIC_DELETED``; choosing an open topic makes a group
disabled for one of those reasons active again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.repositories.scope import current, named_or_current

GENERAL = 1  # Telegram's id of the General topic
TOPIC_REASONS = ("TOPIC_CLOSED", "TOPIC_DELETED")


@dataclass(frozen=True)
class TopicRow:
    topic_id: int
    title: str
    closed: bool


async def replace(conn: asyncpg.Connection, group_id: int, topics: Sequence[TopicRow]) -> None:
    """The forum's topics become ``topics`` (in Telegram's order)."""
    await conn.execute("DELETE FROM group_topics WHERE group_id = $1", group_id)
    if topics:
        await conn.execute(
            """INSERT INTO group_topics (group_id, topic_id, title, closed, position)
               SELECT $1, t.topic_id, t.title, t.closed, t.position
               FROM unnest($2::integer[], $3::text[], $4::boolean[], $5::integer[])
                    AS t (topic_id, title, closed, position)
               ON CONFLICT (group_id, topic_id) DO NOTHING""",
            group_id, [t.topic_id for t in topics], [t.title for t in topics], [t.closed for t in topics],
            list(range(len(topics))),
        )


async def ids_by_peer(conn: asyncpg.Connection, user_id: int, peer_ids: Sequence[int],
                      account_id: int | None = None) -> dict[int, int]:
    """The group ids of these peers of ``account_id`` (default: the current account; peer id -> group id)."""
    rows = await conn.fetch(
        f"""SELECT peer_id, group_id FROM groups
            WHERE {named_or_current('$1', '$3')} AND peer_id = ANY($2::bigint[])""",
        user_id, list(peer_ids), account_id,
    )
    return {r["peer_id"]: r["group_id"] for r in rows}


async def disable_unusable(
    conn: asyncpg.Connection, user_id: int, group_ids: Sequence[int], now: datetime
) -> int:
    """Among ``group_ids`` (forums whose topics were just listed), disable the active ones whose
    chosen topic is closed (``TOPIC_CLOSED``) or not listed any more (``TOPIC_DELETED``; General
    counts as deleted only when chosen explicitly). Returns how many were disabled."""
    status = await conn.execute(
        """
        UPDATE groups g
        SET status = 'disabled', updated_at = $3,
            reason = CASE WHEN t.topic_id IS NULL THEN 'TOPIC_DELETED' ELSE 'TOPIC_CLOSED' END
        FROM groups g2 LEFT JOIN group_topics t
             ON t.group_id = g2.group_id AND t.topic_id = coalesce(g2.topic_id, 1)
        WHERE g.group_id = g2.group_id AND g2.user_id = $1 AND g2.group_id = ANY($2::bigint[])
          AND g2.is_forum AND g2.status = 'active'
          AND (t.closed OR (t.topic_id IS NULL AND g2.topic_id IS NOT NULL))
        """,
        user_id, list(group_ids), now,
    )
    return int(status.split()[-1])


async def count(conn: asyncpg.Connection, group_id: int) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM group_topics WHERE group_id = $1", group_id))


async def page(conn: asyncpg.Connection, group_id: int, offset: int, limit: int) -> list[TopicRow]:
    rows = await conn.fetch(
        """SELECT topic_id, title, closed FROM group_topics WHERE group_id = $1
           ORDER BY position, topic_id OFFSET $2 LIMIT $3""",
        group_id, offset, limit,
    )
    return [TopicRow(r["topic_id"], r["title"], r["closed"]) for r in rows]


async def get(conn: asyncpg.Connection, group_id: int, topic_id: int) -> TopicRow | None:
    row = await conn.fetchrow(
        "SELECT topic_id, title, closed FROM group_topics WHERE group_id = $1 AND topic_id = $2",
        group_id, topic_id,
    )
    return None if row is None else TopicRow(row["topic_id"], row["title"], row["closed"])


async def choose(conn: asyncpg.Connection, user_id: int, group_id: int, topic_id: int, now: datetime) -> bool:
    """Posts of the user's forum ``group_id`` go to ``topic_id`` (General stored as NULL); a group
    disabled because of its previous topic becomes active again. False: not the user's forum."""
    status = await conn.execute(
        f"""UPDATE groups
           SET topic_id = $3, updated_at = $4,
               status = CASE WHEN status = 'disabled' AND reason = ANY($5::text[])
                             THEN 'active' ELSE status END,
               reason = CASE WHEN status = 'disabled' AND reason = ANY($5::text[]) THEN '' ELSE reason END
           WHERE group_id = $1 AND {current("$2")} AND is_forum""",
        group_id, user_id, None if topic_id == GENERAL else topic_id, now, list(TOPIC_REASONS),
    )
    return bool(status.split()[-1] == "1")


async def position(conn: asyncpg.Connection, user_id: int, group_id: int) -> int:
    """How many of the user's groups come before ``group_id`` in the list's order (title, id)."""
    return int(await conn.fetchval(
        f"""SELECT count(*) FROM groups g, groups me
           WHERE me.group_id = $2 AND {current("$1", "me")} AND {current("$1", "g")}
             AND (g.title, g.group_id) < (me.title, me.group_id)""",
        user_id, group_id,
    ))
