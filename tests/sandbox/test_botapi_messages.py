"""Bot API conformance: sending, editing, deleting and copying, through a real aiogram Bot and raw HTTP."""

from __future__ import annotations

import pytest
from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from tests.sandbox.conftest import USER, Sandbox

NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message")


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=d, callback_data=d) for d in data]])


async def test_send_message_result_is_a_telegram_message(sandbox: Sandbox, bot: Bot) -> None:
    me = await bot.get_me()
    sent = await bot.send_message(USER, "hello", reply_markup=keyboard("a:1"))

    assert me.is_bot and me.id == 123456789
    assert sent.from_user is not None and sent.from_user.id == me.id
    assert sent.chat.id == USER and sent.chat.type == "private" and sent.chat.first_name == "Tess"
    assert sent.text == "hello"
    assert sent.reply_markup is not None
    assert sent.reply_markup.model_dump(exclude_none=True) == keyboard("a:1").model_dump(exclude_none=True)
    second = await bot.send_message(USER, "again")
    assert second.message_id == sent.message_id + 1
    chat = await sandbox.client.chat(USER)
    assert [(m["from"], m["text"], m["edited"], m["deleted"]) for m in chat] == [
        ("bot", "hello", False, False), ("bot", "again", False, False)]
    assert chat[0]["reply_markup"] == {"inline_keyboard": [[{"text": "a:1", "callback_data": "a:1"}]]}


async def test_message_ids_are_shared_by_both_sides_of_a_chat(sandbox: Sandbox, bot: Bot) -> None:
    first = await bot.send_message(USER, "bot")
    user_message = await sandbox.client.send_text(USER, "user")
    reply = await bot.send_message(USER, "bot again", reply_to_message_id=user_message)

    assert user_message == first.message_id + 1
    assert reply.message_id == user_message + 1
    assert reply.reply_to_message is not None and reply.reply_to_message.text == "user"


async def test_method_names_are_case_insensitive_and_every_body_type_works(sandbox: Sandbox) -> None:
    status_json, by_json = await sandbox.raw("SENDMESSAGE", json={"chat_id": USER, "text": "json"})
    status_form, by_form = await sandbox.raw("sendmessage", data={"chat_id": str(USER), "text": "form"})
    status_get, by_get = await sandbox.raw(f"getMe?x={USER}", http="GET")

    assert (status_json, status_form, status_get) == (200, 200, 200)
    assert by_json["result"]["text"] == "json" and by_form["result"]["text"] == "form"
    assert by_get["result"]["is_bot"] is True
    events = await sandbox.client.events()
    assert [e["method"] for e in events] == ["sendMessage", "sendMessage", "getMe"]


