"""The sandbox's web chat page and its live channel.

| route | result |
|---|---|
| ``GET /`` | the page (``sandbox/web/index.html``) |
| ``GET /static/{name}`` | its stylesheet and script |
| ``GET /sandbox/api/stream`` | server-sent events: ``ready``, ``user``, ``message``, ``codes``, ``post``,
  ``accounts``, ``faults``, ``events`` and ``reset`` (the page then reloads its state) |

The page reads and changes everything else through the control API. Chats and world have no
change hook, so ``LiveFeed`` compares their public views on a short timer, and only while a page
is connected; every event carries the whole changed object, so applying one twice is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
from aiohttp import web

from sandbox.chats import Chats
from sandbox.events import EventLog
from sandbox.world import World

logger = logging.getLogger(__name__)

WEB_DIR: Final = Path(__file__).resolve().with_name("web")
STREAM_PATH: Final = "/sandbox/api/stream"
POLL_INTERVAL: Final = 0.25
KEEPALIVE: Final = 15.0
DISCONNECT_CHECK: Final = 1.0
QUEUE_LIMIT: Final = 1000  # a page that stops reading is dropped rather than buffered forever
# long polls come every few seconds and say nothing a person wants to watch
QUIET_METHODS: Final = frozenset({"getUpdates"})

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
    last_seq: int = 0


class LiveFeed:
    """Turns changes of the chats and the world into server-sent events for every connected page."""

    def __init__(self, chats: Chats, world: World, events: EventLog, interval: float = POLL_INTERVAL) -> None:
        self.chats = chats
        self.world = world
        self.events = events
        self.interval = interval
        self._seen = _Snapshot()
        self._subscribers: set[asyncio.Queue[bytes | None]] = set()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ subscribers

    def subscribe(self) -> asyncio.Queue[bytes | None]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_LIMIT)
        if not self._subscribers:
            self.changes(baseline=True)  # the page loads the current state itself after "ready"
        self._subscribers.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="sandbox-live-feed")
        return queue

    @property
    def active(self) -> bool:
        """True while the feed is polling (some page is connected)."""
        return self._task is not None and not self._task.done()

    def unsubscribe(self, queue: asyncio.Queue[bytes | None]) -> None:
        self._subscribers.discard(queue)

    async def close(self, _: web.Application | None = None) -> None:
        for queue in list(self._subscribers):
            self._offer(queue, None)
        self._subscribers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def publish(self, name: str, data: Any) -> None:
        frame = encode(name, data)
        for queue in list(self._subscribers):
            self._offer(queue, frame)

    def _offer(self, queue: asyncio.Queue[bytes | None], frame: bytes | None) -> None:
        try:
            queue.put_nowait(frame)
        except asyncio.QueueFull:
            logger.warning("live page too slow; dropping its stream")
            self._subscribers.discard(queue)
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
            queue.put_nowait(None)

    async def _run(self) -> None:
        while self._subscribers:
            await asyncio.sleep(self.interval)
            try:
                changes = self.changes()
            except Exception:
                logger.exception("live feed: reading the sandbox state failed")
                continue
            for name, data in changes:
                self.publish(name, data)

    # ------------------------------------------------------------ change detection

    @property
    def last_seq(self) -> int:
        """The newest event-log entry already looked at."""
        return self._seen.last_seq

    def changes(self, *, baseline: bool = False) -> list[Sse]:
        """What changed since the last call, as (event name, data) pairs, and remember the new state."""
        now = _Snapshot()
        out: list[Sse] = []
        reset = self._chat_changes(now, out)
        reset |= self._world_changes(now, out)
        self._event_changes(now, out, baseline)
        self._seen = now
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
        loop = asyncio.get_running_loop()
        try:
            ready = encode("ready", {"interval": feed.interval, "last_seq": feed.last_seq})
            await response.write(b"retry: 1000\n\n" + ready)
            quiet_since = loop.time()
            while True:
                try:
                    frame = await asyncio.wait_for(queue.get(), DISCONNECT_CHECK)
                except TimeoutError:
                    # aiohttp does not cancel a handler whose client left: look, so that the feed stops
                    if request.transport is None or request.transport.is_closing():
                        break
                    if loop.time() - quiet_since < KEEPALIVE:
                        continue
                    frame = b": keep-alive\n\n"
                if frame is None:
                    break
                await response.write(frame)
                quiet_since = loop.time()
        except ConnectionResetError:
            pass  # the page went away
        finally:
            feed.unsubscribe(queue)
        return response

    app.router.add_get("/", index)
    app.router.add_static("/static/", WEB_DIR, name="sandbox_static", append_version=False)
    app.router.add_get(STREAM_PATH, stream)
    return feed
