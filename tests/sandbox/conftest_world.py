"""Helpers for the world's tests: a world with test timings, and a server with only its routes.

Imported by ``test_world_*.py`` and ``test_sandbox_gateway.py`` (not a conftest plugin, so the
fixtures of ``tests/sandbox/conftest.py`` stay independent of it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from config.settings import SandboxSettings
from sandbox.events import EventLog
from sandbox.world import World, WorldError
from sandbox.world_api import setup_world_routes
from tests.clocks import StepClock

ANN = "+15550001001"  # no 2FA
BEN = "+15550001002"  # 2FA
BANNED = "+15550001003"
PASSWORD = "pw-2fa"

SEED: dict[str, Any] = {
    "accounts": [
        {
            "phone": ANN,
            "first_name": "Ann",
            "user_id": 501,
            "groups": [
                {"id": 1, "title": "Shared", "kind": "supergroup"},
                {"id": 2, "title": "Basic", "kind": "group"},
                {"id": 3, "title": "News", "kind": "channel", "can_send": False},
                {"id": 4, "title": "Slow", "kind": "supergroup", "slow_mode": 30},
                {"id": 5, "title": "Banned here", "kind": "supergroup", "banned": True},
                {"id": 6, "title": "Old basic", "kind": "group", "migrated_to": 60},
            ],
        },
        {
            "phone": BEN,
            "first_name": "Ben",
            "user_id": 502,
            "password": PASSWORD,
            "groups": [
                {"id": 1, "title": "Shared", "kind": "supergroup"},
                {"id": 4, "title": "Slow", "kind": "supergroup", "slow_mode": 30},
                {"id": 7, "title": "Ben only", "kind": "supergroup"},
            ],
        },
        {"phone": BANNED, "first_name": "Bad", "banned": True},
    ]
}


class FakeClock(StepClock):
    """The hand-moved test clock (``tests.clocks.StepClock``) as the sandbox world reads it: called
    like ``time.monotonic``."""

    def __init__(self, start: float = 1_000.0) -> None:
        super().__init__(start)

    def __call__(self) -> float:
        return self.now


def make_world(clock: FakeClock | None = None, **settings: Any) -> World:
    clock = clock or FakeClock()
    world = World(SandboxSettings(**settings), EventLog(), clock=clock, sleep=clock.sleep)
    world.seed(SEED)
    return world


def latest_code(world: World, phone: str) -> str:
    return str(world.codes(phone)[0]["code"])


async def login(world: World, phone: str = ANN, password: str | None = None) -> str:
    """A durable session for ``phone`` through the world's own login calls."""
    sent = await world.send_code(phone)
    try:
        done = await world.sign_in(phone, sent["session"], sent["phone_code_hash"], latest_code(world, phone))
    except WorldError as exc:
        assert exc.name == "SESSION_PASSWORD_NEEDED"
        done = await world.check_password(phone, sent["session"], password or "")
    return str(done["session"])


async def world_error(awaitable: Any) -> WorldError:
    with pytest.raises(WorldError) as info:
        await awaitable
    return info.value


def world_app(world: World) -> web.Application:
    app = web.Application()
    setup_world_routes(app, world)
    return app


@asynccontextmanager
async def serve_world(world: World) -> AsyncIterator[str]:
    """Serve ``world``'s routes on 127.0.0.1; yields the base URL."""
    server = TestServer(world_app(world), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/")).rstrip("/")
    finally:
        await server.close()
