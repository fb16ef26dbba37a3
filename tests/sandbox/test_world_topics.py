"""Forum topics in the simulated world (U11), and the sandbox adapter over its HTTP API: topics are
listed General first then newest first and paged; a post goes to the topic ``reply_to`` names (or
the replied-to post's topic, or General); closed and deleted topics refuse posts as Telegram does;
the control API closes, reopens, deletes, restores and adds topics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from accounts.gateway import AccountRef, ForumTopic, GroupRef, OutgoingMessage
from accounts.sandbox_gateway import SandboxGateway
from domain.errors import GroupClosed
from sandbox.client import SandboxClient, SandboxError
from sandbox.world import MediaIn, World
from tests.sandbox.conftest_world import latest_code, login, make_world, serve_world, world_error

PHONE = "+15550002001"
FORUM, PLAIN = 801, 802


def _world() -> World:
    world = make_world()
    world.seed({"phone": PHONE, "first_name": "Flo", "groups": [
        {"id": FORUM, "title": "Forum", "kind": "supergroup", "forum": True,
         "topics": [{"title": "News", "closed": True}, {"title": "Chat"}, {"title": "Sales"}]},
        {"id": PLAIN, "title": "Plain", "kind": "supergroup", "forum": True},  # no topics but General
        {"id": 803, "title": "Basic", "kind": "group", "forum": True},  # only supergroups are forums
    ]})
    return world


async def _session(world: World) -> tuple[str, dict[int, int]]:
    session = await login(world, PHONE)
    return session, {d["id"]: d["access_hash"] for d in await world.get_dialogs(session)}


async def test_topics_are_listed_general_first_then_newest_and_paged() -> None:
    world = _world()
    session, hashes = await _session(world)

    first = await world.get_forum_topics(session, FORUM, hashes[FORUM], limit=2)
    rest = await world.get_forum_topics(session, FORUM, hashes[FORUM], after=first["next"], limit=2)

    assert [t["title"] for t in first["topics"]] == ["General", "Sales"]
    assert [(t["title"], t["closed"]) for t in rest["topics"]] == [("Chat", False), ("News", True)]
    assert (first["count"], rest["next"]) == (4, None)
    assert [t["id"] for t in first["topics"] + rest["topics"]] == [1, 4, 3, 2]  # ids are message ids
    dialogs = {d["id"]: d for d in await world.get_dialogs(session)}
    assert (dialogs[FORUM]["forum"], dialogs[803]["forum"]) == (True, False)
    assert (await world_error(world.get_forum_topics(session, 803, hashes[803]))).name == "CHANNEL_FORUM_MISSING"
    assert (await world_error(world.get_forum_topics(session, FORUM, 1))).name == "CHANNEL_INVALID"


async def test_a_post_lands_in_the_topic_reply_to_names() -> None:
    world = _world()
    session, hashes = await _session(world)
    send = {"session": session, "group_id": FORUM, "access_hash": hashes[FORUM]}

    in_chat = await world.send_message(**send, text="in Chat", reply_to=3)
    reply = await world.send_message(**send, text="a reply", reply_to=in_chat["message_id"])
    general = await world.send_message(**send, text="no topic")

    feed = {p["text"]: p for p in world.group_messages(FORUM)}
    assert (feed["in Chat"]["topic_id"], feed["a reply"]["topic_id"], feed["no topic"]["topic_id"]) == (3, 3, 1)
    assert (in_chat["topic_id"], reply["topic_id"], general["topic_id"]) == (3, 3, 1)
    assert in_chat["message_id"] > 4  # after the topics' own ids
    assert {t["id"]: t["top_message"] for t in world.forum_topics(FORUM)}[3] == reply["message_id"]


async def test_an_album_lands_in_one_topic_and_a_closed_topic_refuses_it() -> None:
    world = _world()
    session, hashes = await _session(world)
    png = b"\x89PNG\r\n\x1a\n" + b"x" * 20
    items = [MediaIn("photo", f"p{i}.png", png + bytes([i]), "image/png") for i in range(2)]

    posted = await world.send_album(session, FORUM, hashes[FORUM], "two", [], items, reply_to=3)
    plain = await world.send_album(session, FORUM, hashes[FORUM], "", [], items)

    feed = {p["message_id"]: p for p in world.group_messages(FORUM)}
    assert [feed[m]["topic_id"] for m in posted["message_ids"]] == [3, 3]
    assert [feed[m]["topic_id"] for m in plain["message_ids"]] == [1, 1]
    error = await world_error(world.send_album(session, FORUM, hashes[FORUM], "", [], items, reply_to=2))
    assert error.name == "TOPIC_CLOSED"


@pytest.mark.parametrize(("change", "error"), [({"closed": True}, "TOPIC_CLOSED"), ({"deleted": True}, "TOPIC_DELETED")])
async def test_closed_and_deleted_topics_refuse_posts(change: dict[str, bool], error: str) -> None:
    world = _world()
    session, hashes = await _session(world)
    send = {"session": session, "group_id": FORUM, "access_hash": hashes[FORUM]}
    await world.send_message(**send, text="before", reply_to=3)

    world.change_topic(FORUM, 3, change)

    assert (await world_error(world.send_message(**send, text="x", reply_to=3))).name == error
    assert (await world_error(world.send_message(**send, text="x", reply_to=2))).name == "TOPIC_CLOSED"
    assert (await world_error(world.send_message(**send, text="x", reply_to=999))).name == "TOPIC_DELETED"
    if change.get("deleted"):
        assert world.group_messages(FORUM) == []  # a deleted topic's posts go with it
        world.change_topic(FORUM, 3, {"deleted": False})  # the sandbox's undo
    else:
        world.change_topic(FORUM, 3, {"closed": False})
    assert (await world.send_message(**send, text="again", reply_to=3))["topic_id"] == 3


async def test_a_closed_general_topic_refuses_posts_without_a_topic() -> None:
    world = _world()
    session, hashes = await _session(world)
    world.change_topic(PLAIN, 1, {"closed": True})

    error = await world_error(world.send_message(session, PLAIN, hashes[PLAIN], "x"))

    assert error.name == "TOPIC_CLOSED"
    with pytest.raises(ValueError):
        world.change_topic(PLAIN, 1, {"deleted": True})


def test_seeding_a_forum_twice_keeps_its_topics_and_updates_them() -> None:
    world = _world()
    world.seed({"phone": "+15550002002", "groups": [
        {"id": FORUM, "title": "Forum", "kind": "supergroup", "forum": True, "general_closed": True,
         "topics": [{"title": "Chat", "closed": True}, {"title": "Jobs"}]}]})

    topics = {t["title"]: t for t in world.forum_topics(FORUM)}
    assert set(topics) == {"General", "News", "Chat", "Sales", "Jobs"}
    assert topics["General"]["closed"] and topics["Chat"]["closed"] and topics["Jobs"]["id"] == 5
    with pytest.raises(ValueError):
        world.seed({"phone": "+15550002003", "groups": [{"id": 9, "forum": True, "topics": [{"closed": True}]}]})


# --- the sandbox adapter and the control API over HTTP ----------------------------------------------


@pytest.fixture
async def served() -> AsyncIterator[tuple[World, str]]:
    world = _world()
    async with serve_world(world) as base:
        yield world, base


async def test_the_sandbox_adapter_lists_topics_and_posts_into_one(served: tuple[World, str]) -> None:
    world, base = served
    gateway = SandboxGateway(base, timeout=5.0)
    try:
        state = await gateway.send_code("login_2001", PHONE)
        signed = await gateway.sign_in(state, latest_code(world, PHONE))
        account = AccountRef(1, signed.session)
        page = await gateway.list_groups_page(account, 0)
        info = next(g for g in page.groups if g.peer_id == FORUM)
        assert info.is_forum
        ref = GroupRef(info.peer_id, info.access_hash, info.kind)

        assert await gateway.list_topics(account, ref) == [
            ForumTopic(1, "General"), ForumTopic(4, "Sales"), ForumTopic(3, "Chat"), ForumTopic(2, "News", True)]
        await gateway.send_message(account, replace(ref, topic_id=4), OutgoingMessage("in Sales"))
        await gateway.send_message(account, replace(ref, topic_id=1), OutgoingMessage("in General"))
        assert [(p["text"], p["topic_id"]) for p in world.group_messages(FORUM)] == [
            ("in Sales", 4), ("in General", 1)]
        with pytest.raises(GroupClosed) as err:
            await gateway.send_message(account, replace(ref, topic_id=2), OutgoingMessage("x"))
        assert err.value.code == "TOPIC_CLOSED"
    finally:
        await gateway.close()


async def test_the_control_api_changes_topics(served: tuple[World, str]) -> None:
    _, base = served
    async with SandboxClient(base) as client:
        added = await client.request("POST", f"/groups/{FORUM}/topics", {"title": "Jobs"})
        await client.change_topic(FORUM, 3, closed=True)
        await client.change_topic(FORUM, 4, deleted=True)
        topics = {t["title"]: t for t in await client.topics(FORUM)}
        assert set(topics) == {"General", "News", "Chat", "Jobs"} and topics["Chat"]["closed"]
        assert added["id"] == 5
        await client.change_topic(FORUM, 4, deleted=False)
        assert {t["id"] for t in await client.topics(FORUM)} == {1, 2, 3, 4, 5}
        with pytest.raises(SandboxError) as err:
            await client.change_topic(FORUM, 77, closed=True)
        assert err.value.status == 404
        with pytest.raises(SandboxError) as err:
            await client.request("PATCH", f"/groups/{FORUM}/topics/3", {"colour": "red"})
        assert err.value.status == 400
