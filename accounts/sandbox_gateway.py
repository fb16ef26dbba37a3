"""The account gateway's sandbox adapter: the simulated world of ``sandbox.world`` over HTTP.

Every process (bot, app, worker) talks to the one sandbox server, so they share
one world. Calls are ``POST <base>/sandbox/world/<call>`` (see
``sandbox.world_api``); the world answers with Telegram's RPC error names,
which ``ERRORS`` below maps to the domain errors exactly as the Telethon
adapter's table (``accounts.telethon.errors``) does. A dropped connection or
any other transport failure is a ``TransientError`` (``NETWORK_ERROR``), a
timeout too (``TIMEOUT``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import aiohttp
import orjson

from accounts.gateway import (
    AccountRef,
    GroupInfo,
    GroupKind,
    GroupRef,
    LoginState,
    OutgoingMessage,
    SignedIn,
)
from config.settings import SandboxSettings
from domain.errors import (
    AccountThrottled,
    CodeExpired,
    CodeInvalid,
    FloodWait,
    GatewayError,
    GroupClosed,
    GroupMigrated,
    MessageRejected,
    PasswordInvalid,
    PasswordNeeded,
    PhoneBanned,
    PhoneInvalid,
    SessionDead,
    TransientError,
)

logger = logging.getLogger(__name__)

Operation = Literal["login", "send", "dialogs", "session"]

# Same guesses as the Telethon adapter for errors that come without a wait hint.
PHONE_FLOOD_SECONDS: Final = 24 * 3600
UNKNOWN_FLOOD_SECONDS: Final = 60

Rule = Callable[[str, Mapping[str, Any], Operation], GatewayError]


def _detail(answer: Mapping[str, Any]) -> str:
    return str(answer.get("description") or "")


def _always(error: type[GatewayError]) -> Rule:
    def rule(name: str, answer: Mapping[str, Any], op: Operation) -> GatewayError:
        return error(code=name, detail=_detail(answer))

    return rule


def _when_sending(error: type[GatewayError]) -> Rule:
    def rule(name: str, answer: Mapping[str, Any], op: Operation) -> GatewayError:
        cls = error if op == "send" else GatewayError
        return cls(code=name, detail=_detail(answer))

    return rule


def _seconds(answer: Mapping[str, Any], default: int) -> int:
    value = answer.get("seconds")
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _flood(name: str, answer: Mapping[str, Any], op: Operation) -> GatewayError:
    return FloodWait(_seconds(answer, UNKNOWN_FLOOD_SECONDS), code=name)


def _phone_flood(name: str, answer: Mapping[str, Any], op: Operation) -> GatewayError:
    return FloodWait(_seconds(answer, PHONE_FLOOD_SECONDS), code=name, detail="too many login attempts")


def _migrated(name: str, answer: Mapping[str, Any], op: Operation) -> GatewayError:
    return GroupMigrated(int(answer.get("new_id") or 0), int(answer.get("new_access_hash") or 0), code=name)


_dead = _always(SessionDead)
_closed = _always(GroupClosed)
_rejected = _always(MessageRejected)
_transient = _always(TransientError)

# The one table: Telegram's error name -> the domain error. Names not listed fall back on the
# numeric class the world sends with them (``_BY_CODE``), as Telethon's base classes do.
ERRORS: Final[dict[str, Rule]] = {
    # flood waits
    "FLOOD_WAIT": _flood,
    "FLOOD_PREMIUM_WAIT": _flood,
    "FLOOD_TEST_PHONE_WAIT": _flood,
    "SLOWMODE_WAIT": _flood,
    "PHONE_NUMBER_FLOOD": _phone_flood,
    "PHONE_PASSWORD_FLOOD": _phone_flood,
    # account throttled
    "PEER_FLOOD": _always(AccountThrottled),
    "FROZEN_METHOD_INVALID": _always(AccountThrottled),
    "USER_RESTRICTED": _always(AccountThrottled),
    # group permanently closed
    "CHAT_WRITE_FORBIDDEN": _closed,
    "USER_BANNED_IN_CHANNEL": _closed,
    "CHANNEL_PRIVATE": _closed,
    "CHAT_ADMIN_REQUIRED": _closed,
    "CHAT_RESTRICTED": _closed,
    "CHANNEL_INVALID": _closed,
    "PEER_ID_INVALID": _closed,
    "CHAT_ID_INVALID": _closed,
    "CHAT_INVALID": _closed,
    "CHAT_FORBIDDEN": _closed,
    "CHAT_GUEST_SEND_FORBIDDEN": _closed,
    "CHAT_SEND_PLAIN_FORBIDDEN": _closed,
    "CHAT_SEND_MEDIA_FORBIDDEN": _closed,
    "CHAT_SEND_PHOTOS_FORBIDDEN": _closed,
    "CHAT_SEND_VIDEOS_FORBIDDEN": _closed,
    "CHAT_SEND_GIFS_FORBIDDEN": _closed,
    "CHANNEL_PUBLIC_GROUP_NA": _closed,
    "USER_NOT_PARTICIPANT": _closed,
    # group moved
    "CHAT_MIGRATED": _migrated,
    # account dead
    "AUTH_KEY_UNREGISTERED": _dead,
    "SESSION_REVOKED": _dead,
    "SESSION_EXPIRED": _dead,
    "USER_DEACTIVATED": _dead,
    "USER_DEACTIVATED_BAN": _dead,
    "AUTH_KEY_DUPLICATED": _dead,
    "AUTH_KEY_INVALID": _dead,
    "AUTH_KEY_PERM_EMPTY": _dead,
    "SESSION_INVALID": _dead,
    # message rejected
    "MESSAGE_TOO_LONG": _rejected,
    "MESSAGE_EMPTY": _rejected,
    "MEDIA_CAPTION_TOO_LONG": _rejected,
    "MEDIA_INVALID": _rejected,
    "MEDIA_EMPTY": _rejected,
    "ENTITY_BOUNDS_INVALID": _rejected,
    "ENTITY_MENTION_USER_INVALID": _rejected,
    "ENTITIES_TOO_LONG": _rejected,
    "PHOTO_INVALID": _rejected,
    "PHOTO_EXT_INVALID": _rejected,
    "PHOTO_INVALID_DIMENSIONS": _rejected,
    "PHOTO_SAVE_FILE_INVALID": _rejected,
    "IMAGE_PROCESS_FAILED": _rejected,
    "DOCUMENT_INVALID": _rejected,
    "VIDEO_CONTENT_TYPE_INVALID": _rejected,
    "FILE_PARTS_INVALID": _rejected,
    "WEBPAGE_CURL_FAILED": _rejected,
    # login
    "PHONE_NUMBER_INVALID": _always(PhoneInvalid),
    "PHONE_NUMBER_UNOCCUPIED": _always(PhoneInvalid),
    "PHONE_NUMBER_APP_SIGNUP_FORBIDDEN": _always(PhoneInvalid),
    "PHONE_NUMBER_BANNED": _always(PhoneBanned),
    "PHONE_CODE_INVALID": _always(CodeInvalid),
    "PHONE_CODE_EMPTY": _always(CodeInvalid),
    "PHONE_CODE_EXPIRED": _always(CodeExpired),
    "PHONE_CODE_HASH_EMPTY": _always(CodeExpired),
    "SESSION_PASSWORD_NEEDED": _always(PasswordNeeded),
    "PASSWORD_HASH_INVALID": _always(PasswordInvalid),
    # transient: transport failures, timeouts, Telegram's own trouble
    "NETWORK": _transient,
    "NETWORK_ERROR": _transient,
    "TIMEOUT": _transient,
    "INTERNAL": _transient,
    "RPC_CALL_FAIL": _transient,
}

# Fallbacks by RPC class for names the table doesn't know.
_BY_CODE: Final[dict[int, Rule]] = {
    420: _flood,
    401: _dead,
    403: _when_sending(GroupClosed),
    400: _when_sending(MessageRejected),
}
# Telegram's raw form "FLOOD_WAIT_30": the number is data, not part of the name.
_NUMBERED: Final = re.compile(r"^([A-Z_]+?)_(\d+)$")


def map_error(answer: Mapping[str, Any], operation: Operation) -> GatewayError:
    """The domain error for a world answer ``{"ok": false, "error": NAME, ...}``."""
    name = str(answer.get("error") or "UNEXPECTED").upper()
    numbered = _NUMBERED.match(name)
    if name not in ERRORS and numbered and numbered.group(1) in ERRORS:
        name = numbered.group(1)
        answer = {**answer, "seconds": int(numbered.group(2))}
    rule = ERRORS.get(name)
    if rule is not None:
        return rule(name, answer, operation)
    code = answer.get("code")
    code = code if isinstance(code, int) else 400
    if abs(code) >= 500:
        return TransientError(code=name, detail=_detail(answer))
    fallback = _BY_CODE.get(code)
    if fallback is not None:
        return fallback(name, answer, operation)
    return GatewayError(code=name, detail=_detail(answer))


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

    # --- login ---------------------------------------------------------------------------

    async def send_code(self, name: str, phone: str) -> LoginState:
        sent = await self._call("send_code", "login", {"phone": phone})
        return LoginState(name=name, phone=str(sent["phone"]), session=str(sent["session"]),
                          phone_code_hash=str(sent["phone_code_hash"]),
                          code_length=int(sent.get("code_length", 5)))

    async def resend_code(self, state: LoginState) -> LoginState:
        sent = await self._call("resend_code", "login", {
            "phone": state.phone, "session": state.session, "phone_code_hash": state.phone_code_hash})
        return state.with_code(str(sent["session"]), str(sent["phone_code_hash"]))

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
                      title=str(g["title"]), can_send=bool(g.get("can_send", True)))
            for g in answer.get("groups", [])
        ]

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
        media = message.media
        if media is None:
            answer = await self._call("send_message", "send", payload)
        else:
            payload["media"] = {"kind": media.kind, "filename": media.filename, "mime_type": media.mime_type}
            form = aiohttp.FormData()
            form.add_field("payload", orjson.dumps(payload).decode(), content_type="application/json")
            # A file object, not bytes: aiohttp streams it instead of warning about large raw bodies.
            form.add_field("media", io.BytesIO(media.data), filename=media.filename,
                           content_type=media.mime_type)
            answer = await self._call("send_message", "send", form=form)
        return int(answer["message_id"])

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
            raise TransientError(code="TIMEOUT", detail=f"sandbox {method} timed out") from exc
        except aiohttp.ClientError as exc:
            raise TransientError(code="NETWORK_ERROR", detail=f"sandbox {method}: {exc}") from exc
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict) or "ok" not in answer:
            # Not a world answer: a proxy or a half-dead server; 5xx is Telegram's "try later".
            code = "NETWORK_ERROR" if status >= 500 else f"HTTP_{status}"
            raise TransientError(code=code, detail=f"sandbox {method} answered HTTP {status}")
        if not answer["ok"]:
            raise map_error(answer, operation)
        return answer


def _signed_in(done: Mapping[str, Any]) -> SignedIn:
    return SignedIn(session=str(done["session"]), tg_user_id=int(done["user_id"]),
                    first_name=str(done["first_name"]), phone=str(done["phone"]))


def _kind(value: object) -> GroupKind:
    if value == "group":
        return "group"
    if value == "channel":
        return "channel"
    return "supergroup"
