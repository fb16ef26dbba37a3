"""SQL for ``audit_log``: who did what to whom, with which outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from domain.models import AuditEntry


async def write(
    conn: asyncpg.Connection,
    *,
    actor_kind: str,
    actor_id: int | None,
    action: str,
    target_user_id: int | None,
    outcome: str,
    detail: dict[str, Any] | None,
    now: datetime,
) -> int:
    return int(await conn.fetchval(
        """INSERT INTO audit_log (at, actor_id, actor_kind, action, target_user_id, outcome, detail)
           VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) RETURNING audit_id""",
        now, actor_id, actor_kind, action, target_user_id, outcome, detail or {},
    ))


async def recent(conn: asyncpg.Connection, limit: int, before_id: int | None = None) -> list[AuditEntry]:
    rows = await conn.fetch(
        """SELECT audit_id, at, actor_id, actor_kind, action, target_user_id, outcome, detail
           FROM audit_log WHERE ($2::bigint IS NULL OR audit_id < $2)
           ORDER BY audit_id DESC LIMIT $1""",
        limit, before_id,
    )
    return [
        AuditEntry(
            audit_id=r["audit_id"], at=r["at"], actor_id=r["actor_id"], actor_kind=r["actor_kind"],
            action=r["action"], target_user_id=r["target_user_id"], outcome=r["outcome"],
            detail=r["detail"],
        )
        for r in rows
    ]
