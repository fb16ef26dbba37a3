"""accounts.telethon: login, group listing, sends, the client pool, driven with a stand-in client.

The stand-in (``FakeClient``) is injected through the gateway's client factory. It keeps a
tiny model of Telegram's login (auth keys, code hashes bound to the key that asked for them,
2FA) and raises Telethon's real exception classes, so the tests see what the adapter would.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from telethon import TelegramClient, errors, functions, types
from telethon.sessions import StringSession

from accounts.gateway import (
    AccountGateway,
    AccountRef,
    ForumTopic,
    GroupRef,
    LoginState,
    Media,
    OutgoingMessage,
)
from accounts.telethon import TelethonClientFactory, TelethonGateway
from accounts.telethon.dialogs import group_info
from accounts.telethon.media import input_media
from accounts.telethon.messages import input_peer, to_telethon_entities, to_telethon_entity
from accounts.telethon.pool import CONNECT_ATTEMPTS, ClientPool, connect
from config.settings import EngineSettings, Secret, Settings, SettingsError, TelegramSettings
from domain.errors import (
    CodeExpired,
    CodeInvalid,
    FloodWait,
    LoginBlocked,
    PasswordInvalid,
    PasswordNeeded,
    PhoneBanned,
    PhoneInvalid,
    SessionDead,
    TransientError,
)

PHONE = "+15550001234"
CODE = "12345"
PASSWORD = "correct horse"


# --- the stand-in -------------------------------------------------------------------------------


@dataclass
class FakeTelegram:
    """What the stand-in clients share: accounts, issued code hashes, scripted failures."""

    two_factor: bool = False
    migrate_on_send_code: int | None = None  # DC the phone lives on (PHONE_MIGRATE)
    sent_code: Any = None  # phone_code_hash -> the auth.sentCode answer, instead of an app code
    connect_delay: float = 0.0
    clients: list[FakeClient] = field(default_factory=list)
    failures: dict[str, list[BaseException]] = field(default_factory=dict)
    hash_owner: dict[str, str] = field(default_factory=dict)  # phone_code_hash -> auth key
    password_pending: set[str] = field(default_factory=set)  # auth keys that passed the code step
    dialogs: list[Any] = field(default_factory=list)
    sign_ins: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def fail(self, method: str, *excs: BaseException) -> None:
        self.failures.setdefault(method, []).extend(excs)

    def check(self, method: str) -> None:
        queue = self.failures.get(method)
        if queue:
            raise queue.pop(0)

    def factory(self, session: str) -> FakeClient:
        client = FakeClient(self, session)
        self.clients.append(client)
        return client

    def issue_hash(self, key: str) -> str:
        code_hash = f"hash-{next(self._ids)}"
        self.hash_owner[code_hash] = key
        return code_hash


class FakeSession:
    """Serialises like a StringSession would: the auth key, its DC and (here) whether it's signed in."""

    def __init__(self, world: FakeTelegram, string: str) -> None:
        if string:
            _, self.key, dc, authorized = string.split(":")
            self.dc, self.authorized = int(dc), authorized == "1"
        else:
            self.key, self.dc, self.authorized = f"key{next(world._ids)}", 2, False

    def save(self) -> str:
        return f"fake:{self.key}:{self.dc}:{int(self.authorized)}"


class FakeClient:
    def __init__(self, world: FakeTelegram, session: str) -> None:
        self.world = world
        self.built_with = session
        self.session = FakeSession(world, session)
        self.flood_sleep_threshold = 60  # Telethon's default: the gateway must turn it off
        self.api_id, self.api_hash = 12345, "0" * 32
        self.connected = False
        self.connects = 0
        self.disconnects = 0
        self.requests: list[Any] = []

    async def connect(self) -> None:
        self.world.check("connect")
        if self.world.connect_delay:
            await asyncio.sleep(self.world.connect_delay)
        self.connects += 1
        self.connected = True

    async def disconnect(self) -> None:
        self.disconnects += 1
        self.connected = False

    def is_connected(self) -> bool:
        return self.connected

    def _sent_code(self, code_type: Any) -> Any:
        return types.auth.SentCode(type=code_type, phone_code_hash=self.world.issue_hash(self.session.key))

    async def send_code_request(self, phone: str) -> Any:
        assert self.connected
        self.world.check("send_code_request")
        if self.world.migrate_on_send_code:
            self.session.dc = self.world.migrate_on_send_code
        if self.world.sent_code is not None:
            return self.world.sent_code(self.world.issue_hash(self.session.key))
        return self._sent_code(types.auth.SentCodeTypeApp(length=5))

    async def sign_in(self, phone: str | None = None, code: str | None = None, *, password: str | None = None,
                      phone_code_hash: str | None = None) -> Any:
        assert self.connected
        self.world.sign_ins.append({"session": self.built_with, "phone": phone, "code": code,
                                    "password": password, "phone_code_hash": phone_code_hash})
        self.world.check("sign_in")
        key = self.session.key
        if password is None:
            # Telegram binds the hash to the auth key that asked for the code.
            if self.world.hash_owner.get(phone_code_hash or "") != key:
                raise errors.PhoneCodeExpiredError(request=None)
            if code != CODE:
                raise errors.PhoneCodeInvalidError(request=None)
            if self.world.two_factor:
                self.world.password_pending.add(key)
                raise errors.SessionPasswordNeededError(request=None)
        else:
            if key not in self.world.password_pending or password != PASSWORD:
                raise errors.PasswordHashInvalidError(request=None)
        self.session.authorized = True
        return types.User(id=4242, first_name="Ann")

    async def __call__(self, request: Any) -> Any:
        assert self.connected
        self.requests.append(request)
        if isinstance(request, functions.auth.SendCodeRequest):  # auth.sendCode, as the gateway sends it
            assert request.api_id == self.api_id and request.settings.allow_missed_call
            return await self.send_code_request(request.phone_number)
        self.world.check(type(request).__name__)
        if isinstance(request, functions.auth.ResendCodeRequest):
            if self.world.hash_owner.get(request.phone_code_hash) != self.session.key:
                raise errors.PhoneCodeExpiredError(request=request)
            return self._sent_code(types.auth.SentCodeTypeSms(length=6))
        if isinstance(request, functions.auth.CancelCodeRequest | functions.auth.LogOutRequest):
            return True
        raise AssertionError(f"unexpected request {request!r}")

    async def iter_dialogs(self, **kwargs: Any) -> AsyncIterator[Any]:
        assert kwargs.get("ignore_migrated") is True
        self.world.check("iter_dialogs")
        for entity in self.world.dialogs:
            yield SimpleNamespace(entity=entity)

    async def send_message(self, peer: Any, text: str, **kwargs: Any) -> Any:
        assert self.connected
        self.world.check("send_message")
        self.world.sent.append({"peer": peer, "text": text, **kwargs})
        return SimpleNamespace(id=len(self.world.sent) + 100)

    async def upload_file(self, data: bytes, *, file_name: str) -> Any:
        self.world.sent.append({"upload": data, "file_name": file_name})
        return types.InputFile(id=9, parts=1, name=file_name, md5_checksum="")

    async def send_file(self, peer: Any, file: Any, **kwargs: Any) -> Any:
        self.world.check("send_file")
        self.world.sent.append({"peer": peer, "file": file, **kwargs})
        return SimpleNamespace(id=len(self.world.sent) + 100)


