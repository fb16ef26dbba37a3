"""The app role: health, readiness, metrics, the HTTP admin API and (in webhook mode) the bot's webhook."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import redis.asyncio as aioredis
from aiogram import Bot, Dispatcher
from aiohttp import web
from aiohttp.typedefs import Handler

from accounts.gateway import AccountGateway
from config.settings import Settings
from metrics import HTTP_REQUESTS
from roles.app.api import ROUTE_TABLES
from roles.app.auth import PUBLIC_PATHS, auth_middleware
from roles.app.deps import Services, build_services, setup_dependencies
from roles.app.errors import error_middleware
from roles.app.health import readyz
from roles.app.logs import quiet_client_garbage
from roles.app.webhook import WEBHOOK_PATH, WebhookTarget, setup_webhook
from services.login import SessionCipherPort
from storage.auth_failures import AuthFailures
from storage.db import Database

log = logging.getLogger(__name__)

OPENAPI_PATH = Path(__file__).with_name("openapi.json")
OPENAPI = web.AppKey("openapi", bytes)

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_: web.Request) -> web.Response:
    """Alive: the process answers."""
    return web.json_response({"status": "ok"})


# readiness lives in roles/app/health.py: the supervisor's metrics listener serves it for every role
routes.get("/readyz")(readyz)


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