async def test_edit_text_and_markup_are_reflected_in_the_chat(sandbox: Sandbox, bot: Bot) -> None:
    sent = await bot.send_message(USER, "menu", reply_markup=keyboard("a", "b"))
    edited = await bot.edit_message_text("menu 2", chat_id=USER, message_id=sent.message_id,
                                         reply_markup=keyboard("c"))
    assert isinstance(edited, type(sent)) and edited.edit_date is not None and edited.text == "menu 2"

    await bot.edit_message_reply_markup(chat_id=USER, message_id=sent.message_id, reply_markup=keyboard("d"))
    view = (await sandbox.client.chat(USER))[0]
    assert view["text"] == "menu 2" and view["edited"] is True
    assert view["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "d"

    # an edit without reply_markup removes the inline keyboard, as on Telegram
    await bot.edit_message_text("plain", chat_id=USER, message_id=sent.message_id)
    assert (await sandbox.client.chat(USER))[0]["reply_markup"] is None


async def test_not_modified_edit_fails_as_on_telegram(sandbox: Sandbox, bot: Bot) -> None:
    sent = await bot.send_message(USER, "<b>same</b>", parse_mode="HTML", reply_markup=keyboard("x"))

    with pytest.raises(TelegramBadRequest) as same_text:
        await bot.edit_message_text("<b>same</b>", chat_id=USER, message_id=sent.message_id, parse_mode="HTML",
                                    reply_markup=keyboard("x"))
    with pytest.raises(TelegramBadRequest) as same_markup:
        await bot.edit_message_reply_markup(chat_id=USER, message_id=sent.message_id, reply_markup=keyboard("x"))
    # same text but different formatting is a change
    await bot.edit_message_text("same", chat_id=USER, message_id=sent.message_id, reply_markup=keyboard("x"))

    assert same_text.value.message == NOT_MODIFIED
    assert same_markup.value.message == NOT_MODIFIED


async def test_edit_and_delete_of_missing_messages(sandbox: Sandbox, bot: Bot) -> None:
    sent = await bot.send_message(USER, "bye")
    assert await bot.delete_message(USER, sent.message_id) is True

    with pytest.raises(TelegramBadRequest) as edit_missing:
        await bot.edit_message_text("x", chat_id=USER, message_id=sent.message_id)
    with pytest.raises(TelegramBadRequest) as delete_again:
        await bot.delete_message(USER, sent.message_id)
    with pytest.raises(TelegramBadRequest) as edit_never:
        await bot.edit_message_text("x", chat_id=USER, message_id=999)

    assert edit_missing.value.message == "Bad Request: message to edit not found"
    assert edit_never.value.message == "Bad Request: message to edit not found"
    assert delete_again.value.message == "Bad Request: message to delete not found"
    assert (await sandbox.client.chat(USER))[0]["deleted"] is True


async def test_user_messages_can_be_deleted_but_not_edited(sandbox: Sandbox, bot: Bot) -> None:
    secret = await sandbox.client.send_text(USER, "1 2 3 4 5")

    with pytest.raises(TelegramBadRequest) as edit_user:
        await bot.edit_message_text("x", chat_id=USER, message_id=secret)
    assert await bot.delete_message(USER, secret) is True

    assert edit_user.value.message == "Bad Request: message can't be edited"
    view = (await sandbox.client.chat(USER))[0]
    assert view["from"] == "user" and view["deleted"] is True and view["text"] == "1 2 3 4 5"


async def test_text_errors_are_worded_as_telegram_words_them(sandbox: Sandbox, bot: Bot) -> None:
    cases = {
        "": "Bad Request: message text is empty",
        "   \n ": "Bad Request: message text is empty",
        "x" * 4097: "Bad Request: message is too long",
        # the limit counts UTF-16 code units: 2049 emoji outside the BMP are 4098 units
        "\U0001F600" * 2049: "Bad Request: message is too long",
    }
    for text, description in cases.items():
        with pytest.raises(TelegramBadRequest) as info:
            await bot.send_message(USER, text)
        assert info.value.message == description
    # the limit counts characters after entity parsing: 4096 letters wrapped in tags fit
    long = await bot.send_message(USER, "<b>" + "y" * 4096 + "</b>", parse_mode="HTML")
    assert long.text is not None and len(long.text) == 4096
    emoji = await bot.send_message(USER, "\U0001F600" * 2048)
    assert emoji.text is not None and len(emoji.text) == 2048

    status, answer = await sandbox.raw("sendMessage", json={"chat_id": USER, "text": ""})
    assert status == 400
    assert answer == {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}


async def test_caption_limit_and_edit_caption(sandbox: Sandbox, bot: Bot) -> None:
    photo = "https://example.com/cat.jpg"
    with pytest.raises(TelegramBadRequest) as too_long:
        await bot.send_photo(USER, photo, caption="c" * 1025)
    with pytest.raises(TelegramBadRequest) as too_long_utf16:
        await bot.send_photo(USER, photo, caption="\U0001F600" * 513)
    sent = await bot.send_photo(USER, photo, caption="c" * 1024)
    edited = await bot.edit_message_caption(chat_id=USER, message_id=sent.message_id, caption="<i>new</i>",
                                            parse_mode="HTML")
    text_message = await bot.send_message(USER, "text")
    with pytest.raises(TelegramBadRequest) as no_caption:
        await bot.edit_message_caption(chat_id=USER, message_id=text_message.message_id, caption="x")
    with pytest.raises(TelegramBadRequest) as no_text:
        await bot.edit_message_text("x", chat_id=USER, message_id=sent.message_id)

    assert too_long.value.message == "Bad Request: message caption is too long"
    assert too_long_utf16.value.message == "Bad Request: message caption is too long"
    assert not isinstance(edited, bool) and edited.caption == "new"
    assert edited.caption_entities is not None and edited.caption_entities[0].type == "italic"
    assert no_caption.value.message == "Bad Request: there is no caption in the message to edit"
    assert no_text.value.message == "Bad Request: there is no text in the message to edit"
    view = (await sandbox.client.chat(USER))[0]
    assert view["text"] == "new" and view["edited"] is True and view["media"]["kind"] == "photo"


async def test_callback_data_over_64_bytes_is_rejected(sandbox: Sandbox, bot: Bot) -> None:
    fits = "é" * 32  # 64 bytes in UTF-8
    await bot.send_message(USER, "ok", reply_markup=keyboard(fits))
    with pytest.raises(TelegramBadRequest) as info:
        await bot.send_message(USER, "too long", reply_markup=keyboard(fits + "x"))

    assert info.value.message == "Bad Request: BUTTON_DATA_INVALID"
    assert [m["text"] for m in await sandbox.client.chat(USER)] == ["ok"]


async def test_unknown_chat_and_blocked_user(sandbox: Sandbox, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest) as unknown:
        await bot.send_message(424242, "hi")
    await sandbox.client.block(USER)
    with pytest.raises(TelegramForbiddenError) as blocked:
        await bot.send_message(USER, "hi")
    with pytest.raises(TelegramForbiddenError):
        await bot.send_photo(USER, "https://example.com/a.png")
    status, answer = await sandbox.raw("sendMessage", json={"chat_id": USER, "text": "hi"})

    assert unknown.value.message == "Bad Request: chat not found"
    assert blocked.value.message == "Forbidden: bot was blocked by the user"
    assert (status, answer) == (403, {"ok": False, "error_code": 403,
                                      "description": "Forbidden: bot was blocked by the user"})
    assert (await sandbox.client.user(USER))["blocked"] is True
    # writing to the bot again restarts it
    await sandbox.client.send_text(USER, "/start")
    assert (await bot.send_message(USER, "welcome back")).text == "welcome back"


async def test_unknown_method_and_bad_tokens(sandbox: Sandbox, bot: Bot) -> None:
    status, answer = await sandbox.raw("sendTelepathy", json={})
    assert (status, answer) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})

    status, answer = await sandbox.raw("getMe", token="not-a-token")
    assert (status, answer) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})

    await bot.get_me()  # the first token seen for a bot id is its token
    wrong = sandbox.bot("123456789:another-secret")
    try:
        with pytest.raises(TelegramUnauthorizedError) as info:
            await wrong.get_me()
    finally:
        await wrong.session.close()
    assert info.value.message == "Unauthorized"

    from aiogram.methods import TelegramMethod
    from aiogram.types import User

    class SendTelepathy(TelegramMethod[User]):
        __returning__ = User
        __api_method__ = "sendTelepathy"

    with pytest.raises(TelegramNotFound):
        await bot(SendTelepathy())