def _settings(pool_size: int = 200, idle_timeout: float = 60.0) -> Settings:
    return Settings(engine=EngineSettings(client_pool_size=pool_size, client_idle_timeout=idle_timeout))


@pytest.fixture
def world() -> FakeTelegram:
    return FakeTelegram()


@pytest.fixture
async def gateway(world: FakeTelegram) -> AsyncIterator[TelethonGateway]:
    gw = TelethonGateway(_settings(pool_size=3), factory=world.factory)
    yield gw
    await gw.close()


# --- construction -------------------------------------------------------------------------------


def test_gateway_satisfies_the_port(gateway: TelethonGateway) -> None:
    port: AccountGateway = gateway
    assert callable(port.send_code)


async def test_real_factory_builds_clients_without_hidden_flood_sleeps() -> None:
    original = StringSession()
    original.set_dc(2, "149.154.167.51", 443)
    original.auth_key = SimpleNamespace(key=b"\x01" * 256)  # only .key is read by save()
    string = original.save()
    client = TelethonClientFactory(api_id=12345, api_hash="0" * 32)(string)
    assert isinstance(client, TelegramClient)
    assert client.flood_sleep_threshold == 0
    assert client.session.save() == string  # built on exactly the session it was given
    assert not client.is_connected()


async def test_new_clients_never_sleep_on_flood_even_from_a_custom_factory(
    gateway: TelethonGateway, world: FakeTelegram
) -> None:
    await gateway.send_code("login_7", PHONE)
    await gateway.send_message(AccountRef(1, "fake:k1:2:1"), GroupRef(1, 2, "supergroup"), OutgoingMessage("x"))
    assert len(world.clients) == 2
    assert all(client.flood_sleep_threshold == 0 for client in world.clients)


def test_gateway_from_settings_needs_api_credentials() -> None:
    with pytest.raises(SettingsError, match="TELEGRAM_API_ID and TELEGRAM_API_HASH"):
        TelethonGateway(Settings())
    settings = Settings(telegram=TelegramSettings(api_id=12345, api_hash=Secret("0" * 32)),
                        engine=EngineSettings(client_pool_size=7, client_idle_timeout=42.0))
    gateway = TelethonGateway(settings)
    assert (gateway.pool.max_size, gateway.pool.idle_timeout) == (7, 42.0)


# --- login --------------------------------------------------------------------------------------


async def test_send_code_returns_the_temporary_session_and_hash(
    gateway: TelethonGateway, world: FakeTelegram
) -> None:
    world.migrate_on_send_code = 4
    state = await gateway.send_code("login_7", PHONE)
    (client,) = world.clients
    assert client.built_with == ""  # a new temporary session
    assert state.name == "login_7" and state.phone == PHONE
    # saved after the request, so a DC switch on the way is in the string
    assert state.session == client.session.save() == f"fake:{client.session.key}:4:0"
    assert world.hash_owner[state.phone_code_hash] == client.session.key
    assert state.code_length == 5
    assert client.disconnects == 1


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (errors.PhoneNumberInvalidError(request=None), PhoneInvalid),
        (errors.PhoneNumberBannedError(request=None), PhoneBanned),
        (errors.PhoneNumberFloodError(request=None), FloodWait),
        (errors.FloodWaitError(request=None, capture=3600), FloodWait),
    ],
)
async def test_send_code_failures(
    gateway: TelethonGateway, world: FakeTelegram, failure: BaseException, expected: type[Exception]
) -> None:
    world.fail("send_code_request", failure)
    with pytest.raises(expected):
        await gateway.send_code("login_7", PHONE)
    assert world.clients[0].disconnects == 1


