"""Bearer-token authentication for the admin API.

Tokens come from ``settings.app.admin_tokens`` (``ADMIN_API_TOKENS=name:token,...``). The presented
token is compared in constant time with every configured token (no early exit), so timing tells
nothing about which token, or how much of one, matched; the matching token's name is the audit
log's actor. With no token configured every admin route answers 401: the API is closed, never open
by default. Wrong tokens are logged (never the token) and counted per client address in Redis;
past ``ADMIN_AUTH_MAX_FAILURES`` in a window the address gets 429 with Retry-After.
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from config.settings import AdminToken
from roles.app.errors import error_response
from storage.auth_failures import AuthFailures

log = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})
CHALLENGE = 'Bearer realm="admin-api"'
ACTOR_NAME = web.RequestKey("actor_name", str)


def match_token(presented: str, tokens: tuple[AdminToken, ...]) -> AdminToken | None:
    """The configured token equal to ``presented``; every token is compared."""
    try:
        given = presented.encode()
    except UnicodeEncodeError:  # lone surrogates from undecodable header bytes: never a token
        return None
    found: AdminToken | None = None
    for entry in tokens:
        secret = entry.token.get()
        if hmac.compare_digest(given, secret.encode()) and secret:
            found = entry
    return found


def bearer_token(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def client_address(request: web.Request) -> str:
    # the peer address: a proxy in front should terminate TLS per host, not be trusted for headers
    return request.remote or "unknown"


def _unauthorized(message: str, error: str) -> web.Response:
    challenge = f'{CHALLENGE}, error="{error}"' if error else CHALLENGE
    return error_response(401, message, headers={"WWW-Authenticate": challenge})


def auth_middleware(tokens: tuple[AdminToken, ...], failures: AuthFailures | None = None,
                    public: frozenset[str] = PUBLIC_PATHS) -> Middleware:
    """Refuse every non-public path without a valid ``Authorization: Bearer <token>``."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in public:
            return await handler(request)
        address = client_address(request)
        if failures is not None and (wait := await failures.retry_after(address)):
            return error_response(429, "too many failed bearer tokens from this address; retry later",
                                  headers={"Retry-After": str(wait)})
        presented = bearer_token(request)
        if presented is None:
            return _unauthorized("a bearer token is required", "")
        entry = match_token(presented, tokens)
        if entry is None:
            count = await failures.record(address) if failures is not None else 0
            log.warning("admin API: invalid bearer token from %s for %s %s (failure %d in the window)",
                        address, request.method, request.path, count)
            return _unauthorized("the bearer token is not valid", "invalid_token")
        request[ACTOR_NAME] = entry.name
        return await handler(request)

    return middleware
