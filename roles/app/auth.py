"""Bearer-token authentication for the admin API.

Tokens come from ``settings.app.admin_tokens`` (``ADMIN_API_TOKENS``). The presented token is
compared in constant time with every configured token (no early exit), so timing tells nothing
about which token, or how much of one, matched. With no token configured every admin route
answers 401: the API is closed, never open by default.
"""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from config.settings import Secret
from roles.app.errors import error_response

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
CHALLENGE = 'Bearer realm="admin-api"'


def match_token(presented: str, tokens: tuple[Secret, ...]) -> int | None:
    """Index of the configured token equal to ``presented``; every token is compared."""
    try:
        given = presented.encode()
    except UnicodeEncodeError:  # lone surrogates from undecodable header bytes: never a token
        return None
    found: int | None = None
    for index, token in enumerate(tokens):
        if hmac.compare_digest(given, token.get().encode()) and token.get():
            found = index
    return found


def bearer_token(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _unauthorized(message: str, error: str) -> web.Response:
    challenge = f'{CHALLENGE}, error="{error}"' if error else CHALLENGE
    return error_response(401, message, headers={"WWW-Authenticate": challenge})


def auth_middleware(tokens: tuple[Secret, ...], public: frozenset[str] = PUBLIC_PATHS) -> Middleware:
    """Refuse every non-public path without a valid ``Authorization: Bearer <token>``."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in public:
            return await handler(request)
        presented = bearer_token(request)
        if presented is None:
            return _unauthorized("a bearer token is required", "")
        if match_token(presented, tokens) is None:
            return _unauthorized("the bearer token is not valid", "invalid_token")
        return await handler(request)

    return middleware