@pytest.mark.parametrize(
    ("code_type", "next_type", "expected"),
    [
        (types.auth.SentCodeTypeApp(length=5), types.auth.CodeTypeSms(), ("app", 5, "", "sms")),
        (types.auth.SentCodeTypeSms(length=6), types.auth.CodeTypeCall(), ("sms", 6, "", "call")),
        (types.auth.SentCodeTypeCall(length=5), None, ("call", 5, "", "")),
        (types.auth.SentCodeTypeFlashCall(pattern="+4477*****"), None, ("flash_call", 5, "+4477*****", "")),
        (types.auth.SentCodeTypeMissedCall(prefix="+44770", length=4), types.auth.CodeTypeSms(),
         ("missed_call", 4, "+44770", "sms")),
        (types.auth.SentCodeTypeEmailCode(email_pattern="a***@mail.com", length=6), None,
         ("email", 6, "a***@mail.com", "")),
        (types.auth.SentCodeTypeFragmentSms(url="https://fragment.com/number/1", length=5), None,
         ("fragment_sms", 5, "https://fragment.com/number/1", "")),
        (types.auth.SentCodeTypeFirebaseSms(length=6), types.auth.CodeTypeFragmentSms(),
         ("firebase_sms", 6, "", "fragment_sms")),
    ],
)
async def test_send_code_tells_where_the_code_went(
    gateway: TelethonGateway, world: FakeTelegram, code_type: Any, next_type: Any,
    expected: tuple[str, int, str, str],
) -> None:
    world.sent_code = lambda code_hash: types.auth.SentCode(type=code_type, phone_code_hash=code_hash,
                                                            next_type=next_type)
    state = await gateway.send_code("login_7", PHONE)
    assert (state.code_type, state.code_length, state.code_hint, state.next_type) == expected
    assert LoginState.from_dict(state.to_dict()) == state


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda h: types.auth.SentCode(type=types.auth.SentCodeTypeSetUpEmailRequired(), phone_code_hash=h),
         "setup_email_required"),
        # sentCodePaymentRequired has no .type at all (Telethon's send_code_request trips over it)
        (lambda h: types.auth.SentCodePaymentRequired(
            store_product="p", phone_code_hash=h, support_email_address="s@t.org", support_email_subject="x",
            premium_days=7, currency="USD", amount=100), "payment_required"),
    ],
)
async def test_send_code_that_cannot_go_on_here_ends_the_login(
    gateway: TelethonGateway, world: FakeTelegram, answer: Any, reason: str
) -> None:
    world.sent_code = answer
    with pytest.raises(LoginBlocked) as blocked:
        await gateway.send_code("login_7", PHONE)
    assert blocked.value.reason == reason


async def test_send_code_when_telegram_is_unreachable(gateway: TelethonGateway, world: FakeTelegram) -> None:
    world.fail("connect", ConnectionError("no route"))
    with pytest.raises(TransientError):
        await gateway.send_code("login_7", PHONE)


async def test_sign_in_reuses_the_temporary_session_and_hash(
    gateway: TelethonGateway, world: FakeTelegram
) -> None:
    state = await gateway.send_code("login_7", PHONE)
    # a bot restart in between: only the serialised state survives
    restored = LoginState.from_dict(state.to_dict())
    signed = await gateway.sign_in(restored, CODE)
    (call,) = world.sign_ins
    assert call["session"] == state.session
    assert call["phone_code_hash"] == state.phone_code_hash
    assert call["code"] == CODE and call["phone"] == PHONE
    assert (signed.tg_user_id, signed.first_name, signed.phone) == (4242, "Ann", PHONE)
    # the durable session is saved after sign-in: same auth key, now signed in
    key = world.clients[0].session.key
    assert signed.session == f"fake:{key}:2:1" != state.session


async def test_wrong_code_then_right_code(gateway: TelethonGateway, world: FakeTelegram) -> None:
    state = await gateway.send_code("login_7", PHONE)
    with pytest.raises(CodeInvalid) as info:
        await gateway.sign_in(state, "00000")
    assert info.value.code == "PHONE_CODE_INVALID"
    signed = await gateway.sign_in(state, CODE)
    assert signed.tg_user_id == 4242


async def test_expired_code(gateway: TelethonGateway, world: FakeTelegram) -> None:
    state = await gateway.send_code("login_7", PHONE)
    world.fail("sign_in", errors.PhoneCodeExpiredError(request=None))
    with pytest.raises(CodeExpired):
        await gateway.sign_in(state, CODE)


async def test_a_hash_from_another_session_does_not_sign_in(gateway: TelethonGateway) -> None:
    state = await gateway.send_code("login_7", PHONE)
    other = await gateway.send_code("login_8", PHONE)
    with pytest.raises(CodeExpired):
        await gateway.sign_in(state.with_code(other.session, state.phone_code_hash), CODE)


async def test_resend_code_uses_the_same_session_and_hash(gateway: TelethonGateway, world: FakeTelegram) -> None:
    state = await gateway.send_code("login_7", PHONE)
    resent = await gateway.resend_code(state)
    client = world.clients[-1]
    assert client.built_with == state.session
    (request,) = client.requests
    assert isinstance(request, functions.auth.ResendCodeRequest)
    assert request.phone_code_hash == state.phone_code_hash
    assert request.phone_number == PHONE.lstrip("+")
    assert resent.phone_code_hash != state.phone_code_hash
    assert resent.session == state.session and resent.code_length == 6
    # the new hash is the one that signs in
    signed = await gateway.sign_in(resent, CODE)
    assert world.sign_ins[-1]["phone_code_hash"] == resent.phone_code_hash
    assert signed.tg_user_id == 4242


async def test_resend_after_the_hash_was_voided_requests_a_new_code(
    gateway: TelethonGateway, world: FakeTelegram
) -> None:
    state = await gateway.send_code("login_7", PHONE)
    world.fail("ResendCodeRequest", errors.PhoneCodeExpiredError(request=None))
    resent = await gateway.resend_code(state)
    assert resent.phone_code_hash not in (state.phone_code_hash, "")
    assert world.hash_owner[resent.phone_code_hash] == world.clients[0].session.key
    assert resent.code_length == 5


async def test_resend_flood(gateway: TelethonGateway, world: FakeTelegram) -> None:
    state = await gateway.send_code("login_7", PHONE)
    world.fail("ResendCodeRequest", errors.FloodWaitError(request=None, capture=120))
    with pytest.raises(FloodWait) as info:
        await gateway.resend_code(state)
    assert info.value.seconds == 120


