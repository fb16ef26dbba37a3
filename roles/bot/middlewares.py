"""Outer middlewares of the control bot, in the order they wrap every update.

``role.build_dispatcher`` puts aiogram's FSM middleware between 2 and 3: its Redis event
isolation runs one update per user at a time, across replicas, so FSM read-modify-write
(the code keypad, a code typed right after the phone) can't interleave, while duplicates
and floods are dropped on arrival without waiting for that lock.

0. ``InFlightMiddleware`` then ``LocaleMiddleware`` (the language of every text, U12).
   ``InFlightMiddleware`` counts the updates being handled, so a shutdown lets them finish
   (polling has already acknowledged them to Telegram; cutting one would lose it).
1. ``ObserveMiddleware``: one log line per update with the contract row id and outcome
   (never a text the user typed), metrics, errors turned into a short reply, and every
   callback query answered even when the handler forgot or failed.
2. ``GateMiddleware``: an update id is handled once (polling takeover, webhook retry) and a flood
   from one user is answered once with "slow down", both in one Redis round trip.
3. ``AccessMiddleware``: upserts the user (only when new, changed or last seen long ago; otherwise
   the cached record decides) and applies the access decision (U1.2-U1.4).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.dispatcher.flags import get_flag
from aiogram.fsm.context import FSMContext
from aiogram.methods import AnswerCallbackQuery, TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import CallbackQuery, Message, TelegramObject, Update, User

from domain.models import Clock, UserProfile, utc_now
from metrics import BOT_HANDLER_SECONDS, BOT_UPDATES
from roles.bot import callbacks as cb
from roles.bot import i18n, texts
from roles.bot import keyboards as kb
from roles.bot.pacing import SendPacer
from roles.bot.retry import RetryAfter
from roles.bot.ui import leave_input
from services.access import AccessService, AccessView
from storage import keys

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

# seconds an update id is remembered: Telegram redelivers an unconfirmed update to the next getUpdates
# (a takeover within one lease) or retries a failed webhook delivery within minutes, never a day later
DEDUPE_TTL = 10 * 60


# --- updates in flight: a shutdown waits for them ----------------------------------------------


class InFlightMiddleware(BaseMiddleware):
    """Tracks the tasks handling updates; ``drain`` waits for them, then cancels what is left.

    aiogram runs each polled update as its own task and ``stop_polling`` doesn't wait for those
    tasks, while the offset of the next getUpdates has already told Telegram they were received.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return len(self._tasks)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        task = asyncio.current_task()
        if task is None or task in self._tasks:  # re-entry (a nested feed) is counted once
            return await handler(event, data)
        self._tasks.add(task)
        self._idle.clear()
        try:
            return await handler(event, data)
        finally:
            self._tasks.discard(task)
            if not self._tasks:
                self._idle.set()

    async def drain(self, grace: float) -> int:
        """Wait up to ``grace`` seconds for running handlers; cancel the rest and return their number."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)
        left = list(self._tasks)
        for task in left:
            task.cancel()
        if left:
            log.warning("bot: %d update handler(s) still running after %.0f s; cancelled", len(left), grace)
            await asyncio.gather(*left, return_exceptions=True)
        return len(left)


# --- the per-update trace: row id, outcome, whether the callback was answered ------------------


@dataclass
class Trace:
    row: str = "-"
    outcome: str = "ok"
    answered: bool = False


_trace: ContextVar[Trace | None] = ContextVar("bot_trace", default=None)


def mark(row: str, outcome: str = "ok") -> None:
    """Name the contract row (``U3.6``) and outcome the current handler produced, for the log."""
    trace = _trace.get()
    if trace is not None:
        trace.row = row
        trace.outcome = outcome


def current_trace() -> Trace | None:
    return _trace.get()


class AnswerTracker(BaseRequestMiddleware):
    """Notes on the update's trace that answerCallbackQuery was called, whoever called it."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if isinstance(method, AnswerCallbackQuery):
            trace = _trace.get()
            if trace is not None:
                trace.answered = True
        return await make_request(bot, method)


def install_request_middlewares(bot: Bot, pace: bool = True) -> None:
    """Attach the 429 retry, the send pacer (``pace``) and the answer tracker to ``bot`` once (polling
    and webhook both call this). The retry wraps the pacer: a refused send queues again for its chat."""
    if not getattr(bot.session, "_ab_tracker", False):
        bot.session.middleware(RetryAfter())
        if pace:
            bot.session.middleware(SendPacer())
        bot.session.middleware(AnswerTracker())
        bot.session._ab_tracker = True  # type: ignore[attr-defined]


def _user_of(data: dict[str, Any]) -> User | None:
    user = data.get("event_from_user")
    return user if isinstance(user, User) else None


