"""Fixtures: the sandbox server in-process on a free 127.0.0.1 port, its control client, an aiogram bot.

``sandbox`` has rate limits off (tests send fast); ``sandbox_factory(**settings)`` starts one
with other ``SandboxSettings`` (e.g. ``rate_limits=True``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from config.settings import SandboxSettings
from sandbox.chats import Chats
from sandbox.client import SandboxClient
from sandbox.events import EventLog
from sandbox.server import SandboxServer, run_sandbox
from sandbox.world import World

TOKEN = "123456789:AAE-sandbox_test_token"
USER = 1001


@dataclass
class Sandbox:
    server: SandboxServer
    client: SandboxClient

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def chats(self) -> Chats:
        return self.server.chats

    @property
    def world(self) -> World:
        return self.server.world

    @property
    def events(self) -> EventLog:
        return self.server.events

    def bot(self, token: str = TOKEN) -> Bot:
        """An aiogram bot pointed at this sandbox (close its session after use)."""
        return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(self.url)))

    async def raw(self, method: str, *, token: str = TOKEN, json: Any = None, data: Any = None,
                  http: str = "POST") -> tuple[int, dict[str, Any]]:
        """A Bot API call through plain aiohttp: the HTTP status and the decoded answer."""
        async with aiohttp.ClientSession() as session, session.request(
            http, f"{self.url}/bot{token}/{method}", json=json, data=data
        ) as resp:
            return resp.status, orjson.loads(await resp.read())


SandboxFactory = Callable[..., Awaitable[Sandbox]]


@pytest.fixture
async def sandbox_factory() -> AsyncIterator[SandboxFactory]:
    started: list[Sandbox] = []

    async def start(**settings: Any) -> Sandbox:
        options: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "rate_limits": False, "seed_file": ""}
        options.update(settings)
        server = await run_sandbox(SandboxSettings(**options))
        box = Sandbox(server, SandboxClient(server.url))
        started.append(box)
        return box

    yield start
    for box in started:
        await box.client.close()
        await box.server.close()


@pytest.fixture
async def sandbox(sandbox_factory: SandboxFactory) -> Sandbox:
    box = await sandbox_factory()
    await box.client.create_user(USER, "Tess", username="tess")
    return box


@pytest.fixture
async def bot(sandbox: Sandbox) -> AsyncIterator[Bot]:
    tg_bot = sandbox.bot()
    yield tg_bot
    await tg_bot.session.close()
