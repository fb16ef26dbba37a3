"""The app role: health, readiness, metrics, the HTTP admin API and (in webhook mode) the bot's webhook."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import redis.asyncio as aioredis
from aiogram import Bot, Dispatcher
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler

from accounts.gateway import AccountGateway
from config.settings import Settings
from metrics import HTTP_REQUESTS
from roles.app.api import ROUTE_TABLES
from roles.app.auth import PUBLIC_PATHS, auth_middleware
from roles.app.deps import DB, REDIS, Services, build_services, setup_dependencies
from roles.app.errors import error_middleware
from roles.app.webhook import WEBHOOK_PATH, WebhookTarget, setup_webhook
from services.login import SessionCipherPort
from storage.auth_failures import AuthFailures
from storage.db import Database
from storage.migrator import is_at_head

log = logging.getLogger(__name__)

OPENAPI_PATH = Path(__file__).with_name("openapi.json")
OPENAPI = web.AppKey("openapi", bytes)

routes = web.RouteTableDef()


class ClientGarbageFilter(logging.Filter):
    """aiohttp logs a malformed request (a scanner, TLS on the plain port) as an ERROR with a traceback:
    that is the client's fault, so it becomes one INFO line naming the peer and the parser's reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and record.levelno >= logging.DEBUG:
            reason = str(exc.message).splitlines()[0] if exc.message else type(exc).__name__
            original = record.getMessage()
            record.msg, record.args = "malformed HTTP request refused (%s): %s", (original, reason)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


def quiet_client_garbage() -> None:
    """Install ``ClientGarbageFilter`` once on aiohttp's server logger (every listener of the process)."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(existing, ClientGarbageFilter) for existing in logger.filters):
        logger.addFilter(ClientGarbageFilter())


@routes.get("/healthz")
async def healthz(_: web.Request) -> web.Response:
    """Alive: the process answers."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready: PostgreSQL and Redis answer and the schema is at the newest migration."""
    checks: dict[str, bool] = {}
    try:
        async with request.app[DB].connection() as conn:
            checks["postgres"] = True
            checks["migrations"] = await is_at_head(conn)
    except Exception:  # any failure means not ready; the reason is logged, not served
        log.warning("readiness: postgres check failed", exc_info=True)
        checks["postgres"] = checks["migrations"] = False
    try:
        checks["redis"] = bool(await asyncio.wait_for(request.app[REDIS].ping(), timeout=2))
    except Exception:
        log.warning("readiness: redis check failed", exc_info=True)
        checks["redis"] = False
    ready = all(checks.values())
    return web.json_response({"status": "ready" if ready else "not ready", "checks": checks},
                             status=200 if ready else 503)


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """The admin API's OpenAPI 3.1 document (kept in the repository next to this module)."""
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count requests by route template (never the raw path: ids would explode the label set)."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        HTTP_REQUESTS.labels(route, str(exc.status)).inc()
        raise
    HTTP_REQUESTS.labels(route, str(response.status)).inc()
    return response


def build_app(db: Database, redis: aioredis.Redis, settings: Settings | None = None,
              services: Services | None = None, webhook: WebhookTarget | None = None) -> web.Application:
    """The app role's application; the admin API is mounted when ``services`` are given, the bot's
    webhook when ``webhook`` is (it checks its own secret token instead of a bearer token)."""
    settings = settings or Settings()
    public = PUBLIC_PATHS | {WEBHOOK_PATH} if webhook is not None else PUBLIC_PATHS
    failures = AuthFailures(redis, settings.app.auth_max_failures, settings.app.auth_failure_window)
    app = web.Application(middlewares=[
        metrics_middleware, error_middleware, auth_middleware(settings.app.admin_tokens, failures, public)])
    setup_dependencies(app, settings, db, redis, services)
    if webhook is not None:
        setup_webhook(app, webhook)
    app[OPENAPI] = OPENAPI_PATH.read_bytes()
    # /metrics is served on METRICS_PORT only (app.serve_metrics), never on the admin port
    app.add_routes(routes)
    if services is not None:
        for table in ROUTE_TABLES:
            app.add_routes(table)
    return app


async def run_app(settings: Settings, db: Database, redis: aioredis.Redis, stop: asyncio.Event,
                  gateway: AccountGateway, cipher: SessionCipherPort,
                  webhook: tuple[Bot, Dispatcher] | None = None) -> None:
    """Serve until ``stop``; ``webhook`` (the bot and its dispatcher) mounts ``/telegram/webhook``."""
    services = build_services(settings, db, redis, gateway, cipher)
    quiet_client_garbage()
    if not settings.app.admin_tokens:
        log.warning("ADMIN_API_TOKENS is empty: every admin API route answers 401")
    target = None
    if webhook is not None:
        target = WebhookTarget(webhook[0], webhook[1], settings.app.webhook_secret.get())
        log.info("app role: serving the bot's webhook on %s", WEBHOOK_PATH)
    runner = web.AppRunner(build_app(db, redis, settings, services, target), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.app.host, settings.app.port)
    await site.start()
    log.info("app role listening on %s:%s", settings.app.host, settings.app.port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
