"""The account gateway's sandbox adapter: the simulated world of ``sandbox.world`` over HTTP.

Every process (bot, app, worker) talks to the one sandbox server, so they share
one world. Calls are ``POST <base>/sandbox/world/<call>`` (see
``sandbox.world_api``); the world answers with Telegram's RPC error names,
which ``map_error`` hands to the error table shared with the Telethon adapter
(``accounts.errors``). A dropped connection or any other transport failure is
a ``TransientError`` (``NETWORK_ERROR``), a timeout too (``TIMEOUT``).
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
import orjson

from accounts.errors import (
    NETWORK_ERROR,
    PAYMENT_REQUIRED,
    SETUP_EMAIL_REQUIRED,
    TIMEOUT,
    UNEXPECTED,
    Operation,
    to_domain,
)
from accounts.gateway import (
    MAX_TOPICS,
    AccountRef,
    CodeDelivery,
    DialogPage,
    ForumTopic,
    GroupInfo,
    GroupKind,
    GroupRef,
    LoginState,
    OutgoingMessage,
    SignedIn,
)
from config.settings import SandboxSettings
from domain.errors import GatewayError, SessionDead, TransientError

logger = logging.getLogger(__name__)

FILE_REFERENCE_EXPIRED: Final = "FILE_REFERENCE_EXPIRED"
DIALOG_PAGE: Final = 100  # dialogs per page, Telegram's maximum
TOPICS_PAGE: Final = 100  # topics per page of messages.getForumTopics
# The world's rule for errors it sends without a numeric class (sandbox/world.py ``ERROR_CODES``).
_DEFAULT_RPC_CODE: Final = 400


def _number(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def map_error(answer: Mapping[str, Any], operation: Operation) -> GatewayError:
    """The domain error for a world answer ``{"ok": false, "error": NAME, ...}``."""
    code = _number(answer.get("code"))
    return to_domain(
        str(answer.get("error") or UNEXPECTED),
        rpc_code=_DEFAULT_RPC_CODE if code is None else code,
        operation=operation,
        seconds=_number(answer.get("seconds")),
        new_id=_number(answer.get("new_id")),
        new_access_hash=_number(answer.get("new_access_hash")),
        detail=str(answer.get("description") or ""),
    )


class SandboxGateway:
    """``AccountGateway`` against the sandbox world (``/sandbox/world/...``) over one HTTP session.

    ``LoginState.session`` carries the world's temporary session token; it must come back
    unchanged (another one makes the code "expired", as on Telegram). Media travels with its
    bytes (multipart).
    """

    def __init__(
        self,
        base_url: str = "",
        *,
        settings: SandboxSettings | None = None,
        timeout: float = 30.0,
    ) -> None:
        root = base_url or (settings or SandboxSettings()).url
        self._base = root.rstrip("/") + "/sandbox/world/"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None
        # (account, media key) -> the world's reference of the file sent before (sent once per account)
        self._sent_files: dict[tuple[int, int, str], dict[str, Any]] = {}

    # --- login ---------------------------------------------------------------------------

    async def send_code(self, name: str, phone: str) -> LoginState:
        sent = await self._call("send_code", "login", {"phone": phone})
        delivery = _delivery(sent)
        return LoginState(name=name, phone=str(sent["phone"]), session=str(sent["session"]),
                          phone_code_hash=str(sent["phone_code_hash"])).with_delivery(delivery)

    async def resend_code(self, state: LoginState) -> LoginState:
        sent = await self._call("resend_code", "login", {
            "phone": state.phone, "session": state.session, "phone_code_hash": state.phone_code_hash})
        delivery = _delivery(sent)
        return state.with_code(str(sent["session"]), str(sent["phone_code_hash"])).with_delivery(delivery)

    async def sign_in(self, state: LoginState, code: str) -> SignedIn:
        """Raises ``PasswordNeeded`` when two-step verification is on."""
        done = await self._call("sign_in", "login", {
            "phone": state.phone, "session": state.session, "phone_code_hash": state.phone_code_hash,
            "code": code})
        return _signed_in(done)

    async def check_password(self, state: LoginState, password: str) -> SignedIn:
        done = await self._call("check_password", "login", {
            "phone": state.phone, "session": state.session, "password": password})
        return _signed_in(done)

    async def cancel_login(self, state: LoginState) -> None:
        """Forget the temporary session (best effort, never raises)."""
        try:
            await self._call("cancel_login", "login", {"session": state.session})
        except GatewayError as exc:
            logger.info("sandbox cancel_login failed: %s", exc.code)

    # --- dialogs -------------------------------------------------------------------------

    async def list_groups(self, account: AccountRef) -> list[GroupInfo]:
        answer = await self._call("get_dialogs", "dialogs", {"session": account.session})
        return [
            GroupInfo(peer_id=int(g["id"]), access_hash=int(g["access_hash"]), kind=_kind(g["kind"]),
                      title=str(g["title"]), can_send=bool(g.get("can_send", True)),
                      is_forum=bool(g.get("forum", False)))
            for g in answer.get("groups", [])
        ]

    async def list_groups_page(self, account: AccountRef, folder: int, offset: str = "") -> DialogPage:
        body: dict[str, Any] = {"session": account.session, "folder": folder, "limit": DIALOG_PAGE}
        if offset:
            body["after"] = int(offset)
        answer = await self._call("get_dialogs_page", "dialogs", body)
        dialogs = answer.get("dialogs", [])
        groups = [
            GroupInfo(peer_id=int(g["id"]), access_hash=int(g["access_hash"]), kind=_kind(g["kind"]),
                      title=str(g["title"]), can_send=bool(g.get("can_send", True)),
                      archived=int(g.get("folder") or 0) == 1, is_forum=bool(g.get("forum", False)))
            for g in dialogs
        ]
        following = answer.get("next")
        return DialogPage(groups, len(dialogs), "" if following is None else str(following))

    async def list_topics(self, account: AccountRef, group: GroupRef) -> list[ForumTopic]:
        """The forum's topics, page by page as the world lists them, up to ``MAX_TOPICS``."""
        topics: list[ForumTopic] = []
        after: int | None = None
        while len(topics) < MAX_TOPICS:
            body: dict[str, Any] = {"session": account.session, "group_id": group.peer_id,
                                    "access_hash": group.access_hash, "limit": TOPICS_PAGE}
            if after is not None:
                body["after"] = after
            answer = await self._call("get_forum_topics", "dialogs", body)
            topics += [ForumTopic(int(t["id"]), str(t["title"]), bool(t.get("closed", False)))
                       for t in answer.get("topics", [])]
            following = answer.get("next")
            if following is None:
                break
            after = int(following)
        return topics[:MAX_TOPICS]

    # --- messages ------------------------------------------------------------------------

    async def send_message(self, account: AccountRef, group: GroupRef, message: OutgoingMessage) -> int:
        """Post ``message`` to ``group``; returns the new message id."""
        payload: dict[str, Any] = {
            "session": account.session,
            "group_id": group.peer_id,
            "access_hash": group.access_hash,
            "kind": group.kind,
            "text": message.text,
            "entities": message.entities,
        }
        if group.in_topic is not None:
            payload["reply_to"] = group.in_topic  # the topic's id, as inputReplyToMessage names it
        if message.album:
            return await self._send_album(account, payload, message)
        media = message.media
        if media is None:
            answer = await self._call("send_message", "send", payload)
            return int(answer["message_id"])
        key = (account.account_id, hash(account.session), media.key)  # a new session starts afresh
        known = self._sent_files.get(key) if media.key else None
        if known is not None:
            try:
                answer = await self._call("send_message", "send", {**payload, "media_ref": known})
                return int(answer["message_id"])
            except GatewayError as exc:
                if exc.code != FILE_REFERENCE_EXPIRED:
                    raise
                # no message refetch over this API: the bytes go up once more
                self._sent_files.pop(key, None)
        payload["media"] = {"kind": media.kind, "filename": media.filename, "mime_type": media.mime_type,
                            "width": media.width, "height": media.height, "duration": media.duration}
        form = aiohttp.FormData()
        form.add_field("payload", orjson.dumps(payload).decode(), content_type="application/json")
        # A file object, not bytes: aiohttp streams it instead of warning about large raw bodies.
        form.add_field("media", io.BytesIO(media.data), filename=media.filename, content_type=media.mime_type)
        if media.thumb:
            form.add_field("thumb", io.BytesIO(media.thumb), filename="thumb.jpg", content_type="image/jpeg")
        answer = await self._call("send_message", "send", form=form)
        ref = answer.get("media_ref")
        if media.key and isinstance(ref, dict):
            self._sent_files[key] = ref
        return int(answer["message_id"])

    async def _send_album(
        self, account: AccountRef, payload: dict[str, Any], message: OutgoingMessage
    ) -> int:
        """U9.3: one album call; items this session sent before go by reference. Returns the id of
        the album's first message."""
        items: list[dict[str, Any]] = []
        keys = []
        for media in message.album:
            key = (account.account_id, hash(account.session), media.key)
            keys.append(key)
            known = self._sent_files.get(key) if media.key else None
            if known is not None:
                items.append({"media_ref": known})
                continue
            items.append({"kind": media.kind, "filename": media.filename, "mime_type": media.mime_type,
                          "width": media.width, "height": media.height, "duration": media.duration,
                          "data_b64": base64.b64encode(media.data).decode(),
                          **({"thumb_b64": base64.b64encode(media.thumb).decode()} if media.thumb else {})})
        try:
            answer = await self._call("send_album", "send", {**payload, "items": items})
        except GatewayError as exc:
            if exc.code != FILE_REFERENCE_EXPIRED:
                raise
            for key in keys:  # the bytes go up once more
                self._sent_files.pop(key, None)
            return await self._send_album(account, payload, message)
        for media, key, ref in zip(message.album, keys, answer.get("media_refs") or [], strict=False):
            if media.key and isinstance(ref, dict):
                self._sent_files[key] = ref
        return int(answer["message_ids"][0])

    # --- session -------------------------------------------------------------------------

    async def log_out(self, account: AccountRef) -> None:
        """Log the session out; one that is already dead counts as logged out."""
        with contextlib.suppress(SessionDead):
            await self._call("log_out", "session", {"session": account.session})

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # --- transport -----------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        operation: Operation,
        body: dict[str, Any] | None = None,
        *,
        form: aiohttp.FormData | None = None,
    ) -> dict[str, Any]:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        try:
            if form is not None:
                request = self._http.post(self._base + method, data=form)
            else:
                request = self._http.post(self._base + method, data=orjson.dumps(body or {}),
                                          headers={"Content-Type": "application/json"})
            async with request as response:
                status, raw = response.status, await response.read()
        except TimeoutError as exc:
            raise to_domain(TIMEOUT, rpc_code=None, operation=operation,
                            detail=f"sandbox {method} timed out") from exc
        except aiohttp.ClientError as exc:
            raise to_domain(NETWORK_ERROR, rpc_code=None, operation=operation,
                            detail=f"sandbox {method}: {exc}") from exc
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict) or "ok" not in answer:
            # Not a world answer: a proxy or a half-dead server. No Telegram name to look up, so
            # not the table's business; HTTP_<status> tells the log what came back instead.
            detail = f"sandbox {method} answered HTTP {status}"
            if status >= 500:
                raise to_domain(NETWORK_ERROR, rpc_code=None, operation=operation, detail=detail)
            raise TransientError(code=f"HTTP_{status}", detail=detail)
        if not answer["ok"]:
            raise map_error(answer, operation)
        return answer


_BLOCKING: Final = {"setup_email_required": SETUP_EMAIL_REQUIRED, "payment_required": PAYMENT_REQUIRED}


def _delivery(sent: Mapping[str, Any]) -> CodeDelivery:
    """Where the world sent the code; a type that ends the login becomes ``LoginBlocked``."""
    kind = str(sent.get("type") or "app")
    if kind in _BLOCKING:
        raise to_domain(_BLOCKING[kind], rpc_code=None, operation="login")
    return CodeDelivery(type=kind, length=int(sent.get("code_length") or 5), hint=str(sent.get("hint") or ""),
                        next_type=str(sent.get("next_type") or ""))


def _signed_in(done: Mapping[str, Any]) -> SignedIn:
    return SignedIn(session=str(done["session"]), tg_user_id=int(done["user_id"]),
                    first_name=str(done["first_name"]), phone=str(done["phone"]))


def _kind(value: object) -> GroupKind:
    if value == "group":
        return "group"
    if value == "channel":
        return "channel"
    return "supergroup"
