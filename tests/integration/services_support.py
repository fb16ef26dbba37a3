"""A fake account gateway, a settable clock and the services wired to a test database.

Shared by tests/integration/test_services_*.py.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from accounts.crypto import SessionCipher, generate_key
from accounts.gateway import (
    AccountRef,
    ForumTopic,
    GroupInfo,
    GroupRef,
    LoginState,
    OutgoingMessage,
    SignedIn,
)
from config.settings import BotSettings, Settings
from domain.errors import CodeExpired, CodeInvalid, GatewayError, PasswordInvalid, PasswordNeeded
from services.access import AccessService
from services.admin import AdminService
from services.campaigns import CampaignService
from services.groups import GroupService
from services.login import LoginService
from services.messages import MessageService
from services.notifications import NotificationService
from services.status import StatusService
from storage.db import Database

ADMIN_ID = 1
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@dataclass
class FakeGateway:
    """Implements the AccountGateway protocol in memory; records what the services asked."""

    code: str = "12345"
    password: str | None = None
    tg_user_id: int = 777000
    first_name: str = "Ada"
    groups: list[GroupInfo] = field(default_factory=list)
    send_error: GatewayError | None = None
    sign_in_error: GatewayError | None = None
    list_error: GatewayError | None = None
    log_out_error: Exception | None = None
    expired_hashes: set[str] = field(default_factory=set)
    durable_sessions: list[str] = field(default_factory=list)
    sent_codes: list[tuple[str, str]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    logged_out: list[str] = field(default_factory=list)
    listed_with: list[str] = field(default_factory=list)
    topics: dict[int, list[ForumTopic]] = field(default_factory=dict)  # forum peer id -> its topics
    topics_error: GatewayError | None = None
    counter: int = 0

    async def send_code(self, name: str, phone: str) -> LoginState:
        self.sent_codes.append((name, phone))
        if self.send_error is not None:
            raise self.send_error
        self.counter += 1
        return LoginState(name=name, phone=phone, session=f"temp-{secrets.token_hex(8)}",
                          phone_code_hash=f"hash-{self.counter}")

    async def resend_code(self, state: LoginState) -> LoginState:
        if state.phone_code_hash in self.expired_hashes:
            raise CodeExpired("PHONE_CODE_EXPIRED")
        self.counter += 1
        return state.with_code(state.session, f"hash-{self.counter}")

    async def sign_in(self, state: LoginState, code: str) -> SignedIn:
        if self.sign_in_error is not None:
            raise self.sign_in_error
        if state.phone_code_hash in self.expired_hashes:
            raise CodeExpired("PHONE_CODE_EXPIRED")
        if code != self.code:
            raise CodeInvalid("PHONE_CODE_INVALID")
        if self.password is not None:
            raise PasswordNeeded("SESSION_PASSWORD_NEEDED")
        return self._signed(state)

    async def check_password(self, state: LoginState, password: str) -> SignedIn:
        if password != self.password:
            raise PasswordInvalid("PASSWORD_HASH_INVALID")
        return self._signed(state)

    def _signed(self, state: LoginState) -> SignedIn:
        session = "1Aa" + secrets.token_urlsafe(180)  # shaped like a Telethon StringSession
        self.durable_sessions.append(session)
        return SignedIn(session=session, tg_user_id=self.tg_user_id, first_name=self.first_name,
                        phone=state.phone.lstrip("+"))

    async def cancel_login(self, state: LoginState) -> None:
        self.cancelled.append(state.name)

    async def list_groups(self, account: AccountRef) -> list[GroupInfo]:
        self.listed_with.append(account.session)
        if self.list_error is not None:
            raise self.list_error
        return list(self.groups)

    async def list_topics(self, account: AccountRef, group: GroupRef) -> list[ForumTopic]:
        if self.topics_error is not None:
            raise self.topics_error
        return list(self.topics.get(group.peer_id, []))

    async def send_message(self, account: AccountRef, group: GroupRef, message: OutgoingMessage) -> int:
        raise AssertionError("the services never send")

    async def log_out(self, account: AccountRef) -> None:
        self.logged_out.append(account.session)
        if self.log_out_error is not None:
            raise self.log_out_error

    async def close(self) -> None:
        return None


def group(peer_id: int, title: str, can_send: bool = True, kind: str = "supergroup") -> GroupInfo:
    return GroupInfo(peer_id=peer_id, access_hash=peer_id * 10, kind=kind, title=title,  # type: ignore[arg-type]
                     can_send=can_send)


@dataclass
class Env:
    db: Database
    pool: asyncpg.Pool
    settings: Settings
    clock: Clock
    gateway: FakeGateway
    cipher: SessionCipher
    access: AccessService
    login: LoginService
    groups: GroupService
    messages: MessageService
    campaigns: CampaignService
    status: StatusService
    notifications: NotificationService
    admin: AdminService

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.pool.acquire() as conn:
            return await conn.fetchval(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        async with self.pool.acquire() as conn:
            return await conn.fetchrow(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> Any:
        async with self.pool.acquire() as conn:
            return await conn.fetch(sql, *args)

    async def execute(self, sql: str, *args: Any) -> Any:
        async with self.pool.acquire() as conn:
            return await conn.execute(sql, *args)

    async def set_mode(self, mode: str) -> None:
        await self.execute("UPDATE settings SET value = to_jsonb($1::text) WHERE key = 'access_mode'", mode)

    async def connect(self, user_id: int, phone: str = "+15550123", tg_user_id: int | None = None) -> None:
        """Log the user in through the login service (the fake gateway accepts its code), each bot
        user with a Telegram account of their own (one account can't be connected by two)."""
        self.gateway.tg_user_id = tg_user_id if tg_user_id is not None else 10_000_000 + user_id
        step = await self.login.send_code(user_id, phone)
        assert step.attempt is not None, step
        done = await self.login.submit_code(user_id, step.attempt, self.gateway.code)
        assert done.outcome == "connected", done

    async def ready(self, user_id: int, groups: int = 2, interval: int = 3600) -> None:
        """Everything start needs: account, imported and selected groups, message, interval."""
        from services.messages import MessageDraft

        await self.connect(user_id)
        self.gateway.groups = [group(10_000 * user_id + i, f"G{i:02d}") for i in range(groups)]
        await self.groups.import_groups(user_id)
        page = await self.groups.page(user_id, 0)
        for item in page.items:
            await self.groups.toggle(user_id, item.group_id)
        await self.messages.save(user_id, MessageDraft("hello"))
        result = await self.campaigns.set_interval(user_id, interval)
        assert result.outcome == "ok"


def make_env(pool: asyncpg.Pool, **bot: Any) -> Env:
    settings = Settings(bot=replace(BotSettings(admin_ids=(ADMIN_ID,)), **bot))
    db = Database(pool)
    clock = Clock()
    gateway = FakeGateway()
    cipher = SessionCipher(generate_key())
    access = AccessService(db, settings, clock)
    login = LoginService(db, gateway, cipher, settings, clock)
    return Env(
        db=db, pool=pool, settings=settings, clock=clock, gateway=gateway, cipher=cipher,
        access=access,
        login=login,
        groups=GroupService(db, gateway, cipher, settings, clock),
        messages=MessageService(db, clock),
        campaigns=CampaignService(db, settings, access, clock),
        status=StatusService(db, settings, clock),
        notifications=NotificationService(db, clock),
        admin=AdminService(db, settings, login, clock),
    )


async def add_round(env: Env, user_id: int, planned_at: datetime, statuses: list[str],
                    finished: bool = True) -> int:
    """Write a round and its attempts as the engine would (one attempt per selected group, in order)."""
    message_id = await env.fetchval("SELECT max(message_id) FROM messages WHERE user_id = $1", user_id)
    round_id = await env.fetchval(
        """INSERT INTO rounds (user_id, message_id, planned_at, started_at, finished_at, status)
           VALUES ($1, $2, $3, $3, $4, $5) RETURNING round_id""",
        user_id, message_id, planned_at, planned_at if finished else None, "done" if finished else "running",
    )
    rows = await env.fetch(
        "SELECT group_id, peer_id, kind FROM groups WHERE user_id = $1 ORDER BY title, group_id", user_id
    )
    assert len(rows) >= len(statuses)
    for row, status in zip(rows, statuses, strict=False):
        await env.execute(
            """INSERT INTO attempts (round_id, group_id, peer_id, kind, status, error_code, finished_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            round_id, row["group_id"], row["peer_id"], row["kind"], status,
            "CHAT_WRITE_FORBIDDEN" if status == "failed" else "",
            planned_at if status in ("sent", "failed", "skipped", "unknown") else None,
        )
    await env.execute("UPDATE campaigns SET last_round_id = $2 WHERE user_id = $1", user_id, round_id)
    return int(round_id)
