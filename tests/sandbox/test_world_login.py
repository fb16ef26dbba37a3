"""Login rules of the simulated world: codes, temporary sessions, 2FA, limits."""

from __future__ import annotations

import pytest

from sandbox.world import normalise_phone
from tests.sandbox.conftest_world import (
    ANN,
    BANNED,
    BEN,
    PASSWORD,
    FakeClock,
    latest_code,
    make_world,
    world_error,
)


async def test_correct_code_gives_a_durable_session_and_ends_the_temporary_one() -> None:
    world = make_world()
    sent = await world.send_code(ANN)
    assert sent["phone"] == ANN and sent["code_length"] == 5
    code = latest_code(world, ANN)
    assert len(code) == 5 and code.isdigit()

    done = await world.sign_in(ANN, sent["session"], sent["phone_code_hash"], code)

    assert done["user_id"] == 501 and done["first_name"] == "Ann" and done["phone"] == ANN
    assert done["session"] != sent["session"] and len(done["session"]) >= 40
    assert [s["user_id"] for s in world.sessions(ANN)] == [501]
    # the listing shows a fingerprint, never the session string
    assert done["session"] not in str(world.sessions(ANN))
    assert world.codes(ANN)[0]["state"] == "used"
    err = await world_error(world.sign_in(ANN, sent["session"], sent["phone_code_hash"], code))
    assert err.name == "PHONE_CODE_EXPIRED"


async def test_two_logins_get_different_unguessable_sessions() -> None:
    world = make_world()
    sessions = set()
    for _ in range(2):
        sent = await world.send_code(ANN)
        done = await world.sign_in(ANN, sent["session"], sent["phone_code_hash"], latest_code(world, ANN))
        sessions.add(done["session"])
    assert len(sessions) == 2
    assert len(world.sessions(ANN)) == 2


async def test_code_is_bound_to_the_temporary_session_and_hash_that_asked_for_it() -> None:
    world = make_world()
    first = await world.send_code(ANN)
    first_code = latest_code(world, ANN)
    second = await world.send_code(ANN)
    assert second["session"] != first["session"]

    # another temporary session (with its own hash) cannot use the first code
    err = await world_error(world.sign_in(ANN, second["session"], first["phone_code_hash"], first_code))
    assert err.name == "PHONE_CODE_EXPIRED"
    # a session that never asked for a code
    err = await world_error(world.sign_in(ANN, "tmp_other", first["phone_code_hash"], first_code))
    assert err.name == "PHONE_CODE_EXPIRED"
    # the right session with a wrong hash
    err = await world_error(world.sign_in(ANN, first["session"], second["phone_code_hash"], first_code))
    assert err.name == "PHONE_CODE_EXPIRED"

    done = await world.sign_in(ANN, first["session"], first["phone_code_hash"], first_code)
    assert done["user_id"] == 501


async def test_a_code_shared_unchanged_in_a_chat_is_voided() -> None:
    world = make_world()
    sent = await world.send_code(ANN)
    code = latest_code(world, ANN)

    world.observe_chat_text(f"my code is {code}, thanks")

    err = await world_error(world.sign_in(ANN, sent["session"], sent["phone_code_hash"], code))
    assert err.name == "PHONE_CODE_EXPIRED"
    assert world.codes(ANN)[0]["state"] == "voided"


@pytest.mark.parametrize("spell", [" ".join, "-".join])
async def test_a_code_typed_with_separators_stays_valid(spell: object) -> None:
    world = make_world()
    sent = await world.send_code(ANN)
    code = latest_code(world, ANN)

    world.observe_chat_text(spell(code))  # type: ignore[operator]
    world.observe_chat_text("12 34")

    assert world.codes(ANN)[0]["state"] == "live"
    done = await world.sign_in(ANN, sent["session"], sent["phone_code_hash"], code)
    assert done["phone"] == ANN


async def test_code_expires_after_code_ttl() -> None:
    clock = FakeClock()
    world = make_world(clock, code_ttl=60)
    sent = await world.send_code(ANN)
    code = latest_code(world, ANN)
    clock.advance(59.9)
    assert world.codes(ANN)[0]["state"] == "live"
    clock.advance(0.2)

    err = await world_error(world.sign_in(ANN, sent["session"], sent["phone_code_hash"], code))

    assert err.name == "PHONE_CODE_EXPIRED"
    assert world.codes(ANN)[0]["state"] == "expired"


async def test_resend_gives_a_new_code_and_the_old_one_is_expired() -> None:
    world = make_world()
    sent = await world.send_code(ANN)
    old = latest_code(world, ANN)

    again = await world.resend_code(ANN, sent["session"], sent["phone_code_hash"])
    new = latest_code(world, ANN)

    assert again["session"] == sent["session"]
    assert again["phone_code_hash"] != sent["phone_code_hash"]
    assert new != old
    assert [c["state"] for c in world.codes(ANN)] == ["live", "replaced"]
    # the old code (with the new hash) is expired; the old hash no longer works at all
    err = await world_error(world.sign_in(ANN, sent["session"], again["phone_code_hash"], old))
    assert err.name == "PHONE_CODE_EXPIRED"
    err = await world_error(world.sign_in(ANN, sent["session"], sent["phone_code_hash"], new))
    assert err.name == "PHONE_CODE_EXPIRED"
    done = await world.sign_in(ANN, sent["session"], again["phone_code_hash"], new)
    assert done["user_id"] == 501


async def test_resend_for_an_unknown_login_is_expired() -> None:
    world = make_world()
    err = await world_error(world.resend_code(ANN, "tmp_nobody", "abc"))
    assert err.name == "PHONE_CODE_EXPIRED"


