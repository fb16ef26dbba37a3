"""The audit log, newest first, paged by cursor (``before`` = the last ``audit_id`` seen)."""

from __future__ import annotations

from aiohttp import web

from roles.app import deps
from roles.app.api import params
from roles.app.api.views import audit_entry
from roles.app.errors import json_response

routes = web.RouteTableDef()

MAX_LIMIT = 200


@routes.get("/api/audit")
async def audit_log(request: web.Request) -> web.Response:
    limit = params.query_int(request, "limit", 50, 1, MAX_LIMIT)
    before = params.query_opt_int(request, "before", 1, params.BIGINT_MAX)
    entries = await deps.services(request).admin.audit_log(deps.actor(request), limit=limit, before_id=before)
    # a full page may have more behind it; the next request starts below its last id
    next_cursor = entries[-1].audit_id if len(entries) == limit else None
    return json_response({"items": [audit_entry(e) for e in entries], "next_cursor": next_cursor})
