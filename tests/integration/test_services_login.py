from __future__ import annotations

import logging

import asyncpg
import orjson
import pytest

from domain.errors import FloodWait, PhoneBanned, PhoneInvalid, SessionDead, TransientError
from metrics import LOGINS
from services.login import LoginAttempt
from tests.integration.services_support import Env, make_env

pytestmark = pytest.mark.integration

UID = 4242


@pytest.fixture
def env(db_pool) -> Env:
    return make_env(db_pool)


async def _code_step(env: Env, phone: str = "+1 555 0123") -> LoginAttempt:
    step = await env.login.send_code(UID, phone)
    assert step.outcome == "code_sent" and step.attempt is not None
    return step.attempt


async def test_login_stores_the_session_encrypted_only_after_success(env: Env, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    before = LOGINS.labels("connected")._value.get()
    attempt = await _code_step(env)
    assert env.gateway.sent_codes == [(f"login_{UID}", "+15550123")]
    assert attempt.state.name == f"login_{UID}"
    assert await env.fetchval("SELECT count(*) FROM accounts") == 0

    step = await env.login.submit_code(UID, attempt, "1 2 3 4 5")
    assert step.outcome == "connected" and step.attempt is None
    assert step.account is not None
    assert step.account.phone_masked == "+1•••0123" and step.account.first_name == "Ada"
    assert env.gateway.cancelled == [f"login_{UID}"]  # temporary session removed
    assert LOGINS.labels("connected")._value.get() == before + 1

    session = env.gateway.durable_sessions[-1]
    row = await env.fetchrow("SELECT * FROM accounts WHERE user_id = $1", UID)
    assert row["status"] == "connected" and row["phone"] == "+15550123" and row["tg_user_id"] == 777000
    stored = bytes(row["session_enc"])
    assert session.encode() not in stored
    assert session not in repr(dict(row))
    assert env.cipher.decrypt(stored) == session
    # neither the code nor the session reached the logs
    assert session not in caplog.text and "12345" not in caplog.text


async def test_malformed_phone_never_reaches_telegram(env: Env) -> None:
    step = await env.login.send_code(UID, "12-34")
    assert step.outcome == "bad_phone" and step.attempt is None
    assert env.gateway.sent_codes == []


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (PhoneInvalid("PHONE_NUMBER_INVALID"), "phone_invalid"),
        (PhoneBanned("PHONE_NUMBER_BANNED"), "phone_banned"),
        (FloodWait(7500), "flood"),
        (TransientError("TIMEOUT"), "unreachable"),
    ],
)
async def test_send_code_errors_end_the_login_and_remove_the_temporary_session(env: Env, error, outcome) -> None:
    env.gateway.send_error = error
    step = await env.login.send_code(UID, "+15550123")
    assert step.outcome == outcome and step.attempt is None
    assert env.gateway.cancelled == [f"login_{UID}"]
    if outcome == "flood":
        assert step.retry_after == 7500


async def test_wrong_codes_are_counted_and_the_fifth_cancels(env: Env) -> None:
    attempt = await _code_step(env)
    for left in (4, 3, 2, 1):
        step = await env.login.submit_code(UID, attempt, "99999")
        assert step.outcome == "wrong_code" and step.attempts_left == left
        assert step.attempt is not None
        # the bot keeps the attempt in its FSM as JSON between steps
        attempt = LoginAttempt.from_dict(orjson.loads(orjson.dumps(step.attempt.to_dict())))
    # a malformed code is not a wrong one
    malformed = await env.login.submit_code(UID, attempt, "12")
    assert malformed.outcome == "bad_code" and malformed.attempt == attempt and malformed.attempts_left == 1

    step = await env.login.submit_code(UID, attempt, "99999")
    assert step.outcome == "too_many" and step.attempt is None
    assert env.gateway.cancelled == [f"login_{UID}"]
    assert await env.fetchval("SELECT count(*) FROM accounts") == 0


async def test_two_step_verification(env: Env) -> None:
    env.gateway.password = "correct horse"
    attempt = await _code_step(env)
    step = await env.login.submit_code(UID, attempt, "12345")
    assert step.outcome == "password_needed" and step.attempt is not None and step.attempt.step == "password"
    assert await env.fetchval("SELECT count(*) FROM accounts") == 0

    wrong = await env.login.submit_password(UID, step.attempt, "battery staple")
    assert wrong.outcome == "wrong_password" and wrong.attempts_left == 4 and wrong.attempt is not None
    done = await env.login.submit_password(UID, wrong.attempt, "correct horse")
    assert done.outcome == "connected"
    assert await env.fetchval("SELECT status FROM accounts WHERE user_id = $1", UID) == "connected"


async def test_wrong_passwords_cancel_the_login_after_five(env: Env) -> None:
    env.gateway.password = "pw"
    attempt = (await env.login.submit_code(UID, await _code_step(env), "12345")).attempt
    assert attempt is not None
    for _ in range(4):
        step = await env.login.submit_password(UID, attempt, "nope")
        assert step.outcome == "wrong_password" and step.attempt is not None
        attempt = step.attempt
    final = await env.login.submit_password(UID, attempt, "nope")
    assert final.outcome == "too_many" and final.attempt is None
    assert env.gateway.cancelled == [f"login_{UID}"]


async def test_expired_code_then_resend(env: Env) -> None:
    attempt = await _code_step(env)
    env.gateway.expired_hashes.add(attempt.state.phone_code_hash)
    step = await env.login.submit_code(UID, attempt, "12345")
    assert step.outcome == "code_expired" and step.attempt == attempt

    resent = await env.login.resend(UID, attempt)
    assert resent.outcome == "code_sent" and resent.attempt is not None
    assert resent.attempt.state.phone_code_hash != attempt.state.phone_code_hash
    done = await env.login.submit_code(UID, resent.attempt, "12345")
    assert done.outcome == "connected"


