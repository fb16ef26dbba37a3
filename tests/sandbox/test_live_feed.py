"""The web page's live channel is driven by change signals: no timer reads the sandbox state.

A change made through the Bot API, the world's adapter routes or in process reaches an open
stream; with nothing changing, the feed never looks at the state and the stream carries only
keep-alive comments; a page that goes away leaves no subscriber and no listener behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest

from sandbox.changes import Changes, Listener
from sandbox.web_routes import LIVE_FEED_KEY, STREAM_PATH, LiveFeed, Sse
from sandbox.world import WorldError
from tests.sandbox.conftest import USER, Sandbox, SandboxFactory

PHONE = "+15550007001"
GROUP = 7101
WORLD = "/sandbox/world"


@dataclass
class Frame:
    """One block of the stream: a named event, or comments only (``name`` empty)."""

    name: str = ""
    data: Any = None
    comments: tuple[str, ...] = ()


class Stream:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def frame(self) -> Frame:
        frame = Frame()
        while True:
            raw = await self.response.content.readline()
            if not raw:
                raise ConnectionError("the stream ended")
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                frame.name = line[7:]
            elif line.startswith("data: "):
                frame.data = orjson.loads(line[6:])
            elif line.startswith(":"):
                frame.comments += (line[1:].strip(),)
            elif line == "" and (frame.name or frame.comments):
                return frame

    async def until(self, name: str, timeout: float = 3.0,  # noqa: ASYNC109
                    where: Callable[[Any], bool] = lambda _: True) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.frame()
                if frame.name == name and where(frame.data):
                    return frame.data

    async def frames_for(self, seconds: float) -> list[Frame]:
        frames: list[Frame] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                frames.append(await asyncio.wait_for(self.frame(), left))
            except TimeoutError:
                break
        return frames


@pytest.fixture
def feed(sandbox: Sandbox) -> LiveFeed:
    return sandbox.server.app[LIVE_FEED_KEY]


@asynccontextmanager
async def open_stream(url: str) -> AsyncIterator[Stream]:
    async with aiohttp.ClientSession() as http, http.get(url + STREAM_PATH) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        opened = Stream(response)
        await opened.until("ready")
        yield opened


@pytest.fixture
async def stream(sandbox: Sandbox) -> AsyncIterator[Stream]:
    async with open_stream(sandbox.url) as opened:
        yield opened


def count_looks(feed: LiveFeed, monkeypatch: pytest.MonkeyPatch) -> list[list[Sse]]:
    """Every time the feed reads the sandbox state from now on, with what it found."""
    looks: list[list[Sse]] = []
    original = feed.changes

    def counting(*, baseline: bool = False) -> list[Sse]:
        found = original(baseline=baseline)
        looks.append(found)
        return found

    monkeypatch.setattr(feed, "changes", counting)
    return looks


async def eventually(check: Callable[[], bool], attempts: int = 150) -> None:
    for _ in range(attempts):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not within 3 s")


async def world_call(sandbox: Sandbox, name: str, body: dict[str, Any]) -> Any:
    async with aiohttp.ClientSession() as http, http.post(f"{sandbox.url}{WORLD}/{name}", json=body) as response:
        assert response.status == 200, await response.text()
        return await response.json()


def seed_account(sandbox: Sandbox) -> None:
    sandbox.world.seed({"phone": PHONE, "first_name": "Nora",
                        "groups": [{"id": GROUP, "title": "Stream group", "kind": "supergroup"}]})


# ---------------------------------------------------------------- changes reach the stream


async def test_a_bot_send_and_its_edit_reach_the_stream(
    sandbox: Sandbox, feed: LiveFeed, stream: Stream, monkeypatch: pytest.MonkeyPatch
) -> None:
    looks = count_looks(feed, monkeypatch)
    loop = asyncio.get_running_loop()
    status, answer = await sandbox.raw("sendMessage", json={"chat_id": USER, "text": "Hello there"})
    assert status == 200
    sent_at = loop.time()
    new = await stream.until("message")
    assert loop.time() - sent_at < 1.0
    assert new["user_id"] == USER
    assert (new["message"]["from"], new["message"]["text"], new["message"]["edited"]) == ("bot", "Hello there",
                                                                                         False)
    message_id = answer["result"]["message_id"]

    status, _ = await sandbox.raw("editMessageText", json={"chat_id": USER, "message_id": message_id,
                                                           "text": "Hello again"})
    assert status == 200
    edited = (await stream.until("message"))["message"]
    assert (edited["message_id"], edited["text"], edited["edited"]) == (message_id, "Hello again", True)

    status, _ = await sandbox.raw("deleteMessage", json={"chat_id": USER, "message_id": message_id})
    assert status == 200
    assert (await stream.until("message"))["message"]["deleted"] is True
    # one look per change (a send, an edit, a delete), not one per tick of a timer
    assert 3 <= len(looks) <= 6


async def test_a_login_code_and_a_group_post_reach_the_stream(sandbox: Sandbox, stream: Stream) -> None:
    seed_account(sandbox)
    accounts = await stream.until("accounts")
    assert [a["phone"] for a in accounts] == [PHONE]

    login = await world_call(sandbox, "send_code", {"phone": PHONE})
    codes = await stream.until("codes", where=lambda data: bool(data["codes"]))
    assert codes["phone"] == PHONE and [c["state"] for c in codes["codes"]] == ["live"]
    assert codes["codes"][0]["code"] == sandbox.world.codes(PHONE)[0]["code"]

    signed = await world_call(sandbox, "sign_in", {"phone": PHONE, "session": login["session"],
                                                   "phone_code_hash": login["phone_code_hash"],
                                                   "code": codes["codes"][0]["code"]})
    assert [c["state"] for c in (await stream.until("codes"))["codes"]] == ["used"]
    dialogs = await world_call(sandbox, "get_dialogs", {"session": signed["session"]})
    group = next(g for g in dialogs["groups"] if g["id"] == GROUP)
    await world_call(sandbox, "send_message", {"session": signed["session"], "group_id": GROUP,
                                               "access_hash": group["access_hash"], "text": "Sale today"})
    post = await stream.until("post")
    assert (post["group_id"], post["post"]["text"], post["post"]["from_phone"]) == (GROUP, "Sale today", PHONE)


async def test_faults_show_when_added_consumed_and_cleared(sandbox: Sandbox, stream: Stream) -> None:
    seed_account(sandbox)
    sandbox.world.add_fault({"call": "send_code", "error": "FLOOD_WAIT", "seconds": 5})
    assert [f["error"] for f in await stream.until("faults")] == ["FLOOD_WAIT"]
    with pytest.raises(WorldError, match="FLOOD_WAIT"):
        await sandbox.world.send_code(PHONE)
    assert await stream.until("faults") == []  # a one-shot fault is gone once it fired
    sandbox.world.add_fault({"call": "*", "error": "NETWORK", "times": -1})
    assert len(await stream.until("faults")) == 1
    sandbox.world.clear_faults()
    assert await stream.until("faults") == []


async def test_a_code_that_expires_by_the_clock_is_shown_expired(sandbox_factory: SandboxFactory) -> None:
    box = await sandbox_factory(code_ttl=0.3)
    seed_account(box)
    async with open_stream(box.url) as stream:
        await box.world.send_code(PHONE)
        assert [c["state"] for c in (await stream.until("codes", where=lambda d: bool(d["codes"])))["codes"]] \
            == ["live"]
        # nobody calls anything: the feed looks again when the code's time is up
        assert [c["state"] for c in (await stream.until("codes", timeout=2.0))["codes"]] == ["expired"]


# ---------------------------------------------------------------- no polling, bursts coalesce


async def test_with_no_changes_only_keep_alives_are_sent_and_the_state_is_never_read(
    sandbox: Sandbox, feed: LiveFeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed.keepalive = 0.2
    async with open_stream(sandbox.url) as stream:
        looks = count_looks(feed, monkeypatch)
        frames = await stream.frames_for(0.9)
    assert frames, "keep-alive comments keep the connection in use"
    assert all(frame.name == "" and frame.comments == ("keep-alive",) for frame in frames)
    assert 2 <= len(frames) <= 6
    assert looks == []  # a polling feed would have read the state a few times by now


async def test_a_burst_of_changes_is_one_look(
    sandbox: Sandbox, feed: LiveFeed, stream: Stream, monkeypatch: pytest.MonkeyPatch
) -> None:
    looks = count_looks(feed, monkeypatch)
    user = sandbox.chats.user(USER)
    for n in range(30):
        sandbox.chats.bot_send(user, text=f"burst {n}")
    texts = [(await stream.until("message"))["message"]["text"] for _ in range(30)]
    assert texts == [f"burst {n}" for n in range(30)]
    assert len(looks) == 1
    assert [name for name, _ in looks[0]] == ["message"] * 30


async def test_a_signal_without_a_change_sends_nothing(
    sandbox: Sandbox, feed: LiveFeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed.keepalive = 0.1
    async with open_stream(sandbox.url) as stream:
        looks = count_looks(feed, monkeypatch)
        await sandbox.client.send_text(USER, "/start")
        assert (await stream.until("message"))["message"]["text"] == "/start"
        await eventually(lambda: len(looks) >= 1)
        sandbox.chats.changes.notify()  # the feed looks, finds nothing new, sends nothing
        await eventually(lambda: len(looks) >= 2)
        assert looks[-1] == []
        frames = await stream.frames_for(0.35)
        assert frames and all(frame.comments == ("keep-alive",) and not frame.name for frame in frames)


# ---------------------------------------------------------------- pages that leave


def listener_counts(sandbox: Sandbox) -> tuple[int, int, int]:
    return (sandbox.chats.changes.listeners, sandbox.world.changes.listeners,
            sandbox.events.changes.listeners)


async def test_closed_pages_unsubscribe_and_the_feed_stops_listening(sandbox: Sandbox, feed: LiveFeed) -> None:
    feed.disconnect_check = 0.2  # how soon an idle page's handler looks at its socket
    assert (feed.active, feed.subscribers, listener_counts(sandbox)) == (False, 0, (0, 0, 0))
    async with aiohttp.ClientSession() as http:
        first = await http.get(sandbox.url + STREAM_PATH)
        second = await http.get(sandbox.url + STREAM_PATH)
        await Stream(first).until("ready")
        await Stream(second).until("ready")
        assert (feed.active, feed.subscribers, listener_counts(sandbox)) == (True, 2, (1, 1, 1))

        first.close()
        await eventually(lambda: feed.subscribers == 1)
        await sandbox.client.send_text(USER, "still here")
        assert (await Stream(second).until("message"))["message"]["text"] == "still here"

        second.close()
        await eventually(lambda: not feed.active)
        assert (feed.subscribers, listener_counts(sandbox)) == (0, (0, 0, 0))

    for _ in range(5):  # pages that come and go leave nothing behind
        async with aiohttp.ClientSession() as http, http.get(sandbox.url + STREAM_PATH) as response:
            await Stream(response).until("ready")
            assert (feed.subscribers, listener_counts(sandbox)) == (1, (1, 1, 1))
        await eventually(lambda: not feed.active)
    assert (feed.subscribers, listener_counts(sandbox)) == (0, (0, 0, 0))


async def test_a_page_that_left_is_dropped_on_the_next_change(sandbox: Sandbox, feed: LiveFeed) -> None:
    feed.disconnect_check = feed.keepalive = 60.0  # only a failed write can tell that the page left
    async with aiohttp.ClientSession() as http:
        response = await http.get(sandbox.url + STREAM_PATH)
        await Stream(response).until("ready")
        response.close()
    await asyncio.sleep(0.1)
    assert feed.subscribers == 1
    sandbox.chats.bot_send(sandbox.chats.user(USER), text="anyone?")
    await eventually(lambda: not feed.active)
    assert listener_counts(sandbox) == (0, 0, 0)


# ---------------------------------------------------------------- the signal itself


async def test_a_listener_keeps_signals_that_came_before_it_waited() -> None:
    chats, world = Changes(), Changes()
    listener = Listener()
    listener.listen(chats, world)
    world.notify()
    world.notify()
    await asyncio.wait_for(listener.wait(), 0.5)
    assert (chats.version, world.version) == (0, 2)
    listener.clear()
    waiting = asyncio.create_task(listener.wait())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    chats.notify()
    await asyncio.wait_for(waiting, 0.5)
    listener.detach()
    assert (chats.listeners, world.listeners) == (0, 0)
    listener.clear()
    chats.notify()  # no longer heard
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(listener.wait(), 0.05)
