"""Faults on demand: they fire for exactly the calls, filters and counts asked."""

from __future__ import annotations

import pytest

from sandbox.world import World
from tests.sandbox.conftest_world import ANN, BEN, PASSWORD, FakeClock, login, make_world, world_error


async def sessions(world: World) -> tuple[str, str, dict[int, int], dict[int, int]]:
    ann = await login(world, ANN)
    ben = await login(world, BEN, PASSWORD)
    ah = {d["id"]: d["access_hash"] for d in await world.get_dialogs(ann)}
    bh = {d["id"]: d["access_hash"] for d in await world.get_dialogs(ben)}
    return ann, ben, ah, bh


async def test_a_fault_fires_for_the_number_of_calls_asked_then_stops() -> None:
    world = make_world()
    ann, _, h, _ = await sessions(world)
    world.add_fault({"call": "send_message", "error": "FLOOD_WAIT", "seconds": 7, "times": 2})

    for _ in range(2):
        err = await world_error(world.send_message(ann, 1, h[1], "x"))
        assert (err.name, err.seconds) == ("FLOOD_WAIT", 7)
    await world.send_message(ann, 1, h[1], "x")

    assert world.faults() == []
    assert len(world.group_messages(1)) == 1


async def test_times_defaults_to_one() -> None:
    world = make_world()
    world.add_fault({"call": "send_code", "error": "PHONE_NUMBER_BANNED"})
    assert (await world_error(world.send_code(ANN))).name == "PHONE_NUMBER_BANNED"
    await world.send_code(ANN)


async def test_times_minus_one_lasts_until_cleared() -> None:
    world = make_world()
    ann, _, h, _ = await sessions(world)
    world.add_fault({"call": "send_message", "error": "PEER_FLOOD", "times": -1})

    for _ in range(4):
        assert (await world_error(world.send_message(ann, 1, h[1], "x"))).name == "PEER_FLOOD"
    assert world.clear_faults() == 1
    await world.send_message(ann, 1, h[1], "x")


async def test_phone_group_and_call_filters() -> None:
    world = make_world()
    ann, ben, ah, bh = await sessions(world)
    world.add_fault({"call": "send_message", "phone": BEN, "error": "CHAT_WRITE_FORBIDDEN", "times": -1})
    world.add_fault({"call": "send_message", "group_id": 2, "error": "CHAT_RESTRICTED", "times": -1})
    world.add_fault({"call": "get_dialogs", "error": "INTERNAL", "times": -1})

    await world.send_message(ann, 1, ah[1], "Ann in group 1 is untouched")
    assert (await world_error(world.send_message(ann, 2, ah[2], "x"))).name == "CHAT_RESTRICTED"
    assert (await world_error(world.send_message(ben, 1, bh[1], "x"))).name == "CHAT_WRITE_FORBIDDEN"
    err = await world_error(world.get_dialogs(ann))
    assert (err.name, err.code) == ("INTERNAL", 500)
    await world.send_code(ANN)  # no fault on send_code


async def test_a_phone_filter_accepts_any_spelling() -> None:
    world = make_world()
    world.add_fault({"call": "send_code", "phone": "001 555 000 1002", "error": "PHONE_NUMBER_INVALID"})
    await world.send_code(ANN)
    assert (await world_error(world.send_code(BEN))).name == "PHONE_NUMBER_INVALID"


async def test_star_matches_every_call() -> None:
    world = make_world()
    ann, _, h, _ = await sessions(world)
    world.add_fault({"call": "*", "error": "NETWORK", "times": 3})

    assert (await world_error(world.send_code(ANN))).name == "NETWORK"
    assert (await world_error(world.get_dialogs(ann))).name == "NETWORK"
    assert (await world_error(world.send_message(ann, 1, h[1], "x"))).name == "NETWORK"
    await world.get_dialogs(ann)


async def test_matching_faults_fire_in_order_of_registration() -> None:
    world = make_world()
    ann, _, h, _ = await sessions(world)
    world.add_fault({"call": "send_message", "error": "FLOOD_WAIT", "seconds": 5})
    world.add_fault({"call": "*", "error": "SLOWMODE_WAIT", "seconds": 9})

    first = await world_error(world.send_message(ann, 1, h[1], "x"))
    second = await world_error(world.send_message(ann, 1, h[1], "x"))

    assert (first.name, first.seconds) == ("FLOOD_WAIT", 5)
    assert (second.name, second.seconds) == ("SLOWMODE_WAIT", 9)
    await world.send_message(ann, 1, h[1], "x")


async def test_login_faults() -> None:
    world = make_world()
    world.add_fault({"call": "sign_in", "error": "PHONE_CODE_INVALID"})
    world.add_fault({"call": "check_password", "error": "PASSWORD_HASH_INVALID"})
    sent = await world.send_code(BEN)
    code = world.codes(BEN)[0]["code"]

    assert (await world_error(world.sign_in(BEN, sent["session"], sent["phone_code_hash"], code))).name \
        == "PHONE_CODE_INVALID"
    assert (await world_error(world.sign_in(BEN, sent["session"], sent["phone_code_hash"], code))).name \
        == "SESSION_PASSWORD_NEEDED"
    assert (await world_error(world.check_password(BEN, sent["session"], PASSWORD))).name \
        == "PASSWORD_HASH_INVALID"
    assert (await world.check_password(BEN, sent["session"], PASSWORD))["user_id"] == 502