async def test_login_older_than_the_ttl_expires(env: Env) -> None:
    attempt = await _code_step(env)
    env.clock.advance(env.settings.bot.login_ttl + 1)
    step = await env.login.submit_code(UID, attempt, "12345")
    assert step.outcome == "expired" and step.attempt is None
    assert env.gateway.cancelled == [f"login_{UID}"]
    assert await env.fetchval("SELECT count(*) FROM accounts") == 0


async def test_transient_error_keeps_the_login_and_session_dead_ends_it(env: Env) -> None:
    attempt = await _code_step(env)
    env.gateway.sign_in_error = TransientError("RPC_CALL_FAIL")
    step = await env.login.submit_code(UID, attempt, "12345")
    assert step.outcome == "unreachable" and step.attempt == attempt
    assert env.gateway.cancelled == []

    env.gateway.sign_in_error = SessionDead("AUTH_KEY_UNREGISTERED")
    step = await env.login.submit_code(UID, attempt, "12345")
    assert step.outcome == "session_dead" and step.attempt is None
    assert env.gateway.cancelled == [f"login_{UID}"]


async def test_cancel_and_the_accounts_limit(env: Env) -> None:
    attempt = await _code_step(env)
    await env.login.cancel(attempt)
    await env.login.cancel(None)
    assert env.gateway.cancelled == [f"login_{UID}"]

    # U8.3: another account may be added while under ACCOUNTS_PER_USER (3), not at it
    for n in range(env.settings.bot.accounts_per_user):
        await env.connect(UID, tg_user_id=700_000 + n)
    step = await env.login.send_code(UID, "+15550123")
    assert (step.outcome, step.limit, step.attempt) == ("at_limit", 3, None)


async def test_logout_stops_the_broadcast_and_deletes_the_session(env: Env) -> None:
    await env.ready(UID)
    assert (await env.campaigns.start(UID)).outcome == "started"
    session = env.gateway.durable_sessions[-1]
    env.gateway.log_out_error = TransientError("TIMEOUT")  # best effort: Telegram failing changes nothing

    assert await env.login.logout(UID) is True
    assert env.gateway.logged_out == [session]
    row = await env.fetchrow("SELECT status, session_enc, disconnected_reason FROM accounts WHERE user_id = $1", UID)
    assert row["status"] == "disconnected" and row["session_enc"] is None and row["disconnected_reason"] == "logout"
    assert await env.fetchval("SELECT status FROM campaigns WHERE user_id = $1", UID) == "stopped"
    view = await env.login.account(UID)
    assert view is not None and not view.connected

    assert await env.login.logout(UID) is False
    assert env.gateway.logged_out == [session]


async def test_another_telegram_account_gets_its_own_groups_and_the_old_one_keeps_its_own(env: Env) -> None:
    """U8: a broadcast belongs to one account; connecting another one (after a logout too) starts it
    empty and current, and the old account's groups come back with it when it is connected again."""
    await env.ready(UID, groups=3)
    await env.login.logout(UID)
    await env.connect(UID, tg_user_id=888000)
    counts = await env.groups.counts(UID)
    assert (counts.total, counts.selected) == (0, 0)
    await env.login.logout(UID)
    await env.connect(UID)  # the first Telegram account again
    counts = await env.groups.counts(UID)
    assert (counts.total, counts.selected, counts.gone) == (3, 3, 0)


# --- issue 11: one Telegram account, one bot user --------------------------------------------------


async def test_a_second_bot_user_logging_into_a_connected_account_is_refused_and_logged_out(env: Env) -> None:
    other = UID + 1
    first = await env.login.submit_code(UID, await _code_step(env), "12345")
    assert first.outcome == "connected"
    kept = env.gateway.durable_sessions[-1]

    step = await env.login.send_code(other, "+1 555 0123")
    assert step.attempt is not None
    refused = await env.login.submit_code(other, step.attempt, "12345")

    assert refused.outcome == "account_taken" and refused.attempt is None and refused.account is None
    fresh = env.gateway.durable_sessions[-1]
    assert fresh != kept and env.gateway.logged_out == [fresh]  # the new session ended, the old one not
    assert await env.fetchval("SELECT count(*) FROM accounts WHERE user_id = $1", other) == 0
    row = await env.fetchrow("SELECT status, session_enc FROM accounts WHERE user_id = $1", UID)
    assert row["status"] == "connected" and env.cipher.decrypt(bytes(row["session_enc"])) == kept


async def test_an_account_freed_by_its_bot_user_may_be_connected_by_another(env: Env) -> None:
    other = UID + 1
    await env.login.submit_code(UID, await _code_step(env), "12345")
    assert await env.login.logout(UID, "user")
    step = await env.login.send_code(other, "+15550123")
    assert step.attempt is not None
    moved = await env.login.submit_code(other, step.attempt, "12345")
    assert moved.outcome == "connected"


async def test_the_database_refuses_two_connections_of_one_telegram_account(env: Env) -> None:
    await env.login.submit_code(UID, await _code_step(env), "12345")
    await env.execute("INSERT INTO users (user_id) VALUES ($1)", UID + 1)
    with pytest.raises(asyncpg.UniqueViolationError, match="accounts_tg_user_id_connected_key"):
        await env.execute(
            """INSERT INTO accounts (user_id, phone, tg_user_id, session_enc) VALUES ($1, '+1', 777000, '\\x00')""",
            UID + 1)
