"""The bot role: aiogram against a (possibly custom) Bot API server, FSM in Redis, services injected.

``run_bot`` builds the services from the supervisor's shared clients, then stands by for the
polling lease (Telegram allows one getUpdates consumer per bot): the leader long-polls and
drains the notifications outbox; a standby replica takes over within one lease when the
leader dies. ``build_dispatcher`` is shared by polling and webhook mode.

Webhook mode (``settings.app.webhook_url`` set): the leader calls setWebhook with the secret
token instead of polling and still drains the outbox; updates reach the app role's
``/telegram/webhook`` on every app replica, through a dispatcher from ``build_webhook_target``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import redis.asyncio as aioredis
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import DefaultKeyBuilder, StateType, StorageKey
from aiogram.types import BotCommand

from accounts.gateway import AccountGateway
from config.settings import Settings, check_webhook
from domain.limits import Policy
from domain.models import Clock, utc_now
from roles.bot import i18n
from roles.bot.album import AlbumMiddleware
from roles.bot.announcer import Announcer
from roles.bot.fsm import SnapshotIsolation, SnapshotReads
from roles.bot.i18n import N_
from roles.bot.middlewares import (
    AccessMiddleware,
    AccountOfButtonMiddleware,
    GateMiddleware,
    InFlightMiddleware,
    LeaveInputMiddleware,
    LocaleMiddleware,
    ObserveMiddleware,
    install_request_middlewares,
)
from roles.bot.notifier import run_notifier
from roles.bot.routers import build_routers
from roles.bot.session import BotSession
from roles.bot.states import LOGIN_STATES
from roles.runtime import runtime_service
from services.access import AccessService
from services.admin import AdminService
from services.campaigns import CampaignService
from services.group_import import GroupImportService
from services.groups import GroupService
from services.login import LoginService, SessionCipherPort
from services.messages import MessageService
from services.notifications import NotificationService
from services.schedule import ScheduleService
from services.send_limits import SendLimitsService
from services.status import StatusService
from services.topics import TopicService
from storage import keys
from storage.access_events import AccessChangeListener
from storage.db import Database
from storage.lease import HeldLease, Leases
from storage.send_limiter import SendLimiter
from storage.user_lock import UserLock

log = logging.getLogger(__name__)

# any well-formed token works against the sandbox; a real deployment sets BOT_TOKEN
SANDBOX_TOKEN = "1000000001:sandbox-local-bot"
FSM_TTL = 30 * 24 * 3600  # an abandoned input state is forgotten after a month (a login's after LOGIN_TTL)
LOGIN_STATE_NAMES = frozenset(state.state for state in LOGIN_STATES)
EXPIRY_CHECK_SECONDS = 60.0
WEBHOOK_MAX_CONNECTIONS = 40
MAX_CONCURRENT_UPDATES = 256  # updates handled at once by this replica (each one per user at a time)
SHUTDOWN_GRACE = 10.0  # seconds a stopping bot gives the updates it is handling
COMMANDS = (
    ("start", N_("main menu")),
    ("login", N_("connect your Telegram account")),
    ("status", N_("broadcast status")),
    ("help", N_("how it works")),
    ("cancel", N_("cancel the current input")),
)


async def set_commands(bot: Bot) -> None:
    """The command list in English for everyone, and in each other language for the apps set to it
    (Telegram picks the list by the app's language_code)."""
    await bot.set_my_commands([BotCommand(command=c, description=d) for c, d in COMMANDS])
    for language in i18n.LANGUAGES:
        if language != i18n.DEFAULT:
            await bot.set_my_commands(
                [BotCommand(command=c, description=i18n.translate(d, language)) for c, d in COMMANDS],
                language_code=language)


@dataclass(frozen=True)
class BotServices:
    """The services handlers receive by parameter name (``Dispatcher(**kwargs)``)."""

    access: AccessService
    login: LoginService
    groups: GroupService
    messages: MessageService
    campaigns: CampaignService
    status: StatusService
    notifications: NotificationService
    admin: AdminService
    cipher: SessionCipherPort
    limits: SendLimitsService
    topics: TopicService
    schedule: ScheduleService

    def as_kwargs(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def build_services(
    settings: Settings,
    db: Database,
    redis: aioredis.Redis,
    gateway: AccountGateway,
    cipher: SessionCipherPort,
    now: Clock = utc_now,
) -> BotServices:
    access = AccessService(db, settings, now)
    # the lock the worker sends under: import and logout never use a session a batch is sending on
    lock = UserLock(Leases(redis), settings.engine.lease_ttl)
    login = LoginService(db, gateway, cipher, settings, now, lock=lock, lock_wait=settings.bot.lock_wait)
    admin = AdminService(db, settings, login, now)
    limiter = SendLimiter(redis, Policy.from_settings(settings.engine))
    limits = SendLimitsService(db, settings, admin, limiter, now)
    return BotServices(
        access=access,
        login=login,
        groups=GroupImportService(db, gateway, cipher, settings, now, lock=lock,
                                  lock_wait=settings.bot.lock_wait),
        messages=MessageService(db, now, settings.bot.messages_per_account),
        campaigns=CampaignService(db, settings, access, now),
        status=StatusService(db, settings, now, limits=limits),
        notifications=NotificationService(db, now),
        admin=admin,
        cipher=cipher,
        limits=limits,
        topics=TopicService(db, now),
        schedule=ScheduleService(db, now),
    )


class SharedRedisStorage(SnapshotReads):
    """RedisStorage on the supervisor's client: closing the dispatcher must not close that client.
    Reads inside an update come from the snapshot its lock took (``roles.bot.fsm``).

    A login's state and data (the encrypted attempt token) expire after ``login_ttl`` seconds
    (LOGIN_TTL), not after the month other input states are kept: an abandoned login leaves nothing.
    """

    def __init__(self, redis: aioredis.Redis, *, login_ttl: float | None = None, **kwargs: Any) -> None:
        super().__init__(redis, **kwargs)
        self.login_ttl_ms = int(login_ttl * 1000) if login_ttl else None

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        await super().set_state(key, state)
        name = state.state if isinstance(state, State) else state
        if self.login_ttl_ms and name in LOGIN_STATE_NAMES:
            await self.redis.pexpire(self.key_builder.build(key, "state"), self.login_ttl_ms)
            await self.redis.pexpire(self.key_builder.build(key, "data"), self.login_ttl_ms)

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await super().set_data(key, data)
        if self.login_ttl_ms and data and await self.get_state(key) in LOGIN_STATE_NAMES:
            await self.redis.pexpire(self.key_builder.build(key, "data"), self.login_ttl_ms)

    async def close(self) -> None:
        return None


def fsm_key_builder() -> DefaultKeyBuilder:
    return DefaultKeyBuilder(prefix=keys.FSM_PREFIX)


def fsm_key(bot_id: int, user_id: int) -> StorageKey:
    """The FSM key of a private chat (chat id = user id), as the dispatcher builds it."""
    return StorageKey(bot_id=bot_id, chat_id=user_id, user_id=user_id)


def build_dispatcher(settings: Settings, redis: aioredis.Redis, services: BotServices) -> Dispatcher:
    """Routers, middlewares, FSM in Redis (with per-user event isolation across replicas).

    Besides the services, handlers get ``runtime`` (A5, the admin API's service) and
    ``announcer`` (A7; the leader runs its delivery loop, a confirmation wakes it).
    """
    storage = SharedRedisStorage(redis, key_builder=fsm_key_builder(), state_ttl=FSM_TTL, data_ttl=FSM_TTL,
                                 login_ttl=settings.bot.login_ttl)
    # the lock's round trip also reads the user's state and data (was SET NX, then a GET for each)
    isolation = SnapshotIsolation(redis, fsm_key_builder(), timeout=60, sleep=0.02, blocking_timeout=30)
    # the FSM middleware (and its per-user lock) is registered by hand below, after the cheap checks:
    # a duplicate or a flood must be dropped on arrival, not after queueing for the user's lock
    dp = Dispatcher(
        storage=storage,
        events_isolation=isolation,
        disable_fsm=True,
        settings=settings,
        **services.as_kwargs(),
    )
    dp["in_flight"] = in_flight = InFlightMiddleware()
    dp.update.outer_middleware(in_flight)
    dp.update.outer_middleware(LocaleMiddleware())
    dp.update.outer_middleware(ObserveMiddleware())
    dp.update.outer_middleware(GateMiddleware(redis, settings.bot.throttle_rate, now=services.admin.now))
    dp.update.outer_middleware(AlbumMiddleware())  # U9.3: an album's parts, handled as one update
    dp.update.outer_middleware(dp.fsm)
    dp.update.outer_middleware(AccessMiddleware(services.access))
    # inner: they run after the filters chose a flagged handler; the account first, so a stale press
    # changes nothing
    dp.callback_query.middleware(AccountOfButtonMiddleware())
    leave = LeaveInputMiddleware()
    dp.message.middleware(leave)
    dp.callback_query.middleware(leave)
    dp.include_routers(*build_routers())
    dp["runtime"] = runtime_service(services.admin, redis, settings, now=services.admin.now)
    dp["announcer"] = Announcer(services.notifications, services.admin)
    return dp


async def close_dispatcher(dp: Dispatcher, grace: float = SHUTDOWN_GRACE) -> None:
    """Let the updates being handled finish (up to ``grace`` seconds, then they are cancelled) and a
    running announcement finish (or cut it after a while), before the bot session closes."""
    in_flight = dp.workflow_data.get("in_flight")
    if isinstance(in_flight, InFlightMiddleware):
        await in_flight.drain(grace)
    announcer = dp.workflow_data.get("announcer")
    if isinstance(announcer, Announcer):
        await announcer.close()


def webhook_secret(settings: Settings) -> str:
    """The webhook's secret token; webhook mode refuses to start without a valid one."""
    check_webhook(settings.app)
    return settings.app.webhook_secret.get()


def build_webhook_target(
    settings: Settings,
    db: Database,
    redis: aioredis.Redis,
    gateway: AccountGateway,
    cipher: SessionCipherPort,
    now: Clock = utc_now,
) -> tuple[Bot, Dispatcher]:
    """The bot and dispatcher the app role feeds webhook updates into (the same routers as polling)."""
    webhook_secret(settings)
    services = build_services(settings, db, redis, gateway, cipher, now)
    return build_bot(settings), build_dispatcher(settings, redis, services)


def bot_token(settings: Settings) -> str:
    token = settings.telegram.bot_token.get()
    if not token and settings.sandbox_enabled:
        return SANDBOX_TOKEN
    return token


def build_bot(settings: Settings) -> Bot:
    """The Bot, pointed at ``settings.telegram.bot_api_url`` (the sandbox) when set."""
    url = settings.telegram.bot_api_url or (settings.sandbox.url if settings.sandbox_enabled else "")
    session = BotSession(api=TelegramAPIServer.from_base(url)) if url else BotSession()
    bot = Bot(bot_token(settings), session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    install_request_middlewares(bot, pace=settings.bot.pace_sends)
    return bot


async def _expire_access(access: AccessService, stop: asyncio.Event, every: float) -> None:
    while not stop.is_set():
        try:
            expired = await access.expire_due()
            if expired:
                log.info("access expired for %d users", len(expired))
        except Exception:
            log.exception("access expiry check failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def run_bot(
    settings: Settings,
    db: Database,
    redis: aioredis.Redis,
    gateway: AccountGateway,
    stop: asyncio.Event,
    *,
    cipher: SessionCipherPort | None = None,
    now: Clock = utc_now,
    expiry_every: float = EXPIRY_CHECK_SECONDS,
) -> None:
    """Run the bot role until ``stop`` is set: polling or setWebhook (as the leader) plus the outbox
    drainer and the access-expiry check (every ``expiry_every`` seconds)."""
    polling = not settings.app.webhook_url
    secret = "" if polling else webhook_secret(settings)
    if cipher is None:
        from accounts.crypto import load_or_create_key

        cipher = load_or_create_key(settings)
    services = build_services(settings, db, redis, gateway, cipher, now)
    dp = build_dispatcher(settings, redis, services)
    announcer = dp["announcer"]
    assert isinstance(announcer, Announcer)
    bot = build_bot(settings)
    leases = Leases(redis)
    # every replica: the access cache is trusted only while this listens to the database's changes
    listener = asyncio.create_task(AccessChangeListener(db, services.access.cache).run(stop))

    async def lead(held: HeldLease) -> None:
        log.info("bot: leading (token %d), %s", held.token, "long polling" if polling else "webhook mode")
        inner = asyncio.Event()  # set when this leadership ends, so the helpers stop too
        helpers = [
            asyncio.create_task(run_notifier(bot, services.notifications, inner)),
            asyncio.create_task(_expire_access(services.access, inner, expiry_every)),
            # A7: only the leader delivers announcements; unfinished ones are resumed here
            announcer.start(bot, inner),
        ]
        updates: asyncio.Task[None] | None = None
        try:
            if polling:
                await _prepare_polling(bot)
                updates = asyncio.create_task(
                    dp.start_polling(
                        bot,
                        handle_signals=False,
                        close_bot_session=False,
                        allowed_updates=dp.resolve_used_update_types(),
                        tasks_concurrency_limit=MAX_CONCURRENT_UPDATES,
                    )
                )
                # asyncio.wait, unlike awaiting the task, leaves it running when we are cancelled:
                # aiogram must be stopped through stop_polling or its polling task lives on
                await asyncio.wait({updates, *helpers}, return_when=asyncio.FIRST_COMPLETED)
                for task in (updates, *helpers):
                    if task.done():
                        task.result()  # a crash of polling or a helper ends this leadership
            else:
                await _set_webhook(bot, dp, settings.app.webhook_url, secret)
                await asyncio.wait(helpers, return_when=asyncio.FIRST_COMPLETED)
                for task in helpers:
                    if task.done():
                        task.result()
        finally:
            inner.set()
            if held.lost.is_set():
                announcer.halt()  # another replica may lead already: no announcement send after the lease
            if updates is not None and not updates.done():
                with contextlib.suppress(RuntimeError):
                    await dp.stop_polling()
                await asyncio.gather(updates, return_exceptions=True)
            await asyncio.gather(*helpers, return_exceptions=True)

    try:
        while not stop.is_set():
            try:
                await leases.run_as_leader(
                    keys.POLLING_LEADER,
                    settings.engine.lease_ttl,
                    lead,
                    stop,
                    retry=min(settings.engine.lease_ttl / 3, 1.0),
                )
            except (OSError, aioredis.RedisError) as exc:
                log.warning("bot: leader election failed: %s", exc)
            except Exception:
                log.exception("bot: polling failed; standing for election again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    finally:
        await close_dispatcher(dp)
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await bot.session.close()
        log.info("bot: stopped")


async def _prepare_polling(bot: Bot) -> None:
    # getUpdates fails while a webhook is set; the command list is a nicety
    try:
        await bot.delete_webhook(drop_pending_updates=False)
        await set_commands(bot)
    except TelegramAPIError as exc:
        log.warning("bot: preparing polling failed: %s", type(exc).__name__)


async def _set_webhook(bot: Bot, dp: Dispatcher, url: str, secret: str) -> None:
    # the leader (re)registers the webhook once per leadership; a failure ends the leadership,
    # so a replica tries again within a lease instead of silently receiving nothing
    await bot.set_webhook(
        url,
        secret_token=secret,
        allowed_updates=dp.resolve_used_update_types(),
        max_connections=WEBHOOK_MAX_CONNECTIONS,
        drop_pending_updates=False,
    )
    log.info("bot: webhook set (%s)", url.split("?", 1)[0])
    try:
        await set_commands(bot)
    except TelegramAPIError as exc:
        log.warning("bot: setting the command list failed: %s", type(exc).__name__)