async def test_reply_keyboard_is_shown_until_removed(sandbox: Sandbox, bot: Bot) -> None:
    share = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="Share my number", request_contact=True)],
                                          [KeyboardButton(text="Cancel")]], resize_keyboard=True)
    sent = await bot.send_message(USER, "your phone?", reply_markup=share)
    assert sent.reply_markup is None  # Telegram echoes inline keyboards only
    user = await sandbox.client.user(USER)
    assert user["keyboard"]["keyboard"][0][0] == {"text": "Share my number", "request_contact": True}
    assert (await sandbox.client.chat(USER))[0]["reply_markup"]["keyboard"][1] == [{"text": "Cancel"}]

    await bot.send_message(USER, "thanks", reply_markup=ReplyKeyboardRemove())
    assert (await sandbox.client.user(USER))["keyboard"] is None
    assert (await sandbox.client.chat(USER))[1]["reply_markup"] == {"remove_keyboard": True}


async def test_copy_message_and_chat_action(sandbox: Sandbox, bot: Bot) -> None:
    await sandbox.client.create_user(2002, "Other")
    original = await sandbox.client.send_photo(USER, caption="bold pic",
                                               entities=[{"type": "bold", "offset": 0, "length": 4}])
    copied = await bot.copy_message(2002, USER, original)
    with pytest.raises(TelegramBadRequest) as missing:
        await bot.copy_message(2002, USER, 999)
    assert await bot.send_chat_action(USER, "typing") is True
    with pytest.raises(TelegramBadRequest) as bad_action:
        await bot.send_chat_action(USER, "dancing")

    view = (await sandbox.client.chat(2002))[0]
    assert view["message_id"] == copied.message_id and view["from"] == "bot"
    assert view["text"] == "bold pic" and view["entities"] == [{"type": "bold", "offset": 0, "length": 4}]
    source = (await sandbox.client.chat(USER))[0]
    assert view["media"]["file_id"] == source["media"]["file_id"]
    assert missing.value.message == "Bad Request: message to copy not found"
    assert bad_action.value.message == "Bad Request: wrong parameter action in request"
    assert (await sandbox.client.user(USER))["chat_action"] == "typing"


async def test_set_my_commands_and_get_chat(sandbox: Sandbox, bot: Bot) -> None:
    from aiogram.types import BotCommand

    commands = [BotCommand(command="start", description="Main menu"), BotCommand(command="help", description="How")]
    assert await bot.set_my_commands(commands) is True
    assert [(c.command, c.description) for c in await bot.get_my_commands()] == [
        ("start", "Main menu"), ("help", "How")]
    with pytest.raises(TelegramBadRequest):
        await bot.set_my_commands([BotCommand(command="Bad Command", description="x")])
    chat = await bot.get_chat(USER)
    assert chat.id == USER and chat.first_name == "Tess" and chat.username == "tess"


async def test_malformed_parameters_answer_400_not_500(sandbox: Sandbox) -> None:
    status, answer = await sandbox.raw("sendMessage", json={"chat_id": USER, "text": "x",
                                                            "reply_parameters": {"message_id": "abc"}})
    assert status == 400 and answer["ok"] is False and answer["description"].startswith("Bad Request: ")
    status, answer = await sandbox.raw("sendMessage", json={"chat_id": USER, "text": "x", "reply_markup": "{"})
    assert (status, answer["description"]) == (400, "Bad Request: can't parse reply keyboard markup JSON object")
