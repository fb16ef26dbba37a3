"""Bot latency: the control bot beside a bare aiogram 3 bot, on the same sandbox Bot API emulator.

``python -m bench.bot_latency [--rounds N] [--actions K] [--levels 1,10,100] [--think S]``

The sandbox runs as its own process (limits off), as Telegram is remote; both bots long-poll it
with the same token from this process, one after the other, alternating ``--rounds`` times in one
invocation so that machine load hits both alike. Closed-loop users each do, ``--actions`` times:
``/start`` (wait until the update is handled), then press a menu button on the reply (the interval
menu: answer the callback, edit the message), with ``--think`` seconds (±50 %) between actions.

Per action a request middleware on each bot (the innermost, so every HTTP call counts) notes
the time each Bot API call of that user completed: update→first reply is the first one after
the update was pushed to the sandbox (an answerCallbackQuery counts: the spinner stops),
update→last reply the last one before the dispatcher finished the update. Also: Bot API calls
per action and 429 answers. The bare bot gets its best configuration: no FSM, no middlewares,
the default aiohttp session, the same polling concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import logging
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramRetryAfter
from aiogram.filters import CommandStart
from aiogram.methods import AnswerCallbackQuery, TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update

from accounts.factory import build_gateway
from bench.common import fresh_database, new_cipher, servers
from config.settings import BotSettings, SandboxSettings, Secret, Settings, TelegramSettings
from roles.bot import callbacks as cb
from roles.bot.notifier import run_notifier
from roles.bot.role import MAX_CONCURRENT_UPDATES, build_bot, build_dispatcher, build_services
from sandbox.client import SandboxClient
from services.admin import Actor
from storage.db import Database

try:
    from storage.access_events import AccessChangeListener
except ImportError:  # the tree before issue 14
    AccessChangeListener = None  # type: ignore[assignment,misc]

TOKEN = "515151:bench-bot-latency"
MENU = cb.Int(action=cb.IntAction.menu).pack()  # a menu button: answer the press, edit the message


@dataclass
class Sample:
    first_ms: float
    last_ms: float
    calls: int
    throttled: int


@dataclass
class Results:
    samples: dict[tuple[str, str, int], list[Sample]] = field(default_factory=dict)

    def add(self, bot: str, action: str, users: int, sample: Sample) -> None:
        self.samples.setdefault((bot, action, users), []).append(sample)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Action:
    started: float
    done: asyncio.Future[float]
    calls: list[float] = field(default_factory=list)
    throttled: int = 0


class Recorder(BaseRequestMiddleware):
    """Per user: the action in flight, the completion time of each of its Bot API calls, the last menu."""

    def __init__(self) -> None:
        self.actions: dict[int, Action] = {}
        self.queries: dict[str, int] = {}  # callback query id -> user id
        self.menus: dict[int, int] = {}  # user id -> message id of the last message with the menu button

    def expect(self, uid: int) -> Action:
        action = Action(time.perf_counter(), asyncio.get_running_loop().create_future())
        self.actions[uid] = action
        return action

    def finished(self, update: Update) -> None:
        inner = update.message or update.callback_query
        uid = inner.from_user.id if inner is not None and inner.from_user is not None else None
        action = self.actions.get(uid) if uid is not None else None
        if action is not None and not action.done.done():
            action.done.set_result(time.perf_counter())
        if update.callback_query is not None:
            self.queries.pop(update.callback_query.id, None)

    def wrap(self, dp: Dispatcher) -> None:
        original = dp.feed_update

        async def feed_update(bot: Bot, update: Update, **kwargs: Any) -> Any:
            if update.callback_query is not None and update.callback_query.from_user is not None:
                self.queries[update.callback_query.id] = update.callback_query.from_user.id
            try:
                return await original(bot, update, **kwargs)
            finally:
                self.finished(update)

        dp.feed_update = feed_update  # type: ignore[method-assign]

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if isinstance(method, AnswerCallbackQuery):
            uid = self.queries.get(method.callback_query_id)
        else:
            chat = getattr(method, "chat_id", None)
            uid = chat if isinstance(chat, int) else None
        action = self.actions.get(uid) if uid is not None else None
        try:
            response = await make_request(bot, method)
        except TelegramRetryAfter:
            if action is not None:
                action.throttled += 1
            raise
        finally:
            if action is not None and not action.done.done():
                action.calls.append(time.perf_counter())
        result: Any = response  # aiogram hands the request middlewares the decoded result
        if uid is not None and isinstance(result, Message) and result.reply_markup is not None and any(
            button.callback_data == MENU for row in result.reply_markup.inline_keyboard for button in row
        ):
            self.menus[uid] = result.message_id
        return response


@dataclass
class RunningBot:
    name: str
    recorder: Recorder
    stop: Callable[[], Awaitable[None]]


async def _poll(dp: Dispatcher, bot: Bot, extra: list[asyncio.Task[Any]] | None = None) -> Recorder:
    recorder = Recorder()
    recorder.wrap(dp)
    bot.session.middleware(recorder)
    task = asyncio.create_task(dp.start_polling(
        bot, handle_signals=False, close_bot_session=False,
        allowed_updates=dp.resolve_used_update_types(), tasks_concurrency_limit=MAX_CONCURRENT_UPDATES))

    async def stop() -> None:
        with contextlib.suppress(RuntimeError):
            await dp.stop_polling()
        await asyncio.gather(task, return_exceptions=True)
        for helper in extra or []:
            helper.cancel()
        await asyncio.gather(*(extra or []), return_exceptions=True)
        await bot.session.close()

    recorder.stop = stop  # type: ignore[attr-defined]
    await asyncio.sleep(0.3)  # the first getUpdates is out
    return recorder


def bench_settings(sandbox_url: str, pace: bool = True) -> Settings:
    host, _, port = sandbox_url.removeprefix("http://").partition(":")
    return Settings(
        role="bot",
        telegram=TelegramSettings(bot_token=Secret(TOKEN), bot_api_url=sandbox_url, gateway="sandbox"),
        sandbox=SandboxSettings(enabled=True, host=host, port=int(port), rate_limits=False, seed_file=""),
        # a closed-loop user sends at most a few updates a second; the throttle must not drop them
        # pace: the control bot's send pacer (Telegram's ~1/s per chat and ~30/s per bot), on as deployed
        bot=BotSettings(throttle_rate=50.0, pace_sends=pace),
    )


async def start_control(settings: Settings, db: Database, redis: aioredis.Redis) -> RunningBot:
    gateway = build_gateway(settings)
    services = build_services(settings, db, redis, gateway, new_cipher())
    await services.admin.set_mode(Actor.system("bench"), "open")
    dp = build_dispatcher(settings, redis, services)
    bot = build_bot(settings)
    stop_helpers = asyncio.Event()
    helpers = [asyncio.create_task(run_notifier(bot, services.notifications, stop_helpers))]
    if AccessChangeListener is not None and hasattr(services.access, "cache"):  # as run_bot does (issue 14)
        helpers.append(asyncio.create_task(AccessChangeListener(db, services.access.cache).run(stop_helpers)))
    recorder = await _poll(dp, bot, helpers)

    async def stop() -> None:
        stop_helpers.set()
        await recorder.stop()  # type: ignore[attr-defined]
        await gateway.close()

    return RunningBot("control", recorder, stop)


def bare_dispatcher() -> Dispatcher:
    router = Router()
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Menu", callback_data=MENU)]])

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer("Main menu", reply_markup=markup)

    @router.callback_query(F.data == MENU)
    async def menu(query: CallbackQuery) -> None:
        await query.answer()
        if isinstance(query.message, Message):
            await query.message.edit_text(f"Main menu ({time.time():.3f})", reply_markup=markup)

    dp = Dispatcher(disable_fsm=True)
    dp.include_router(router)
    return dp


async def start_bare(settings: Settings) -> RunningBot:
    dp = bare_dispatcher()
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram.bot_api_url)))
    recorder = await _poll(dp, bot)
    return RunningBot("bare", recorder, recorder.stop)  # type: ignore[attr-defined]


async def _action(client: SandboxClient, running: RunningBot, uid: int, kind: str) -> Sample | None:
    recorder = running.recorder
    if kind == "menu" and uid not in recorder.menus:
        return None
    action = recorder.expect(uid)
    if kind == "start":
        await client.send_text(uid, "/start")
    else:
        # the control API answers when the bot answered the press; the action ends with the update
        press = asyncio.create_task(client.press(uid, recorder.menus[uid], MENU, timeout=10.0))
    finished = await asyncio.wait_for(action.done, 30)
    if kind != "start":
        await press
    recorder.actions.pop(uid, None)
    calls = [t for t in action.calls if t <= finished]
    if not calls:
        return None
    return Sample((calls[0] - action.started) * 1000, (calls[-1] - action.started) * 1000, len(calls),
                  action.throttled)


async def _user(client: SandboxClient, running: RunningBot, uid: int, actions: int, users: int,
                results: Results, think: float) -> None:
    for _ in range(actions):
        for kind in ("start", "menu"):
            await asyncio.sleep(think * random.uniform(0.5, 1.5))
            sample = await _action(client, running, uid, kind)
            if sample is not None:
                results.add(running.name, kind, users, sample)


async def measure(client: SandboxClient, running: RunningBot, levels: list[int], actions: int,
                  results: Results, base_uid: int, think: float) -> None:
    for users in levels:
        uids = [base_uid + users * 1000 + i for i in range(users)]
        for uid in uids:
            await client.create_user(uid, f"U{uid}", username=f"u{uid}")
        # warm-up: every user known to the bot, one action each, not recorded
        await asyncio.gather(*(_user(client, running, uid, 1, users, Results(), think) for uid in uids))
        await asyncio.gather(*(_user(client, running, uid, actions, users, results, think) for uid in uids))


@contextlib.contextmanager
def sandbox_process(limits: bool = False) -> Any:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SANDBOX_ENABLED": "true", "SANDBOX_HOST": "127.0.0.1", "SANDBOX_PORT": str(port),
           "SANDBOX_RATE_LIMITS": "true" if limits else "false", "SANDBOX_SEED_FILE": "",
           "SANDBOX_MTPROTO_PORT": "-1"}
    proc = subprocess.Popen([sys.executable, "-m", "sandbox"], env=env,
                            stderr=None if os.environ.get("BENCH_LOG") else subprocess.DEVNULL)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


async def _wait_up(client: SandboxClient) -> None:
    for _ in range(100):
        with contextlib.suppress(Exception):
            await client.users()
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the sandbox did not start")


def report(results: Results, levels: list[int]) -> list[str]:
    lines = [f"{'bot':8} {'action':6} {'users':>5} {'n':>5} {'first p50':>9} {'p90':>7} {'p99':>7} "
             f"{'last p50':>9} {'p90':>7} {'p99':>7} {'calls':>5} {'429':>4}"]
    ratios = []
    for action in ("start", "menu"):
        for users in levels:
            row: dict[str, float] = {}
            for name in ("bare", "control"):
                samples = results.samples.get((name, action, users), [])
                if not samples:
                    continue
                first = [s.first_ms for s in samples]
                last = [s.last_ms for s in samples]
                calls = statistics.mean(s.calls for s in samples)
                figures = " ".join(f"{pct(values, q):{9 if q == .5 else 7}.1f}"
                                   for values in (first, last) for q in (.5, .9, .99))
                lines.append(f"{name:8} {action:6} {users:>5} {len(samples):>5} {figures} "
                             f"{calls:5.2f} {sum(s.throttled for s in samples):>4}")
                row[name] = pct(first, .5)
                row[name + "_p99"] = pct(first, .99)
            if "bare" in row and "control" in row:
                ratios.append(f"{action:6} users={users:<4} p50 first reply control/bare = "
                              f"{row['control'] / row['bare']:.2f}x (target <= 2x); control p99 = "
                              f"{row['control_p99']:.1f} ms"
                              + (" (target <= 100 ms)" if users == 100 else ""))
    return [*lines, "", *ratios]


async def main_async(rounds: int, actions: int, levels: list[int], think: float, profile: str = "",
                     pace: bool = True, limits: bool = False) -> None:
    logging.basicConfig(level=os.environ.get("BENCH_LOG", "WARNING"))
    if not os.environ.get("BENCH_LOG"):
        # the bare bot's refused sends (--sandbox-limits) would print a traceback each; they are counted
        logging.getLogger("aiogram.event").setLevel(logging.CRITICAL)
    with servers() as srv, sandbox_process(limits) as url:
        client = SandboxClient(url)
        await _wait_up(client)
        db = await Database.connect(await fresh_database(srv.pg_url), max_size=10)
        redis = aioredis.Redis.from_url(srv.redis_url)
        settings = bench_settings(url, pace)
        results = Results()
        profiler = cProfile.Profile() if profile else None
        try:
            for round_no in range(rounds):
                for name in ("control", "bare"):
                    running = (await start_control(settings, db, redis) if name == "control"
                               else await start_bare(settings))
                    try:
                        base_uid = 1_000_000 * (round_no + 1) + (0 if name == "control" else 500_000)
                        if profiler is not None and name == "control":
                            profiler.enable()  # this process: both the harness and the control bot
                        try:
                            await measure(client, running, levels, actions, results, base_uid, think)
                        finally:
                            if profiler is not None:
                                profiler.disable()
                    finally:
                        await running.stop()
                print(f"round {round_no + 1}/{rounds} done", flush=True)
        finally:
            await client.close()
            await redis.aclose()
            await db.close()
        print(f"load average {os.getloadavg()[0]:.1f} at the end; control bot's send pacer "
              f"{'on' if pace else 'off'}; sandbox limits {'on' if limits else 'off'}")
        print(f"{rounds} rounds, {actions} actions per user and level, think {think} s; ms from the update "
              f"pushed to the sandbox to the bot's first / last Bot API call for it")
        print("\n".join(report(results, levels)))
        if profiler is not None:
            profiler.dump_stats(profile)
            print(f"cProfile of the control runs written to {profile} (python -m pstats {profile})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--actions", type=int, default=5)
    parser.add_argument("--levels", default="1,10,100")
    parser.add_argument("--profile", default="", help="write a cProfile of the control bot's runs here")
    parser.add_argument("--pace", choices=("on", "off"), default="on",
                        help="the control bot's send pacer (on as deployed)")
    parser.add_argument("--sandbox-limits", action="store_true",
                        help="the sandbox answers 429 past Telegram's limits (both bots meet them)")
    parser.add_argument("--think", type=float, default=1.0, help="seconds between a user's actions (±50 %%)")
    args = parser.parse_args()
    asyncio.run(main_async(args.rounds, args.actions, [int(x) for x in args.levels.split(",")], args.think,
                           args.profile, args.pace == "on", args.sandbox_limits))


if __name__ == "__main__":
    main()
