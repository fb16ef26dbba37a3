"""Global switches: the kill switch (A6) and the access mode (A4)."""

from __future__ import annotations

from aiohttp import web

from domain.rules import ACCESS_MODES
from roles.app import deps
from roles.app.api import params
from roles.app.api.views import action_result
from roles.app.errors import json_response

routes = web.RouteTableDef()


@routes.get("/api/control")
async def get_control(request: web.Request) -> web.Response:
    overview = await deps.services(request).admin.overview(deps.actor(request))
    return json_response({"access_mode": overview.access_mode, "global_paused": overview.global_paused})


@routes.post("/api/control/pause")
async def pause(request: web.Request) -> web.Response:
    result = await deps.services(request).admin.pause(deps.actor(request))
    return json_response(action_result(result))


@routes.post("/api/control/resume")
async def resume(request: web.Request) -> web.Response:
    result = await deps.services(request).admin.resume(deps.actor(request))
    return json_response(action_result(result))


@routes.put("/api/control/access-mode")
async def set_access_mode(request: web.Request) -> web.Response:
    body = await params.json_object(request)
    mode = params.choice(body.get("mode"), "mode", ACCESS_MODES)
    result = await deps.services(request).admin.set_mode(deps.actor(request), mode)
    return json_response(action_result(result))