async def test_two_step_verification(gateway: TelethonGateway, world: FakeTelegram) -> None:
    world.two_factor = True
    state = await gateway.send_code("login_7", PHONE)
    with pytest.raises(PasswordNeeded) as needed:
        await gateway.sign_in(state, CODE)
    assert needed.value.code == "SESSION_PASSWORD_NEEDED"
    with pytest.raises(PasswordInvalid):
        await gateway.check_password(state, "wrong")
    signed = await gateway.check_password(state, PASSWORD)
    assert world.sign_ins[-1]["session"] == state.session
    assert world.sign_ins[-1]["password"] == PASSWORD
    key = world.clients[0].session.key
    assert signed.session == f"fake:{key}:2:1"
    assert signed.tg_user_id == 4242


async def test_password_without_the_code_step_is_refused(gateway: TelethonGateway, world: FakeTelegram) -> None:
    world.two_factor = True
    state = await gateway.send_code("login_7", PHONE)
    with pytest.raises(PasswordInvalid):
        await gateway.check_password(state, PASSWORD)


async def test_cancel_login_voids_the_code(gateway: TelethonGateway, world: FakeTelegram) -> None:
    state = await gateway.send_code("login_7", PHONE)
    await gateway.cancel_login(state)
    client = world.clients[-1]
    (request,) = client.requests
    assert isinstance(request, functions.auth.CancelCodeRequest)
    assert request.phone_code_hash == state.phone_code_hash
    assert client.built_with == state.session
    assert client.disconnects == 1


async def test_cancel_login_without_a_sent_code_does_not_connect(
    gateway: TelethonGateway, world: FakeTelegram
) -> None:
    await gateway.cancel_login(LoginState(name="login_7", phone=PHONE, session="", phone_code_hash=""))
    assert world.clients == []


@pytest.mark.parametrize(
    "failure", [ConnectionError("down"), errors.PhoneCodeExpiredError(request=None), RuntimeError("bug")]
)
async def test_cancel_login_never_raises(gateway: TelethonGateway, world: FakeTelegram,
                                         failure: BaseException) -> None:
    state = await gateway.send_code("login_7", PHONE)
    world.fail("connect" if isinstance(failure, ConnectionError) else "CancelCodeRequest", failure)
    await gateway.cancel_login(state)


# --- groups -------------------------------------------------------------------------------------


def _chat(chat_id: int, **kwargs: Any) -> Any:
    return types.Chat(id=chat_id, title=f"chat {chat_id}", photo=types.ChatPhotoEmpty(), participants_count=5,
                      date=None, version=1, **kwargs)


def _channel(channel_id: int, **kwargs: Any) -> Any:
    return types.Channel(id=channel_id, title=f"channel {channel_id}", photo=types.ChatPhotoEmpty(), date=None,
                         access_hash=channel_id * 10, **kwargs)


MUTED = types.ChatBannedRights(until_date=None, send_messages=True)
NO_TEXT = types.ChatBannedRights(until_date=None, send_plain=True)
ADMIN = types.ChatAdminRights(post_messages=True)


@pytest.mark.parametrize(
    ("entity", "expected"),
    [
        (_chat(1), (1, 0, "group", True)),
        (_chat(2, default_banned_rights=MUTED), (2, 0, "group", False)),
        (_chat(3, default_banned_rights=MUTED, admin_rights=types.ChatAdminRights()), (3, 0, "group", True)),
        (_chat(4, left=True), None),
        (_chat(5, deactivated=True, migrated_to=types.InputChannel(50, 1)), None),
        (types.ChatForbidden(id=6, title="kicked"), None),
        (_channel(7, megagroup=True), (7, 70, "supergroup", True)),
        (_channel(8, megagroup=True, default_banned_rights=NO_TEXT), (8, 80, "supergroup", False)),
        (_channel(9, megagroup=True, banned_rights=MUTED), (9, 90, "supergroup", False)),
        (_channel(10, megagroup=True, creator=True, default_banned_rights=MUTED), (10, 100, "supergroup", True)),
        (_channel(11, megagroup=True, left=True), None),
        (_channel(12, megagroup=True, gigagroup=True), (12, 120, "supergroup", False)),
        (_channel(13, broadcast=True), (13, 130, "channel", False)),
        (_channel(14, broadcast=True, admin_rights=types.ChatAdminRights(pin_messages=True)),
         (14, 140, "channel", False)),
        (_channel(15, broadcast=True, admin_rights=ADMIN), (15, 150, "channel", True)),
        (_channel(16, broadcast=True, creator=True), (16, 160, "channel", True)),
        (types.User(id=17, first_name="someone"), None),
    ],
    ids=lambda value: getattr(value, "id", "") if not isinstance(value, tuple | type(None)) else "",
)
def test_group_classification(entity: Any, expected: tuple[int, int, str, bool] | None) -> None:
    info = group_info(entity)
    if expected is None:
        assert info is None
    else:
        assert info is not None
        assert (info.peer_id, info.access_hash, info.kind, info.can_send) == expected
        assert info.title == entity.title


async def test_list_groups(gateway: TelethonGateway, world: FakeTelegram) -> None:
    world.dialogs = [_chat(1), types.User(id=2, first_name="x"), _channel(3, megagroup=True),
                     _channel(4, broadcast=True)]
    account = AccountRef(9, "fake:k9:2:1")
    groups = await gateway.list_groups(account)
    assert [(g.peer_id, g.kind, g.can_send) for g in groups] == [
        (1, "group", True), (3, "supergroup", True), (4, "channel", False)]
    assert 9 in gateway.pool  # the client stays for the next call


async def test_list_groups_with_a_revoked_session(gateway: TelethonGateway, world: FakeTelegram) -> None:
    world.fail("iter_dialogs", errors.SessionRevokedError(request=None))
    with pytest.raises(SessionDead) as info:
        await gateway.list_groups(AccountRef(9, "fake:k9:2:1"))
    assert info.value.code == "SESSION_REVOKED"
    assert 9 not in gateway.pool
    assert world.clients[0].disconnects == 1


# --- messages -----------------------------------------------------------------------------------


