"""Async client of the sandbox control API, for tests, the parity suite and benchmarks.

Covers every route of the control API: chat users and their chats, callbacks,
events, reset, and the world's accounts, login codes, sessions, group posts and
faults. Failures raise ``SandboxError`` with the HTTP status and the answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

Json = dict[str, Any]
ChatPredicate = Callable[[list[Json]], bool]


class SandboxError(Exception):
    """The control API answered with an error status."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"sandbox answered {status}: {body!r}")
        self.status = status
        self.body = body


class SandboxClient:
    """The control API of a sandbox at ``base_url`` (e.g. ``http://127.0.0.1:8081``)."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession | None = None,
                 request_timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)

    async def __aenter__(self) -> SandboxClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._owns_session = True
        return self._session

    async def request(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None,
                      request_timeout: float | None = None) -> Any:
        """One control API call under ``/sandbox/api``; returns the decoded JSON answer."""
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else None
        timeout = aiohttp.ClientTimeout(total=request_timeout) if request_timeout else None
        async with self._http().request(method, f"{self.base_url}/sandbox/api{path}", data=data,
                                        headers=headers, params=params, timeout=timeout) as resp:
            raw = await resp.read()
            answer = orjson.loads(raw) if raw.strip() else None
            if resp.status >= 400:
                raise SandboxError(resp.status, answer)
            return answer

    # ------------------------------------------------------------ chat users

    async def create_user(self, user_id: int, first_name: str = "Tester", username: str | None = None,
                          **extra: Any) -> Json:
        body: Json = {"user_id": user_id, "first_name": first_name, **extra}
        if username is not None:
            body["username"] = username
        result: Json = await self.request("POST", "/users", body)
        return result

    async def users(self) -> list[Json]:
        result: list[Json] = await self.request("GET", "/users")
        return result

    async def user(self, uid: int) -> Json:
        """The user with ``blocked`` and the reply ``keyboard`` shown now."""
        result: Json = await self.request("GET", f"/users/{uid}")
        return result

    async def send(self, uid: int, body: Json) -> Json:
        """Any message body of ``POST /users/{uid}/messages``; returns ``{message_id, message_ids}``."""
        result: Json = await self.request("POST", f"/users/{uid}/messages", body)
        return result

    async def send_text(self, uid: int, text: str, entities: list[Json] | None = None) -> int:
        body: Json = {"text": text}
        if entities is not None:
            body["entities"] = entities
        return int((await self.send(uid, body))["message_id"])

    async def send_contact(self, uid: int, phone: str, user_id: int | None = None,
                           first_name: str | None = None) -> int:
        """A shared contact; ``user_id`` defaults (server side) to the sender, as "share my number" does."""
        contact: Json = {"phone": phone}
        if user_id is not None:
            contact["user_id"] = user_id
        if first_name is not None:
            contact["first_name"] = first_name
        return int((await self.send(uid, {"contact": contact}))["message_id"])

    async def send_media(self, uid: int, kind: str, caption: str | None = None,
                         entities: list[Json] | None = None, **extra: Any) -> int:
        """A photo, video, document, animation, voice or sticker (the sandbox makes the file)."""
        spec: Json = dict(extra)
        if caption is not None:
            spec["caption"] = caption
        if entities is not None:
            spec["entities"] = entities
        return int((await self.send(uid, {kind: spec}))["message_id"])

    async def send_photo(self, uid: int, caption: str | None = None,
                         entities: list[Json] | None = None) -> int:
        return await self.send_media(uid, "photo", caption, entities)

    async def send_sticker(self, uid: int) -> int:
        return await self.send_media(uid, "sticker")

    async def send_voice(self, uid: int) -> int:
        return await self.send_media(uid, "voice")

    async def send_location(self, uid: int, latitude: float = 52.52, longitude: float = 13.405) -> int:
        body = {"location": {"latitude": latitude, "longitude": longitude}}
        return int((await self.send(uid, body))["message_id"])

    async def send_poll(self, uid: int, question: str = "Poll?",
                        options: Iterable[str] = ("Yes", "No")) -> int:
        body = {"poll": {"question": question, "options": list(options)}}
        return int((await self.send(uid, body))["message_id"])

    async def send_media_group(self, uid: int, items: list[Json]) -> list[int]:
        """An album: ``items`` like ``[{"photo": {"caption": "a"}}, {"photo": {}}]``."""
        answer = await self.send(uid, {"media_group": items})
        return [int(message_id) for message_id in answer["message_ids"]]

    # the remote side does the waiting; ``timeout`` is its deadline, so asyncio.timeout does not fit
    async def press(self, uid: int, message_id: int, data: str,
                    timeout: float | None = None) -> Json:  # noqa: ASYNC109
        """Press an inline button; ``{answered, text?, show_alert?}`` once the bot answers (or times out)."""
        body: Json = {"message_id": message_id, "data": data}
        wait = 5.0
        if timeout is not None:
            body["timeout"] = wait = timeout
        result: Json = await self.request("POST", f"/users/{uid}/callbacks", body, request_timeout=wait + 30)
        return result

    async def chat(self, uid: int) -> list[Json]:
        result: list[Json] = await self.request("GET", f"/users/{uid}/chat")
        return result

    async def block(self, uid: int) -> None:
        await self.request("POST", f"/users/{uid}/block")

    async def unblock(self, uid: int) -> None:
        await self.request("POST", f"/users/{uid}/unblock")

    async def file_bytes(self, file_id: str) -> bytes:
        async with self._http().get(f"{self.base_url}/sandbox/api/files/{quote(file_id, safe='')}") as resp:
            data = await resp.read()
            if resp.status >= 400:
                raise SandboxError(resp.status, data.decode(errors="replace"))
            return data

    # ------------------------------------------------------------ events and reset

    async def events(self, since: int = 0) -> list[Json]:
        result: list[Json] = await self.request("GET", "/events", params={"since": str(since)})
        return result

    async def reset(self) -> None:
        await self.request("POST", "/reset")

    # ------------------------------------------------------------ world

    async def add_account(self, phone: str, first_name: str = "Account", groups: Iterable[Json] = (),
                          password: str | None = None, **extra: Any) -> Json:
        """One account with its groups ``[{id, title, kind, can_send?, slow_mode?}]``."""
        body: Json = {"phone": phone, "first_name": first_name, "groups": list(groups), **extra}
        if password is not None:
            body["password"] = password
        result: Json = await self.request("POST", "/accounts", body)
        return result

    async def add_accounts(self, accounts: list[Json]) -> Json:
        result: Json = await self.request("POST", "/accounts", {"accounts": accounts})
        return result

    async def accounts(self) -> list[Json]:
        result: list[Json] = await self.request("GET", "/accounts")
        return result

    async def codes(self, phone: str) -> list[Json]:
        """Login codes sent to ``phone``, newest first."""
        result: list[Json] = await self.request("GET", f"/accounts/{quote(phone, safe='')}/codes")
        return result

    async def latest_code(self, phone: str) -> str:
        codes = await self.codes(phone)
        if not codes:
            raise SandboxError(404, f"no login code was sent to {phone}")
        return str(codes[0]["code"])

    async def set_code_types(self, phone: str, code_types: list[str]) -> list[str]:
        """How the account's login codes are delivered: the first by send_code, the rest by resends."""
        result: Json = await self.request("PUT", f"/accounts/{quote(phone, safe='')}/code_types",
                                          {"code_types": code_types})
        return list(result["code_types"])

    async def uploaded_bytes(self, phone: str) -> int:
        """File bytes the account has uploaded (the event log's ``upload`` events)."""
        result: Json = await self.request("GET", f"/accounts/{quote(phone, safe='')}/uploads")
        return int(result["bytes"])

    async def expire_file_references(self) -> int:
        result: Json = await self.request("POST", "/file_references/expire")
        return int(result["expired"])

    async def chat_accounts(self, uid: int) -> list[Json]:
        """The accounts chat user ``uid`` connected through the bot, as the world saw it."""
        result: list[Json] = await self.request("GET", f"/users/{uid}/accounts")
        return result

    async def sessions(self, phone: str) -> list[Json]:
        result: list[Json] = await self.request("GET", f"/accounts/{quote(phone, safe='')}/sessions")
        return result

    async def revoke_sessions(self, phone: str) -> Json:
        result: Json = await self.request("DELETE", f"/accounts/{quote(phone, safe='')}/sessions")
        return result

    async def group_messages(self, group_id: int) -> list[Json]:
        result: list[Json] = await self.request("GET", f"/groups/{group_id}/messages")
        return result

    async def topics(self, group_id: int) -> list[Json]:
        """A forum's live topics ``[{id, title, closed, date, top_message, posts}]``."""
        result: list[Json] = await self.request("GET", f"/groups/{group_id}/topics")
        return result

    async def change_topic(self, group_id: int, topic_id: int, *, closed: bool | None = None,
                           deleted: bool | None = None) -> Json:
        """Close or reopen a forum topic, or delete it (as the forum's admins would); deleted=False
        brings a deleted topic back (the sandbox's undo)."""
        body: Json = {"deleted": deleted} if deleted is not None else {"closed": bool(closed)}
        result: Json = await self.request("PATCH", f"/groups/{group_id}/topics/{topic_id}", body)
        return result

    async def faults(self) -> list[Json]:
        result: list[Json] = await self.request("GET", "/faults")
        return result

    async def add_fault(self, call: str, error: str, *, phone: str | None = None, group_id: int | None = None,
                        seconds: float | None = None, times: int | None = None, **extra: Any) -> Json:
        """A fault on ``call`` (``send_message``, ``*``…): ``error`` for ``times`` calls or until cleared."""
        body: Json = {"call": call, "error": error, **extra}
        for name, value in (("phone", phone), ("group_id", group_id), ("seconds", seconds), ("times", times)):
            if value is not None:
                body[name] = value
        result: Json = await self.request("POST", "/faults", body)
        return result

    async def clear_faults(self) -> Json:
        result: Json = await self.request("DELETE", "/faults")
        return result

    async def restrict_account(self, phone: str, error: str | None) -> Json:
        """An account-wide limit (``USER_BANNED_IN_CHANNEL``, ``PEER_FLOOD`` …); None lifts it."""
        result: Json = await self.request("PUT", f"/accounts/{phone}/restriction", {"error": error})
        return result

    # ------------------------------------------------------------ waiting

    async def wait_for_chat(self, uid: int, predicate: ChatPredicate, timeout: float = 5.0,  # noqa: ASYNC109
                            interval: float = 0.02) -> list[Json]:
        """Poll the chat until ``predicate(chat)`` holds; raises ``TimeoutError`` with the last view."""
        deadline = time.monotonic() + timeout
        while True:
            chat = await self.chat(uid)
            if predicate(chat):
                return chat
            if time.monotonic() >= deadline:
                raise TimeoutError(f"chat of {uid} did not reach the expected state in {timeout}s: {chat!r}")
            await asyncio.sleep(interval)

    async def wait_for_bot_message(self, uid: int, after: int = 0,
                                   predicate: Callable[[Json], bool] | None = None,
                                   timeout: float = 5.0) -> Json:  # noqa: ASYNC109
        """The first bot message with an id above ``after`` (and matching ``predicate``)."""
        def matching(chat: list[Json]) -> list[Json]:
            return [m for m in chat if m["from"] == "bot" and m["message_id"] > after
                    and (predicate is None or predicate(m))]

        chat = await self.wait_for_chat(uid, lambda c: bool(matching(c)), timeout)
        return matching(chat)[0]
