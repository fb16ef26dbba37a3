"""Errors of the admin API as JSON with one stable shape: ``{"error": {"code": ..., "message": ...}}``.

Handlers raise ``ApiError`` (or let aiohttp raise its ``HTTPException``); ``error_middleware`` turns
both, and anything unexpected, into that shape. A traceback is logged, never served.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger(__name__)

# status -> the code clients match on (the message is for people and may change)
CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
}


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response serialised by orjson (datetimes as RFC 3339, dataclasses as objects)."""
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(status: int, message: str, code: str | None = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    return json_response(error_body(code or CODES.get(status, "error"), message), status, headers)


class ApiError(Exception):
    """An error the client caused (or a missing object), with its HTTP status and stable code."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or CODES.get(status, "error")
        self.headers = headers or {}


class NotFound(ApiError):
    def __init__(self, message: str = "not found") -> None:
        super().__init__(404, message)


class Invalid(ApiError):
    """422: the request is well-formed but a value is not acceptable."""

    def __init__(self, message: str) -> None:
        super().__init__(422, message)


class BadRequest(ApiError):
    """400: the request cannot be read (for example a body that is not JSON)."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


# Headers worth keeping from aiohttp's own exceptions (Allow on 405); the rest describe its text body.
_KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Location")


def _from_http_exception(exc: web.HTTPException) -> web.Response:
    headers = {name: exc.headers[name] for name in _KEPT_HEADERS if name in exc.headers}
    message = exc.reason.lower() if exc.reason else "error"
    if exc.status == 405 and "Allow" in headers:
        message = f"method not allowed; allowed: {headers['Allow']}"
    return error_response(exc.status, message, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message, exc.code, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects and the like are not errors
            raise
        return _from_http_exception(exc)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error")