ALL_ENTITIES = [
    {"type": "bold", "offset": 0, "length": 1},
    {"type": "italic", "offset": 1, "length": 2},
    {"type": "underline", "offset": 2, "length": 3},
    {"type": "strikethrough", "offset": 3, "length": 4},
    {"type": "spoiler", "offset": 4, "length": 5},
    {"type": "code", "offset": 5, "length": 6},
    {"type": "pre", "offset": 6, "length": 7, "language": "python"},
    {"type": "text_link", "offset": 7, "length": 8, "url": "https://example.org"},
    {"type": "url", "offset": 8, "length": 9},
    {"type": "mention", "offset": 9, "length": 10},
    {"type": "hashtag", "offset": 10, "length": 11},
    {"type": "cashtag", "offset": 11, "length": 12},
    {"type": "bot_command", "offset": 12, "length": 13},
    {"type": "email", "offset": 13, "length": 14},
    {"type": "phone_number", "offset": 14, "length": 15},
    {"type": "blockquote", "offset": 15, "length": 16},
    {"type": "expandable_blockquote", "offset": 16, "length": 17},
    {"type": "custom_emoji", "offset": 17, "length": 2, "custom_emoji_id": "5368324170671202286"},
]


def test_every_bot_api_entity_type_converts() -> None:
    converted = to_telethon_entities(ALL_ENTITIES)
    assert [type(e).__name__ for e in converted] == [
        "MessageEntityBold", "MessageEntityItalic", "MessageEntityUnderline", "MessageEntityStrike",
        "MessageEntitySpoiler", "MessageEntityCode", "MessageEntityPre", "MessageEntityTextUrl",
        "MessageEntityUrl", "MessageEntityMention", "MessageEntityHashtag", "MessageEntityCashtag",
        "MessageEntityBotCommand", "MessageEntityEmail", "MessageEntityPhone", "MessageEntityBlockquote",
        "MessageEntityBlockquote", "MessageEntityCustomEmoji",
    ]
    # offsets and lengths are UTF-16 units in both APIs: carried over unchanged
    assert [(e.offset, e.length) for e in converted] == [(d["offset"], d["length"]) for d in ALL_ENTITIES]
    pre, link, quote, expandable, emoji = converted[6], converted[7], converted[15], converted[16], converted[17]
    assert pre.language == "python"
    assert link.url == "https://example.org"
    assert not quote.collapsed and expandable.collapsed is True
    assert emoji.document_id == 5368324170671202286


def test_entities_that_cannot_be_sent_are_dropped() -> None:
    assert to_telethon_entity({"type": "text_mention", "offset": 0, "length": 3, "user": {"id": 5}}) is None
    assert to_telethon_entity({"type": "something_new", "offset": 0, "length": 3}) is None
    assert to_telethon_entity({"type": "bold", "offset": 0, "length": 0}) is None
    pre = to_telethon_entity({"type": "pre", "offset": 0, "length": 2})
    assert pre is not None and pre.language == ""  # no language is fine


def test_input_peer_from_kind() -> None:
    assert input_peer(GroupRef(5, 0, "group")) == types.InputPeerChat(5)
    assert input_peer(GroupRef(6, 66, "supergroup")) == types.InputPeerChannel(6, 66)
    assert input_peer(GroupRef(7, 77, "channel")) == types.InputPeerChannel(7, 77)


async def test_send_text_with_entities(gateway: TelethonGateway, world: FakeTelegram) -> None:
    text = "😀 bold *not markdown*"
    message = OutgoingMessage(text=text, entities=[{"type": "bold", "offset": 3, "length": 4}])
    message_id = await gateway.send_message(AccountRef(1, "fake:k1:2:1"), GroupRef(5, 55, "supergroup"), message)
    (sent,) = world.sent
    assert message_id == 101
    assert sent["peer"] == types.InputPeerChannel(5, 55)
    assert sent["text"] == text
    assert sent["parse_mode"] is None  # the text is literal
    assert sent["formatting_entities"] == [types.MessageEntityBold(3, 4)]


@pytest.mark.parametrize(
    ("kind", "mime", "expected_media", "expected_attributes"),
    [
        ("photo", "image/jpeg", types.InputMediaUploadedPhoto, set()),
        ("video", "video/mp4", types.InputMediaUploadedDocument,
         {types.DocumentAttributeVideo, types.DocumentAttributeFilename}),
        ("animation", "video/mp4", types.InputMediaUploadedDocument,
         {types.DocumentAttributeAnimated, types.DocumentAttributeVideo, types.DocumentAttributeFilename}),
        ("document", "application/pdf", types.InputMediaUploadedDocument, {types.DocumentAttributeFilename}),
    ],
)
async def test_send_media_with_caption(
    gateway: TelethonGateway, world: FakeTelegram, kind: Any, mime: str, expected_media: Any,
    expected_attributes: set[type],
) -> None:
    media = Media(kind=kind, data=b"\x00binary", filename=f"file.{kind}", mime_type=mime)
    message = OutgoingMessage(text="caption", entities=[{"type": "italic", "offset": 0, "length": 3}], media=media)
    message_id = await gateway.send_message(AccountRef(1, "fake:k1:2:1"), GroupRef(5, 0, "group"), message)
    upload, sent = world.sent
    assert upload == {"upload": b"\x00binary", "file_name": f"file.{kind}"}
    assert message_id == 102
    assert sent["peer"] == types.InputPeerChat(5)
    assert sent["caption"] == "caption" and sent["parse_mode"] is None
    assert sent["formatting_entities"] == [types.MessageEntityItalic(0, 3)]
    sent_media = sent["file"]
    assert type(sent_media) is expected_media
    assert sent_media.file.name == f"file.{kind}"
    if expected_media is types.InputMediaUploadedDocument:
        assert {type(a) for a in sent_media.attributes} == expected_attributes
        assert sent_media.mime_type == mime
        assert bool(sent_media.force_file) == (kind == "document")


def test_gif_animation_keeps_its_mime_type() -> None:
    media = input_media(Media(kind="animation", data=b"GIF89a", filename="a.gif", mime_type="image/gif"), None)
    assert media.mime_type == "image/gif"


