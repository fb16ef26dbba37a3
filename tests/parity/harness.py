"""The parity harness: the sandbox in-process on a free port, the real bot role polling it.

The bot is ``roles.bot.role.run_bot`` itself, against a fresh migrated PostgreSQL database and
a flushed Redis database. Its clock is shifted by the ``advance_clock`` step (login TTL).
``settle()`` waits until the bot has handled every update pushed so far, read from its own
handler metric, so cases need no sleeps.

``start_harness(..., gateway=...)`` picks the account gateway as ``ACCOUNT_GATEWAY`` does, through
``accounts.factory.build_gateway``: ``sandbox`` (the world over HTTP) or ``telethon`` (the real
Telethon adapter against the sandbox's MTProto endpoint, started beside it on a free port with an
in-memory RSA key). ``restart_bot()`` stops the bot and starts a fresh one, with a new gateway,
on the same database and Redis, as a restarted process would.

``start_harness(..., webhook=True)`` runs the same bot in webhook mode instead: the app role's
aiohttp application serves ``/telegram/webhook`` on a free port, the bot role registers it with
setWebhook (and the secret token) and the sandbox POSTs every update there.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import json
import re
import secrets
import socket
import struct
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web
from telethon.sessions import StringSession

from accounts.crypto import SessionCipher, generate_key
from accounts.factory import GATEWAY_KINDS, build_gateway
from accounts.gateway import AccountGateway
from config.settings import (
    AppSettings,
    BotSettings,
    EngineSettings,
    SandboxSettings,
    Secret,
    Settings,
    TelegramSettings,
)
from contract import Contract
from metrics import BOT_HANDLER_SECONDS
from roles.app.server import build_app
from roles.app.webhook import WEBHOOK_PATH, WebhookTarget
from roles.bot.role import build_webhook_target, fsm_key, fsm_key_builder, run_bot
from roles.bot.states import short_name
from sandbox.client import SandboxClient
from sandbox.mtproto import keys as mtproto_keys
from sandbox.server import SandboxServer, run_sandbox
from services.admin import Actor, AdminService
from services.login import LoginService
from storage.db import Database
from storage.migrator import apply_migrations
from storage.repositories import users as users_repo

TOKEN = "424242:parity-suite-token"
BOT_ID = 424242
ADMIN = 9000  # receives access-request cards
ADMIN_USER = 9001  # the case user of ``as_admin`` cases
DEMO_WORLD = Path(__file__).resolve().parents[2] / "sandbox" / "demo_world.json"
SETTLE_TIMEOUT = 15.0
EXPIRY_EVERY = 0.5  # seconds between the bot's access-expiry checks (a minute in production)
# What a session string (durable or temporary) of each adapter looks like, to find one leaked anywhere:
# the world's tokens, and Telethon's StringSession for an IPv4 address ("1" + urlsafe base64 of the
# 263 bytes DC id, address, port, auth key). Telethon's candidates are decoded before they count.
SESSION_PATTERNS = {
    "sandbox": re.compile(r"(?:sbx|tmp)_[A-Za-z0-9_-]{20,}"),
    "telethon": re.compile(r"1[A-Za-z0-9_-]{351}="),
}


class ShiftClock:
    """The bot's clock: real time plus an offset the ``advance_clock`` step moves; ``frozen()`` holds
    it still for a block (a flood that must fall into one second of the throttle)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._held: datetime | None = None

    def __call__(self) -> datetime:
        if self._held is not None:
            return self._held
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[datetime]:
        self._held = self()
        try:
            yield self._held
        finally:
            self._held = None


def handled_updates() -> float:
    """Updates the bot finished handling (every update passes ObserveMiddleware's ``finally``)."""
    total = 0.0
    for metric in BOT_HANDLER_SECONDS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count"):
                total += sample.value
    return total