def _inner(update: Update) -> TelegramObject | None:
    return update.message or update.callback_query


async def say(
    bot: Bot, event: TelegramObject | None, text: str, alert: bool = False, reply_markup: Any = None
) -> None:
    """Best-effort short reply: a callback notice or a chat message."""
    try:
        if isinstance(event, CallbackQuery):
            trace = _trace.get()
            if trace is None or not trace.answered:
                await event.answer(text=text[:200], show_alert=alert)
            if reply_markup is not None and event.from_user is not None:
                await bot.send_message(event.from_user.id, text, reply_markup=reply_markup)
        elif isinstance(event, Message):
            await bot.send_message(event.chat.id, text, reply_markup=reply_markup)
    except Exception as exc:  # a reply that fails must not hide the original outcome
        log.warning("reply failed: %s", type(exc).__name__)


class ObserveMiddleware(BaseMiddleware):
    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        kind = event.event_type
        BOT_UPDATES.labels(type=kind).inc()
        trace = Trace()
        token = _trace.set(trace)
        started = time.perf_counter()
        user = _user_of(data)
        inner = _inner(event)
        try:
            return await handler(event, data)
        except Exception:
            trace.outcome = "error"
            log.exception(
                "update %s failed row=%s user=%s", event.update_id, trace.row, user.id if user else None
            )
            bot = data.get("bot")
            if isinstance(bot, Bot):
                await say(bot, inner, texts.ERROR, reply_markup=kb.main_only())
            return None
        finally:
            if isinstance(inner, CallbackQuery) and not trace.answered:
                with contextlib.suppress(Exception):
                    await inner.answer()
            elapsed = time.perf_counter() - started
            BOT_HANDLER_SECONDS.labels(row=trace.row).observe(elapsed)
            log.info(
                "update=%s type=%s user=%s row=%s outcome=%s ms=%.1f",
                event.update_id,
                kind,
                user.id if user else None,
                trace.row,
                trace.outcome,
                elapsed * 1000,
            )
            _trace.reset(token)