async def test_empty_text_is_rejected_before_any_request(gateway: TelethonGateway, world: FakeTelegram) -> None:
    from domain.errors import MessageRejected

    with pytest.raises(MessageRejected) as info:
        await gateway.send_message(AccountRef(1, "fake:k1:2:1"), GroupRef(5, 0, "group"), OutgoingMessage("  "))
    assert info.value.code == "MESSAGE_EMPTY"
    assert world.clients == []


async def test_send_flood_wait_keeps_the_hint(gateway: TelethonGateway, world: FakeTelegram) -> None:
    world.fail("send_message", errors.SlowModeWaitError(request=None, capture=25))
    with pytest.raises(FloodWait) as info:
        await gateway.send_message(AccountRef(1, "fake:k1:2:1"), GroupRef(5, 0, "group"), OutgoingMessage("x"))
    assert (info.value.seconds, info.value.code, info.value.is_slow_mode) == (25, "SLOWMODE_WAIT", True)
    assert 1 in gateway.pool  # a flood wait does not cost the connection


async def test_dead_session_on_send_evicts_the_client(gateway: TelethonGateway, world: FakeTelegram) -> None:
    world.fail("send_message", errors.AuthKeyUnregisteredError(request=None))
    with pytest.raises(SessionDead):
        await gateway.send_message(AccountRef(1, "fake:k1:2:1"), GroupRef(5, 0, "group"), OutgoingMessage("x"))
    assert 1 not in gateway.pool
    assert world.clients[0].disconnects == 1


# --- log out and close --------------------------------------------------------------------------


async def test_log_out(gateway: TelethonGateway, world: FakeTelegram) -> None:
    account = AccountRef(1, "fake:k1:2:1")
    await gateway.send_message(account, GroupRef(5, 0, "group"), OutgoingMessage("x"))
    await gateway.log_out(account)
    client = world.clients[0]
    assert isinstance(client.requests[-1], functions.auth.LogOutRequest)
    assert 1 not in gateway.pool and client.disconnects == 1


async def test_log_out_of_an_already_dead_session_is_fine(gateway: TelethonGateway, world: FakeTelegram) -> None:
    world.fail("LogOutRequest", errors.AuthKeyUnregisteredError(request=None))
    await gateway.log_out(AccountRef(1, "fake:k1:2:1"))
    assert 1 not in gateway.pool


async def test_log_out_network_failure_is_reported(gateway: TelethonGateway, world: FakeTelegram) -> None:
    world.fail("connect", OSError("unreachable"))
    with pytest.raises(TransientError):
        await gateway.log_out(AccountRef(1, "fake:k1:2:1"))


async def test_close_disconnects_every_client(world: FakeTelegram) -> None:
    gateway = TelethonGateway(_settings(pool_size=10), factory=world.factory)
    for account_id in (1, 2, 3):
        await gateway.send_message(AccountRef(account_id, f"fake:k{account_id}:2:1"), GroupRef(5, 0, "group"),
                                   OutgoingMessage("x"))
    await gateway.close()
    assert [c.disconnects for c in world.clients] == [1, 1, 1]
    assert len(gateway.pool) == 0


# --- pool ---------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _account(account_id: int, session: str | None = None) -> AccountRef:
    return AccountRef(account_id, session or f"fake:k{account_id}:2:1")


async def test_pool_keeps_at_most_n_clients_least_recently_used_out(world: FakeTelegram) -> None:
    clock = Clock()
    pool = ClientPool(world.factory, max_size=2, idle_timeout=3600, clock=clock)
    for account_id in (1, 2):
        async with pool.lease(_account(account_id)):
            clock.now += 1
    async with pool.lease(_account(1)):  # 1 is now the most recently used
        clock.now += 1
    async with pool.lease(_account(3)):
        pass
    assert sorted(k for k in (1, 2, 3) if k in pool) == [1, 3]
    first, second, third = world.clients
    assert (first.disconnects, second.disconnects, third.disconnects) == (0, 1, 0)
    await pool.close()


async def test_pool_never_evicts_a_client_in_use(world: FakeTelegram) -> None:
    pool = ClientPool(world.factory, max_size=1, idle_timeout=3600)
    async with pool.lease(_account(1)) as first, pool.lease(_account(2)) as second:
        assert first.is_connected() and second.is_connected()
        assert len(pool) == 2  # over the bound while both are leased
    async with pool.lease(_account(3)):
        pass
    assert len(pool) == 1 and 3 in pool
    await pool.close()


async def test_pool_one_client_per_account_under_concurrency(world: FakeTelegram) -> None:
    world.connect_delay = 0.02
    pool = ClientPool(world.factory, max_size=10, idle_timeout=3600)

    async def use(account_id: int) -> Any:
        async with pool.lease(_account(account_id)) as client:
            await asyncio.sleep(0)
            return client

    clients = await asyncio.gather(*(use(1) for _ in range(10)), *(use(2) for _ in range(5)))
    assert len({id(c) for c in clients[:10]}) == 1
    assert len({id(c) for c in clients[10:]}) == 1
    assert len(world.clients) == 2
    assert [c.connects for c in world.clients] == [1, 1]
    await pool.close()


async def test_pool_disconnects_idle_clients(world: FakeTelegram) -> None:
    clock = Clock()
    pool = ClientPool(world.factory, max_size=10, idle_timeout=300, clock=clock)
    async with pool.lease(_account(1)):
        pass
    clock.now += 200
    async with pool.lease(_account(2)):
        pass
    clock.now += 150  # account 1 idle 350 s, account 2 idle 150 s
    assert await pool.reap_idle() == 1
    assert 1 not in pool and 2 in pool
    assert [c.disconnects for c in world.clients] == [1, 0]
    await pool.close()


async def test_pool_reaper_runs_by_itself(world: FakeTelegram) -> None:
    pool = ClientPool(world.factory, max_size=10, idle_timeout=0.05)
    async with pool.lease(_account(1)):
        pass
    for _ in range(100):
        if 1 not in pool:
            break
        await asyncio.sleep(0.01)
    assert 1 not in pool
    assert world.clients[0].disconnects == 1
    await pool.close()