async def test_wait_faults_have_a_default_and_other_faults_carry_no_seconds() -> None:
    world = make_world()
    ann, _, h, _ = await sessions(world)
    world.add_fault({"call": "send_message", "error": "slowmode_wait"})
    world.add_fault({"call": "send_message", "error": "SESSION_REVOKED"})

    err = await world_error(world.send_message(ann, 1, h[1], "x"))
    assert (err.name, err.seconds) == ("SLOWMODE_WAIT", 30)
    err = await world_error(world.send_message(ann, 1, h[1], "x"))
    assert (err.name, err.seconds, err.code) == ("SESSION_REVOKED", None, 401)


async def test_migration_fault_carries_the_new_id_and_hash() -> None:
    world = make_world()
    ann, _, h, _ = await sessions(world)
    world.add_fault({"call": "send_message", "group_id": 2, "error": "CHAT_MIGRATED", "new_id": 77})

    err = await world_error(world.send_message(ann, 2, h[2], "x"))

    assert err.name == "CHAT_MIGRATED" and err.new_id == 77
    assert isinstance(err.new_access_hash, int) and err.new_access_hash > 0


async def test_latency_delays_the_answer_and_the_call_still_succeeds() -> None:
    clock = FakeClock()
    world = make_world(clock)
    ann, _, h, _ = await sessions(world)
    world.add_fault({"call": "send_message", "error": "latency", "seconds": 0.2})

    sent = await world.send_message(ann, 1, h[1], "slow")
    assert clock.slept == [0.2] and sent["message_id"] == 1
    await world.send_message(ann, 1, h[1], "fast")
    assert clock.slept == [0.2]  # the fault was used up: the next call does not wait


async def test_latency_and_an_error_fault_combine() -> None:
    clock = FakeClock()
    world = make_world(clock)
    world.add_fault({"call": "send_code", "error": "LATENCY", "seconds": 0.15})
    world.add_fault({"call": "send_code", "error": "FLOOD_WAIT", "seconds": 3})
    err = await world_error(world.send_code(ANN))
    assert err.name == "FLOOD_WAIT" and clock.slept == [0.15]


async def test_deliver_lets_the_post_land_before_the_error() -> None:
    world = make_world()
    ann, _, h, _ = await sessions(world)
    world.add_fault({"call": "send_message", "error": "NETWORK", "deliver": True})

    assert (await world_error(world.send_message(ann, 1, h[1], "landed anyway"))).name == "NETWORK"
    assert [p["text"] for p in world.group_messages(1)] == ["landed anyway"]


async def test_a_dead_session_does_not_consume_a_fault() -> None:
    world = make_world()
    world.add_fault({"call": "get_dialogs", "error": "PEER_FLOOD"})
    assert (await world_error(world.get_dialogs("sbx_nobody"))).name == "AUTH_KEY_UNREGISTERED"
    assert len(world.faults()) == 1


async def test_fault_errors_are_recorded_as_events() -> None:
    world = make_world()
    ann, _, h, _ = await sessions(world)
    world.add_fault({"call": "send_message", "error": "FLOOD_WAIT", "seconds": 12})
    await world_error(world.send_message(ann, 1, h[1], "x"))
    last = world.events.since(0)[-1].to_dict()
    assert last["method"] == "send_message" and last["ok"] is False
    assert (last["error"], last["retry_after"], last["phone"], last["group_id"]) == ("FLOOD_WAIT", 12, ANN, 1)


@pytest.mark.parametrize(
    "spec",
    [
        {"call": "send_sms", "error": "FLOOD_WAIT"},
        {"call": "send_code"},
        {"call": "send_code", "error": "no spaces allowed"},
        {"call": "send_code", "error": "FLOOD_WAIT", "times": 0},
        {"call": "send_code", "error": "FLOOD_WAIT", "times": -2},
        {"call": "send_code", "error": "FLOOD_WAIT", "phone": "not a phone"},
        {"call": "send_code", "error": "FLOOD_WAIT", "seconds": -1},
        {"call": "send_code", "error": "latency"},
        {"call": "send_message", "error": "CHAT_MIGRATED"},
        {"call": "send_message", "error": "PEER_FLOOD", "group_id": "abc"},
    ],
)
def test_bad_fault_specs_are_refused(spec: dict[str, object]) -> None:
    world = make_world()
    with pytest.raises(ValueError):
        world.add_fault(spec)
    assert world.faults() == []


def test_faults_are_listed_with_their_remaining_count() -> None:
    world = make_world()
    fault = world.add_fault({"call": "send_message", "error": "PEER_FLOOD", "times": 3, "group_id": 4})
    assert fault["id"] >= 1 and fault["times"] == 3 and fault["group_id"] == 4
    assert world.faults() == [fault]
