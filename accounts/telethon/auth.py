"""Login and log-out through Telethon.

Every login step builds a short-lived client from the *temporary* session string of the
previous step, so a login survives a bot restart: ``send_code`` creates the auth key and
returns it (with ``phone_code_hash``) in ``LoginState``; ``sign_in``/``check_password``
connect with exactly that string and hash. The same auth key becomes the durable session
once signed in, which is why the string is saved again after success.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from telethon import functions, types, utils

from accounts.errors import PAYMENT_REQUIRED, SETUP_EMAIL_REQUIRED, to_domain
from accounts.gateway import AccountRef, CodeDelivery, LoginState, SignedIn
from accounts.telethon.client import GatewayBase
from accounts.telethon.errors import map_error, mapped, translating
from accounts.telethon.pool import connect
from domain.errors import CodeExpired, SessionDead

logger = logging.getLogger(__name__)

DEFAULT_CODE_LENGTH = 5


def _digits(phone: str) -> str:
    # Telethon strips the "+" before raw auth requests (utils.parse_phone); do the same.
    return utils.parse_phone(phone) or phone


def _code_length(code_type: Any) -> int:
    length = getattr(code_type, "length", None)
    return length if isinstance(length, int) and length > 0 else DEFAULT_CODE_LENGTH


# auth.SentCodeType -> (our name, where the hint is); checked in order.
_SENT_TYPES: tuple[tuple[type, str], ...] = (
    (types.auth.SentCodeTypeApp, "app"),
    (types.auth.SentCodeTypeSms, "sms"),
    (types.auth.SentCodeTypeCall, "call"),
    (types.auth.SentCodeTypeFlashCall, "flash_call"),
    (types.auth.SentCodeTypeMissedCall, "missed_call"),
    (types.auth.SentCodeTypeEmailCode, "email"),
    (types.auth.SentCodeTypeFragmentSms, "fragment_sms"),
    (types.auth.SentCodeTypeFirebaseSms, "firebase_sms"),
    (types.auth.SentCodeTypeSmsWord, "sms_word"),
    (types.auth.SentCodeTypeSmsPhrase, "sms_phrase"),
)
_NEXT_TYPES: tuple[tuple[type, str], ...] = (
    (types.auth.CodeTypeSms, "sms"),
    (types.auth.CodeTypeCall, "call"),
    (types.auth.CodeTypeFlashCall, "flash_call"),
    (types.auth.CodeTypeMissedCall, "missed_call"),
    (types.auth.CodeTypeFragmentSms, "fragment_sms"),
)


def _name_of(value: Any, table: tuple[tuple[type, str], ...]) -> str:
    return next((name for cls, name in table if isinstance(value, cls)), "")


def delivery_of(sent: Any) -> CodeDelivery:
    """Where Telegram sent the code, from ``auth.sentCode``; ``LoginBlocked`` when no code this app
    can use was sent (``sentCodePaymentRequired``, which has no ``type``; or a login email to set up)."""
    if isinstance(sent, types.auth.SentCodePaymentRequired):
        raise to_domain(PAYMENT_REQUIRED, rpc_code=None, operation="login")
    code_type = getattr(sent, "type", None)
    if isinstance(code_type, types.auth.SentCodeTypeSetUpEmailRequired):
        raise to_domain(SETUP_EMAIL_REQUIRED, rpc_code=None, operation="login")
    kind = _name_of(code_type, _SENT_TYPES) or "app"
    hint = ""
    if isinstance(code_type, types.auth.SentCodeTypeEmailCode):
        hint = code_type.email_pattern
    elif isinstance(code_type, types.auth.SentCodeTypeMissedCall):
        hint = code_type.prefix
    elif isinstance(code_type, types.auth.SentCodeTypeFlashCall):
        hint = code_type.pattern
    elif isinstance(code_type, types.auth.SentCodeTypeFragmentSms):
        hint = code_type.url
    return CodeDelivery(type=kind, length=_code_length(code_type), hint=hint,
                        next_type=_name_of(getattr(sent, "next_type", None), _NEXT_TYPES))


async def _request_code(client: Any, phone: str) -> Any:
    """``auth.sendCode`` itself: Telethon's ``send_code_request`` reads ``.type`` of every answer,
    which ``auth.sentCodePaymentRequired`` lacks, and may resend on its own (``force_sms``).
    Missed calls are allowed: the user reads the code off the calling number."""
    settings = types.CodeSettings(allow_missed_call=True)
    request = functions.auth.SendCodeRequest(_digits(phone), client.api_id, client.api_hash, settings)
    return await client(request)


class AuthMethods(GatewayBase):
    @contextlib.asynccontextmanager
    async def _login_client(self, session: str) -> AsyncIterator[Any]:
        client = self._new_client(session)
        try:
            await connect(client)
            yield client
        finally:
            with contextlib.suppress(Exception):
                await client.disconnect()

    @mapped("login")
    async def send_code(self, name: str, phone: str) -> LoginState:
        """Request a login code for ``phone`` on a new temporary session named ``name``."""
        async with self._login_client("") as client:
            sent = await _request_code(client, phone)
            # Saved after the request: a PHONE_MIGRATE moves the session to another DC on the way.
            session = client.session.save()
        delivery = delivery_of(sent)
        logger.info("login code requested for %s (%s)", name, delivery.type)
        return LoginState(name=name, phone=phone, session=session,
                          phone_code_hash=sent.phone_code_hash).with_delivery(delivery)

    @mapped("login")
    async def resend_code(self, state: LoginState) -> LoginState:
        """Ask for the code again (``auth.resendCode``); a voided code gets a fresh one."""
        async with self._login_client(state.session) as client:
            request = functions.auth.ResendCodeRequest(_digits(state.phone), state.phone_code_hash)
            try:
                with translating("login"):
                    sent = await client(request)
            except CodeExpired:
                # Telegram voided the hash (e.g. the code was shared unspaced): ask for a new one.
                sent = await _request_code(client, state.phone)
            session = client.session.save()
        delivery = delivery_of(sent)
        logger.info("login code re-sent for %s (%s)", state.name, delivery.type)
        return state.with_code(session=session, phone_code_hash=sent.phone_code_hash).with_delivery(delivery)

    @mapped("login")
    async def sign_in(self, state: LoginState, code: str) -> SignedIn:
        """Sign in with ``code``; raises ``PasswordNeeded`` when two-step verification is on."""
        async with self._login_client(state.session) as client:
            user = await client.sign_in(phone=state.phone, code=code, phone_code_hash=state.phone_code_hash)
            return self._signed_in(client, user, state)

    @mapped("login")
    async def check_password(self, state: LoginState, password: str) -> SignedIn:
        """Finish a login that needed the two-step verification password."""
        async with self._login_client(state.session) as client:
            user = await client.sign_in(password=password)
            return self._signed_in(client, user, state)

    def _signed_in(self, client: Any, user: Any, state: LoginState) -> SignedIn:
        logger.info("login finished for %s (tg user %s)", state.name, user.id)
        return SignedIn(
            session=client.session.save(),
            tg_user_id=int(user.id),
            first_name=user.first_name or "",
            phone=state.phone,
        )

    async def cancel_login(self, state: LoginState) -> None:
        """Void the code at Telegram and drop the temporary session; never raises."""
        if not state.session or not state.phone_code_hash:
            return  # no code was sent: connecting would only create a new auth key
        request = functions.auth.CancelCodeRequest(_digits(state.phone), state.phone_code_hash)
        try:
            async with self._login_client(state.session) as client:
                await client(request)
        except Exception as exc:  # best effort by contract: the session string is forgotten anyway
            logger.info("cancel of login %s not confirmed: %s", state.name, map_error(exc, "login").code)

    async def log_out(self, account: AccountRef) -> None:
        """Log the session out at Telegram and forget its client; an already dead session is fine."""
        try:
            with translating("session"):
                async with self._pool.lease(account) as client:
                    await client(functions.auth.LogOutRequest())
        except SessionDead as exc:
            logger.info("account %s was already logged out (%s)", account.account_id, exc.code)
        finally:
            await self._pool.discard(account.account_id)
