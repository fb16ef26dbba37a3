"""HTTP routes of the simulated world: its part of the control API and the adapter-facing API.

Control API (JSON, for tests and the web page; errors are HTTP 400/404 with ``{"error": ...}``):

| route | result |
|---|---|
| ``GET /sandbox/api/accounts`` | ``[{phone, first_name, user_id, has_password, banned, chat_users,``
|   | ``groups}]`` (``chat_users``: whose bot chat a live session of it was signed in through) |
| ``GET /sandbox/api/users/{uid}/accounts`` | the accounts chat user ``uid`` connected: ``[{phone,``
|   | ``first_name, user_id, since, sessions}]`` (live sessions whose login the world saw go through that |
|   | user's bot chat: the phone given there before the code was sent, or the code typed there) |
| ``POST /sandbox/api/accounts`` | body ``{"accounts": [...]}`` or one account -> ``{"phones": [...]}`` |
| ``GET /sandbox/api/accounts/{phone}/codes`` | ``[{code, date, expires_at, state, type, calling_number?}]`` |
|   | newest first (``calling_number`` for missed/flash calls: its last digits are the code) |
| ``PUT /sandbox/api/accounts/{phone}/code_types`` | body ``{"code_types": ["sms", "call", ...]}``: how |
|   | send_code delivers (first) and what each resend moves on to -> ``{"code_types": [...]}`` |
| ``GET /sandbox/api/accounts/{phone}/uploads`` | ``{phone, bytes}``: file bytes the account uploaded |
| ``POST /sandbox/api/file_references/expire`` | all sent files' references expire: ``{"expired": n}`` |
| ``GET /sandbox/api/accounts/{phone}/sessions`` | ``[{id, phone, user_id, created, last_used,``
|   | ``chat_user_id}]`` |
| ``DELETE /sandbox/api/accounts/{phone}/sessions`` | ``{"revoked": n}`` |
| ``PUT /sandbox/api/accounts/{phone}/restriction`` | ``{"error": USER_BANNED_IN_CHANNEL | PEER_FLOOD |``
|   | ``USER_RESTRICTED | FROZEN_METHOD_INVALID | null}``: an account-wide limit (null lifts it) |
| ``GET /sandbox/api/groups/{gid}/messages`` | ``[{message_id, from_phone, from_user_id, text, entities,``
|   | ``media?, date, date_ms}]``; ``date`` in seconds with ms, ``media`` = ``{kind, filename, size,``
|   | ``mime_type, sha256}`` |
| ``GET /sandbox/api/groups/{gid}/topics`` | a forum's topics ``[{id, title, closed, date, top_message,``
|   | ``posts}]`` (posts in a forum carry ``topic_id``) |
| ``POST /sandbox/api/groups/{gid}/topics`` | body ``{title, closed?}``: a new topic -> the topic |
| ``PATCH /sandbox/api/groups/{gid}/topics/{tid}`` | body ``{"closed": bool}`` or ``{"deleted": true}`` |
| ``GET /sandbox/api/media/{sha256}`` | the bytes of media an account posted (the page's feed thumbnails) |
| ``GET /sandbox/api/faults`` | the active faults |
| ``POST /sandbox/api/faults`` | register one (see ``World.add_fault``) -> the fault with its ``id`` |
| ``DELETE /sandbox/api/faults`` | clear all -> ``{"cleared": n}`` |

Adapter-facing world API: ``POST /sandbox/world/<call>`` with a JSON body (``send_message``
also takes ``multipart/form-data``: a ``payload`` JSON part and a ``media`` file part). The
answer is HTTP 200 with ``{"ok": true, ...}`` or ``{"ok": false, "error": NAME, "code": n,
"seconds"?, "new_id"?, "new_access_hash"?}``. The ``NETWORK`` fault is a transport failure:
the connection is dropped without an answer (a client that still gets one sees HTTP 502).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import orjson
from aiohttp import BodyPartReader, web

from sandbox.world import MEDIA_LIMIT, NETWORK, MediaIn, World, WorldError

logger = logging.getLogger(__name__)

WORLD_KEY: Final = web.AppKey("sandbox_world", World)
WORLD_PREFIX: Final = "/sandbox/world"
CONTROL_PREFIX: Final = "/sandbox/api"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(ValueError):
    """A malformed request body (a bug in the caller, not a Telegram error)."""


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("the body is not JSON") from exc
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def _str(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool) or (required and value == ""):
        raise BadRequest(f"{name} is required")
    return str(value)


def _int(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool):
        raise BadRequest(f"{name} must be an integer")
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be an integer") from None


# --- control API ------------------------------------------------------------------------------


class _Control:
    def __init__(self, world: World) -> None:
        self.world = world

    async def list_accounts(self, request: web.Request) -> web.Response:
        return _json(self.world.accounts())

    async def chat_accounts(self, request: web.Request) -> web.Response:
        try:
            uid = int(request.match_info["uid"])
        except ValueError:
            return _json({"error": "user ids are integers"}, 400)
        return _json(self.world.chat_accounts(uid))

    async def add_accounts(self, request: web.Request) -> web.Response:
        try:
            phones = self.world.seed(await _body(request))
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"phones": phones})

    async def codes(self, request: web.Request) -> web.Response:
        try:
            return _json(self.world.codes(request.match_info["phone"]))
        except KeyError:
            return _json({"error": "unknown account"}, 404)

    async def set_code_types(self, request: web.Request) -> web.Response:
        try:
            body = await _body(request)
            return _json({"code_types": self.world.set_code_types(request.match_info["phone"],
                                                                  body.get("code_types"))})
        except KeyError:
            return _json({"error": "unknown account"}, 404)
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)

    async def expire_file_references(self, request: web.Request) -> web.Response:
        return _json({"expired": self.world.expire_file_references()})

    async def uploads(self, request: web.Request) -> web.Response:
        try:
            phone = self.world.accounts_phone(request.match_info["phone"])
        except KeyError:
            return _json({"error": "unknown account"}, 404)
        return _json({"phone": phone, "bytes": self.world.uploaded_bytes(phone)})

    async def sessions(self, request: web.Request) -> web.Response:
        try:
            return _json(self.world.sessions(request.match_info["phone"]))
        except KeyError:
            return _json({"error": "unknown account"}, 404)

    async def revoke_sessions(self, request: web.Request) -> web.Response:
        try:
            return _json({"revoked": self.world.revoke_sessions(request.match_info["phone"])})
        except KeyError:
            return _json({"error": "unknown account"}, 404)

    async def set_restriction(self, request: web.Request) -> web.Response:
        try:
            body = await _body(request)
            return _json(self.world.set_restriction(request.match_info["phone"], body.get("error")))
        except KeyError:
            return _json({"error": "unknown account"}, 404)
        except (ValueError, BadRequest) as exc:
            return _json({"error": str(exc)}, 400)

    async def group_messages(self, request: web.Request) -> web.Response:
        try:
            gid = int(request.match_info["gid"])
        except ValueError:
            return _json({"error": "group ids are integers"}, 400)
        try:
            return _json(self.world.group_messages(gid))
        except KeyError:
            return _json({"error": "unknown group"}, 404)

    async def topics(self, request: web.Request) -> web.Response:
        try:
            return _json(self.world.forum_topics(int(request.match_info["gid"])))
        except ValueError:
            return _json({"error": "group ids are integers"}, 400)
        except KeyError:
            return _json({"error": "unknown group"}, 404)

    async def add_topic(self, request: web.Request) -> web.Response:
        try:
            body = await _body(request)
            gid = int(request.match_info["gid"])
            return _json(self.world.add_topic(gid, _str(body, "title"), bool(body.get("closed", False))))
        except KeyError:
            return _json({"error": "unknown group"}, 404)
        except (ValueError, BadRequest) as exc:
            return _json({"error": str(exc)}, 400)

    async def change_topic(self, request: web.Request) -> web.Response:
        try:
            gid, tid = int(request.match_info["gid"]), int(request.match_info["tid"])
            return _json(self.world.change_topic(gid, tid, await _body(request)))
        except KeyError:
            return _json({"error": "unknown group or topic"}, 404)
        except (ValueError, BadRequest) as exc:
            return _json({"error": str(exc)}, 400)

    async def media(self, request: web.Request) -> web.Response:
        media = self.world.posted_media(request.match_info["sha256"])
        if media is None:
            return _json({"error": "unknown media"}, 404)
        return web.Response(body=media.data, content_type=media.mime_type)

    async def list_faults(self, request: web.Request) -> web.Response:
        return _json(self.world.faults())

    async def add_fault(self, request: web.Request) -> web.Response:
        try:
            return _json(self.world.add_fault(await _body(request)))
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)

    async def clear_faults(self, request: web.Request) -> web.Response:
        return _json({"cleared": self.world.clear_faults()})


# --- adapter-facing world API ---------------------------------------------------------------


class _Calls:
    def __init__(self, world: World) -> None:
        self.world = world

    def handler(self, run: Callable[[web.Request], Awaitable[dict[str, Any]]]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                result = await run(request)
            except BadRequest as exc:
                return _json({"ok": False, "error": "BAD_REQUEST", "code": 400, "description": str(exc)}, 400)
            except WorldError as exc:
                if exc.name == NETWORK:
                    _drop_connection(request)
                return _json(exc.to_dict())
            except Exception:
                logger.exception("world call %s failed", request.path)
                return _json({"ok": False, "error": "INTERNAL", "code": 500})
            return _json({"ok": True, **result})

        return handle

    async def send_code(self, request: web.Request) -> dict[str, Any]:
        body = await _body(request)
        return await self.world.send_code(_str(body, "phone"), _str(body, "session", required=False) or None)

    async def resend_code(self, request: web.Request) -> dict[str, Any]:
        body = await _body(request)
        return await self.world.resend_code(
            _str(body, "phone"), _str(body, "session"), _str(body, "phone_code_hash"))

    async def sign_in(self, request: web.Request) -> dict[str, Any]:
        body = await _body(request)
        return await self.world.sign_in(
            _str(body, "phone"), _str(body, "session"), _str(body, "phone_code_hash"),
            _str(body, "code", required=False))

    async def check_password(self, request: web.Request) -> dict[str, Any]:
        body = await _body(request)
        return await self.world.check_password(
            _str(body, "phone"), _str(body, "session"), _str(body, "password", required=False))

    async def cancel_login(self, request: web.Request) -> dict[str, Any]:
        body = await _body(request)
        await self.world.cancel_login(_str(body, "session"))
        return {}

    async def get_dialogs(self, request: web.Request) -> dict[str, Any]:
        body = await _body(request)
        return {"groups": await self.world.get_dialogs(_str(body, "session"))}

    async def get_dialogs_page(self, request: web.Request) -> dict[str, Any]:
        body = await _body(request)
        folder = None if body.get("folder") is None else _int(body, "folder")
        after = None if body.get("after") is None else _int(body, "after")
        limit = 100 if body.get("limit") is None else _int(body, "limit")
        return await self.world.get_dialogs_page(_str(body, "session"), folder, after, limit)

    async def get_forum_topics(self, request: web.Request) -> dict[str, Any]:
        body = await _body(request)
        after = None if body.get("after") is None else _int(body, "after")
        limit = 100 if body.get("limit") is None else _int(body, "limit")
        return await self.world.get_forum_topics(_str(body, "session"), _int(body, "group_id"),
                                                 _int(body, "access_hash"), after, limit)

    async def send_message(self, request: web.Request) -> dict[str, Any]:
        body, media = await _send_request(request)
        entities = body.get("entities") or []
        if not isinstance(entities, list):
            raise BadRequest("entities must be a list")
        text = body.get("text") or ""
        if not isinstance(text, str):
            raise BadRequest("text must be a string")
        ref = body.get("media_ref")
        if ref is not None and not isinstance(ref, dict):
            raise BadRequest("media_ref must be an object")
        return await self.world.send_message(
            _str(body, "session"), _int(body, "group_id"), _int(body, "access_hash"), text, entities, media,
            media_ref=ref, count_upload=True,
            reply_to=None if body.get("reply_to") is None else _int(body, "reply_to"))

    async def send_album(self, request: web.Request) -> dict[str, Any]:
        """U9.3: ``{session, group_id, access_hash, text, entities, items: [{media_ref} | {kind,
        filename, mime_type, width, height, duration, data_b64, thumb_b64?}]}`` (JSON, base64 media)."""
        body = await _body(request)
        entities = body.get("entities") or []
        text = body.get("text") or ""
        raw_items = body.get("items")
        if not isinstance(entities, list) or not isinstance(text, str) or not isinstance(raw_items, list):
            raise BadRequest("text is a string, entities and items are lists")
        items: list[MediaIn | dict[str, Any]] = []
        for raw in raw_items:
            if not isinstance(raw, dict):
                raise BadRequest("an album item is an object")
            if isinstance(raw.get("media_ref"), dict):
                items.append(raw["media_ref"])
                continue
            try:
                data = base64.b64decode(str(raw.get("data_b64") or ""), validate=True)
                thumb = None
                if raw.get("thumb_b64"):
                    thumb = base64.b64decode(str(raw["thumb_b64"]), validate=True)
            except binascii.Error as exc:
                raise BadRequest("an album item's data_b64 is not base64") from exc
            items.append(_media(raw, data, None, thumb))
        reply_to = None if body.get("reply_to") is None else _int(body, "reply_to")
        return await self.world.send_album(_str(body, "session"), _int(body, "group_id"),
                                           _int(body, "access_hash"), text, entities, items,
                                           count_upload=True, reply_to=reply_to)

    async def log_out(self, request: web.Request) -> dict[str, Any]:
        body = await _body(request)
        await self.world.log_out(_str(body, "session"))
        return {}


async def _send_request(request: web.Request) -> tuple[dict[str, Any], MediaIn | None]:
    """The send's JSON fields and its media, from a multipart or a JSON (base64 media) body."""
    if not request.content_type.startswith("multipart/"):
        body = await _body(request)
        meta = body.get("media")
        if meta is None:
            return body, None
        if not isinstance(meta, dict):
            raise BadRequest("media must be an object")
        try:
            data = base64.b64decode(str(meta.get("data_b64") or ""), validate=True)
        except binascii.Error as exc:
            raise BadRequest("media.data_b64 is not base64") from exc
        return body, _media(meta, data, None)
    payload: dict[str, Any] | None = None
    data_part: tuple[bytes, str | None] | None = None
    thumb: bytes | None = None
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            raise BadRequest("nested multipart is not supported")
        if part.name == "payload":
            try:
                loaded = orjson.loads(await part.read())
            except orjson.JSONDecodeError as exc:
                raise BadRequest("the payload part is not JSON") from exc
            if not isinstance(loaded, dict):
                raise BadRequest("the payload part must be a JSON object")
            payload = loaded
        elif part.name == "media":
            data_part = (await _read_media_part(part), part.filename)
        elif part.name == "thumb":
            thumb = await _read_media_part(part) or None
    if payload is None:
        raise BadRequest("a payload part is required")
    meta = payload.get("media")
    if data_part is None:
        if meta is not None:
            raise BadRequest("media is described but no media part was sent")
        return payload, None
    return payload, _media(meta if isinstance(meta, dict) else {}, data_part[0], data_part[1], thumb)


