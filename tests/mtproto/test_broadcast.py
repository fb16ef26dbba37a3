"""Group import and sends through the real Telethon gateway against the sandbox's MTProto endpoint."""

from __future__ import annotations

import hashlib
import os

import pytest

from accounts.gateway import GroupInfo, GroupRef, Media, OutgoingMessage
from domain.errors import (
    AccountThrottled,
    FloodWait,
    GroupClosed,
    GroupMigrated,
    MessageRejected,
    SessionDead,
)
from sandbox.mtproto import bridge
from tests.mtproto.support import (
    ANN,
    CHANNEL,
    CLOSED,
    GROUP,
    NEW_SUPER,
    OLD_GROUP,
    READONLY_CHANNEL,
    SLOW,
    SUPER,
    MTSandbox,
)

ENTITIES = [
    {"type": "bold", "offset": 0, "length": 5},
    {"type": "text_link", "offset": 6, "length": 4, "url": "https://example.com/"},
    {"type": "pre", "offset": 11, "length": 5, "language": "python"},
]
TEXT = "Hello here print"  # bold "Hello", link "here", pre "print"


def ref(info: GroupInfo) -> GroupRef:
    return GroupRef(info.peer_id, info.access_hash, info.kind)


async def test_list_groups_imports_what_the_account_can_post_to(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    account = await mt.login(gateway)

    groups = {g.peer_id: g for g in await gateway.list_groups(account)}

    hash_of = bridge.member_access_hash
    assert groups == {
        GROUP: GroupInfo(GROUP, 0, "group", "Basic group", True),
        SUPER: GroupInfo(SUPER, hash_of(ANN, SUPER), "supergroup", "Supergroup", True),
        CHANNEL: GroupInfo(CHANNEL, hash_of(ANN, CHANNEL), "channel", "Own channel", True),
        CLOSED: GroupInfo(CLOSED, hash_of(ANN, CLOSED), "supergroup", "Read-only group", False),
        READONLY_CHANNEL: GroupInfo(READONLY_CHANNEL, hash_of(ANN, READONLY_CHANNEL), "channel",
                                    "Someone's channel", False),
        SLOW: GroupInfo(SLOW, hash_of(ANN, SLOW), "supergroup", "Slow group", True),
        NEW_SUPER: GroupInfo(NEW_SUPER, hash_of(ANN, NEW_SUPER), "supergroup", "Upgraded group", True),
    }  # the upgraded basic group is left out; someone else's channel is listed, not writable (as by
    # the sandbox adapter), and the import leaves it out (services.groups decides, for both adapters)


async def test_text_with_entities_lands_in_every_kind_of_group(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    account = await mt.login(gateway)
    groups = {g.peer_id: g for g in await gateway.list_groups(account)}

    for peer_id in (GROUP, SUPER, CHANNEL):
        message_id = await gateway.send_message(account, ref(groups[peer_id]), OutgoingMessage(TEXT, ENTITIES))
        [post] = mt.world.group_messages(peer_id)
        assert post["message_id"] == message_id
        assert (post["from_phone"], post["text"], post["entities"]) == (ANN, TEXT, ENTITIES)


async def test_media_is_uploaded_in_parts_and_posted_with_its_caption(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    account = await mt.login(gateway)
    photo = b"\xff\xd8\xff\xe0" + os.urandom(300 * 1024)  # a JPEG's start; three upload parts of 128 KiB
    document = b"%PDF-1.4 sandbox\n" * 40
    caption_entities = [{"type": "italic", "offset": 0, "length": 3}]

    await gateway.send_message(account, GroupRef(SUPER, bridge.member_access_hash(ANN, SUPER), "supergroup"),
                               OutgoingMessage("New stock", caption_entities, Media("photo", photo, "shop.jpg",
                                                                                    "image/jpeg")))
    await gateway.send_message(account, GroupRef(GROUP, 0, "group"),
                               OutgoingMessage("Price list", [], Media("document", document, "prices.pdf",
                                                                       "application/pdf")))

    clip = os.urandom(5000)
    await gateway.send_message(account, GroupRef(CHANNEL, bridge.member_access_hash(ANN, CHANNEL), "channel"),
                               OutgoingMessage("", [], Media("video", clip, "clip.mp4", "video/mp4")))

    [photo_post] = mt.world.group_messages(SUPER)
    assert (photo_post["text"], photo_post["entities"]) == ("New stock", caption_entities)
    assert isinstance(photo_post["media"].pop("file_id"), int)
    assert photo_post["media"] == {"kind": "photo", "filename": "shop.jpg", "size": len(photo),
                                   "mime_type": "image/jpeg", "sha256": hashlib.sha256(photo).hexdigest()}
    [doc_post] = mt.world.group_messages(GROUP)
    assert isinstance(doc_post["media"].pop("file_id"), int)
    assert doc_post["media"] == {"kind": "document", "filename": "prices.pdf", "size": len(document),
                                 "mime_type": "application/pdf",
                                 "sha256": hashlib.sha256(document).hexdigest()}
    [video_post] = mt.world.group_messages(CHANNEL)
    assert (video_post["text"], video_post["media"]["kind"], video_post["media"]["filename"]) == (
        "", "video", "clip.mp4")


async def test_a_video_is_uploaded_once_then_sent_by_reference_with_its_attributes(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    account = await mt.login(gateway)
    clip = b"\x00\x00\x00\x18ftypmp42" + os.urandom(700 * 1024)
    thumb = b"\xff\xd8\xff\xe0thumbnail"
    video = Media("video", clip, "clip.mp4", "video/mp4", width=1920, height=1080, duration=12.0, thumb=thumb,
                  key=hashlib.sha256(clip).hexdigest())
    targets = [GroupRef(GROUP, 0, "group"),
               GroupRef(SUPER, bridge.member_access_hash(ANN, SUPER), "supergroup"),
               GroupRef(CHANNEL, bridge.member_access_hash(ANN, CHANNEL), "channel")]

    for target in targets:
        await gateway.send_message(account, target, OutgoingMessage("watch", [], video))

    uploaded = mt.world.uploaded_bytes(ANN)
    assert uploaded == len(clip) + len(thumb)  # once for the three groups
    feeds = [mt.world.group_messages(t.peer_id)[0]["media"] for t in targets]
    assert feeds[0] == feeds[1] == feeds[2]
    assert (feeds[0]["kind"], feeds[0]["width"], feeds[0]["height"], feeds[0]["duration"],
            feeds[0]["thumb_size"]) == ("video", 1920, 1080, 12.0, len(thumb))

    # the file reference expires: the gateway refetches the message for a fresh one, no new upload
    mt.world.expire_file_references()
    await gateway.send_message(account, targets[1], OutgoingMessage("again", [], video))
    await gateway.send_message(account, targets[0], OutgoingMessage("again", [], video))
    assert mt.world.uploaded_bytes(ANN) == uploaded
    assert [p["media"]["sha256"] for p in mt.world.group_messages(SUPER)] == [feeds[0]["sha256"]] * 2


async def test_an_album_is_one_send_multi_media_with_the_caption_on_the_first(mt: MTSandbox) -> None:
    """U9.3: uploadMedia per new item, then one sendMultiMedia; a second album goes by reference."""
    gateway = mt.gateway()
    account = await mt.login(gateway)
    photo = b"\xff\xd8\xff\xe0" + os.urandom(2000)
    clip = os.urandom(3000)
    album = (Media("photo", photo, "a.jpg", "image/jpeg", key=hashlib.sha256(photo).hexdigest()),
             Media("video", clip, "b.mp4", "video/mp4", width=4, height=3, duration=2.0,
                   key=hashlib.sha256(clip).hexdigest()))
    caption = [{"type": "bold", "offset": 0, "length": 3}]
    target = GroupRef(SUPER, bridge.member_access_hash(ANN, SUPER), "supergroup")

    first_id = await gateway.send_message(account, target, OutgoingMessage("New in", caption, album=album))

    feed = mt.world.group_messages(SUPER)
    assert [p["message_id"] for p in feed] == [first_id, first_id + 1]
    assert len({p["grouped_id"] for p in feed}) == 1 and feed[0]["grouped_id"] is not None
    assert (feed[0]["text"], feed[0]["entities"], feed[1]["text"]) == ("New in", caption, "")
    assert [p["media"]["kind"] for p in feed] == ["photo", "video"]
    uploaded = mt.world.uploaded_bytes(ANN)
    await gateway.send_message(account, GroupRef(GROUP, 0, "group"), OutgoingMessage("New in", caption, album=album))
    assert mt.world.uploaded_bytes(ANN) == uploaded  # sent by reference, not uploaded again
    assert [p["media"]["sha256"] for p in mt.world.group_messages(GROUP)] == [p["media"]["sha256"] for p in feed]


async def test_a_photo_that_is_not_an_image_is_rejected(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    account = await mt.login(gateway)
    with pytest.raises(MessageRejected) as rejected:
        await gateway.send_message(account, GroupRef(GROUP, 0, "group"),
                                   OutgoingMessage("", [], Media("photo", b"%PDF-1.4 not a photo", "x.jpg")))
    assert rejected.value.code == "IMAGE_PROCESS_FAILED"
    assert mt.world.group_messages(GROUP) == []


async def test_a_flood_wait_carries_its_seconds(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    account = await mt.login(gateway)
    mt.world.add_fault({"call": "send_message", "error": "FLOOD_WAIT", "seconds": 42, "phone": ANN})
    supergroup = GroupRef(SUPER, bridge.member_access_hash(ANN, SUPER), "supergroup")

    with pytest.raises(FloodWait) as err:
        await gateway.send_message(account, supergroup, OutgoingMessage("one"))
    assert (err.value.code, err.value.seconds) == ("FLOOD_WAIT", 42)

    assert [e.retry_after for e in mt.world_calls("send_message")] == [42]
    assert not mt.world.group_messages(SUPER)


async def test_slow_mode_answers_slowmode_wait_with_the_time_left(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    account = await mt.login(gateway)
    slow = GroupRef(SLOW, bridge.member_access_hash(ANN, SLOW), "supergroup")
    await gateway.send_message(account, slow, OutgoingMessage("first"))

    with pytest.raises(FloodWait) as err:
        await gateway.send_message(account, slow, OutgoingMessage("second"))

    assert err.value.code == "SLOWMODE_WAIT" and 0 < err.value.seconds <= 30
    assert [p["text"] for p in mt.world.group_messages(SLOW)] == ["first"]


@pytest.mark.parametrize(("fault", "error", "code"), [
    ("PEER_FLOOD", AccountThrottled, "PEER_FLOOD"),
    ("USER_BANNED_IN_CHANNEL", AccountThrottled, "USER_BANNED_IN_CHANNEL"),  # account-wide at Telegram
    ("TOPIC_CLOSED", GroupClosed, "TOPIC_CLOSED"),
    ("CHAT_WRITE_FORBIDDEN", GroupClosed, "CHAT_WRITE_FORBIDDEN"),
])
async def test_send_faults_reach_the_engine_as_their_domain_errors(
        mt: MTSandbox, fault: str, error: type[Exception], code: str) -> None:
    gateway = mt.gateway()
    account = await mt.login(gateway)
    mt.world.add_fault({"call": "send_message", "error": fault, "group_id": SUPER})

    with pytest.raises(error) as err:
        await gateway.send_message(account, GroupRef(SUPER, bridge.member_access_hash(ANN, SUPER), "supergroup"),
                                   OutgoingMessage("hello"))
    assert getattr(err.value, "code", None) == code


async def test_a_group_the_account_may_not_write_to_is_closed(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    account = await mt.login(gateway)
    with pytest.raises(GroupClosed) as err:
        await gateway.send_message(account, GroupRef(CLOSED, bridge.member_access_hash(ANN, CLOSED), "supergroup"),
                                   OutgoingMessage("hello"))
    assert err.value.code == "CHAT_WRITE_FORBIDDEN"


async def test_a_send_to_an_upgraded_basic_group_reports_the_supergroup(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    account = await mt.login(gateway)
    with pytest.raises(GroupMigrated) as err:
        await gateway.send_message(account, GroupRef(OLD_GROUP, 0, "group"), OutgoingMessage("hello"))
    assert (err.value.new_peer_id, err.value.new_access_hash) == (NEW_SUPER,
                                                                  bridge.member_access_hash(ANN, NEW_SUPER))


async def test_a_network_fault_is_retried_by_telethon(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    account = await mt.login(gateway)
    mt.world.add_fault({"call": "send_message", "error": "NETWORK", "times": 1})

    message_id = await gateway.send_message(account, GroupRef(GROUP, 0, "group"), OutgoingMessage("hello"))

    assert [e.error for e in mt.world_calls("send_message")] == ["NETWORK", None]
    assert mt.world.group_messages(GROUP)[0]["message_id"] == message_id


async def test_a_pooled_client_reconnects_after_the_server_dropped_it(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    account = await mt.login(gateway)
    await gateway.send_message(account, GroupRef(GROUP, 0, "group"), OutgoingMessage("before"))

    await mt.server.drop_connections()
    await gateway.send_message(account, GroupRef(GROUP, 0, "group"), OutgoingMessage("after"))

    assert [p["text"] for p in mt.world.group_messages(GROUP)] == ["before", "after"]


async def test_revoked_sessions_are_dead_for_pooled_and_new_clients(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    account = await mt.login(gateway)
    assert await gateway.list_groups(account)  # the client is now pooled and connected
    assert account.account_id in gateway.pool

    assert mt.world.revoke_sessions(ANN) == 1

    with pytest.raises(SessionDead) as err:
        await gateway.send_message(account, GroupRef(GROUP, 0, "group"), OutgoingMessage("hello"))
    assert err.value.code == "SESSION_REVOKED"
    assert account.account_id not in gateway.pool  # a dead session's client is dropped
    with pytest.raises(SessionDead):
        await mt.gateway().list_groups(account)
    assert not mt.world.group_messages(GROUP)


async def test_log_out_ends_the_session(mt: MTSandbox) -> None:
    gateway = mt.gateway()
    account = await mt.login(gateway)
    await gateway.log_out(account)

    assert not mt.world.sessions(ANN)
    with pytest.raises(SessionDead) as err:
        await mt.gateway().list_groups(account)
    assert err.value.code == "AUTH_KEY_UNREGISTERED"