@dataclass
class Harness:
    sandbox: SandboxServer
    client: SandboxClient
    db: Database
    redis: aioredis.Redis
    settings: Settings
    clock: ShiftClock
    cipher: SessionCipher
    admin: AdminService
    db_url: str
    gateway: AccountGateway
    start_bot: Callable[[AccountGateway], tuple[asyncio.Task[None], asyncio.Event]]
    app_url: str = ""  # webhook mode: the app role's base URL
    mtproto_public_key: str | None = None  # the sandbox's MTProto RSA key (telethon gateway only)
    baseline: float = 0.0
    pushed: int = 0
    next_uid: int = 100_001
    created: set[int] = field(default_factory=set)
    bot_task: asyncio.Task[None] | None = None
    bot_stop: asyncio.Event = field(default_factory=asyncio.Event)
    gateways: list[AccountGateway] = field(default_factory=list)  # every one built, closed at the end

    @property
    def gateway_kind(self) -> str:
        return self.settings.gateway_kind

    def new_gateway(self) -> AccountGateway:
        """Another process's gateway: built by the same selection as the supervisor's, from the settings."""
        gateway = build_gateway(self.settings, mtproto_public_key=self.mtproto_public_key)
        self.gateways.append(gateway)
        return gateway

    def is_session(self, value: str) -> bool:
        """``value`` is a session string of this harness's adapter, for this sandbox."""
        if not SESSION_PATTERNS[self.gateway_kind].fullmatch(value):
            return False
        if self.gateway_kind == "sandbox":
            return value.startswith("sbx_")
        try:
            session = StringSession(value)
        except (ValueError, struct.error, binascii.Error):
            return False
        assert self.sandbox.mtproto is not None
        ports = {dc.port for dc in self.sandbox.mtproto.peers}  # any of its data centres (PHONE_MIGRATE)
        return (session.server_address, session.auth_key is not None) == (self.settings.sandbox.host, True) \
            and session.port in ports

    def leaked_session(self, text: str) -> str | None:
        """The first session string (durable or temporary) of this adapter found in ``text``, if any."""
        pattern = SESSION_PATTERNS[self.gateway_kind]
        return next((m.group(0) for m in pattern.finditer(text)
                     if self.gateway_kind == "sandbox" or self.is_session(m.group(0))), None)

    async def restart_bot(self) -> None:
        """Stop the bot and start a fresh one (new gateway, services, dispatcher) on the same DB and Redis."""
        if self.app_url:
            raise RuntimeError("restart_bot supports polling mode only")
        await self.stop_bot()
        await self.gateway.close()  # the old process's clients are gone with it
        before = self.sandbox.events.since(0)
        mark = before[-1].seq if before else 0
        self.gateway = self.new_gateway()
        self.admin = AdminService(self.db, self.settings,
                                  LoginService(self.db, self.gateway, self.cipher, self.settings, self.clock),
                                  self.clock)
        self.bot_task, self.bot_stop = self.start_bot(self.gateway)
        await _wait_listening(self.sandbox, self.bot_task, "setMyCommands", since=mark)

    async def stop_bot(self) -> None:
        self.bot_stop.set()
        if self.bot_task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self.bot_task, 10)
            self.bot_task = None

    async def new_user(self, first_name: str = "Parity") -> int:
        uid = self.next_uid
        self.next_uid += 1
        await self.ensure_user(uid, first_name)
        return uid

    async def free_accounts(self) -> None:
        """The demo accounts become free, as if the people before had logged out (one Telegram
        account is connected by one bot user at a time); each contract case starts so, and the
        dialog-paging throttle of the world is as it would be minutes later."""
        self.sandbox.world.forget_dialog_paging()
        async with self.db.connection() as conn:
            await conn.execute("UPDATE accounts SET status = 'disconnected', session_enc = NULL, "
                               "disconnected_reason = 'next_person' WHERE status = 'connected'")

    async def ensure_user(self, uid: int, first_name: str = "Parity") -> None:
        if uid not in self.created:
            await self.client.create_user(uid, first_name, username=f"user{uid}")
            self.created.add(uid)

    def count_pushed(self, updates: int = 1) -> None:
        self.pushed += updates

    async def settle(self, timeout: float = SETTLE_TIMEOUT) -> None:  # noqa: ASYNC109
        """Wait until every pushed update was handled (the bot answers them in order per user)."""
        deadline = time.monotonic() + timeout
        while handled_updates() - self.baseline < self.pushed:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the bot handled {handled_updates() - self.baseline:.0f} of "
                                   f"{self.pushed} updates within {timeout}s")
            await asyncio.sleep(0.005)

    async def state(self, uid: int) -> str:
        raw = await self.redis.get(fsm_key_builder().build(fsm_key(BOT_ID, uid), "state"))
        return short_name(raw.decode() if isinstance(raw, bytes) else raw)

    async def fsm_data(self, uid: int) -> dict[str, Any]:
        raw = await self.redis.get(fsm_key_builder().build(fsm_key(BOT_ID, uid), "data"))
        if not raw:
            return {}
        data = json.loads(raw)
        return data if isinstance(data, dict) else {}

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.db.connection() as conn:
            return await conn.fetchval(sql, *args)

    async def set_mode(self, mode: str) -> None:
        await self.admin.set_mode(Actor.system("parity"), mode)

    async def ban(self, uid: int) -> None:
        await self.admin.ban(Actor.system("parity"), uid)

    async def speak(self, language: str, *uids: int) -> None:
        """The bot's stored language of these people (U12; the admins of the Russian pass), as if each
        had chosen it in the settings menu: announced to the bot's access cache like a ban is."""
        async with self.db.transaction() as conn:
            for uid in uids:
                await users_repo.ensure(conn, uid)
                await users_repo.set_language(conn, uid, language, self.clock())


