from __future__ import annotations

import pytest

from services.messages import MediaNotFound, MessageDraft, MessageInvalid, MessageProblem, MessageService
from tests.integration.services_support import Env, make_env

pytestmark = pytest.mark.integration

UID = 11
BOLD = [{"type": "bold", "offset": 0, "length": 5}, {"type": "text_link", "offset": 6, "length": 4,
                                                     "url": "https://example.org"}]


@pytest.fixture
def env(db_pool) -> Env:
    return make_env(db_pool)


def test_validation_counts_utf16_units() -> None:
    assert MessageService.validate(MessageDraft("")) == MessageProblem("empty", 0, 4096)
    assert MessageService.validate(MessageDraft(" \n ")) == MessageProblem("empty", 3, 4096)
    assert MessageService.validate(MessageDraft("x" * 4096)) is None
    assert MessageService.validate(MessageDraft("x" * 4097)) == MessageProblem("too_long", 4097, 4096)
    assert MessageService.validate(MessageDraft("🎉" * 2049)) == MessageProblem("too_long", 4098, 4096)
    assert MessageService.validate(MessageDraft("", media_id=1)) is None
    assert MessageService.validate(MessageDraft("x" * 1025, media_id=1)) == MessageProblem("too_long", 1025, 1024)


async def test_each_save_is_a_new_version_with_entities_kept(env: Env) -> None:
    assert await env.messages.current(UID) is None
    first = await env.messages.save(UID, MessageDraft("Hello there", BOLD))
    second = await env.messages.save(UID, MessageDraft("Second " + "y" * 60))
    assert (first.version, second.version) == (1, 2)
    assert second.message_id != first.message_id

    current = await env.messages.current(UID)
    assert current is not None and current.version == 2 and current.media_id is None
    assert current.preview == ("Second " + "y" * 60)[:50] + "…"
    assert await env.fetchval("SELECT count(*) FROM messages WHERE user_id = $1", UID) == 2
    old = await env.fetchval("SELECT entities::text FROM messages WHERE message_id = $1", first.message_id)
    assert "text_link" in old and "https://example.org" in old


async def test_entities_round_trip_exactly(env: Env) -> None:
    await env.messages.save(UID, MessageDraft("Hello link", BOLD))
    current = await env.messages.current(UID)
    assert current is not None and current.entities == BOLD and current.text == "Hello link"


async def test_media_is_stored_once_and_used_by_a_caption_message(env: Env) -> None:
    data = b"\x89PNG" + bytes(range(256)) * 4
    media_id = await env.messages.store_media(data, "photo", "pic.png", "image/png", bot_file_id="AgAD")
    assert await env.messages.store_media(data, "photo", "pic.png", "image/png") == media_id
    assert await env.messages.store_media(data, "document", "pic.png") != media_id
    assert await env.messages.media_data(media_id) == data

    saved = await env.messages.save(UID, MessageDraft("caption", [], media_id))
    current = await env.messages.current(UID)
    assert current is not None and current.message_id == saved.message_id
    assert (current.media_id, current.media_kind, current.media_filename, current.media_bot_file_id) == (
        media_id, "photo", "pic.png", "AgAD")

    # media without a caption is a valid message
    assert (await env.messages.save(UID, MessageDraft("", [], media_id))).version == 2


async def test_invalid_drafts_are_refused_without_a_new_version(env: Env) -> None:
    with pytest.raises(MessageInvalid) as info:
        await env.messages.save(UID, MessageDraft("x" * 5000))
    assert info.value.problem == MessageProblem("too_long", 5000, 4096)
    with pytest.raises(MessageInvalid):
        await env.messages.save(UID, MessageDraft(""))
    with pytest.raises(MediaNotFound):
        await env.messages.save(UID, MessageDraft("cap", [], 123456))
    with pytest.raises(ValueError):
        await env.messages.store_media(b"x", "sticker")  # type: ignore[arg-type]
    assert await env.fetchval("SELECT count(*) FROM messages") == 0


async def test_draft_survives_the_fsm_as_json(env: Env) -> None:
    draft = MessageDraft("t", BOLD, 5)
    assert MessageDraft.from_dict(draft.to_dict()) == draft


async def test_a_running_broadcast_sees_the_new_version_for_its_next_round(env: Env) -> None:
    await env.ready(UID)
    await env.campaigns.start(UID)
    before = (await env.messages.current(UID)).message_id  # type: ignore[union-attr]
    await env.messages.save(UID, MessageDraft("new text"))
    after = await env.messages.current(UID)
    assert after is not None and after.message_id != before and after.version == 2
    # the campaign keeps running; the engine snapshots the latest message_id when it creates a round
    assert await env.fetchval("SELECT status FROM campaigns WHERE user_id = $1", UID) == "running"
