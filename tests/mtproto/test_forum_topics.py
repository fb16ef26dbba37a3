"""Forum topics (U11) through the real Telethon gateway against the sandbox's MTProto endpoint:
``messages.getForumTopics`` paged, a post in a topic (``inputReplyToMessage`` naming the topic), and
the errors of a closed or deleted topic."""

from __future__ import annotations

import pytest

from accounts.gateway import ForumTopic, GroupRef, OutgoingMessage
from domain.errors import GroupClosed
from sandbox.mtproto import bridge
from tests.mtproto.support import MTSandbox

FAY = "+15550001004"
FORUM, BIG_FORUM, PLAIN = 601, 602, 603


def _seed(mt: MTSandbox) -> None:
    mt.world.seed({"phone": FAY, "first_name": "Fay", "user_id": 7004, "groups": [
        {"id": FORUM, "title": "Forum", "kind": "supergroup", "forum": True,
         "topics": [{"id": 10, "title": "News", "closed": True}, {"id": 11, "title": "Chat"}]},
        {"id": BIG_FORUM, "title": "Big forum", "kind": "supergroup", "forum": True,
         "topics": [{"title": f"Topic {i}"} for i in range(150)]},
        {"id": PLAIN, "title": "Plain", "kind": "supergroup"},
    ]})


def _ref(group_id: int, topic_id: int | None = None) -> GroupRef:
    return GroupRef(group_id, bridge.member_access_hash(FAY, group_id), "supergroup", topic_id)


async def test_the_import_sees_forums_and_their_topics(mt: MTSandbox) -> None:
    _seed(mt)
    gateway = mt.gateway()
    account = await mt.login(gateway, FAY)

    forums = {g.peer_id for g in await gateway.list_groups(account) if g.is_forum}
    page = await gateway.list_groups_page(account, 0)

    assert forums == {FORUM, BIG_FORUM} == {g.peer_id for g in page.groups if g.is_forum}
    assert await gateway.list_topics(account, _ref(FORUM)) == [
        ForumTopic(1, "General"), ForumTopic(11, "Chat"), ForumTopic(10, "News", closed=True)]
    # more topics than one page of getForumTopics: every one, once
    big = await gateway.list_topics(account, _ref(BIG_FORUM))
    assert len(big) == 151 and len({t.topic_id for t in big}) == 151
    assert len(mt.world_calls("get_forum_topics")) == 1 + 2


async def test_a_post_goes_to_the_chosen_topic_and_without_one_to_general(mt: MTSandbox) -> None:
    _seed(mt)
    gateway = mt.gateway()
    account = await mt.login(gateway, FAY)

    in_topic = await gateway.send_message(account, _ref(FORUM, 11), OutgoingMessage("in Chat"))
    general = await gateway.send_message(account, _ref(FORUM), OutgoingMessage("in General"))
    explicit_general = await gateway.send_message(account, _ref(FORUM, 1), OutgoingMessage("General too"))

    posts = {p["message_id"]: p for p in mt.world.group_messages(FORUM)}
    assert (posts[in_topic]["text"], posts[in_topic]["topic_id"]) == ("in Chat", 11)
    assert posts[general]["topic_id"] == posts[explicit_general]["topic_id"] == 1
    assert {t["id"]: t["top_message"] for t in mt.world.forum_topics(FORUM)}[11] == in_topic


@pytest.mark.parametrize(("change", "code"), [({"closed": True}, "TOPIC_CLOSED"), ({"deleted": True}, "TOPIC_DELETED")])
async def test_a_closed_or_deleted_topic_closes_the_group(mt: MTSandbox, change: dict[str, bool], code: str) -> None:
    _seed(mt)
    gateway = mt.gateway()
    account = await mt.login(gateway, FAY)
    mt.world.change_topic(FORUM, 11, change)

    with pytest.raises(GroupClosed) as err:
        await gateway.send_message(account, _ref(FORUM, 11), OutgoingMessage("hello"))

    assert err.value.code == code
    assert mt.world.group_messages(FORUM) == []


async def test_a_closed_general_topic_refuses_posts_without_a_topic(mt: MTSandbox) -> None:
    _seed(mt)
    mt.world.change_topic(FORUM, 1, {"closed": True})
    gateway = mt.gateway()
    account = await mt.login(gateway, FAY)

    with pytest.raises(GroupClosed) as err:
        await gateway.send_message(account, _ref(FORUM), OutgoingMessage("hello"))
    assert err.value.code == "TOPIC_CLOSED"
    assert await gateway.send_message(account, _ref(FORUM, 11), OutgoingMessage("still fine")) > 0