def parity_settings(sandbox_url: str, overrides: dict[str, Any] | None = None, *, gateway: str = "sandbox",
                    mtproto_port: int = -1) -> Settings:
    """The bot's settings: ``ACCOUNT_GATEWAY=gateway`` with the sandbox at ``sandbox_url`` (and its MTProto
    endpoint on ``mtproto_port``)."""
    # the harness's sandbox has Telegram's limits off: the bot doesn't pace (a test turning them on
    # asks for pacing through ``overrides``)
    bot = BotSettings(admin_ids=(ADMIN, ADMIN_USER), throttle_rate=50.0, pace_sends=False)
    if overrides:
        bot = replace(bot, **{k: v for k, v in overrides.items() if hasattr(bot, k)})
    host, _, port = sandbox_url.removeprefix("http://").partition(":")
    return Settings(
        role="bot",
        telegram=TelegramSettings(bot_token=Secret(TOKEN), bot_api_url=sandbox_url, gateway=gateway),
        sandbox=SandboxSettings(enabled=True, host=host, port=int(port or 0), rate_limits=False, seed_file="",
                                mtproto_port=mtproto_port),
        bot=bot,
    )


async def _fresh_database(pg_server_url: str) -> str:
    name = f"parity_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(pg_server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = pg_server_url.rpartition("/")[0] + f"/{name}"
    await apply_migrations(url)
    return url


