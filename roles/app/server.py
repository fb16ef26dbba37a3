"""The app role: health, readiness and metrics over aiohttp (the admin API joins it later)."""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from aiohttp import web

from config.settings import Settings
from metrics.http import metrics_handler
from storage.db import Database
from storage.migrator import is_at_head

log = logging.getLogger(__name__)

DB = web.AppKey("db", Database)
REDIS = web.AppKey("redis", aioredis.Redis)

routes = web.RouteTableDef()


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


def build_app(db: Database, redis: aioredis.Redis) -> web.Application:
    app = web.Application()
    app[DB] = db
    app[REDIS] = redis
    app.add_routes(routes)
    app.router.add_get("/metrics", metrics_handler)
    return app


async def run_app(settings: Settings, db: Database, redis: aioredis.Redis, stop: asyncio.Event) -> None:
    runner = web.AppRunner(build_app(db, redis), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.app.host, settings.app.port)
    await site.start()
    log.info("app role listening on %s:%s", settings.app.host, settings.app.port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
