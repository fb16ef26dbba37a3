"""SQL for what an import learns about groups besides the merge itself (``groups.is_forum``)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from storage.repositories.scope import named_or_current


async def record_forums(
    conn: asyncpg.Connection, user_id: int, listed_peer_ids: Sequence[int], forum_peer_ids: Sequence[int],
    account_id: int | None = None,
) -> None:
    """Mark each listed group of ``account_id`` (default: the current account) as a forum or not,
    as the import saw it."""
    await conn.execute(
        f"""UPDATE groups SET is_forum = (peer_id = ANY($3::bigint[]))
            WHERE {named_or_current("$1", "$4")} AND peer_id = ANY($2::bigint[])
              AND is_forum IS DISTINCT FROM (peer_id = ANY($3::bigint[]))""",
        user_id, list(listed_peer_ids), list(forum_peer_ids), account_id,
    )
