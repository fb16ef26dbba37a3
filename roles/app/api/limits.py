"""Send caps per Telegram account (issue 17): the global caps and one user's override.

Every change is audit-logged with actor kind ``api``; workers apply it within SEND_LIMIT_REFRESH.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from roles.app import deps
from roles.app.api import params
from roles.app.api.views import action_result
from roles.app.errors import Invalid, NotFound, json_response
from services.admin import AdminResult

routes = web.RouteTableDef()


@routes.get("/api/limits")
async def get_limits(request: web.Request) -> web.Response:
    view = await deps.services(request).limits.show(deps.actor(request))
    assert view is not None
    return json_response({"defaults": view.defaults.as_dict(), "global": view.global_caps.as_dict()})


@routes.put("/api/limits")
async def set_limits(request: web.Request) -> web.Response:
    body = await params.json_object(request)
    service = deps.services(request).limits
    return json_response(action_result(await _changed(service.set_global(deps.actor(request), body))))


@routes.get("/api/users/{user_id}/limits")
async def get_user_limits(request: web.Request) -> web.Response:
    view = await deps.services(request).limits.show(deps.actor(request), params.user_id(request))
    if view is None or view.effective is None:
        raise NotFound("no such user")
    override = dict(view.user_changes) if view.user_changes else None
    return json_response({"user_id": view.user_id, "override": override,
                          "effective": view.effective.as_dict(), "global": view.global_caps.as_dict()})


@routes.put("/api/users/{user_id}/limits")
async def set_user_limits(request: web.Request) -> web.Response:
    uid = params.user_id(request)
    body = await params.json_object(request)
    service = deps.services(request).limits
    return json_response(action_result(await _changed(service.set_user(deps.actor(request), uid, body))))


@routes.delete("/api/users/{user_id}/limits")
async def reset_user_limits(request: web.Request) -> web.Response:
    result = await deps.services(request).limits.reset_user(deps.actor(request), params.user_id(request))
    return json_response(action_result(result))


async def _changed(call: Any) -> AdminResult:
    try:
        result: AdminResult = await call
    except ValueError as exc:  # a bad window or value: nothing was changed
        raise Invalid(str(exc)) from None
    return result
