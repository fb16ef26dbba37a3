"""Readiness, shared by the app role's listener and the supervisor's metrics listener (every role)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from roles.app.deps import DB, REDIS
from storage.migrator import is_at_head

log = logging.getLogger(__name__)


async def readyz(request: web.Request) -> web.Response:
    """Ready: PostgreSQL and Redis answer and the schema is at the newest migration."""
    checks: dict[str, bool] = {}
    try:
        async with request.app[DB].connection() as conn:
            checks["postgres"] = True
            checks["migrations"] = await is_at_head(conn)
    except Exception:  # any failure means not ready; the reason is logged, not served
        log.warning("readiness: postgres check failed", exc_info=True)
        checks["postgres"] = checks["migrations"] = False
    try:
        checks["redis"] = bool(await asyncio.wait_for(request.app[REDIS].ping(), timeout=2))
    except Exception:
        log.warning("readiness: redis check failed", exc_info=True)
        checks["redis"] = False
    ready = all(checks.values())
    return web.json_response({"status": "ready" if ready else "not ready", "checks": checks},
                             status=200 if ready else 503)
