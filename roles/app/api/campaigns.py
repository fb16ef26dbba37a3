"""Campaigns: stop a user's broadcast (A2 ``adm:stop``)."""

from __future__ import annotations

from aiohttp import web

from roles.app import deps
from roles.app.api import params
from roles.app.api.views import action_result
from roles.app.errors import json_response

routes = web.RouteTableDef()


@routes.post("/api/campaigns/{user_id}/stop")
async def stop_campaign(request: web.Request) -> web.Response:
    result = await deps.services(request).admin.stop_broadcast(deps.actor(request), params.user_id(request))
    return json_response(action_result(result))
