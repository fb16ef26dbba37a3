"""App-level dependencies of the admin API, set up once per application in one place.

``setup_dependencies`` stores them under typed ``AppKey``s; handlers reach them through the small
accessors below (``services(request)``, ``actor(request)``) instead of importing globals, the
aiohttp counterpart of FastAPI's ``deps.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from aiohttp import web

from accounts.gateway import AccountGateway
from config.settings import Settings
from domain.models import Clock, utc_now
from roles.app.auth import ACTOR_NAME
from roles.runtime import runtime_service
from services.admin import Actor, AdminService
from services.login import LoginService, SessionCipherPort
from services.runtime import RuntimeService
from storage.db import Database
from storage.lease import Leases
from storage.user_lock import UserLock

API_ACTOR_NAME = "api"


@dataclass(frozen=True)
class Services:
    """The services the admin API calls; the bot's admin flows use the same ones."""

    admin: AdminService
    runtime: RuntimeService


SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
REDIS = web.AppKey("redis", aioredis.Redis)
SERVICES = web.AppKey("services", Services)


def build_services(settings: Settings, db: Database, redis: aioredis.Redis, gateway: AccountGateway,
                   cipher: SessionCipherPort, now: Clock = utc_now) -> Services:
    # the lock the worker sends under: a forced logout never closes a session a batch is sending on
    lock = UserLock(Leases(redis), settings.engine.lease_ttl)
    login = LoginService(db, gateway, cipher, settings, now=now, lock=lock, lock_wait=settings.bot.lock_wait)
    admin = AdminService(db, settings, login, now=now)
    return Services(
        admin=admin,
        runtime=runtime_service(admin, redis, settings, now=now),
    )


def setup_dependencies(app: web.Application, settings: Settings, db: Database, redis: aioredis.Redis,
                       services: Services | None) -> None:
    app[SETTINGS] = settings
    app[DB] = db
    app[REDIS] = redis
    if services is not None:
        app[SERVICES] = services


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def actor(request: web.Request) -> Actor:
    """Who the audit log names for an API call: the name of the token that matched, actor kind ``api``."""
    return Actor.api(request.get(ACTOR_NAME, API_ACTOR_NAME))