async def _read_media_part(part: BodyPartReader) -> bytes:
    # Chunk by chunk: ``part.read()`` would cap files at the app's client_max_size (1 MB by default).
    # Past MEDIA_LIMIT the rest is drained and dropped; the world then answers MEDIA_INVALID.
    data = bytearray()
    while chunk := await part.read_chunk(256 * 1024):
        if len(data) <= MEDIA_LIMIT:
            data.extend(chunk[: MEDIA_LIMIT + 1 - len(data)])
    return bytes(data)


def _media(meta: dict[str, Any], data: bytes, filename: str | None, thumb: bytes | None = None) -> MediaIn:
    try:
        width, height = max(0, int(meta.get("width") or 0)), max(0, int(meta.get("height") or 0))
        duration = max(0.0, float(meta.get("duration") or 0))
    except (TypeError, ValueError) as exc:
        raise BadRequest("media width, height and duration are numbers") from exc
    return MediaIn(
        kind=str(meta.get("kind") or "document"),
        filename=str(meta.get("filename") or filename or "file"),
        data=data,
        mime_type=str(meta.get("mime_type") or "application/octet-stream"),
        width=width, height=height, duration=duration, thumb=thumb,
    )


def _drop_connection(request: web.Request) -> None:
    # A transport failure: the client sees its connection closed before any answer.
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise web.HTTPBadGateway(text='{"ok": false, "error": "NETWORK", "code": 502}',
                             content_type="application/json")