async def test_pool_replaces_the_client_when_the_session_changes(world: FakeTelegram) -> None:
    pool = ClientPool(world.factory, max_size=10, idle_timeout=3600)
    async with pool.lease(_account(1, "fake:old:2:1")) as old:
        pass
    async with pool.lease(_account(1, "fake:new:2:1")) as new:
        assert new is not old and new.session.key == "new"
    assert old.disconnects == 1
    await pool.close()


async def test_pool_reconnects_a_dropped_client(world: FakeTelegram) -> None:
    pool = ClientPool(world.factory, max_size=10, idle_timeout=3600)
    async with pool.lease(_account(1)) as client:
        pass
    client.connected = False  # e.g. the network dropped and Telethon gave up
    async with pool.lease(_account(1)) as again:
        assert again is client and client.is_connected()
    assert client.connects == 2
    await pool.close()


async def test_pool_connects_again_when_the_server_closed_the_connection(world: FakeTelegram) -> None:
    pool = ClientPool(world.factory, max_size=10, idle_timeout=3600)
    world.fail("connect", asyncio.IncompleteReadError(b"", 8))
    async with pool.lease(_account(1)) as client:
        assert client.is_connected()
    assert (client.connects, client.disconnects) == (1, 1)  # the cut attempt was closed first
    await pool.close()


async def test_connect_gives_up_after_its_attempts_and_retries_nothing_else(world: FakeTelegram) -> None:
    client = world.factory("")
    world.fail("connect", *(asyncio.IncompleteReadError(b"", 8) for _ in range(CONNECT_ATTEMPTS)))
    with pytest.raises(asyncio.IncompleteReadError):
        await connect(client)
    assert client.disconnects == CONNECT_ATTEMPTS and not world.failures["connect"]

    world.fail("connect", ConnectionRefusedError("refused"), asyncio.IncompleteReadError(b"", 8))
    with pytest.raises(ConnectionRefusedError):  # Telethon already retried those itself
        await connect(client)
    assert len(world.failures["connect"]) == 1


async def test_pool_failed_connect_leaves_nothing_behind(world: FakeTelegram) -> None:
    pool = ClientPool(world.factory, max_size=10, idle_timeout=3600)
    world.fail("connect", ConnectionError("down"))
    with pytest.raises(ConnectionError):
        async with pool.lease(_account(1)):
            pass
    assert 1 not in pool
    async with pool.lease(_account(1)):
        pass
    assert 1 in pool
    await pool.close()


# --- Telethon's own client on top of a stubbed RPC layer ------------------------------------------


class StubbedRpcClient(TelegramClient):  # type: ignore[misc]  # Telethon ships no types
    """The real ``TelegramClient`` (its send_message, send_file, sign_in ...) with no network below.

    Only the RPC entry point is replaced, so these tests check that the adapter drives Telethon's
    high-level methods the way it means to (literal text, explicit entities, the hash it got).
    """

    def __init__(self, session: str) -> None:
        super().__init__(StringSession(session or None), 12345, "0" * 32, flood_sleep_threshold=0,
                         receive_updates=False)
        self.rpc: list[Any] = []

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        return None

    def is_connected(self) -> bool:
        return True

    async def __call__(self, request: Any, ordered: bool = False, flood_sleep_threshold: Any = None) -> Any:
        self.rpc.append(request)
        now = datetime.datetime.now(datetime.UTC)
        if isinstance(request, functions.users.GetUsersRequest):
            raise errors.AuthKeyUnregisteredError(request=request)  # not signed in yet
        if isinstance(request, functions.auth.SendCodeRequest):
            return types.auth.SentCode(types.auth.SentCodeTypeApp(length=5), phone_code_hash="H1")
        if isinstance(request, functions.auth.SignInRequest):
            if request.phone_code_hash != "H1":
                raise errors.PhoneCodeExpiredError(request=request)
            return types.auth.Authorization(user=types.User(id=9, first_name="Bo"))
        if isinstance(request, functions.updates.GetStateRequest):
            return types.updates.State(pts=1, qts=1, date=now, seq=1, unread_count=0)
        if isinstance(request, functions.updates.GetDifferenceRequest):
            return types.updates.DifferenceEmpty(date=now, seq=1)
        if isinstance(request, functions.upload.SaveFilePartRequest):
            return True
        if isinstance(request, functions.messages.GetForumTopicsRequest):
            return _topics_page(request, now)
        if isinstance(request, functions.messages.SendMessageRequest):
            return types.UpdateShortSentMessage(id=555, pts=1, pts_count=1, date=now)
        if isinstance(request, functions.messages.SendMediaRequest):
            message = types.Message(id=777, peer_id=types.PeerChannel(5), date=now, message=request.message)
            return types.Updates(
                updates=[types.UpdateMessageID(id=777, random_id=request.random_id),
                         types.UpdateNewChannelMessage(message, pts=1, pts_count=1)],
                users=[], chats=[], date=now, seq=0,
            )
        raise AssertionError(f"unexpected request {request!r}")


FORUM_TOPICS = 130  # General + 129: two pages of messages.getForumTopics


def _topics_page(request: Any, now: datetime.datetime) -> Any:
    """Topics newest first (General, id 1, first), 100 a page, after ``offset_topic``; every other
    topic is closed, and one deleted topic (``forumTopicDeleted``) is listed as Telegram may."""
    ids = [1, *range(10 + FORUM_TOPICS - 1, 10, -1)]
    start = ids.index(request.offset_topic) + 1 if request.offset_topic else 0
    page = ids[start:start + request.limit]
    topics: list[Any] = [
        types.ForumTopic(id=i, date=now, peer=types.PeerChannel(5), title=f"T{i}", icon_color=0, top_message=i + 1000,
                         read_inbox_max_id=0, read_outbox_max_id=0, unread_count=0, unread_mentions_count=0,
                         unread_reactions_count=0, unread_poll_votes_count=0, from_id=types.PeerUser(9),
                         notify_settings=types.PeerNotifySettings(), closed=i % 2 == 0 or None)
        for i in page]
    if not request.offset_topic:
        topics.insert(1, types.ForumTopicDeleted(id=999))
    messages = [types.Message(id=i + 1000, peer_id=types.PeerChannel(5), date=now, message="") for i in page]
    return types.messages.ForumTopics(count=FORUM_TOPICS, topics=topics, messages=messages, chats=[], users=[],
                                      pts=1)


