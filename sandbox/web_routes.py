"""The sandbox's web chat page and its live channel.

| route | result |
|---|---|
| ``GET /`` | the page (``sandbox/web/index.html``) |
| ``GET /static/{name}`` | its stylesheet and script |
| ``GET /sandbox/api/stream`` | server-sent events: ``ready``, ``user``, ``message``, ``codes``, ``post``,
  ``accounts``, ``faults``, ``events`` and ``reset`` (the page then reloads its state) |

The page reads and changes everything else through the control API. The chats, the world and the
event log signal their changes (``sandbox.changes``); while a page is connected, ``LiveFeed`` wakes
on those signals, lets a burst settle for a few milliseconds, compares the public views of the
sources that moved with what it sent last, and publishes the differences. Every event carries the
whole changed object, so applying one twice is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
from aiohttp import web

from sandbox.changes import Listener
from sandbox.chats import Chats
from sandbox.events import EventLog
from sandbox.world import World

logger = logging.getLogger(__name__)

WEB_DIR: Final = Path(__file__).resolve().with_name("web")
STREAM_PATH: Final = "/sandbox/api/stream"
DEBOUNCE: Final = 0.03  # a send, its event-log entry and the bot's reply usually land within this
KEEPALIVE: Final = 15.0  # a comment line after this much silence, so that proxies keep the stream
# aiohttp tells a handler nothing when its client leaves a GET without a body: look at the socket
DISCONNECT_CHECK: Final = 1.0
EXPIRY_SLACK: Final = 0.05  # codes expire on the monotonic clock; look a little after the wall-clock time
QUEUE_LIMIT: Final = 1000  # a page that stops reading is dropped rather than buffered forever
# long polls come every few seconds and say nothing a person wants to watch
QUIET_METHODS: Final = frozenset({"getUpdates"})
KEEPALIVE_FRAME: Final = b": keep-alive\n\n"

Json = dict[str, Any]
Sse = tuple[str, Any]


@dataclass
class _Snapshot:
    users: dict[int, bytes] = field(default_factory=dict)
    messages: dict[int, dict[int, bytes]] = field(default_factory=dict)
    codes: dict[str, bytes] = field(default_factory=dict)
    posts: dict[int, int] = field(default_factory=dict)
    accounts: bytes = b""
    faults: bytes = b""
    next_expiry: float | None = None  # wall-clock time the first live code expires
    last_seq: int = 0
    # the sources' change counters when they were read (-1: never)
    versions: tuple[int, int, int] = (-1, -1, -1)


class LiveFeed:
    """Turns changes of the chats and the world into server-sent events for every connected page."""

    def __init__(self, chats: Chats, world: World, events: EventLog, debounce: float = DEBOUNCE) -> None:
        self.chats = chats
        self.world = world
        self.events = events
        self.debounce = debounce
        self.keepalive = KEEPALIVE
        self.disconnect_check = DISCONNECT_CHECK
        self._seen = _Snapshot()
        self._subscribers: set[asyncio.Queue[bytes | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._listener: Listener | None = None
        self._expiry: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------ subscribers

    def subscribe(self) -> asyncio.Queue[bytes | None]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_LIMIT)
        if self._task is None:
            listener = self._listener = Listener()
            listener.listen(self.chats.changes, self.world.changes, self.events.changes)
            self.changes(baseline=True)  # the page loads the current state itself after "ready"
            self._task = asyncio.create_task(self._run(listener), name="sandbox-live-feed")
        self._subscribers.add(queue)
        return queue

    @property
    def active(self) -> bool:
        """True while some page is connected (the feed listens to the sandbox's changes)."""
        return self._task is not None

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def unsubscribe(self, queue: asyncio.Queue[bytes | None]) -> None:
        self._subscribers.discard(queue)
        if not self._subscribers:
            self._stop()

    def _stop(self) -> asyncio.Task[None] | None:
        task, self._task = self._task, None
        if self._listener is not None:
            self._listener.detach()
            self._listener = None
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if task is not None:
            task.cancel()
        return task

    async def close(self, _: web.Application | None = None) -> None:
        task = self._stop()
        for queue in list(self._subscribers):
            self._offer(queue, None)  # each page's handler ends its response
        self._subscribers.clear()
        if task is not None and task is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def publish(self, name: str, data: Any) -> None:
        frame = encode(name, data)
        for queue in list(self._subscribers):
            self._offer(queue, frame)

    def _offer(self, queue: asyncio.Queue[bytes | None], frame: bytes | None) -> None:
        try:
            queue.put_nowait(frame)
        except asyncio.QueueFull:
            logger.warning("live page too slow; dropping its stream")
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
            queue.put_nowait(None)
            self.unsubscribe(queue)

    async def _run(self, listener: Listener) -> None:
        while True:
            await listener.wait()
            await asyncio.sleep(self.debounce)  # the rest of a burst lands meanwhile: one look for all
            listener.clear()  # before reading, so that a change made while reading wakes us again
            try:
                changes = self.changes()
            except Exception:
                logger.exception("live feed: reading the sandbox state failed")
                continue
            for name, data in changes:
                self.publish(name, data)

    def _arm_expiry(self) -> None:
        # a code turns "expired" by the clock, not by a call: the world gets a nudge at that moment
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if self._seen.next_expiry is None or self._listener is None:
            return
        delay = max(self._seen.next_expiry - time.time(), 0.0) + EXPIRY_SLACK
        self._expiry = asyncio.get_running_loop().call_later(delay, self.world.changes.notify)

    # ------------------------------------------------------------ change detection

    @property
    def last_seq(self) -> int:
        """The newest event-log entry already looked at."""
        return self._seen.last_seq

    def changes(self, *, baseline: bool = False) -> list[Sse]:
        """What changed since the last call, as (event name, data) pairs, and remember the new state.

        Only the sources whose change counter moved are read again (all of them for a baseline).
        """
        seen = self._seen
        versions = (self.chats.changes.version, self.world.changes.version, self.events.changes.version)
        now = _Snapshot(versions=versions)
        out: list[Sse] = []
        reset = False
        if baseline or versions[0] != seen.versions[0]:
            reset |= self._chat_changes(now, out)
        else:
            now.users, now.messages = seen.users, seen.messages
        if baseline or versions[1] != seen.versions[1]:
            reset |= self._world_changes(now, out)
        else:
            now.accounts, now.codes, now.posts = seen.accounts, seen.codes, seen.posts
            now.faults, now.next_expiry = seen.faults, seen.next_expiry
        self._event_changes(now, out, baseline)
        self._seen = now
        self._arm_expiry()
        if baseline:
            return []
        if reset:
            return [("reset", {})]
        return out

    def _chat_changes(self, now: _Snapshot, out: list[Sse]) -> bool:
        seen = self._seen
        reset = bool(set(seen.users) - set(self.chats.users))
        for uid, user in list(self.chats.users.items()):
            view = user.view()
            raw = now.users[uid] = orjson.dumps(view)
            if seen.users.get(uid) != raw:
                out.append(("user", view))
            old = seen.messages.get(uid, {})
            fresh = now.messages[uid] = {}
            for message in self.chats.chat_view(uid):
                raw = fresh[message["message_id"]] = orjson.dumps(message)
                if old.get(message["message_id"]) != raw:
                    out.append(("message", {"user_id": uid, "message": message}))
            reset |= len(fresh) < len(old)  # messages are never removed, only marked deleted
        return reset

    def _world_changes(self, now: _Snapshot, out: list[Sse]) -> bool:
        seen = self._seen
        accounts = self.world.accounts()
        now.accounts = orjson.dumps(accounts)
        if now.accounts != seen.accounts:
            out.append(("accounts", accounts))
        reset = bool(set(seen.codes) - {a["phone"] for a in accounts})
        group_ids: set[int] = set()
        for account in accounts:
            phone = account["phone"]
            codes = self.world.codes(phone)
            now.codes[phone] = orjson.dumps(codes)
            if seen.codes.get(phone) != now.codes[phone]:
                out.append(("codes", {"phone": phone, "codes": codes}))
            expiries = [c["expires_at"] for c in codes if c["state"] == "live"]
            if now.next_expiry is not None:
                expiries.append(now.next_expiry)
            now.next_expiry = min(expiries, default=None)
            group_ids.update(group["id"] for group in account["groups"])
        for gid in sorted(group_ids):
            posts = self.world.group_messages(gid)
            now.posts[gid] = len(posts)
            known = seen.posts.get(gid, 0)
            reset |= len(posts) < known
            out.extend(("post", {"group_id": gid, "post": post}) for post in posts[known:])
        faults = self.world.faults()
        now.faults = orjson.dumps(faults)
        if now.faults != seen.faults:
            out.append(("faults", faults))
        return reset

    def _event_changes(self, now: _Snapshot, out: list[Sse], baseline: bool) -> None:
        # sequence numbers keep growing across a reset of the log, so "since" is all it takes
        fresh = self.events.since(self._seen.last_seq)
        now.last_seq = fresh[-1].seq if fresh else self._seen.last_seq
        if baseline:
            return
        shown = [event.to_dict() for event in fresh if event.method not in QUIET_METHODS]
        if shown:
            out.append(("events", shown))


def encode(name: str, data: Any) -> bytes:
    """One server-sent event frame (JSON data on one line)."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


LIVE_FEED_KEY: Final = web.AppKey("sandbox_live_feed", LiveFeed)


async def _pump(request: web.Request, response: web.StreamResponse, feed: LiveFeed,
                queue: asyncio.Queue[bytes | None]) -> None:
    """Write the feed's frames to one page, and a keep-alive comment when nothing happened for a while."""
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    while True:
        # the timeout only looks at this page's socket and clock, never at the sandbox's state
        wait = min(feed.disconnect_check, max(quiet_since + feed.keepalive - loop.time(), 0.0))
        try:
            frame = await asyncio.wait_for(queue.get(), wait)
        except TimeoutError:
            if request.transport is None or request.transport.is_closing():
                return
            if loop.time() - quiet_since < feed.keepalive:
                continue
            frame = KEEPALIVE_FRAME
        if frame is None:
            return
        await response.write(frame)
        quiet_since = loop.time()


def setup_web_routes(app: web.Application, chats: Chats, world: World, events: EventLog) -> LiveFeed:
    """Register the page, its static files and the live channel on the sandbox ``app``."""
    feed = LiveFeed(chats, world, events)
    app[LIVE_FEED_KEY] = feed
    app.on_shutdown.append(feed.close)

    async def index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
        })
        await response.prepare(request)
        queue = feed.subscribe()
        try:
            # "interval" once was the polling period; the page ignores it, old readers may not
            ready = encode("ready", {"interval": feed.debounce, "last_seq": feed.last_seq})
            await response.write(b"retry: 1000\n\n" + ready)
            await _pump(request, response, feed, queue)
        except ConnectionResetError:
            pass  # the page went away
        finally:
            feed.unsubscribe(queue)
        return response

    app.router.add_get("/", index)
    app.router.add_static("/static/", WEB_DIR, name="sandbox_static", append_version=False)
    app.router.add_get(STREAM_PATH, stream)
    return feed
