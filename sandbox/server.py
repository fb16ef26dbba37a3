"""The sandbox server: Bot API, simulated world and control API on one aiohttp application.

``build_app`` assembles it (one event log, one world, one set of chats);
``run_sandbox`` serves it on ``settings.host:settings.port`` and returns a handle
to close it. ``python -m sandbox`` runs it on its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from config.settings import SandboxSettings
from sandbox.botapi import BotApi, setup_botapi_routes
from sandbox.chats import Chats
from sandbox.control import setup_control_routes
from sandbox.events import EventLog
from sandbox.mtproto import MTProtoServer, start_beside_sandbox
from sandbox.web_routes import setup_web_routes
from sandbox.world import World, load_world_file
from sandbox.world_api import WORLD_KEY, setup_world_routes

logger = logging.getLogger(__name__)

EVENTS_KEY: Final = web.AppKey("sandbox_events", EventLog)
CHATS_KEY: Final = web.AppKey("sandbox_chats", Chats)
BOTAPI_KEY: Final = web.AppKey("sandbox_botapi", BotApi)
__all__ = ["BOTAPI_KEY", "CHATS_KEY", "EVENTS_KEY", "WORLD_KEY", "SandboxServer", "build_app", "load_seed",
           "run_sandbox"]

MAX_UPLOAD = 50 * 1024 * 1024  # Telegram's upload limit for bots


def build_app(settings: SandboxSettings, seed: dict[str, Any] | None = None) -> web.Application:
    """The sandbox application; ``seed`` (a world file's content) fills the world."""
    app = web.Application(client_max_size=MAX_UPLOAD)
    events = EventLog()
    world = World(settings, events)
    if seed:
        world.seed(seed)
    chats = Chats(settings, on_user_message=world.observe_chat_message)
    app[EVENTS_KEY] = events
    app[CHATS_KEY] = chats
    app[BOTAPI_KEY] = setup_botapi_routes(app, chats, events)
    setup_control_routes(app, chats, world, events)
    setup_world_routes(app, world)  # also sets app[WORLD_KEY]
    setup_web_routes(app, chats, world, events)
    return app


def load_seed(seed_file: str | Path | None) -> dict[str, Any] | None:
    """The world file's content, or None when there is none (a relative path may name a packaged file)."""
    if not seed_file:
        return None
    path = Path(seed_file)
    if not path.is_file() and not path.is_absolute():
        path = Path(__file__).resolve().parent.parent / path
    if not path.is_file():
        logger.warning("sandbox seed file %s not found; the world starts empty", seed_file)
        return None
    return load_world_file(path)


@dataclass
class SandboxServer:
    """A running sandbox; ``url`` is its base URL (with the port actually bound)."""

    app: web.Application
    runner: web.AppRunner
    url: str
    mtproto: MTProtoServer | None = None

    @property
    def chats(self) -> Chats:
        return self.app[CHATS_KEY]

    @property
    def world(self) -> World:
        return self.app[WORLD_KEY]

    @property
    def events(self) -> EventLog:
        return self.app[EVENTS_KEY]

    async def close(self) -> None:
        if self.mtproto is not None:
            await self.mtproto.close()
        await self.runner.cleanup()


async def run_sandbox(
    settings: SandboxSettings,
    seed_file: str | Path | None = None,
    *,
    mtproto: bool = False,
    mtproto_key_file: str | Path | None = None,
) -> SandboxServer:
    """Serve the sandbox on ``settings.host:settings.port`` (port 0 picks a free one).

    With ``mtproto`` (and ``settings.mtproto_port >= 0``) the MTProto endpoint for the Telethon
    adapter starts beside it, using the RSA key in ``mtproto_key_file`` (in memory when None).
    """
    app = build_app(settings, load_seed(seed_file))
    # long polls end at shutdown (see Chats.close), so a short grace period is enough
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    port = settings.port
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            port = int(address[1])
            break
    url = f"http://{settings.host}:{port}"
    logger.info("sandbox Telegram listening on %s (Bot API at %s/bot<token>/<method>)", url, url)
    logger.info("web chat page: %s/  (chat with the bot, read login codes, watch group feeds)", url)
    # demo accounts only: their phones and 2FA passwords are meant to be shown to the person trying it
    for line in app[WORLD_KEY].demo_summary():
        logger.info("sandbox account: %s", line)
    mtproto_server = None
    if mtproto and settings.mtproto_port >= 0:
        mtproto_server = await start_beside_sandbox(
            app[WORLD_KEY], settings.host, settings.mtproto_port, mtproto_key_file
        )
        logger.info("sandbox MTProto endpoint on %s:%s", settings.host, mtproto_server.port)
    return SandboxServer(app, runner, url, mtproto_server)
