"""SQL for what an import learns about groups besides the merge itself (``groups.is_forum``)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg


async def record_forums(
    conn: asyncpg.Connection, user_id: int, listed_peer_ids: Sequence[int], forum_peer_ids: Sequence[int]
) -> None:
    """Mark each listed group as a forum or not, as the import saw it."""
    await conn.execute(
        """UPDATE groups SET is_forum = (peer_id = ANY($3::bigint[]))
           WHERE user_id = $1 AND peer_id = ANY($2::bigint[])
             AND is_forum IS DISTINCT FROM (peer_id = ANY($3::bigint[]))""",
        user_id, list(listed_peer_ids), list(forum_peer_ids),
    )
