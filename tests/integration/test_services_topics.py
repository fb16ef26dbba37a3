"""Forum topics (U11) in the services and the engine's claim: an import records each forum's topics,
a chosen topic that is closed or gone disables the group, choosing an open one makes it active
again, and the claim of a send carries the chosen topic."""

from __future__ import annotations

from dataclasses import replace

import pytest

from accounts.gateway import ForumTopic
from domain.errors import GroupClosed
from services.topics import TopicService
from storage.repositories import attempts
from tests.integration.services_support import Env, group, make_env

pytestmark = pytest.mark.integration

UID = 7
FORUM, PLAIN = 1, 2
TOPICS = [ForumTopic(1, "General"), ForumTopic(9, "Sales"), ForumTopic(8, "News", closed=True),
          ForumTopic(7, "Help")]


@pytest.fixture
def env(db_pool) -> Env:
    return make_env(db_pool, selection_limit=3)


async def _imported(env: Env) -> tuple[TopicService, int]:
    await env.connect(UID)
    env.gateway.groups = [replace(group(FORUM, "Forum"), is_forum=True), group(PLAIN, "Plain")]
    env.gateway.topics = {FORUM: list(TOPICS)}
    await env.groups.import_groups(UID)
    forum_id = await env.fetchval("SELECT group_id FROM groups WHERE user_id = $1 AND peer_id = $2", UID, FORUM)
    return TopicService(env.db, env.clock), int(forum_id)


async def _status(env: Env, group_id: int) -> tuple[str, str]:
    row = await env.fetchrow("SELECT status, reason FROM groups WHERE group_id = $1", group_id)
    return row["status"], row["reason"]


async def test_an_import_records_the_topics_of_forums_only(env: Env) -> None:
    topics, forum_id = await _imported(env)

    page = await topics.page(UID, forum_id)
    assert page is not None
    assert [(t.topic_id, t.title, t.closed, t.chosen) for t in page.items] == [
        (1, "General", False, True), (9, "Sales", False, False), (8, "News", True, False), (7, "Help", False, False)]
    assert (page.total, page.chosen_title, page.list_page) == (4, "General", 0)
    assert await env.fetchval("SELECT count(*) FROM group_topics") == 4
    plain = await env.fetchval("SELECT group_id FROM groups WHERE user_id = $1 AND peer_id = $2", UID, PLAIN)
    assert await topics.page(UID, int(plain)) is None  # not a forum: nothing to choose


async def test_choosing_a_topic_and_what_is_refused(env: Env) -> None:
    topics, forum_id = await _imported(env)

    assert (await topics.choose(UID, forum_id, 8))[0] == "closed"
    assert (await topics.choose(UID, forum_id, 99))[0] == "not_found"
    assert (await topics.choose(UID + 1, forum_id, 9)) == ("not_found", None)  # someone else's group
    outcome, page = await topics.choose(UID, forum_id, 9)

    assert outcome == "chosen" and page is not None and page.chosen_title == "Sales"
    assert await env.fetchval("SELECT topic_id FROM groups WHERE group_id = $1", forum_id) == 9
    await topics.choose(UID, forum_id, 1)  # General is kept as "no topic"
    assert await env.fetchval("SELECT topic_id FROM groups WHERE group_id = $1", forum_id) is None


async def test_a_chosen_topic_closed_or_gone_at_import_disables_the_group_until_another_is_chosen(env: Env) -> None:
    topics, forum_id = await _imported(env)
    await topics.choose(UID, forum_id, 9)

    env.gateway.topics = {FORUM: [ForumTopic(1, "General"), ForumTopic(9, "Sales", closed=True)]}
    await env.groups.import_groups(UID)
    assert await _status(env, forum_id) == ("disabled", "TOPIC_CLOSED")

    env.gateway.topics = {FORUM: [ForumTopic(1, "General"), ForumTopic(7, "Help")]}
    await env.groups.import_groups(UID)
    assert await _status(env, forum_id) == ("disabled", "TOPIC_DELETED")

    await topics.choose(UID, forum_id, 7)
    assert await _status(env, forum_id) == ("active", "")


async def test_a_closed_general_topic_disables_a_forum_left_on_general(env: Env) -> None:
    await env.connect(UID)
    env.gateway.groups = [replace(group(FORUM, "Forum"), is_forum=True)]
    env.gateway.topics = {FORUM: [ForumTopic(1, "General", closed=True), ForumTopic(9, "Sales")]}
    await env.groups.import_groups(UID)

    forum_id = int(await env.fetchval("SELECT group_id FROM groups WHERE user_id = $1", UID))
    assert await _status(env, forum_id) == ("disabled", "TOPIC_CLOSED")


async def test_a_forum_whose_topics_cannot_be_read_keeps_the_ones_known(env: Env) -> None:
    _, forum_id = await _imported(env)
    env.gateway.topics_error = GroupClosed("CHANNEL_PRIVATE")

    await env.groups.import_groups(UID)

    assert await env.fetchval("SELECT count(*) FROM group_topics WHERE group_id = $1", forum_id) == 4
    assert await _status(env, forum_id) == ("active", "")


async def test_the_claim_of_a_send_carries_the_forums_chosen_topic(env: Env) -> None:
    topics, forum_id = await _imported(env)
    await topics.choose(UID, forum_id, 9)
    async with env.db.transaction() as conn:
        message_id = await conn.fetchval(
            "INSERT INTO messages (user_id, version, text) VALUES ($1, 1, 'hi') RETURNING message_id", UID)
        round_id = await conn.fetchval(
            "INSERT INTO rounds (user_id, message_id, planned_at) VALUES ($1, $2, now()) RETURNING round_id",
            UID, message_id)
        await conn.execute("""INSERT INTO campaigns (user_id, status, started_at)
                              VALUES ($1, 'running', now() - interval '1 minute')
                              ON CONFLICT (user_id, account_id) DO UPDATE SET status = 'running',
                                  started_at = now() - interval '1 minute'""", UID)
        ids = []
        for peer in (FORUM, PLAIN):
            ids.append(await conn.fetchval(
                """INSERT INTO attempts (round_id, group_id, peer_id, access_hash, kind)
                   SELECT $1, group_id, peer_id, access_hash, kind FROM groups WHERE user_id = $2 AND peer_id = $3
                   RETURNING attempt_id""", round_id, UID, peer))
    async with env.db.connection() as conn:
        forum_claim, _ = await attempts.claim(conn, round_id, ids[0], message_id)
        plain_claim, _ = await attempts.claim(conn, round_id, ids[1], message_id)
    assert forum_claim is not None and forum_claim.topic_id == 9
    assert plain_claim is not None and plain_claim.topic_id is None
