"""Control API, chat side (JSON under ``/sandbox/api``), for tests and the web chat page.

| route | result |
|---|---|
| ``POST /users`` | ``{user_id, first_name, username?, last_name?, time_zone?}`` -> the user (``time_zone``:
  the IANA name of the person's device clock, shown on the web page; UTC by default) |
| ``GET /users`` / ``GET /users/{uid}`` | users with ``blocked`` and the reply ``keyboard`` they see now |
| ``POST /users/{uid}/messages`` | ``{text, entities?}``, ``{contact: {phone, user_id?}}``,
  ``{photo: {caption?, entities?}}``, ``video``/``document``/``animation``/``sticker``/``voice``/
  ``location``/``poll``, or ``{media_group: [...]}`` -> ``{message_id, message_ids}`` |
| ``POST /users/{uid}/callbacks`` | ``{message_id, data, timeout?}`` -> ``{answered, text?, show_alert?}`` |
| ``GET /users/{uid}/chat`` | ``[{message_id, from, text, entities, media, reply_markup, edited, deleted,
  date, ts_ms}]`` |
| ``POST /users/{uid}/block`` / ``unblock`` | the user blocks (or restarts) the bot |
| ``GET /files/{file_id}`` | a file's bytes (for the web page) |
| ``GET /events?since=<seq>`` | the event log, oldest first |
| ``POST /reset`` | empty chats, world and events |

Errors are HTTP 400/404 with ``{"error": ...}``. The world registers its own routes
(accounts, groups, faults) in ``sandbox.world_api``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from aiohttp import web

from sandbox.chats import Chats, ControlError
from sandbox.events import EventLog
from sandbox.world import World

PREFIX = "/sandbox/api"
DEFAULT_CALLBACK_WAIT = 5.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ControlError(400, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise ControlError(400, "the body must be a JSON object")
    return body


def _uid(request: web.Request) -> int:
    try:
        return int(request.match_info["uid"])
    except ValueError:
        raise ControlError(400, "user ids are integers") from None


def _guarded(handler: Handler) -> Handler:
    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ControlError as exc:
            return _json({"error": exc.message}, exc.status)

    return run


class ChatControl:
    def __init__(self, chats: Chats, world: World, events: EventLog) -> None:
        self.chats = chats
        self.world = world
        self.events = events

    async def add_user(self, request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            user_id = int(body["user_id"])
            first_name = str(body.get("first_name") or f"User {user_id}")
        except (KeyError, TypeError, ValueError):
            raise ControlError(400, "user_id (an integer) is required") from None
        if user_id <= 0:
            raise ControlError(400, "user_id must be positive")
        time_zone = _opt(body, "time_zone")
        if time_zone is not None and not _known_zone(time_zone):
            raise ControlError(400, f"time_zone {time_zone!r} is not an IANA time zone name")
        user = self.chats.add_user(user_id, first_name, _opt(body, "username"), _opt(body, "last_name"),
                                   str(body.get("language_code") or "en"), time_zone)
        return _json(user.view())

    async def list_users(self, request: web.Request) -> web.Response:
        return _json([user.view() for user in self.chats.users.values()])

    async def get_user(self, request: web.Request) -> web.Response:
        return _json(self.chats.user(_uid(request)).view())

    async def send(self, request: web.Request) -> web.Response:
        ids = self.chats.user_sends(_uid(request), await _body(request))
        return _json({"message_id": ids[0], "message_ids": ids})

    async def press(self, request: web.Request) -> web.Response:
        uid = _uid(request)
        body = await _body(request)
        try:
            message_id, data = int(body["message_id"]), str(body["data"])
            wait = float(body.get("timeout", DEFAULT_CALLBACK_WAIT))
        except (KeyError, TypeError, ValueError):
            raise ControlError(400, "message_id (an integer) and data are required") from None
        return _json(await self.chats.press(uid, message_id, data, wait))

    async def chat(self, request: web.Request) -> web.Response:
        return _json(self.chats.chat_view(_uid(request)))

    async def block(self, request: web.Request) -> web.Response:
        self.chats.set_blocked(_uid(request), True)
        return _json({"blocked": True})

    async def unblock(self, request: web.Request) -> web.Response:
        self.chats.set_blocked(_uid(request), False)
        return _json({"blocked": False})

    async def file(self, request: web.Request) -> web.Response:
        record = self.chats.files.get(request.match_info["file_id"])
        if record is None:
            raise ControlError(404, "unknown file")
        return web.Response(body=record.data, content_type=record.mime_type)

    async def events_since(self, request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            raise ControlError(400, "since is an integer") from None
        return _json([event.to_dict() for event in self.events.since(since)])

    async def reset(self, request: web.Request) -> web.Response:
        self.chats.reset()
        self.world.reset()
        self.events.clear()
        return _json({"reset": True})


def _known_zone(name: str) -> bool:
    if name == "UTC":
        return True
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _opt(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return str(value) if value else None


def setup_control_routes(app: web.Application, chats: Chats, world: World, events: EventLog) -> None:
    control = ChatControl(chats, world, events)
    routes: list[tuple[str, str, Handler]] = [
        ("POST", "/users", control.add_user),
        ("GET", "/users", control.list_users),
        ("GET", "/users/{uid}", control.get_user),
        ("POST", "/users/{uid}/messages", control.send),
        ("POST", "/users/{uid}/callbacks", control.press),
        ("GET", "/users/{uid}/chat", control.chat),
        ("POST", "/users/{uid}/block", control.block),
        ("POST", "/users/{uid}/unblock", control.unblock),
        ("GET", "/files/{file_id}", control.file),
        ("GET", "/events", control.events_since),
        ("POST", "/reset", control.reset),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, PREFIX + path, _guarded(handler))