def setup_world_routes(app: web.Application, world: World) -> None:
    """Register the world's control routes and its adapter-facing API on ``app``."""
    app[WORLD_KEY] = world
    control = _Control(world)
    router = app.router
    router.add_get(f"{CONTROL_PREFIX}/accounts", control.list_accounts)
    router.add_post(f"{CONTROL_PREFIX}/accounts", control.add_accounts)
    router.add_get(f"{CONTROL_PREFIX}/users/{{uid}}/accounts", control.chat_accounts)
    router.add_get(f"{CONTROL_PREFIX}/accounts/{{phone}}/codes", control.codes)
    router.add_put(f"{CONTROL_PREFIX}/accounts/{{phone}}/code_types", control.set_code_types)
    router.add_get(f"{CONTROL_PREFIX}/accounts/{{phone}}/sessions", control.sessions)
    router.add_get(f"{CONTROL_PREFIX}/accounts/{{phone}}/uploads", control.uploads)
    router.add_post(f"{CONTROL_PREFIX}/file_references/expire", control.expire_file_references)
    router.add_delete(f"{CONTROL_PREFIX}/accounts/{{phone}}/sessions", control.revoke_sessions)
    router.add_put(f"{CONTROL_PREFIX}/accounts/{{phone}}/restriction", control.set_restriction)
    router.add_get(f"{CONTROL_PREFIX}/groups/{{gid}}/messages", control.group_messages)
    router.add_get(f"{CONTROL_PREFIX}/groups/{{gid}}/topics", control.topics)
    router.add_post(f"{CONTROL_PREFIX}/groups/{{gid}}/topics", control.add_topic)
    router.add_patch(f"{CONTROL_PREFIX}/groups/{{gid}}/topics/{{tid}}", control.change_topic)
    router.add_get(f"{CONTROL_PREFIX}/media/{{sha256}}", control.media)
    router.add_get(f"{CONTROL_PREFIX}/faults", control.list_faults)
    router.add_post(f"{CONTROL_PREFIX}/faults", control.add_fault)
    router.add_delete(f"{CONTROL_PREFIX}/faults", control.clear_faults)

    calls = _Calls(world)
    routes: dict[str, Callable[[web.Request], Awaitable[dict[str, Any]]]] = {
        "send_code": calls.send_code,
        "resend_code": calls.resend_code,
        "sign_in": calls.sign_in,
        "check_password": calls.check_password,
        "cancel_login": calls.cancel_login,
        "get_dialogs": calls.get_dialogs,
        "get_dialogs_page": calls.get_dialogs_page,
        "get_forum_topics": calls.get_forum_topics,
        "send_message": calls.send_message,
        "send_album": calls.send_album,
        "log_out": calls.log_out,
    }
    for name, run in routes.items():
        router.add_post(f"{WORLD_PREFIX}/{name}", calls.handler(run))
