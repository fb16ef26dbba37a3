"""Sessions, dialogs, sends, limits and the event log of the simulated world."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest

from sandbox.world import MediaIn, World
from tests.sandbox.conftest_world import ANN, BEN, PASSWORD, FakeClock, login, make_world, world_error


def hashes(dialogs: list[dict[str, Any]]) -> dict[int, int]:
    return {d["id"]: d["access_hash"] for d in dialogs}


async def setup(world: World, phone: str = ANN) -> tuple[str, dict[int, int]]:
    session = await login(world, phone, PASSWORD)
    return session, hashes(await world.get_dialogs(session))


async def test_dialogs_list_the_groups_with_kinds_flags_and_per_account_hashes() -> None:
    world = make_world()
    ann = await login(world, ANN)
    ben = await login(world, BEN, PASSWORD)

    dialogs = {d["id"]: d for d in await world.get_dialogs(ann)}

    assert set(dialogs) == {1, 2, 3, 4, 5, 6, 60}  # 60: the supergroup that group 6 became
    assert dialogs[2]["kind"] == "group" and dialogs[3]["kind"] == "channel"
    assert dialogs[3]["can_send"] is False and dialogs[5]["can_send"] is False
    assert dialogs[1]["can_send"] is True and dialogs[4]["slow_mode"] == 30
    ben_hashes = hashes(await world.get_dialogs(ben))
    assert set(ben_hashes) == {1, 4, 7}
    assert ben_hashes[1] != dialogs[1]["access_hash"]
    assert hashes(await world.get_dialogs(ann)) == {gid: d["access_hash"] for gid, d in dialogs.items()}


async def test_posts_land_in_the_shared_feed_with_ms_dates_and_increasing_ids() -> None:
    world = make_world()
    ann, ann_h = await setup(world, ANN)
    ben, ben_h = await setup(world, BEN)
    entities = [{"type": "bold", "offset": 0, "length": 5}]
    before = time.time()

    first = await world.send_message(ann, 1, ann_h[1], "Hello world", entities)
    second = await world.send_message(ben, 1, ben_h[1], "From Ben")
    other = await world.send_message(ann, 2, ann_h[2], "Basic group post")

    assert (first["message_id"], second["message_id"], other["message_id"]) == (1, 2, 1)
    feed = world.group_messages(1)
    assert [(p["from_phone"], p["text"]) for p in feed] == [(ANN, "Hello world"), (BEN, "From Ben")]
    assert feed[0]["entities"] == entities and "media" not in feed[0]
    for post in feed:
        assert before - 0.01 <= post["date"] <= time.time() + 0.01
        assert post["date"] == round(post["date"], 3)
        assert abs(post["date_ms"] - post["date"] * 1000) <= 1
    assert feed[0]["date_ms"] <= feed[1]["date_ms"]


async def test_media_is_summarised_in_the_feed() -> None:
    world = make_world()
    ann, h = await setup(world)
    data = b"\x89PNG fake image bytes"

    await world.send_message(ann, 1, h[1], "caption", [], MediaIn("photo", "cat.png", data, "image/png"))

    media = world.group_messages(1)[0]["media"]
    assert isinstance(media.pop("file_id"), int)  # the sent file, reusable by reference
    assert media == {"kind": "photo", "filename": "cat.png", "size": len(data), "mime_type": "image/png",
                     "sha256": hashlib.sha256(data).hexdigest()}


async def test_a_sent_file_is_reused_by_reference_until_the_reference_expires() -> None:
    world = make_world()
    ann, h = await setup(world)
    video = MediaIn("video", "v.mp4", b"\x00ftyp" * 100, "video/mp4", width=640, height=360, duration=4.0)
    sent = await world.send_message(ann, 1, h[1], "first", [], video)
    ref = sent["media_ref"]

    again = await world.send_message(ann, 2, h[2], "second", [], None, media_ref=ref)

    assert again["media_ref"] == ref
    first, second = world.group_messages(1)[0]["media"], world.group_messages(2)[0]["media"]
    assert first == second and (first["width"], first["height"], first["duration"]) == (640, 360, 4.0)
    bad = dict(ref, access_hash=ref["access_hash"] + 1)
    assert (await world_error(world.send_message(ann, 2, h[2], "x", [], None, media_ref=bad))).name == \
        "MEDIA_INVALID"
    world.expire_file_references()
    expired = await world_error(world.send_message(ann, 2, h[2], "x", [], None, media_ref=ref))
    assert expired.name == "FILE_REFERENCE_EXPIRED"
    fresh = world.fresh_reference(ref["id"])  # what a refetch of the message shows
    assert fresh is not None and fresh.ref()["file_reference"] != ref["file_reference"]
    await world.send_message(ann, 2, h[2], "third", [], None, media_ref=fresh.ref())
    assert len(world.group_messages(2)) == 2


@pytest.mark.parametrize(
    ("group_id", "error"),
    [
        (3, "CHAT_WRITE_FORBIDDEN"),
        (5, "CHANNEL_PRIVATE"),  # banned from this one group: Telegram hides it
        (7, "CHANNEL_PRIVATE"),  # Ben's group
        (999, "PEER_ID_INVALID"),
    ],
)
async def test_group_restrictions(group_id: int, error: str) -> None:
    world = make_world()
    ann, h = await setup(world)
    err = await world_error(world.send_message(ann, group_id, h.get(group_id, 0), "hi"))
    assert err.name == error
    assert world.group_messages(group_id if group_id in (3, 5, 7) else 1) == []


@pytest.mark.parametrize("restriction", ["USER_BANNED_IN_CHANNEL", "PEER_FLOOD", "USER_RESTRICTED",
                                         "FROZEN_METHOD_INVALID"])
async def test_an_account_restriction_refuses_every_group_until_lifted(restriction: str) -> None:
    world = make_world()
    ann, h = await setup(world)
    assert world.set_restriction(ANN, restriction.lower()) == {"phone": ANN, "restriction": restriction}
    for group_id in (1, 2):
        assert (await world_error(world.send_message(ann, group_id, h[group_id], "hi"))).name == restriction
    assert len(await world.get_dialogs(ann)) == len(h)  # it can still read
    assert [a["restriction"] for a in world.accounts() if a["phone"] == ANN] == [restriction]
    # another account is not touched
    ben, hb = await setup(world, BEN)
    await world.send_message(ben, 7, hb[7], "fine")
    world.set_restriction(ANN, None)
    await world.send_message(ann, 1, h[1], "again")
    assert [p["text"] for p in world.group_messages(1)] == ["again"]


def test_only_known_restrictions_are_accepted() -> None:
    world = make_world()
    with pytest.raises(ValueError, match="USER_BANNED_IN_CHANNEL"):
        world.set_restriction(ANN, "CHAT_WRITE_FORBIDDEN")
    with pytest.raises(KeyError):
        world.set_restriction("+19999999999", "PEER_FLOOD")


async def test_a_wrong_access_hash_is_refused() -> None:
    world = make_world()
    ann, h = await setup(world)
    assert (await world_error(world.send_message(ann, 1, h[1] + 1, "x"))).name == "CHANNEL_INVALID"
    assert (await world_error(world.send_message(ann, 2, h[2] + 1, "x"))).name == "PEER_ID_INVALID"


async def test_a_migrated_group_answers_with_its_new_id_and_hash() -> None:
    world = make_world()
    ann, h = await setup(world)

    err = await world_error(world.send_message(ann, 6, h[6], "hi"))

    assert err.name == "CHAT_MIGRATED"
    assert err.new_id == 60 and err.new_access_hash == h[60]
    sent = await world.send_message(ann, 60, h[60], "hi again")
    assert sent["message_id"] == 1 and world.group_messages(60)[0]["text"] == "hi again"


@pytest.mark.parametrize(
    ("text", "media", "error"),
    [
        ("x" * 4097, None, "MESSAGE_TOO_LONG"),
        ("x" * 1025, MediaIn("photo", "a.jpg", b"1"), "MEDIA_CAPTION_TOO_LONG"),
        # Telegram counts UTF-16 code units: an emoji outside the BMP is two
        ("\U0001F600" * 2049, None, "MESSAGE_TOO_LONG"),
        ("\U0001F600" * 513, MediaIn("photo", "a.jpg", b"1"), "MEDIA_CAPTION_TOO_LONG"),
        ("   ", None, "MESSAGE_EMPTY"),
        ("ok", MediaIn("photo", "a.jpg", b""), "MEDIA_INVALID"),
        ("ok", MediaIn("sticker", "a.webp", b"1"), "MEDIA_INVALID"),
    ],
)
async def test_rejected_messages(text: str, media: MediaIn | None, error: str) -> None:
    world = make_world()
    ann, h = await setup(world)
    err = await world_error(world.send_message(ann, 1, h[1], text, [], media))
    assert err.name == error
    assert world.group_messages(1) == []


async def test_limits_are_inclusive() -> None:
    world = make_world()
    ann, h = await setup(world)
    await world.send_message(ann, 1, h[1], "x" * 4096)
    await world.send_message(ann, 1, h[1], "\U0001F600" * 2048)
    await world.send_message(ann, 1, h[1], "y" * 1024, [], MediaIn("video", "v.mp4", b"v"))
    await world.send_message(ann, 1, h[1], "", [], MediaIn("document", "d.pdf", b"d"))
    assert len(world.group_messages(1)) == 4


@pytest.mark.parametrize(
    "entity",
    [
        {"type": "bold", "offset": 0, "length": 6},  # past the end of "hello"
        {"type": "bold", "offset": -1, "length": 2},
        {"type": "bold", "offset": 1, "length": 0},
        {"type": "bold", "offset": "0", "length": 2},
    ],
)
async def test_entities_out_of_bounds_are_rejected(entity: dict[str, Any]) -> None:
    world = make_world()
    ann, h = await setup(world)
    err = await world_error(world.send_message(ann, 1, h[1], "hello", [entity]))
    assert err.name == "ENTITY_BOUNDS_INVALID"


async def test_entity_bounds_count_utf16_units() -> None:
    world = make_world()
    ann, h = await setup(world)
    # the emoji takes two UTF-16 units, so "😀 hi" is 5 units long
    await world.send_message(ann, 1, h[1], "😀 hi", [{"type": "bold", "offset": 3, "length": 2}])
    err = await world_error(world.send_message(ann, 1, h[1], "😀 hi", [{"type": "bold", "offset": 4, "length": 2}]))
    assert err.name == "ENTITY_BOUNDS_INVALID"


async def test_slow_mode_is_per_account_and_group_with_remaining_seconds() -> None:
    world = make_world()
    ann, ah = await setup(world, ANN)
    ben, bh = await setup(world, BEN)
    await world.send_message(ann, 4, ah[4], "first")

    err = await world_error(world.send_message(ann, 4, ah[4], "second"))

    assert (err.name, err.seconds, err.code) == ("SLOWMODE_WAIT", 30, 420)
    await world.send_message(ben, 4, bh[4], "Ben is not held by Ann's slow mode")
    await world.send_message(ann, 1, ah[1], "nor are Ann's other groups")


async def test_slow_mode_counts_down() -> None:
    clock = FakeClock()
    world = make_world(clock)
    world.seed({"phone": "+15550002001", "groups": [{"id": 40, "title": "Quick", "slow_mode": 10}]})
    session, h = await setup(world, "+15550002001")
    await world.send_message(session, 40, h[40], "a")
    clock.advance(3.0)
    err = await world_error(world.send_message(session, 40, h[40], "b"))
    assert (err.name, err.seconds) == ("SLOWMODE_WAIT", 7)
    clock.advance(6.5)
    err = await world_error(world.send_message(session, 40, h[40], "b"))
    assert (err.name, err.seconds) == ("SLOWMODE_WAIT", 1)  # half a second left rounds up
    clock.advance(0.5)
    await world.send_message(session, 40, h[40], "c")


async def test_a_rejected_message_does_not_start_slow_mode() -> None:
    world = make_world()
    ann, h = await setup(world)
    await world_error(world.send_message(ann, 4, h[4], "x" * 5000))
    await world.send_message(ann, 4, h[4], "fine")


async def test_account_rate_limit_gives_a_flood_wait_until_the_window_frees() -> None:
    world = make_world(account_send_limit=3, account_send_window=100.0)
    ann, ah = await setup(world, ANN)
    ben, bh = await setup(world, BEN)
    await world.send_message(ann, 1, ah[1], "post 0")
    await world.send_message(ann, 2, ah[2], "post 1")
    await world.send_message(ann, 1, ah[1], "post 2")

    err = await world_error(world.send_message(ann, 2, ah[2], "one too many"))

    assert err.name == "FLOOD_WAIT" and err.seconds is not None and 99 <= err.seconds <= 100
    await world.send_message(ben, 1, bh[1], "other accounts are not limited")


async def test_rate_limit_window_slides() -> None:
    clock = FakeClock()
    world = make_world(clock, account_send_limit=2, account_send_window=40.0)
    ann, h = await setup(world)
    await world.send_message(ann, 1, h[1], "a")
    clock.advance(10.0)
    await world.send_message(ann, 1, h[1], "b")
    err = await world_error(world.send_message(ann, 1, h[1], "c"))
    assert (err.name, err.seconds) == ("FLOOD_WAIT", 30)
    clock.advance(30.0)  # "a" leaves the window, "b" is still in it
    await world.send_message(ann, 1, h[1], "c")
    err = await world_error(world.send_message(ann, 1, h[1], "d"))
    assert (err.name, err.seconds) == ("FLOOD_WAIT", 10)


async def test_hour_and_day_windows_flood_until_their_own_window_frees() -> None:
    world = make_world(account_send_limit=10, account_send_window=60.0, account_send_limit_hour=3,
                       account_send_window_hour=1000.0, account_send_limit_day=4, account_send_window_day=5000.0)
    ann, h = await setup(world)
    for i in range(3):
        await world.send_message(ann, 1, h[1], f"post {i}")
    hour = await world_error(world.send_message(ann, 1, h[1], "over the hour"))
    assert hour.name == "FLOOD_WAIT" and hour.seconds is not None and 999 <= hour.seconds <= 1000

    world = make_world(account_send_limit=0, account_send_limit_day=2, account_send_window_day=5000.0)
    ann, h = await setup(world)
    await world.send_message(ann, 1, h[1], "a")
    await world.send_message(ann, 1, h[1], "b")
    day = await world_error(world.send_message(ann, 1, h[1], "over the day"))
    assert day.name == "FLOOD_WAIT" and day.seconds is not None and 4999 <= day.seconds <= 5000
    assert len(world.group_messages(1)) == 2  # a refused send posts nothing


async def test_no_rate_limit_when_rate_limits_are_off() -> None:
    world = make_world(rate_limits=False, account_send_limit=1)
    ann, h = await setup(world)
    for i in range(5):
        await world.send_message(ann, 1, h[1], f"post {i}")
    assert len(world.group_messages(1)) == 5


async def test_terminating_sessions_revokes_them_all() -> None:
    world = make_world()
    first, h = await setup(world, ANN)
    second = await login(world, ANN)
    ben = await login(world, BEN, PASSWORD)

    assert world.revoke_sessions(ANN) == 2

    assert world.sessions(ANN) == []
    for session in (first, second):
        assert (await world_error(world.get_dialogs(session))).name == "SESSION_REVOKED"
        assert (await world_error(world.send_message(session, 1, h[1], "x"))).name == "SESSION_REVOKED"
    assert len(await world.get_dialogs(ben)) == 3


async def test_log_out_kills_one_session() -> None:
    world = make_world()
    first = await login(world, ANN)
    second = await login(world, ANN)

    await world.log_out(first)

    assert (await world_error(world.get_dialogs(first))).name == "AUTH_KEY_UNREGISTERED"
    assert (await world_error(world.log_out(first))).name == "AUTH_KEY_UNREGISTERED"
    assert len(await world.get_dialogs(second)) == 7
    assert len(world.sessions(ANN)) == 1


async def test_unknown_session_is_unregistered_and_deactivated_account_is_dead() -> None:
    world = make_world()
    assert (await world_error(world.get_dialogs("sbx_made_up"))).name == "AUTH_KEY_UNREGISTERED"
    session = await login(world, ANN)
    world.seed({"phone": ANN, "first_name": "Ann", "user_id": 501, "deactivated": True})
    assert (await world_error(world.get_dialogs(session))).name == "USER_DEACTIVATED_BAN"


async def test_every_call_is_recorded_as_a_world_event() -> None:
    world = make_world(account_send_limit=1, account_send_window=100.0)
    ann, h = await setup(world)
    await world.send_message(ann, 1, h[1], "ok")
    await world_error(world.send_message(ann, 2, h[2], "limited"))
    await world_error(world.send_code("+15559999999"))

    events = [e.to_dict() for e in world.events.since(0)]

    assert all(e["api"] == "world" for e in events)
    assert [e["method"] for e in events] == ["send_code", "sign_in", "get_dialogs", "send_message",
                                             "send_message", "send_code"]
    sent, limited, invalid = events[3], events[4], events[5]
    assert sent["ok"] is True and sent["phone"] == ANN and sent["group_id"] == 1 and "error" not in sent
    assert limited["ok"] is False and limited["error"] == "FLOOD_WAIT" and limited["group_id"] == 2
    assert 99 <= limited["retry_after"] <= 100
    assert invalid["error"] == "PHONE_NUMBER_INVALID" and invalid["phone"] == "+15559999999"
    assert events[0]["phone"] == ANN and events[0]["ok"] is True


async def test_reset_forgets_everything() -> None:
    world = make_world()
    session, h = await setup(world)
    await world.send_message(session, 1, h[1], "x")
    world.add_fault({"call": "*", "error": "PEER_FLOOD", "times": -1})

    world.reset()

    assert world.accounts() == [] and world.faults() == []
    with pytest.raises(KeyError):
        world.group_messages(1)
    with pytest.raises(KeyError):
        world.codes(ANN)
    assert (await world_error(world.get_dialogs(session))).name == "AUTH_KEY_UNREGISTERED"
    assert (await world_error(world.send_code(ANN))).name == "PHONE_NUMBER_INVALID"


def test_seed_rejects_bad_accounts_without_changing_anything() -> None:
    world = make_world()
    before = world.accounts()
    for bad in (
        {"accounts": [{"phone": "+15550003001"}, {"phone": "nope"}]},
        {"phone": "+15550003001", "groups": [{"id": 0, "title": "x"}]},
        {"phone": "+15550003001", "groups": [{"id": 9, "kind": "forum"}]},
        {"accounts": "x"},
    ):
        with pytest.raises(ValueError):
            world.seed(bad)
    assert world.accounts() == before


def test_demo_world_has_the_promised_accounts() -> None:
    from sandbox.world import load_world_file

    world = make_world()
    world.reset()
    phones = world.seed(load_world_file())

    assert phones == ["+15550000001", "+15550000002", "+15550000003", "+15550000004"]
    accounts = {a["phone"]: a for a in world.accounts()}
    assert [len(accounts[p]["groups"]) for p in phones] == [9, 13, 6, 5]
    assert [accounts[p]["has_password"] for p in phones] == [False, True, False, False]
    first = accounts["+15550000001"]["groups"]
    # every account follows a channel it can't post to (the import leaves those out), and the first
    # two are in a group they can't write to (the import lists it disabled, U3.7)
    for phone in phones:
        assert any(g["kind"] == "channel" and not g["can_send"] for g in accounts[phone]["groups"])
    for phone in phones[:2]:
        assert any(g["kind"] != "channel" and not g["can_send"] for g in accounts[phone]["groups"])
    assert any(g["slow_mode"] > 0 for g in first)
    assert world.demo_summary() == [  # as quoted in the README
        "+15550000001  Alice  no 2FA  9 chats (2 not writable, 1 with slow mode)",
        "+15550000002  Boris  2FA password 'sandbox-2fa'  13 chats (2 not writable, 1 with slow mode)",
        "+15550000003  Chen  no 2FA  6 chats (1 not writable, 0 with slow mode)",
        "+15550000004  Dana  no 2FA  5 chats (1 not writable, 0 with slow mode)",
    ]
    # Dana's forums (U11): topics incl. a closed one, and one forum with more topics than a page
    forums = {g["id"]: g for g in accounts["+15550000004"]["groups"] if g["forum"]}
    assert sorted(forums) == [1401, 1402]
    makers = {t["title"]: t for t in world.forum_topics(1401)}
    assert makers["General"]["id"] == 1 and makers["Announcements"]["closed"]
    assert len(world.forum_topics(1402)) == 13


async def test_an_album_is_one_send_of_grouped_posts_with_the_caption_on_the_first() -> None:
    world = make_world()
    ann, ann_h = await setup(world, ANN)
    png = b"\x89PNG\r\n\x1a\n" + b"x" * 20
    items: list[Any] = [MediaIn("photo", "a.png", png, "image/png"),
                        MediaIn("video", "v.mp4", b"video", "video/mp4", width=4, height=3, duration=1.0)]
    entities = [{"type": "bold", "offset": 0, "length": 3}]

    sent = await world.send_album(ann, 4, ann_h[4], "Two things", entities, items)

    feed = world.group_messages(4)
    assert [p["message_id"] for p in feed] == sent["message_ids"] == [1, 2]
    assert {p["grouped_id"] for p in feed} == {sent["grouped_id"]}
    assert (feed[0]["text"], feed[0]["entities"], feed[1]["text"]) == ("Two things", entities, "")
    assert [p["media"]["kind"] for p in feed] == ["photo", "video"]
    # one send for slow mode (group 4 has 30 s): the next post waits, the album's items did not
    assert (await world_error(world.send_message(ann, 4, ann_h[4], "again"))).name == "SLOWMODE_WAIT"
    # sent files go again by reference
    again = await world.send_album(ann, 1, ann_h[1], "", [], sent["media_refs"])
    assert [p["media"]["sha256"] for p in world.group_messages(1)] == [p["media"]["sha256"] for p in feed]
    assert len(again["message_ids"]) == 2
    for wrong, error in (([items[0]], "MEDIA_INVALID"), ([items[0]] * 11, "MULTI_MEDIA_TOO_LONG"),
                         ([items[0], MediaIn("document", "d.txt", b"doc")], "MEDIA_INVALID")):
        assert (await world_error(world.send_album(ann, 1, ann_h[1], "", [], wrong))).name == error
