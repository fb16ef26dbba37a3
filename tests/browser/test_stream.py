"""The page's live channel (server-sent events at /sandbox/api/stream), read without a browser."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from sandbox.server import SandboxServer
from sandbox.web_routes import LIVE_FEED_KEY

BOT = "/bot777:stream-test"


class EventStream:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float = 3.0) -> tuple[str, Any]:  # noqa: ASYNC109
        """The next named event (comments and the retry line are skipped)."""
        name, data = "", None
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.response.content.readline()).decode().rstrip("\n")
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = orjson.loads(line[6:])
                elif line == "" and name:
                    return name, data

    async def until(self, name: str, timeout: float = 3.0) -> Any:  # noqa: ASYNC109
        """Data of the next event called ``name``; the ones before it are skipped."""
        async with asyncio.timeout(timeout):
            while True:
                got, data = await self.next(timeout)
                if got == name:
                    return data


@pytest.fixture
async def stream(sandbox: SandboxServer) -> AsyncIterator[EventStream]:
    async with aiohttp.ClientSession() as http, http.get(sandbox.url + "/sandbox/api/stream") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        yield EventStream(response)


async def test_the_page_and_its_files_are_served(sandbox: SandboxServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(sandbox.url + "/") as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            html = await response.text()
        assert '<main class="chat"' in html and "/static/app.js" in html
        for name, kind in (("app.js", "javascript"), ("app.css", "text/css")):
            async with http.get(f"{sandbox.url}/static/{name}") as response:
                assert response.status == 200 and kind in response.content_type
        async with http.get(sandbox.url + "/static/../server.py") as response:
            assert response.status in (403, 404)


async def test_chat_changes_arrive_as_events(sandbox: SandboxServer, stream: EventStream) -> None:
    ready = await stream.until("ready")
    assert ready["last_seq"] >= 0
    async with aiohttp.ClientSession() as http:
        await http.post(sandbox.url + "/sandbox/api/users", json={"user_id": 61, "first_name": "Ivy"})
        user = await stream.until("user")
        assert (user["user_id"], user["first_name"], user["keyboard"]) == (61, "Ivy", None)

        await http.post(sandbox.url + "/sandbox/api/users/61/messages", json={"text": "/start"})
        new = await stream.until("message")
        assert new["user_id"] == 61
        assert (new["message"]["from"], new["message"]["text"]) == ("user", "/start")

        async with http.post(sandbox.url + BOT + "/sendMessage", json={
                "chat_id": 61, "text": "<b>Hi</b>", "parse_mode": "HTML",
                "reply_markup": {"keyboard": [[{"text": "Share", "request_contact": True}]]}}) as response:
            sent = (await response.json())["result"]
        data: dict[str, Any] = {}
        while set(data) != {"message", "user"}:
            name, payload = await stream.next()
            if name in ("message", "user"):
                data[name] = payload
        assert data["user"]["keyboard"]["keyboard"][0][0]["request_contact"] is True
        assert data["message"]["message"]["entities"] == [{"type": "bold", "offset": 0, "length": 2}]

        await http.post(sandbox.url + BOT + "/editMessageText",
                        json={"chat_id": 61, "message_id": sent["message_id"], "text": "Hello"})
        edited = (await stream.until("message"))["message"]
        assert (edited["message_id"], edited["text"], edited["edited"]) == (sent["message_id"], "Hello", True)

        await http.post(sandbox.url + BOT + "/deleteMessage", json={"chat_id": 61, "message_id": sent["message_id"]})
        deleted = (await stream.until("message"))["message"]
        assert (deleted["message_id"], deleted["deleted"]) == (sent["message_id"], True)

        await http.post(sandbox.url + "/sandbox/api/reset")
        assert await stream.until("reset") == {}


async def test_world_changes_arrive_as_events(sandbox: SandboxServer, stream: EventStream) -> None:
    await stream.until("ready")
    phone = "+15550000001"
    async with aiohttp.ClientSession() as http:
        async with http.post(sandbox.url + "/sandbox/world/send_code", json={"phone": phone}) as response:
            login = await response.json()
        codes = await stream.until("codes")
        assert codes["phone"] == phone
        assert [c["state"] for c in codes["codes"]] == ["live"]
        code = codes["codes"][0]["code"]
        async with http.post(sandbox.url + "/sandbox/world/sign_in", json={
                "phone": phone, "session": login["session"], "phone_code_hash": login["phone_code_hash"],
                "code": code}) as response:
            session = (await response.json())["session"]
        assert [c["state"] for c in (await stream.until("codes"))["codes"]] == ["used"]
        events = await stream.until("events")
        assert [(e["method"], e["ok"]) for e in events][-1] == ("sign_in", True)

        await http.post(sandbox.url + "/sandbox/api/faults", json={"call": "send_message", "error": "PEER_FLOOD"})
        faults = await stream.until("faults")
        assert [f["error"] for f in faults] == ["PEER_FLOOD"]
        await http.delete(sandbox.url + "/sandbox/api/faults")
        assert await stream.until("faults") == []

        async with http.post(sandbox.url + "/sandbox/world/get_dialogs", json={"session": session}) as response:
            group = next(g for g in (await response.json())["groups"] if g["id"] == 1001)
        for text in ("one", "two"):
            await http.post(sandbox.url + "/sandbox/world/send_message", json={
                "session": session, "group_id": 1001, "access_hash": group["access_hash"], "text": text})
        first, second = await stream.until("post"), await stream.until("post")
        assert [(p["group_id"], p["post"]["text"]) for p in (first, second)] == [(1001, "one"), (1001, "two")]
        assert first["post"]["date"] <= second["post"]["date"]


async def test_the_feed_polls_only_while_a_page_listens(sandbox: SandboxServer) -> None:
    feed = sandbox.app[LIVE_FEED_KEY]
    assert not feed.active
    async with aiohttp.ClientSession() as http:
        async with http.get(sandbox.url + "/sandbox/api/stream") as response:
            await EventStream(response).until("ready")
            assert feed.active
        for _ in range(50):  # the handler notices the closed connection within a second
            if not feed.active:
                break
            await asyncio.sleep(0.1)
        assert not feed.active


async def test_an_account_connected_through_a_chat_arrives_with_its_chat_user(
    sandbox: SandboxServer, stream: EventStream
) -> None:
    """Issue 13 item 6: the page learns live which chat user connected which account (and when that
    session ends), from the world's own record of the bot chat the login went through."""
    await stream.until("ready")
    phone = "+15550000003"
    sandbox.chats.add_user(4242, "Lena")
    sandbox.chats.user_sends(4242, {"contact": {"phone": phone}})
    sent = await sandbox.world.send_code(phone)
    code = sandbox.world.codes(phone)[0]["code"]
    sandbox.chats.user_sends(4242, {"text": " ".join(code)})
    done = await sandbox.world.sign_in(phone, sent["session"], sent["phone_code_hash"], code)

    async def chat_users() -> list[int]:
        while True:
            accounts = await stream.until("accounts")
            shown = next(a for a in accounts if a["phone"] == phone)["chat_users"]
            if shown:
                return list(shown)

    assert await chat_users() == [4242]
    await sandbox.world.log_out(done["session"])
    accounts = await stream.until("accounts")
    assert next(a for a in accounts if a["phone"] == phone)["chat_users"] == []