@pytest.fixture
def stubbed_clients() -> list[StubbedRpcClient]:
    return []


@pytest.fixture
async def stubbed_gateway(stubbed_clients: list[StubbedRpcClient]) -> AsyncIterator[TelethonGateway]:
    def factory(session: str) -> StubbedRpcClient:
        client = StubbedRpcClient(session)
        stubbed_clients.append(client)
        return client

    gw = TelethonGateway(_settings(), factory=factory)
    yield gw
    await gw.close()


async def test_telethon_login_requests(stubbed_gateway: TelethonGateway,
                                       stubbed_clients: list[StubbedRpcClient]) -> None:
    state = await stubbed_gateway.send_code("login_1", PHONE)
    assert state.phone_code_hash == "H1"
    signed = await stubbed_gateway.sign_in(state, CODE)
    assert (signed.tg_user_id, signed.first_name) == (9, "Bo")
    sign_in = next(r for r in stubbed_clients[1].rpc if isinstance(r, functions.auth.SignInRequest))
    assert (sign_in.phone_number, sign_in.phone_code, sign_in.phone_code_hash) == (PHONE[1:], CODE, "H1")


async def test_telethon_sends_literal_text_with_our_entities(
    stubbed_gateway: TelethonGateway, stubbed_clients: list[StubbedRpcClient]
) -> None:
    message = OutgoingMessage("hi **not bold** [x](y)", [{"type": "bold", "offset": 0, "length": 2}])
    message_id = await stubbed_gateway.send_message(AccountRef(1, ""), GroupRef(5, 55, "supergroup"), message)
    request = stubbed_clients[0].rpc[-1]
    assert message_id == 555
    assert request.message == "hi **not bold** [x](y)"
    assert request.entities == [types.MessageEntityBold(0, 2)]
    assert request.peer == types.InputPeerChannel(5, 55)


async def test_telethon_sends_media_with_caption(
    stubbed_gateway: TelethonGateway, stubbed_clients: list[StubbedRpcClient]
) -> None:
    media = Media(kind="video", data=b"\x00" * 64, filename="clip.mp4", mime_type="video/mp4")
    message = OutgoingMessage("see __this__", [{"type": "underline", "offset": 4, "length": 8}], media)
    message_id = await stubbed_gateway.send_message(AccountRef(1, ""), GroupRef(5, 55, "supergroup"), message)
    request = stubbed_clients[0].rpc[-1]
    assert message_id == 777
    assert isinstance(request, functions.messages.SendMediaRequest)
    assert request.message == "see __this__"
    assert request.entities == [types.MessageEntityUnderline(4, 8)]
    assert request.media.file.name == "clip.mp4" and request.media.mime_type == "video/mp4"
    assert any(isinstance(r, functions.upload.SaveFilePartRequest) for r in stubbed_clients[0].rpc)


async def test_telethon_lists_forum_topics_page_by_page(
    stubbed_gateway: TelethonGateway, stubbed_clients: list[StubbedRpcClient]
) -> None:
    topics = await stubbed_gateway.list_topics(AccountRef(1, ""), GroupRef(5, 55, "supergroup"))

    assert len(topics) == FORUM_TOPICS and len({t.topic_id for t in topics}) == FORUM_TOPICS
    assert topics[:3] == [ForumTopic(1, "T1"), ForumTopic(139, "T139"), ForumTopic(138, "T138", closed=True)]
    first, second = [r for r in stubbed_clients[0].rpc if isinstance(r, functions.messages.GetForumTopicsRequest)]
    assert first.peer == second.peer == types.InputPeerChannel(5, 55)
    assert (first.offset_topic, first.offset_id, first.limit) == (0, 0, 100)
    # the next page after the last topic: its id, its top message and that message's date
    last = topics[99]
    assert (second.offset_topic, second.offset_id) == (last.topic_id, last.topic_id + 1000)
    assert second.offset_date is not None


async def test_telethon_posts_into_a_topic_by_replying_to_its_id(
    stubbed_gateway: TelethonGateway, stubbed_clients: list[StubbedRpcClient]
) -> None:
    account = AccountRef(1, "")
    await stubbed_gateway.send_message(account, GroupRef(5, 55, "supergroup", topic_id=42), OutgoingMessage("hi"))
    await stubbed_gateway.send_message(account, GroupRef(5, 55, "supergroup", topic_id=1), OutgoingMessage("hi"))
    await stubbed_gateway.send_message(account, GroupRef(5, 55, "supergroup"), OutgoingMessage("hi"))
    media = Media(kind="document", data=b"%PDF" + b"\x00" * 60, filename="a.pdf", mime_type="application/pdf")
    await stubbed_gateway.send_message(account, GroupRef(5, 55, "supergroup", topic_id=42), OutgoingMessage("f", media=media))

    sends = [r for r in stubbed_clients[0].rpc
             if isinstance(r, functions.messages.SendMessageRequest | functions.messages.SendMediaRequest)]
    # Telegram's forum docs: reply_to_msg_id = the topic's id; top_msg_id only when replying to another
    # message inside a topic; the General topic takes no reply_to at all
    assert sends[0].reply_to == types.InputReplyToMessage(reply_to_msg_id=42)
    assert sends[0].reply_to.top_msg_id is None
    assert sends[1].reply_to is None and sends[2].reply_to is None
    assert sends[3].reply_to == types.InputReplyToMessage(reply_to_msg_id=42)