async def test_codes_are_listed_newest_first() -> None:
    world = make_world()
    sent = await world.send_code(ANN)
    await world.resend_code(ANN, sent["session"], sent["phone_code_hash"])
    codes = world.codes(ANN)
    assert len(codes) == 2
    assert codes[0]["date"] >= codes[1]["date"]
    assert codes[0]["state"] == "live"


async def test_two_factor_account_needs_the_password_after_the_code() -> None:
    world = make_world()
    sent = await world.send_code(BEN)
    code = latest_code(world, BEN)

    err = await world_error(world.sign_in(BEN, sent["session"], sent["phone_code_hash"], code))
    assert err.name == "SESSION_PASSWORD_NEEDED"
    assert err.code == 401
    err = await world_error(world.check_password(BEN, sent["session"], "wrong"))
    assert err.name == "PASSWORD_HASH_INVALID"
    # the password step belongs to the temporary session that passed the code
    other = await world.send_code(BEN)
    err = await world_error(world.check_password(BEN, other["session"], PASSWORD))
    assert err.name == "PHONE_CODE_EXPIRED"
    assert world.sessions(BEN) == []

    done = await world.check_password(BEN, sent["session"], PASSWORD)

    assert done["user_id"] == 502 and done["first_name"] == "Ben"
    assert len(world.sessions(BEN)) == 1


async def test_password_without_a_code_step_is_refused() -> None:
    world = make_world()
    sent = await world.send_code(BEN)
    err = await world_error(world.check_password(BEN, sent["session"], PASSWORD))
    assert err.name == "PHONE_CODE_EXPIRED"


async def test_wrong_codes_are_invalid_then_too_many_give_a_flood_wait() -> None:
    world = make_world()
    world.login_flood_seconds = 120
    sent = await world.send_code(ANN)
    code = latest_code(world, ANN)
    wrong = "00000" if code != "00000" else "11111"

    for _ in range(world.max_code_attempts):
        err = await world_error(world.sign_in(ANN, sent["session"], sent["phone_code_hash"], wrong))
        assert err.name == "PHONE_CODE_INVALID"
    err = await world_error(world.sign_in(ANN, sent["session"], sent["phone_code_hash"], code))

    assert (err.name, err.seconds, err.code) == ("FLOOD_WAIT", 120, 420)
    # the phone stays flooded for a new login too
    err = await world_error(world.send_code(ANN))
    assert err.name == "FLOOD_WAIT" and err.seconds is not None and 119 <= err.seconds <= 120


async def test_wrong_passwords_then_flood_wait() -> None:
    world = make_world()
    world.max_password_attempts = 2
    world.login_flood_seconds = 45
    sent = await world.send_code(BEN)
    await world_error(world.sign_in(BEN, sent["session"], sent["phone_code_hash"], latest_code(world, BEN)))
    for _ in range(2):
        assert (await world_error(world.check_password(BEN, sent["session"], "x"))).name == "PASSWORD_HASH_INVALID"

    err = await world_error(world.check_password(BEN, sent["session"], PASSWORD))

    assert (err.name, err.seconds) == ("FLOOD_WAIT", 45)


async def test_too_many_code_requests_per_phone_give_a_flood_wait() -> None:
    world = make_world()
    world.send_code_limit = 2
    world.send_code_window = 100.0
    sent = await world.send_code(ANN)
    await world.resend_code(ANN, sent["session"], sent["phone_code_hash"])

    err = await world_error(world.send_code(ANN))

    assert err.name == "FLOOD_WAIT" and err.seconds is not None and 99 <= err.seconds <= 100
    await world.send_code(BEN)  # other phones are not affected


async def test_code_request_limit_is_off_without_rate_limits() -> None:
    world = make_world(rate_limits=False)
    world.send_code_limit = 1
    for _ in range(3):
        await world.send_code(ANN)


@pytest.mark.parametrize("phone", ["+1234", "abc", "", "+155500010019999999"])
async def test_malformed_phone_is_invalid(phone: str) -> None:
    err = await world_error(make_world().send_code(phone))
    assert err.name == "PHONE_NUMBER_INVALID"


async def test_unknown_phone_is_invalid_and_banned_phone_is_banned() -> None:
    world = make_world()
    assert (await world_error(world.send_code("+15559999999"))).name == "PHONE_NUMBER_INVALID"
    assert (await world_error(world.send_code(BANNED))).name == "PHONE_NUMBER_BANNED"


@pytest.mark.parametrize("spelling", ["0015550001001", "+1 (555) 000-1001", "1.555.000.1001"])
async def test_phone_spellings_are_normalised(spelling: str) -> None:
    assert normalise_phone(spelling) == ANN
    sent = await make_world().send_code(spelling)
    assert sent["phone"] == ANN


async def test_cancelled_login_cannot_be_finished() -> None:
    world = make_world()
    sent = await world.send_code(ANN)
    code = latest_code(world, ANN)

    await world.cancel_login(sent["session"])

    err = await world_error(world.sign_in(ANN, sent["session"], sent["phone_code_hash"], code))
    assert err.name == "PHONE_CODE_EXPIRED"
    assert world.codes(ANN)[0]["state"] == "cancelled"


async def test_empty_code_is_invalid_without_counting() -> None:
    world = make_world()
    sent = await world.send_code(ANN)
    err = await world_error(world.sign_in(ANN, sent["session"], sent["phone_code_hash"], " "))
    assert err.name == "PHONE_CODE_EMPTY"
