"""Reading and checking request input: path ids, query parameters, JSON bodies.

Only the shape of the input is checked here (types, ranges, allowed words); what an action
means is the services' business. Malformed input is 400, a well-formed but unacceptable value 422.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

import orjson
from aiohttp import web

from roles.app.errors import BadRequest, Invalid

BIGINT_MAX = 2**63 - 1  # user ids are PostgreSQL bigints
T = TypeVar("T", bound=str)
_DECIMAL = re.compile(r"-?[0-9]{1,19}")


def _int(raw: str, name: str, minimum: int, maximum: int) -> int:
    # int() would also take "1_000", "+5", spaces and non-ASCII digits; the API takes plain decimals
    if not _DECIMAL.fullmatch(raw):
        raise Invalid(f"{name} must be an integer")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise Invalid(f"{name} must be between {minimum} and {maximum}")
    return value


def user_id(request: web.Request) -> int:
    return _int(request.match_info["user_id"], "user_id", 1, BIGINT_MAX)


def query_int(request: web.Request, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.query.get(name)
    return default if raw is None else _int(raw, name, minimum, maximum)


def query_opt_int(request: web.Request, name: str, minimum: int, maximum: int) -> int | None:
    raw = request.query.get(name)
    return None if raw is None else _int(raw, name, minimum, maximum)


def choice(value: Any, name: str, allowed: Sequence[T]) -> T:
    for option in allowed:
        if value == option:
            return option
    raise Invalid(f"{name} must be one of {', '.join(map(str, allowed))}")


def query_choice(request: web.Request, name: str, allowed: Sequence[T]) -> T | None:
    raw = request.query.get(name)
    return None if raw is None else choice(raw, name, allowed)


async def json_object(request: web.Request, required: bool = True) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}`` when the body is optional."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise BadRequest("a JSON object body is required")
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    return body


def body_int(body: dict[str, Any], name: str, allowed: Sequence[int] | None = None,
             default: int | None = None) -> int:
    if name not in body:
        if default is not None:
            return default
        raise Invalid(f"{name} is required")
    value = body[name]
    # bool is an int in Python; true/false are not numbers of days
    if not isinstance(value, int) or isinstance(value, bool):
        raise Invalid(f"{name} must be an integer")
    if allowed is not None and value not in allowed:
        raise Invalid(f"{name} must be one of {', '.join(map(str, allowed))}")
    return value
