"""Supervisor: reads ``ROLE`` and runs the bot, the admin API, or the scheduler plus worker loops.

    python app.py            run the role named by ROLE (bot | app | worker | all | sandbox)
    python app.py migrate    apply the SQL migrations and exit

Shared dependencies (PostgreSQL pool, Redis client, account gateway, session
cipher) are built once and handed to every role. Each role is a coroutine that
runs until the ``stop`` event is set (SIGTERM/SIGINT), then finishes or hands
back what it has in flight; after that the supervisor closes the clients and
stops whatever embedded server it started itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import web

import metrics
from accounts.crypto import SessionCipher, load_or_create_key
from accounts.gateway import AccountGateway
from config.settings import Settings, SettingsError, load_settings
from metrics.http import metrics_handler
from storage.db import Database
from storage.embedded import EmbeddedServers
from storage.migrator import apply_migrations
from storage.queue import consumer_name

log = logging.getLogger("supervisor")


@dataclass
class Deps:
    """What every role gets; built once by the supervisor."""

    settings: Settings
    db: Database
    redis: aioredis.Redis
    gateway: AccountGateway
    cipher: SessionCipher
    consumer: str  # this process's name in the queue's consumer group


RoleMain = Callable[[Deps, asyncio.Event], Awaitable[None]]


async def run_bot_role(deps: Deps, stop: asyncio.Event) -> None:
    from roles.bot.role import run_bot

    await run_bot(deps.settings, deps.db, deps.redis, deps.gateway, stop, cipher=deps.cipher)


async def run_app_role(deps: Deps, stop: asyncio.Event) -> None:
    from roles.app.server import run_app
    from roles.bot.role import build_webhook_target

    webhook = None
    if deps.settings.app.webhook_url:  # webhook mode: the bot's updates arrive here, not by polling
        webhook = build_webhook_target(deps.settings, deps.db, deps.redis, deps.gateway, deps.cipher)
    await run_app(deps.settings, deps.db, deps.redis, stop, deps.gateway, deps.cipher, webhook=webhook)


async def run_worker_role(deps: Deps, stop: asyncio.Event) -> None:
    from roles.worker.role import run_worker_role as run_worker

    await run_worker(deps.settings, deps.db, deps.redis, deps.gateway, stop, cipher=deps.cipher,
                     consumer=deps.consumer)


ROLES: dict[str, tuple[str, ...]] = {
    "bot": ("bot",),
    "app": ("app",),
    "worker": ("worker",),
    "all": ("bot", "app", "worker"),
    "sandbox": (),
}
ROLE_MAINS: dict[str, RoleMain] = {"bot": run_bot_role, "app": run_app_role, "worker": run_worker_role}


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # Telethon and aiohttp access logs are noisy at INFO and may echo request data
    logging.getLogger("telethon").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    from roles.app.logs import quiet_client_garbage  # kept light: workers never import aiogram

    quiet_client_garbage()  # malformed requests from clients: one INFO line, no traceback
    # two lines per scheduler tick (every second); failures are still logged at WARNING and above
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)


def build_gateway(settings: Settings) -> AccountGateway:
    from accounts.factory import build_gateway as select_gateway

    return select_gateway(settings)


def mtproto_key_file(settings: Settings) -> Path:
    from sandbox.mtproto.keys import default_path

    return Path(settings.sandbox.mtproto_key_file) if settings.sandbox.mtproto_key_file else default_path(
        settings.data_dir)


async def serve_metrics(settings: Settings, roles: tuple[str, ...], db: Database | None = None,
                        redis: aioredis.Redis | None = None) -> web.AppRunner | None:
    """``/metrics``, ``/healthz`` and (given the clients) ``/readyz`` for every role on METRICS_PORT (0
    disables): the orchestrator probes every role, not only the app, at the same port."""
    if settings.metrics_port <= 0:
        return None

    async def health_view(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "roles": list(roles)})

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", health_view)
    if db is not None and redis is not None:
        from roles.app.health import DB, REDIS, readyz

        app[DB], app[REDIS] = db, redis
        app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host = "0.0.0.0" if settings.production else "127.0.0.1"  # scraped from other containers in production
    await web.TCPSite(runner, host, settings.metrics_port).start()
    return runner


@contextlib.asynccontextmanager
async def infrastructure(settings: Settings) -> AsyncIterator[tuple[str, str]]:
    """The database and Redis URLs, starting embedded servers for the ones not configured."""
    servers = EmbeddedServers(settings.data_dir)
    if not settings.database.url or not settings.redis.url:
        log.info("no DATABASE_URL/REDIS_URL: starting embedded servers under %s", settings.data_dir)
    db_url, redis_url = await asyncio.to_thread(servers.start, settings.database.url, settings.redis.url)
    try:
        yield db_url, redis_url
    finally:
        await asyncio.to_thread(servers.stop)


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


async def run_sandbox_only(settings: Settings, stop: asyncio.Event) -> None:
    """ROLE=sandbox: the local Telegram alone, no database or Redis needed."""
    from sandbox.server import run_sandbox

    sandbox = await run_sandbox(settings.sandbox, Path(settings.sandbox.seed_file),
                                mtproto=settings.sandbox.mtproto_port >= 0,
                                mtproto_key_file=mtproto_key_file(settings))
    try:
        await stop.wait()
    finally:
        await sandbox.close()


async def run_roles(settings: Settings, stop: asyncio.Event) -> None:
    roles = ROLES[settings.role]
    if not roles:
        await run_sandbox_only(settings, stop)
        return
    async with infrastructure(settings) as (db_url, redis_url):
        await apply_migrations(db_url)
        sandbox = None
        if settings.sandbox_enabled:
            from sandbox.server import run_sandbox

            sandbox = await run_sandbox(settings.sandbox, Path(settings.sandbox.seed_file),
                                mtproto=settings.sandbox.mtproto_port >= 0,
                                mtproto_key_file=mtproto_key_file(settings))
        db = await Database.connect(db_url, settings.database.pool_min, settings.database.pool_max)
        # a blocking pool waits for a free connection instead of failing past max_connections, which
        # many concurrent jobs (lock, queue and pacing calls each) would otherwise hit
        pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=200, timeout=20,
                                                        health_check_interval=30)
        redis = aioredis.Redis.from_pool(pool)  # owns the pool: aclose() disconnects it
        gateway = build_gateway(settings)
        metrics_runner = await serve_metrics(settings, roles, db, redis)
        deps = Deps(settings, db, redis, gateway, load_or_create_key(settings), consumer_name())
        try:
            await _run_task_group(roles, deps, stop)
        finally:
            log.info("shutting down: closing clients")
            for closer in (gateway.close(), redis.aclose(), db.close()):
                with contextlib.suppress(Exception):
                    await closer
            if metrics_runner is not None:
                await metrics_runner.cleanup()
            if sandbox is not None:
                await sandbox.close()


async def _run_task_group(roles: tuple[str, ...], deps: Deps, stop: asyncio.Event) -> None:
    async def supervised(role: str) -> None:
        metrics.ROLE_UP.labels(role).set(1)
        log.info("role %s started", role)
        try:
            await ROLE_MAINS[role](deps, stop)
        finally:
            metrics.ROLE_UP.labels(role).set(0)
            log.info("role %s stopped", role)

    # a role that crashes stops the others: the orchestrator restarts the whole process
    try:
        async with asyncio.TaskGroup() as group:
            for role in roles:
                group.create_task(supervised(role))
    except BaseException:
        stop.set()
        raise


async def main(argv: list[str]) -> int:
    try:
        settings = load_settings()
        settings.check_production()
        settings = settings.with_sandbox_defaults()
        if settings.security.session_key.get().strip():
            SessionCipher(settings.security.session_key.get())  # a malformed key is refused by name here
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        if argv[1:2] == ["migrate"]:
            async with infrastructure(settings) as (db_url, _):
                applied = await apply_migrations(db_url)
            log.info("migrations applied: %s", ", ".join(applied) or "none (at head)")
            return 0
        stop = asyncio.Event()
        install_signal_handlers(stop)
        log.info("starting role %s (gateway %s, sandbox %s)", settings.role, settings.gateway_kind,
                 "on" if settings.sandbox_enabled else "off")
        await run_roles(settings, stop)
    except SettingsError as exc:  # found while starting: DATA_DIR in use, local extra missing
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


def run(argv: list[str] | None = None) -> int:
    args = sys.argv if argv is None else argv
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep the supervisor usable without it
        return asyncio.run(main(args))
    return uvloop.run(main(args))


if __name__ == "__main__":
    raise SystemExit(run())