# One round trip for both checks: the update id is claimed first, so a duplicate never counts
# against the sender's throttle window. Returns -1 for a duplicate, else the window's count (0: no user).
_GATE_SCRIPT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return -1 end
if #KEYS < 2 then return 0 end
redis.call('SET', KEYS[2], 0, 'EX', 2, 'NX')
return redis.call('INCR', KEYS[2])
"""


class GateMiddleware(BaseMiddleware):
    """Dedupe and throttle in one Redis round trip (a Lua script, atomic across replicas).

    An update id is handled once (polling takeover, webhook retry); at most ``rate`` updates per
    second per user pass, and the first one over is answered "slow down". The seconds are the
    clock's (``now``), one counter per user and second, so replicas share a window and a test can
    hold one still.
    """

    def __init__(
        self, redis: aioredis.Redis, rate: float, dedupe_ttl: int = DEDUPE_TTL, now: Clock = utc_now
    ) -> None:
        self.script = redis.register_script(_GATE_SCRIPT)
        self.limit = max(1, int(rate))
        self.dedupe_ttl = dedupe_ttl
        self.now = now

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        user = _user_of(data)
        gate_keys = [keys.BOT_UPDATE_SEEN.format(update_id=event.update_id)]
        if user is not None:
            gate_keys.append(keys.THROTTLE.format(user_id=user.id, second=int(self.now().timestamp())))
        count = int(await self.script(keys=gate_keys, args=[self.dedupe_ttl]))
        if count < 0:
            mark("-", "duplicate")
            trace = _trace.get()
            if trace is not None:
                trace.answered = True  # the first delivery answered it; don't act twice
            return None
        if count <= self.limit:
            return await handler(event, data)
        mark("-", "throttled")
        if count == self.limit + 1:
            bot = data.get("bot")
            if isinstance(bot, Bot):
                await say(bot, _inner(event), texts.SLOW_DOWN)
        return None


def profile_of(user: User) -> UserProfile:
    """The sender as stored; ``language``: the bot's language for Telegram's ``language_code`` (U12.1)."""
    language = i18n.from_telegram(user.language_code) if user.language_code else ""
    return UserProfile(user.id, user.first_name or "", user.last_name or "", user.username or "", language)


class LocaleMiddleware(BaseMiddleware):
    """U12: every text of an update speaks the sender's language.

    Outermost, so even "slow down" and "something went wrong" are translated: until the stored
    language is known (``AccessMiddleware`` sets it) the sender's Telegram ``language_code`` decides.
    """

    def __init__(self) -> None:
        self.catalogues = i18n.catalogues()  # compiled when the dispatcher is built, not in an update

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user = _user_of(data)
        catalogues = self.catalogues
        language = i18n.from_telegram(user.language_code if user else "")
        with catalogues.context(), catalogues.use_locale(language):
            data["i18n"] = catalogues
            return await handler(event, data)


# callbacks a user without access may still press (U1.2)
_OPEN_CALLBACKS = (cb.Acc(action=cb.AccAction.request).pack(),)


class AccessMiddleware(BaseMiddleware):
    """Upserts the sender and injects ``access_view``; stops updates of users without access."""

    def __init__(self, access: AccessService) -> None:
        self.access = access

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user = _user_of(data)
        if user is None or user.is_bot or not isinstance(event, Update):
            return None
        inner = _inner(event)
        if isinstance(inner, Message) and inner.chat.type != "private":
            return None  # the bot only talks in private chats
        view = await self.access.touch(profile_of(user))
        if view.language:
            i18n.set_locale(view.language)  # the stored (first-contact or chosen) language wins
        data["access_view"] = view
        zone = texts.SHOWN_ZONE.set(view.timezone)  # U10.6: times in this update on the user's clock
        try:
            if view.allowed:
                return await handler(event, data)
            if isinstance(inner, CallbackQuery) and inner.data in _OPEN_CALLBACKS and view.can_request:
                return await handler(event, data)
            bot = data.get("bot")
            if isinstance(bot, Bot):
                await self._refuse(bot, inner, view)
            return None
        finally:
            texts.SHOWN_ZONE.reset(zone)

    @staticmethod
    async def _refuse(bot: Bot, event: TelegramObject | None, view: AccessView) -> None:
        if view.status == "banned":
            mark("U1.4", "denied")
            await say(bot, event, texts.ACCESS_DENIED)
            return
        markup = None
        if view.can_request:
            mark("U1.2", "needs_approval")
            text = texts.ACCESS_NEEDS_APPROVAL if view.status == "needs_approval" else texts.ACCESS_EXPIRED
            markup = kb.request_access()
        elif view.status == "pending":
            mark("U1.2", "pending")
            text = texts.ACCESS_PENDING
        elif view.status == "expired":
            mark("U1.3", "expired")
            text = texts.ACCESS_EXPIRED
        else:
            mark("U1.3", "invitation_only")
            text = texts.ACCESS_INVITATION_ONLY
        if isinstance(event, CallbackQuery):
            with contextlib.suppress(Exception):
                await event.answer()
            if event.from_user is not None:
                with contextlib.suppress(Exception):
                    await bot.send_message(event.from_user.id, text, reply_markup=markup)
            return
        if isinstance(event, Message):
            with contextlib.suppress(Exception):
                await bot.send_message(event.chat.id, text, reply_markup=markup)


# --- leaving an input state before a menu handler runs --------------------------------------------

LEAVE_INPUT = "leave_input"  # handler flag: True = leave any input state; "answer" = also answer the press


class LeaveInputMiddleware(BaseMiddleware):
    """Runs the preamble of handlers flagged ``@flags.leave_input``: the input in progress (a login
    is cancelled at Telegram) is dropped before the handler, and with ``"answer"`` the pressed
    button stops spinning. The state left is given to the handler as ``left_input``."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        flag = get_flag(data, LEAVE_INPUT)
        if not flag:
            return await handler(event, data)
        state, login, cipher = data.get("state"), data.get("login"), data.get("cipher")
        if isinstance(state, FSMContext) and login is not None and cipher is not None:
            bot = data.get("bot")
            bot = bot if isinstance(bot, Bot) else None
            data["left_input"] = await leave_input(state, login, cipher, bot)
        if flag == "answer" and isinstance(event, CallbackQuery):
            await event.answer()
        return await handler(event, data)


# --- a notification's button for one of several accounts ----------------------------------------

ACCOUNT_OF_BUTTON = "account_of_button"  # handler flag: a ``…:<aid>`` press first makes that account current


class AccountOfButtonMiddleware(BaseMiddleware):
    """For handlers flagged ``@flags.account_of_button``: a press whose callback data names an account
    (``st:show:<aid>``, ``grp:menu:<aid>``, ``msg:menu:<aid>``: the buttons of a notification about one
    account of a user who has several, U8) first makes that account the current one, as ``acc:sel:<aid>``
    does, so the menu it opens acts on the account the notification was about. An id that is not one of
    the user's connected accounts (forged, another user's, logged out since) gets the stale answer and the
    handler does not run: nothing changes."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        aid = getattr(data.get("callback_data"), "aid", None)
        if not get_flag(data, ACCOUNT_OF_BUTTON) or aid is None or not isinstance(event, CallbackQuery):
            return await handler(event, data)
        login = data["login"]
        if await login.select(event.from_user.id, aid) is None:
            mark("conv.stale", "account")
            await event.answer(texts.STALE)
            return None
        return await handler(event, data)
