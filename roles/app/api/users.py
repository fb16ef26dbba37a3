"""Users: the list, a user's card, and the access actions of A2/A3."""

from __future__ import annotations

from aiohttp import web

from domain.rules import clamp_page, page_count
from roles.app import deps
from roles.app.api import params
from roles.app.api.views import action_result, user_card, user_page
from roles.app.errors import ApiError, NotFound, json_response
from services.admin import Actor, AdminService, UserPage
from services.locks import Busy

routes = web.RouteTableDef()

GRANT_DAYS = (0, 7, 30)  # the A2 presets; 0 = no expiry
MAX_PAGE_SIZE = 100
MAX_PAGE = 1_000_000
FILTERS = ("all", "pending")  # pending: access requests waiting for approval (A3), oldest first
BUSY_MESSAGE = ("the user's broadcast is sending right now; it is stopped, the account is still connected: "
                "try again in a moment")


@routes.get("/api/users")
async def list_users(request: web.Request) -> web.Response:
    page = params.query_int(request, "page", 0, 0, MAX_PAGE)
    size = params.query_int(request, "size", 20, 1, MAX_PAGE_SIZE)
    which = params.query_choice(request, "filter", FILTERS) or "all"
    admin, actor = deps.services(request).admin, deps.actor(request)
    if which == "pending":
        result = await _pending_page(admin, actor, page, size)
    else:
        result = await admin.users_page(actor, page, size)
    return json_response(user_page(result, size))


async def _pending_page(admin: AdminService, actor: Actor, page: int, size: int) -> UserPage:
    # The service lists access requests oldest first with a limit only (A3); pages are cut here,
    # clamped the way users_page clamps them.
    total = (await admin.overview(actor)).pending_requests
    current = clamp_page(page, total, size)
    waiting = await admin.pending_requests(actor, limit=(current + 1) * size)
    return UserPage(waiting[current * size:], current, page_count(total, size), total)


@routes.get("/api/users/{user_id}")
async def get_user(request: web.Request) -> web.Response:
    card = await deps.services(request).admin.user_card(deps.actor(request), params.user_id(request))
    if card is None:
        raise NotFound("no such user")
    return json_response(user_card(card))


@routes.post("/api/users/{user_id}/grant")
async def grant(request: web.Request) -> web.Response:
    uid = params.user_id(request)
    days = params.body_int(await params.json_object(request), "days", GRANT_DAYS)
    result = await deps.services(request).admin.grant(deps.actor(request), uid, days)
    return json_response(action_result(result))


@routes.post("/api/users/{user_id}/approve")
async def approve(request: web.Request) -> web.Response:
    uid = params.user_id(request)
    body = await params.json_object(request, required=False)
    days = params.body_int(body, "days", GRANT_DAYS, default=0)
    result = await deps.services(request).admin.approve(deps.actor(request), uid, days)
    return json_response(action_result(result))


@routes.post("/api/users/{user_id}/reject")
async def reject(request: web.Request) -> web.Response:
    result = await deps.services(request).admin.reject(deps.actor(request), params.user_id(request))
    return json_response(action_result(result))


@routes.post("/api/users/{user_id}/revoke")
async def revoke(request: web.Request) -> web.Response:
    result = await deps.services(request).admin.revoke(deps.actor(request), params.user_id(request))
    return json_response(action_result(result))


@routes.post("/api/users/{user_id}/ban")
async def ban(request: web.Request) -> web.Response:
    result = await deps.services(request).admin.ban(deps.actor(request), params.user_id(request))
    return json_response(action_result(result))


@routes.post("/api/users/{user_id}/unban")
async def unban(request: web.Request) -> web.Response:
    result = await deps.services(request).admin.unban(deps.actor(request), params.user_id(request))
    return json_response(action_result(result))


@routes.post("/api/users/{user_id}/logout")
async def force_logout(request: web.Request) -> web.Response:
    try:
        result = await deps.services(request).admin.force_logout(deps.actor(request), params.user_id(request))
    except Busy:
        # the broadcast is stopped already; the account stays connected until the call is repeated
        raise ApiError(409, BUSY_MESSAGE, code="busy") from None
    return json_response(action_result(result))
