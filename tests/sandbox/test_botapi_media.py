"""Files and media: uploads (multipart), file ids, URLs, getFile and downloads, and every kind a user sends."""

from __future__ import annotations

import io

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile, InputMediaPhoto, InputMediaVideo, Update

from sandbox.chats import image_size, make_png
from tests.sandbox.conftest import TOKEN, USER, Sandbox


async def download(bot: Bot, file_id: str) -> bytes:
    file = await bot.get_file(file_id)
    assert file.file_path is not None
    buffer = await bot.download_file(file.file_path)
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue()


async def test_user_photo_can_be_fetched_and_downloaded_by_the_bot(sandbox: Sandbox, bot: Bot) -> None:
    await sandbox.client.send_photo(USER, caption="look", entities=[{"type": "italic", "offset": 0, "length": 4}])
    message = (await bot.get_updates())[0].message

    assert message is not None and message.photo is not None and message.caption == "look"
    assert message.caption_entities is not None and message.caption_entities[0].type == "italic"
    largest = message.photo[-1]
    data = await download(bot, largest.file_id)
    assert data.startswith(b"\x89PNG") and image_size(data) == (largest.width, largest.height) == (320, 320)
    assert largest.file_size == len(data)


async def test_uploaded_photo_and_document_round_trip(sandbox: Sandbox, bot: Bot) -> None:
    png = make_png(64, 48, (10, 20, 30))
    photo = await bot.send_photo(USER, BufferedInputFile(png, "pic.png"), caption="<b>up</b>", parse_mode="HTML")
    document = await bot.send_document(USER, BufferedInputFile(b"hello file", "notes.txt"))

    assert photo.photo is not None and (photo.photo[-1].width, photo.photo[-1].height) == (64, 48)
    assert photo.caption == "up" and photo.caption_entities is not None
    assert await download(bot, photo.photo[-1].file_id) == png
    assert document.document is not None and document.document.file_name == "notes.txt"
    assert document.document.mime_type == "text/plain"
    assert await download(bot, document.document.file_id) == b"hello file"
    # a file id sends the same file again
    again = await bot.send_photo(USER, photo.photo[-1].file_id)
    assert again.photo is not None and again.photo[-1].file_id == photo.photo[-1].file_id
    media = [m["media"] for m in await sandbox.client.chat(USER)]
    assert [m["kind"] for m in media] == ["photo", "document", "photo"]
    assert await sandbox.client.file_bytes(media[1]["file_id"]) == b"hello file"


async def test_a_file_sent_in_the_field_itself_is_accepted(sandbox: Sandbox) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(USER))
    form.add_field("caption", "raw upload")
    form.add_field("photo", make_png(8, 8, (1, 2, 3)), filename="p.png", content_type="image/png")
    status, answer = await sandbox.raw("sendPhoto", data=form)

    assert status == 200 and answer["result"]["caption"] == "raw upload"
    assert answer["result"]["photo"][-1]["width"] == 8


async def test_urls_give_placeholders_and_animation_is_also_a_document(sandbox: Sandbox, bot: Bot) -> None:
    video = await bot.send_video(USER, "https://example.com/clip.mp4", caption="clip")
    gif = await bot.send_animation(USER, "https://example.com/funny.gif")

    assert video.video is not None and video.video.duration >= 1 and video.caption == "clip"
    assert gif.animation is not None and gif.document is not None
    assert gif.animation.file_id == gif.document.file_id
    assert await download(bot, video.video.file_id)  # a placeholder is still a downloadable file
    with pytest.raises(TelegramBadRequest) as missing:
        await bot.send_photo(USER, photo="")
    with pytest.raises(TelegramBadRequest) as wrong_kind:
        await bot.send_photo(USER, video.video.file_id)
    assert missing.value.message == "Bad Request: there is no photo in the request"
    assert wrong_kind.value.message == "Bad Request: can't use file of type Video as Photo"


