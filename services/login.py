"""Connecting a Telegram account (U2): phone, code, 2FA password, logout.

Every step returns a ``LoginStep`` instead of raising Telegram's errors, so the bot maps one
``outcome`` to one reply. The login in progress is a ``LoginAttempt``: the bot keeps
``attempt.to_dict()`` in its FSM data (it holds the temporary session, so the FSM storage must
not be logged) and passes ``LoginAttempt.from_dict(...)`` back to the next step. A step whose
``attempt`` is ``None`` has ended the login (the temporary session is already cancelled).

Wrong codes and wrong passwords are counted in the attempt (``settings.bot.login_max_attempts``,
default 5); the fifth wrong one cancels the login (outcome ``too_many``). A login older than
``settings.bot.login_ttl`` ends with ``expired`` on its next step.

Only after ``sign_in``/``check_password`` succeeds is the durable session encrypted and stored;
codes, passwords and sessions are never logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from accounts.crypto import SessionDecryptError
from accounts.gateway import AccountGateway, AccountRef, LoginState, SignedIn
from config.settings import Settings
from domain import rules
from domain.errors import (
    CodeExpired,
    CodeInvalid,
    FloodWait,
    GatewayError,
    LoginBlocked,
    PasswordInvalid,
    PasswordNeeded,
    PhoneBanned,
    PhoneInvalid,
    ResendUnavailable,
    SessionDead,
)
from domain.models import AccountRecord, Clock, utc_now
from metrics import LOGINS
from services.engine import WIDEN_FACTOR
from services.locks import LOCK_WAIT, AccountLock, Busy, holding
from storage.db import Database
from storage.repositories import accounts, campaigns, telegram_accounts, users

log = logging.getLogger(__name__)

LoginOutcome = Literal[
    # send_code / resend
    "code_sent",  # U2.5 / U2.17 -> login_code (keypad)
    "bad_phone",  # U2.3: not a phone after normalising; attempt None, stay in login_phone
    "phone_invalid",  # U2.6: Telegram rejected the number; stay in login_phone
    "phone_banned",  # U2.7 -> idle
    "at_limit",  # U8.3: ACCOUNTS_PER_USER accounts are connected already -> idle (``limit`` set)
    "login_blocked",  # Telegram sent no usable code (set up a login email / payment required) -> idle
    "resend_unavailable",  # acc:resend: SEND_CODE_UNAVAILABLE, no other way left; stay in login_code
    # submit_code
    "bad_code",  # U2.10: not 4-8 digits; attempt unchanged, stay in login_code
    "wrong_code",  # U2.12: attempts_left > 0, stay in login_code
    "code_expired",  # U2.13: offer acc:resend, stay in login_code
    "password_needed",  # U2.14 -> login_password
    # submit_password
    "wrong_password",  # U2.16: attempts_left > 0, stay in login_password
    # any step
    "connected",  # U2.11 / U2.15 -> idle, ``account`` is set (now the current account)
    "reconnected",  # U8.4: that Telegram account was connected by this user: session replaced -> idle
    "too_many",  # the 5th wrong code/password: login cancelled -> idle
    "expired",  # U2.18: older than the login TTL -> idle, offer acc:login
    "flood",  # U2.8: ``retry_after`` seconds -> idle
    "unreachable",  # U2.9: Telegram unreachable; idle after send_code, otherwise the step may be retried
    "session_dead",  # Telegram dropped the temporary session -> idle, offer acc:login
    "account_taken",  # another bot user has this Telegram account connected: refused, new session logged out
]


class SessionCipherPort(Protocol):
    """What the services need from ``accounts.crypto.SessionCipher``."""

    def encrypt(self, plaintext: str) -> bytes: ...

    def decrypt(self, token: bytes) -> str: ...


class SessionServiceBase:
    """The ports of a service that uses an account's Telegram session outside the worker (login,
    group import), and the per-user lock it takes so that it never does so beside a broadcast batch."""

    def __init__(
        self,
        db: Database,
        gateway: AccountGateway,
        cipher: SessionCipherPort,
        settings: Settings,
        now: Clock = utc_now,
        *,
        lock: AccountLock | None = None,
        lock_wait: float = LOCK_WAIT,
    ) -> None:
        """``lock`` is the per-user lock the worker sends under; None (no locking) is for unit tests only."""
        self.db = db
        self.gateway = gateway
        self.cipher = cipher
        self.settings = settings
        self.now = now
        self.lock = lock
        self.lock_wait = lock_wait


@dataclass(frozen=True)
class LoginAttempt:
    """A login in progress, kept by the bot in its FSM data between steps.

    ``started_at`` is a POSIX timestamp from the service's clock; the failure counters carry the
    wrong-code/wrong-password counting across steps.
    """

    state: LoginState
    started_at: float
    step: Literal["code", "password"] = "code"
    code_failures: int = 0
    password_failures: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.to_dict(),
            "started_at": self.started_at,
            "step": self.step,
            "code_failures": self.code_failures,
            "password_failures": self.password_failures,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoginAttempt:
        step: Literal["code", "password"] = "password" if data.get("step") == "password" else "code"
        return cls(
            state=LoginState.from_dict(dict(data["state"])),
            started_at=float(data["started_at"]),
            step=step,
            code_failures=int(data.get("code_failures", 0)),
            password_failures=int(data.get("password_failures", 0)),
        )


@dataclass(frozen=True)
class AccountView:
    """The connected (or last known) account as the bot shows it (U2.11, U2.19)."""

    user_id: int
    connected: bool
    phone_masked: str
    first_name: str
    tg_user_id: int
    disconnected_reason: str = ""
    account_id: int = 0


@dataclass(frozen=True)
class LoginStep:
    """The result of one login step; see ``LoginOutcome`` for the reply and the next state."""

    outcome: LoginOutcome
    attempt: LoginAttempt | None = None  # keep in FSM when set; None = the login is over
    attempts_left: int = 0  # for wrong_code / wrong_password
    account: AccountView | None = None  # for connected
    retry_after: int = 0  # seconds, for flood
    reason: str = ""  # for login_blocked: setup_email_required | payment_required
    limit: int = 0  # for at_limit: ACCOUNTS_PER_USER


class LoginService(SessionServiceBase):
    """U2: send the code, check it (and the 2FA password), store the session encrypted, log out."""

    @staticmethod
    def session_name(user_id: int) -> str:
        """The temporary session's name during a login: ``login_<userId>``."""
        return f"login_{user_id}"

    def is_expired(self, attempt: LoginAttempt) -> bool:
        """True when the login is older than ``settings.bot.login_ttl`` (U2.18)."""
        return self.now().timestamp() - attempt.started_at > self.settings.bot.login_ttl

    @property
    def max_attempts(self) -> int:
        return max(1, self.settings.bot.login_max_attempts)

    async def send_code(self, user_id: int, raw_phone: str) -> LoginStep:
        """U2.3-U2.9: normalise the phone and ask Telegram for a code.

        Outcomes: code_sent (with ``attempt``), bad_phone, phone_invalid, phone_banned, flood,
        unreachable, at_limit (U8.3).
        """
        phone = rules.normalize_phone(raw_phone)
        if phone is None:
            return self._count(LoginStep("bad_phone"))
        if await self.at_limit(user_id):
            return self._count(LoginStep("at_limit", limit=self.accounts_limit))
        name = self.session_name(user_id)
        try:
            state = await self.gateway.send_code(name, phone)
        except GatewayError as exc:
            # the temporary session may exist already on the gateway's side
            await self._forget(LoginState(name=name, phone=phone, session="", phone_code_hash=""))
            return self._count(self._failed(user_id, exc, None))
        log.info("login code sent user_id=%s", user_id)
        return self._count(LoginStep("code_sent", LoginAttempt(state, self.now().timestamp())))

    async def resend(self, user_id: int, attempt: LoginAttempt) -> LoginStep:
        """U2.17: a new code for the same login. Outcomes: code_sent, expired, flood, unreachable,
        phone_banned, session_dead."""
        if self.is_expired(attempt):
            return self._count(await self._end(LoginStep("expired"), attempt))
        try:
            try:
                state = await self.gateway.resend_code(attempt.state)
            except CodeExpired:
                # the old code hash is void: ask for a brand-new code on the same temporary session
                state = await self.gateway.send_code(attempt.state.name, attempt.state.phone)
        except ResendUnavailable:
            # the code already sent stays valid: the user can still type it
            return self._count(LoginStep("resend_unavailable", attempt))
        except GatewayError as exc:
            return self._count(await self._after_error(user_id, exc, attempt))
        return self._count(LoginStep("code_sent", replace(attempt, state=state, step="code")))

    async def submit_code(self, user_id: int, attempt: LoginAttempt, raw_code: str) -> LoginStep:
        """U2.10-U2.14. Outcomes: connected, bad_code, wrong_code, too_many, code_expired,
        password_needed, expired, flood, unreachable, phone_banned, session_dead."""
        if self.is_expired(attempt):
            return self._count(await self._end(LoginStep("expired"), attempt))
        code = rules.parse_code(raw_code)
        if code is None:
            left = self.max_attempts - attempt.code_failures
            return self._count(LoginStep("bad_code", attempt, attempts_left=left))
        try:
            signed = await self.gateway.sign_in(attempt.state, code)
        except PasswordNeeded:
            return self._count(LoginStep("password_needed", replace(attempt, step="password"),
                                         attempts_left=self.max_attempts - attempt.password_failures))
        except CodeInvalid:
            failures = attempt.code_failures + 1
            if failures >= self.max_attempts:
                return self._count(await self._end(LoginStep("too_many"), attempt))
            return self._count(LoginStep("wrong_code", replace(attempt, code_failures=failures),
                                         attempts_left=self.max_attempts - failures))
        except CodeExpired:
            return self._count(LoginStep("code_expired", attempt,
                                         attempts_left=self.max_attempts - attempt.code_failures))
        except GatewayError as exc:
            return self._count(await self._after_error(user_id, exc, attempt))
        return self._count(await self._complete(user_id, attempt, signed))

    async def submit_password(self, user_id: int, attempt: LoginAttempt, password: str) -> LoginStep:
        """U2.15-U2.16. Outcomes: connected, wrong_password, too_many, expired, flood, unreachable,
        phone_banned, session_dead."""
        if self.is_expired(attempt):
            return self._count(await self._end(LoginStep("expired"), attempt))
        try:
            signed = await self.gateway.check_password(attempt.state, password)
        except PasswordInvalid:
            failures = attempt.password_failures + 1
            if failures >= self.max_attempts:
                return self._count(await self._end(LoginStep("too_many"), attempt))
            return self._count(LoginStep("wrong_password", replace(attempt, password_failures=failures),
                                         attempts_left=self.max_attempts - failures))
        except GatewayError as exc:
            return self._count(await self._after_error(user_id, exc, attempt))
        return self._count(await self._complete(user_id, attempt, signed))

    async def cancel(self, attempt: LoginAttempt | None) -> None:
        """U2.21 and /cancel, /start: forget the temporary session (best effort, never raises)."""
        if attempt is None:
            return
        await self._forget(attempt.state)
        LOGINS.labels("cancelled").inc()

    async def account(self, user_id: int) -> AccountView | None:
        """The user's current account as a view (None when they never connected one)."""
        async with self.db.connection() as conn:
            record = await accounts.get(conn, user_id)
        return None if record is None else account_view(record)

    @property
    def accounts_limit(self) -> int:
        return max(1, self.settings.bot.accounts_per_user)

    async def at_limit(self, user_id: int) -> bool:
        """U8.3: the user has ``ACCOUNTS_PER_USER`` accounts connected: no other can be added."""
        async with self.db.connection() as conn:
            return await accounts.count_connected_of(conn, user_id) >= self.accounts_limit

    async def connected_accounts(self, user_id: int) -> list[AccountView]:
        """U8.1: the user's connected accounts, oldest first."""
        async with self.db.connection() as conn:
            return [account_view(r) for r in await accounts.connected_of(conn, user_id)]

    async def select(self, user_id: int, account_id: int) -> AccountView | None:
        """U8.2: ``account_id`` becomes the current account if it is one of the user's connected
        accounts; None (nothing changed) for a forged, foreign or disconnected one."""
        async with self.db.transaction() as conn:
            record = await accounts.get_owned(conn, user_id, account_id)
            if record is None or not record.connected:
                return None
            await accounts.set_current(conn, user_id, account_id)
        log.info("current account set user_id=%s account_id=%s", user_id, account_id)
        return account_view(record)

    async def owned(self, user_id: int, account_id: int) -> AccountView | None:
        """One of the user's connected accounts (None for a forged, foreign or disconnected id)."""
        async with self.db.connection() as conn:
            record = await accounts.get_owned(conn, user_id, account_id)
        return None if record is None or not record.connected else account_view(record)

    async def logout(self, user_id: int, reason: str = "logout", account_id: int | None = None) -> bool:
        """U2.20: stop the broadcast, log out at Telegram (best effort), delete the session.

        Acts on ``account_id`` (one of the user's) or on the current account; the user's other
        accounts stay connected, and when the current one goes another connected one becomes
        current (U8). Returns False when that account was not connected. The broadcast is stopped
        first, so a batch
        sending for the user stops before its next send and lets go of the per-user lock; the
        session is then deleted and logged out under that lock, never while a send uses it.
        Raises ``Busy`` when the lock is not free within ``logout_wait`` (the broadcast stays
        stopped and the account connected; calling again finishes the logout).
        """
        now = self.now()
        async with self.db.transaction() as conn:
            if account_id is None:
                record = await accounts.get(conn, user_id)
            else:
                record = await accounts.get_owned(conn, user_id, account_id)
            if record is None or not record.connected:
                return False
            account_id = record.account_id
            await campaigns.stop(conn, user_id, now, account_id=account_id)
        async with holding(self.lock, user_id, self.logout_wait):
            async with self.db.transaction() as conn:
                record = await accounts.get_owned(conn, user_id, account_id, for_update=True)
                if record is None or not record.connected:
                    return False
                ref = self._ref(record)
                # in case it was started again meanwhile
                await campaigns.stop(conn, user_id, now, account_id=account_id)
                await accounts.disconnect(conn, account_id, reason, now)
            # the network call happens after the commit: the session is gone here whatever Telegram says
            if ref is not None:
                try:
                    await self.gateway.log_out(ref)
                except Exception as exc:  # best effort by contract (U2.20)
                    log.warning("log_out at Telegram failed user_id=%s error=%s", user_id, type(exc).__name__)
        log.info("account disconnected user_id=%s account_id=%s reason=%s", user_id, account_id, reason)
        return True

    async def logout_every(self, user_id: int, reason: str) -> int:
        """Log every connected account of the user out (an admin's A2 logout); returns how many."""
        done = 0
        for view in await self.connected_accounts(user_id):
            done += await self.logout(user_id, reason, view.account_id)
        return done

    @property
    def logout_wait(self) -> float:
        """How long logout waits for the lock: a stopped batch may still be in its pacing wait
        (up to a widened gap) before it notices the stop, plus the usual ``lock_wait``."""
        return self.settings.engine.gap_max * WIDEN_FACTOR + 1.0 + self.lock_wait

    # --- internals ------------------------------------------------------------------------------

    def _ref(self, record: AccountRecord) -> AccountRef | None:
        if record.session_enc is None:
            return None
        try:
            return AccountRef(record.account_id, self.cipher.decrypt(record.session_enc))
        except SessionDecryptError:
            log.warning("stored session cannot be decrypted user_id=%s", record.user_id)
            return None

    async def _log_out_replaced(self, user_id: int, sealed: bytes | None) -> None:
        """U8.4: the replaced session ends at Telegram too (best effort), under the user's lock so that
        no batch that read it before the replacement is still sending on it."""
        if sealed is None:
            return
        try:
            old = AccountRef(0, self.cipher.decrypt(sealed))
        except SessionDecryptError:
            return
        try:
            async with holding(self.lock, user_id, self.logout_wait):
                await self._log_out_quietly(user_id, old)
        except Busy:
            log.warning("replaced session left to expire user_id=%s (account busy)", user_id)

    async def _complete(self, user_id: int, attempt: LoginAttempt, signed: SignedIn) -> LoginStep:
        now = self.now()
        sealed = self.cipher.encrypt(signed.session)
        phone = rules.normalize_phone(signed.phone) or attempt.state.phone
        connected: accounts.Connected | None = None
        full = False
        async with self.db.transaction() as conn:
            await users.ensure(conn, user_id)
            await users.lock(conn, user_id)  # one login of this user completes at a time
            holder = await telegram_accounts.holder_elsewhere(conn, signed.tg_user_id, user_id)
            if holder is None:
                mine = await accounts.connected_of(conn, user_id)
                known = any(r.tg_user_id == signed.tg_user_id for r in mine)
                full = not known and await accounts.count_connected_of(conn, user_id) >= self.accounts_limit
                if not full:
                    connected = await accounts.upsert_connected(
                        conn, user_id, phone, signed.tg_user_id, signed.first_name, sealed, now
                    )
        await self._forget(attempt.state)
        if holder is not None or full or connected is None:
            # one Telegram account, one bot user (U8.5), and no more than the limit (U8.3): the fresh
            # session is ended at once
            log.warning("login refused user_id=%s holder=%s at_limit=%s", user_id, holder, full)
            await self._log_out_quietly(user_id, AccountRef(0, signed.session))
            if holder is not None:
                return LoginStep("account_taken")
            return LoginStep("at_limit", limit=self.accounts_limit)
        if connected.replaced:
            # U8.4: the same Telegram account again: its old session is replaced in place
            await self._log_out_replaced(user_id, connected.previous_session)
            log.info("account session replaced user_id=%s account_id=%s", user_id,
                     connected.record.account_id)
            return LoginStep("reconnected", None, account=account_view(connected.record))
        log.info("account connected user_id=%s account_id=%s", user_id, connected.record.account_id)
        return LoginStep("connected", None, account=account_view(connected.record))

    async def _log_out_quietly(self, user_id: int, ref: AccountRef) -> None:
        try:
            await self.gateway.log_out(ref)
        except Exception as exc:  # best effort: the session is never stored either way
            log.warning("log_out at Telegram failed user_id=%s error=%s", user_id, type(exc).__name__)

    async def _after_error(self, user_id: int, exc: GatewayError, attempt: LoginAttempt) -> LoginStep:
        step = self._failed(user_id, exc, attempt)
        if step.attempt is None:
            await self._forget(attempt.state)
        return step

    def _failed(self, user_id: int, exc: GatewayError, attempt: LoginAttempt | None) -> LoginStep:
        """Map a gateway error to a step; a transient one keeps the attempt for a retry."""
        log.info("login step failed user_id=%s kind=%s code=%s", user_id, exc.kind, exc.code)
        if isinstance(exc, FloodWait):
            return LoginStep("flood", retry_after=exc.seconds)
        if isinstance(exc, PhoneInvalid):
            return LoginStep("phone_invalid")
        if isinstance(exc, PhoneBanned):
            return LoginStep("phone_banned")
        if isinstance(exc, LoginBlocked):
            return LoginStep("login_blocked", reason=exc.reason)
        if isinstance(exc, SessionDead):
            return LoginStep("session_dead")
        if isinstance(exc, CodeInvalid | CodeExpired | PasswordNeeded | PasswordInvalid):
            # out of order for this step (e.g. a code error while sending the code): start again
            return LoginStep("expired")
        return LoginStep("unreachable", attempt)

    async def _end(self, step: LoginStep, attempt: LoginAttempt) -> LoginStep:
        await self._forget(attempt.state)
        return step

    async def _forget(self, state: LoginState) -> None:
        try:
            await self.gateway.cancel_login(state)
        except Exception as exc:  # cancel_login is best effort by contract
            log.warning("cancel_login failed name=%s error=%s", state.name, type(exc).__name__)

    @staticmethod
    def _count(step: LoginStep) -> LoginStep:
        LOGINS.labels(step.outcome).inc()
        return step


def account_view(record: AccountRecord) -> AccountView:
    return AccountView(
        user_id=record.user_id,
        connected=record.connected,
        phone_masked=rules.mask_phone(record.phone),
        first_name=record.first_name,
        tg_user_id=record.tg_user_id,
        disconnected_reason=record.disconnected_reason,
        account_id=record.account_id,
    )
