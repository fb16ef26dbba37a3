"""Runtime figures (A5) and the admin overview (A1 counts)."""

from __future__ import annotations

from aiohttp import web

from roles.app import deps
from roles.app.api.views import overview, runtime_view
from roles.app.errors import json_response

routes = web.RouteTableDef()


@routes.get("/api/runtime")
async def get_runtime(request: web.Request) -> web.Response:
    view = await deps.services(request).runtime.snapshot(deps.actor(request))
    return json_response(runtime_view(view))


@routes.get("/api/overview")
async def get_overview(request: web.Request) -> web.Response:
    return json_response(overview(await deps.services(request).admin.overview(deps.actor(request))))