async def _drop_database(pg_server_url: str, url: str) -> None:
    name = url.rpartition("/")[2]
    conn = await asyncpg.connect(pg_server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def start_harness(pg_server_url: str, redis_server_url: str, contract: Contract | None = None,
                        redis_db: int = 7, *, webhook: bool = False,
                        engine: EngineSettings | None = None, gateway: str = "sandbox") -> AsyncIterator[Harness]:
    """Sandbox + migrated database + flushed Redis + the real bot; everything torn down after.

    ``webhook``: updates reach the bot through the app role's webhook instead of long polling.
    ``engine``: engine settings for tests that run the worker next to the bot.
    ``gateway``: the account gateway kind (``ACCOUNT_GATEWAY``), ``sandbox`` or ``telethon``.
    """
    if gateway not in GATEWAY_KINDS:
        raise ValueError(f"unknown gateway {gateway!r}")
    mtproto = gateway == "telethon"
    # port 0: a free port; the RSA key in memory (generated per harness, a fraction of a second)
    sandbox = await run_sandbox(SandboxSettings(host="127.0.0.1", port=0, rate_limits=False, seed_file="",
                                                mtproto_port=0 if mtproto else -1), mtproto=mtproto)
    public_key = None
    mtproto_port = -1
    if sandbox.mtproto is not None:
        public_key = mtproto_keys.public_pem(sandbox.mtproto.private_key)
        mtproto_port = sandbox.mtproto.port
    client = SandboxClient(sandbox.url)
    await client.add_accounts(json.loads(DEMO_WORLD.read_text(encoding="utf-8"))["accounts"])
    db_url = await _fresh_database(pg_server_url)
    db = await Database.connect(db_url, min_size=1, max_size=10)
    redis = aioredis.Redis.from_url(_redis_db_url(redis_server_url, redis_db))
    await redis.flushdb()
    settings = parity_settings(sandbox.url, contract.settings if contract else None, gateway=gateway,
                               mtproto_port=mtproto_port)
    if engine is not None:
        settings = replace(settings, engine=engine)
    clock = ShiftClock()
    cipher = SessionCipher(generate_key())
    account_gateway = build_gateway(settings, mtproto_public_key=public_key)
    app_runner: web.AppRunner | None = None
    app_url = ""
    if webhook:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        app_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        settings = replace(settings, app=AppSettings(webhook_url=app_url + WEBHOOK_PATH,
                                                     webhook_secret=Secret(secrets.token_urlsafe(24))))
        bot, dp = build_webhook_target(settings, db, redis, account_gateway, cipher, now=clock)
        target = WebhookTarget(bot, dp, settings.app.webhook_secret.get())
        app_runner = web.AppRunner(build_app(db, redis, settings, webhook=target), access_log=None)
        await app_runner.setup()
        await web.SockSite(app_runner, listener).start()
    admin = AdminService(db, settings, LoginService(db, account_gateway, cipher, settings, clock), clock)

    def start_bot(bot_gateway: AccountGateway) -> tuple[asyncio.Task[None], asyncio.Event]:
        stop = asyncio.Event()
        task = asyncio.create_task(run_bot(settings, db, redis, bot_gateway, stop, cipher=cipher, now=clock,
                                           expiry_every=EXPIRY_EVERY))
        return task, stop

    harness = Harness(sandbox, client, db, redis, settings, clock, cipher, admin, db_url, account_gateway,
                      start_bot, app_url, public_key, baseline=handled_updates(), gateways=[account_gateway])
    await harness.ensure_user(ADMIN, "Admin")
    await harness.ensure_user(ADMIN_USER, "Ada")
    harness.bot_task, harness.bot_stop = start_bot(account_gateway)
    try:
        # the sandbox logs a call when it completes, so a long poll shows only when it returns; the
        # last call before polling starts is setMyCommands (updates sent before the poll just wait)
        await _wait_listening(sandbox, harness.bot_task, "setWebhook" if webhook else "setMyCommands")
        yield harness
    finally:
        await harness.stop_bot()
        if app_runner is not None:
            await app_runner.cleanup()
        for each in harness.gateways:
            with contextlib.suppress(Exception):
                await each.close()
        await client.close()
        await sandbox.close()
        await redis.flushdb()
        await redis.aclose()
        await db.close()
        await _drop_database(pg_server_url, db_url)


def _redis_db_url(url: str, index: int) -> str:
    head, _, tail = url.rstrip("/").rpartition("/")
    if tail.isdigit():
        return f"{head}/{index}"
    return f"{url.rstrip('/')}/{index}"


async def _wait_listening(sandbox: SandboxServer, bot_task: asyncio.Task[None], method: str,
                          timeout: float = 15.0, since: int = 0) -> None:  # noqa: ASYNC109
    """Until the bot, as the leader, made the call ``method`` that precedes polling (or the webhook),
    after the sandbox event ``since``."""
    deadline = time.monotonic() + timeout
    while not any(e.method == method for e in sandbox.events.since(since)):
        if bot_task.done():
            bot_task.result()
            raise RuntimeError(f"the bot stopped before calling {method}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the bot did not call {method}")
        await asyncio.sleep(0.01)