async def test_get_file_and_download_errors(sandbox: Sandbox, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest) as info:
        await bot.get_file("nope")
    assert info.value.message == "Bad Request: invalid file_id"
    async with aiohttp.ClientSession() as http, http.get(f"{sandbox.url}/file/bot{TOKEN}/photos/x.png") as resp:
        assert resp.status == 404
        assert await resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_every_kind_a_user_sends_parses_as_an_aiogram_update(sandbox: Sandbox) -> None:
    client = sandbox.client
    await client.send_contact(USER, "+15550001001")
    await client.send_contact(USER, "+15550009999", user_id=777, first_name="Friend")
    await client.send_location(USER, 1.5, 2.5)
    await client.send_poll(USER, "Lunch?", ["Yes", "No", "Later"])
    await client.send_sticker(USER)
    await client.send_voice(USER)
    await client.send_media(USER, "video", caption="v")
    await client.send_media(USER, "document", caption="d", file_name="cv.pdf")
    await client.send_media(USER, "animation")
    album = await client.send_media_group(USER, [{"photo": {"caption": "a"}}, {"photo": {}}, {"video": {}}])

    status, answer = await sandbox.raw("getUpdates", json={})
    assert status == 200
    messages = [Update.model_validate(u).message for u in answer["result"]]
    assert all(m is not None for m in messages)
    kinds = [m.content_type for m in messages if m is not None]
    assert kinds == ["contact", "contact", "location", "poll", "sticker", "voice", "video", "document",
                     "animation", "photo", "photo", "video"]
    own, other = messages[0], messages[1]
    assert own is not None and own.contact is not None and own.contact.user_id == USER
    assert other is not None and other.contact is not None and other.contact.user_id == 777
    group_ids = {m.media_group_id for m in messages[-3:] if m is not None}
    assert len(group_ids) == 1 and None not in group_ids
    assert [m.message_id for m in messages[-3:] if m is not None] == album
    chat = await client.chat(USER)
    assert chat[0]["media"]["kind"] == "contact" and chat[0]["media"]["phone_number"] == "+15550001001"
    assert chat[9]["text"] == "a" and chat[9]["media_group_id"] == chat[10]["media_group_id"]


async def test_send_media_group_shows_one_album_and_refuses_what_telegram_refuses(sandbox: Sandbox,
                                                                                  bot: Bot) -> None:
    png = make_png(16, 16, (9, 9, 9))
    first = await bot.send_photo(USER, BufferedInputFile(png, "a.png"))
    assert first.photo is not None
    sent = await bot.send_media_group(USER, [
        InputMediaPhoto(media=first.photo[-1].file_id, caption="<b>Two</b> items", parse_mode="HTML"),
        InputMediaVideo(media=BufferedInputFile(b"video bytes", "v.mp4")),
    ])
    assert [m.content_type for m in sent] == ["photo", "video"]
    assert sent[0].media_group_id is not None and sent[0].media_group_id == sent[1].media_group_id
    assert sent[0].caption == "Two items" and sent[0].caption_entities is not None and sent[1].caption is None
    chat = await sandbox.client.chat(USER)
    assert [m["media_group_id"] for m in chat[-2:]] == [sent[0].media_group_id] * 2
    assert await sandbox.client.file_bytes(chat[-1]["media"]["file_id"]) == b"video bytes"

    with pytest.raises(TelegramBadRequest, match="number of media"):
        await bot.send_media_group(USER, [InputMediaPhoto(media=first.photo[-1].file_id)])
    status, answer = await sandbox.raw("sendMediaGroup", json={
        "chat_id": USER, "media": [{"type": "photo", "media": first.photo[-1].file_id},
                                   {"type": "document", "media": first.photo[-1].file_id}]})
    assert status == 400 and "together" in answer["description"]
    assert len(await sandbox.client.chat(USER)) == len(chat)  # nothing sent by a refused call
