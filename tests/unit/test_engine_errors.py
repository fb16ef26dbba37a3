"""services.engine: account-wide restrictions and the safe default for errors nobody listed."""

from __future__ import annotations

import pytest

from accounts.errors import to_domain
from config.settings import EngineSettings
from domain.errors import AccountThrottled, ClientError, GatewayError, MaybeSent
from services import engine
from services.engine import UnknownHistory

SETTINGS = EngineSettings()


@pytest.mark.parametrize("name", ["USER_BANNED_IN_CHANNEL", "USER_RESTRICTED", "FROZEN_METHOD_INVALID"])
def test_a_restriction_pauses_the_account_points_to_spambot_and_disables_nothing(name: str) -> None:
    decision = engine.decide(to_domain(name, rpc_code=400, operation="send"), 1, SETTINGS)
    assert decision.pause_for == SETTINGS.peer_flood_pause
    assert decision.account_wait == SETTINGS.peer_flood_pause
    assert decision.notify == engine.ACCOUNT_RESTRICTED
    assert not decision.disable_group and decision.ends_round and decision.status == "skipped"


def test_peer_flood_keeps_its_flood_pause_note() -> None:
    decision = engine.decide(AccountThrottled("PEER_FLOOD"), 1, SETTINGS)
    assert (decision.notify, decision.pause_for, decision.disable_group) == (
        engine.FLOOD_PAUSE, SETTINGS.peer_flood_pause, False)


def test_an_unknown_406_pauses_without_spambot() -> None:
    error = to_domain("SOMETHING_NEW_406", rpc_code=406, operation="send")
    decision = engine.decide(error, 1, SETTINGS)
    assert decision.pause_for is not None and decision.notify == engine.FLOOD_PAUSE


def test_an_unknown_401_ends_the_session() -> None:
    decision = engine.decide(to_domain("SOMETHING_NEW_401", rpc_code=401, operation="send"), 1, SETTINGS)
    assert decision.stop_campaign and decision.notify == engine.SESSION_ENDED


def test_maybe_sent_is_never_sent_again() -> None:
    decision = engine.decide(MaybeSent("RANDOM_ID_DUPLICATE"), 1, SETTINGS)
    assert decision.status == "unknown" and decision.retry_in is None


# --- judge_unknown: one test per branch --------------------------------------------------------------

UNKNOWN = engine.decide(GatewayError("BRAND_NEW_ERROR"), 1, SETTINGS)


def history(sent: int = 0, others: int = 0, alike: bool = False, sent_before: int = 0) -> UnknownHistory:
    return UnknownHistory(sent, others, alike, sent_before)


def test_an_unknown_error_is_judged_and_never_retried() -> None:
    assert UNKNOWN.unknown and UNKNOWN.status == "failed" and UNKNOWN.retry_in is None


def test_first_time_for_a_group_only_fails_the_attempt() -> None:
    judged = engine.judge_unknown(UNKNOWN, history(sent=3, others=2))
    assert (judged.status, judged.disable_group, judged.halt, judged.notify) == ("failed", False, False, None)


def test_second_round_in_a_row_while_others_succeed_disables_the_group() -> None:
    judged = engine.judge_unknown(UNKNOWN, history(sent=3, others=2, alike=True))
    assert judged.disable_group and judged.notify == engine.GROUP_DISABLED and judged.code == "BRAND_NEW_ERROR"
    assert not judged.ends_round


def test_second_round_counts_sends_of_the_previous_round_too() -> None:
    judged = engine.judge_unknown(UNKNOWN, history(sent=0, others=3, alike=True, sent_before=4))
    assert judged.disable_group


def test_second_round_with_nothing_sent_anywhere_disables_nothing() -> None:
    judged = engine.judge_unknown(UNKNOWN, history(sent=0, others=3, alike=True, sent_before=0))
    assert not judged.disable_group and not judged.halt


def test_every_group_failing_alike_stops_the_broadcast() -> None:
    judged = engine.judge_unknown(UNKNOWN, history(sent=0, others=0, alike=True, sent_before=5))
    assert judged.halt and judged.ends_round and judged.notify == engine.BROADCAST_HALTED
    assert not judged.stop_campaign  # the account stays connected
    assert not judged.disable_group


def test_our_client_errors_never_blame_a_group_but_can_stop_the_broadcast() -> None:
    client = engine.decide(ClientError("API_ID_INVALID"), 1, SETTINGS)
    assert not engine.judge_unknown(client, history(sent=3, others=2, alike=True)).disable_group
    assert engine.judge_unknown(client, history()).halt


def test_a_known_error_is_left_alone() -> None:
    known = engine.decide(AccountThrottled("PEER_FLOOD"), 1, SETTINGS)
    assert engine.judge_unknown(known, history()) is known
