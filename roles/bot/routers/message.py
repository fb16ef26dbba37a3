"""U4: the message to broadcast: capture (text or one media with caption), preview, save.

The preview is sent with the user's own entities and no parse mode, so it looks exactly as
it will be posted. Media is downloaded through the Bot API and stored by MessageService.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from aiogram import Bot, flags
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, MessageEntity

from accounts.gateway import MediaKind
from roles.bot import callbacks as cb
from roles.bot import keyboards as kb
from roles.bot import texts
from roles.bot.middlewares import mark
from roles.bot.routers import Routes
from roles.bot.states import Input
from roles.bot.ui import chat_id_of, not_command, show
from services.campaigns import CampaignService
from services.messages import MediaNotFound, MessageDraft, MessageInvalid, MessageService

log = logging.getLogger(__name__)
routes = Routes("message")

DRAFT = "draft"
DRAFT_KIND = "draft_kind"
DRAFT_FILE = "draft_file"
ALBUM = "album"
BOT_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the Bot API serves files up to 20 MB


def _entities(raw: list[MessageEntity] | None) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json", exclude_none=True) for e in raw or []]


async def send_preview(
    bot: Bot,
    chat_id: int,
    text: str,
    entities: list[dict[str, Any]],
    kind: str | None,
    file_id: str,
    markup: InlineKeyboardMarkup,
) -> None:
    """The message as it will be posted (text or media + caption, same entities), with ``markup``."""
    ents = [MessageEntity.model_validate(e) for e in entities] or None
    caption = text or None
    if kind and file_id:
        common: dict[str, Any] = {
            "caption": caption,
            "caption_entities": ents,
            "parse_mode": None,
            "reply_markup": markup,
        }
        if kind == "photo":
            await bot.send_photo(chat_id, file_id, **common)
        elif kind == "video":
            await bot.send_video(chat_id, file_id, **common)
        elif kind == "animation":
            await bot.send_animation(chat_id, file_id, **common)
        else:
            await bot.send_document(chat_id, file_id, **common)
        return
    await bot.send_message(chat_id, text or f"[{kind}]", entities=ents, parse_mode=None, reply_markup=markup)


@routes.callback_query(cb.Msg.on(cb.MsgAction.menu))
@flags.leave_input("answer")
async def message_menu(
    query: CallbackQuery,
    bot: Bot,
    messages: MessageService,
) -> None:
    current = await messages.current(query.from_user.id)
    mark("U4.1", "set" if current else "not_set")
    if current is None:
        await show(bot, query, texts.MSG_NOT_SET, kb.message_menu())
        return
    await show(bot, query, texts.MSG_CURRENT)
    await send_preview(
        bot,
        query.from_user.id,
        current.text,
        current.entities,
        current.media_kind,
        current.media_bot_file_id,
        kb.message_menu(),
    )


@routes.callback_query(cb.Msg.on(cb.MsgAction.set))
@flags.leave_input
async def message_set(
    query: CallbackQuery, bot: Bot, state: FSMContext
) -> None:
    mark("U4.2")
    await state.set_state(Input.msg_wait)
    await query.answer()
    await show(bot, query, texts.MSG_ASK, kb.cancel_only())


def _media_of(message: Message) -> tuple[MediaKind, str, str, str, int] | None:
    """(kind, file_id, filename, mime, size) of a supported media message."""
    if message.animation is not None:  # a GIF also carries ``document``; animation comes first
        a = message.animation
        return (
            "animation",
            a.file_id,
            a.file_name or "animation.mp4",
            a.mime_type or "video/mp4",
            a.file_size or 0,
        )
    if message.photo:
        p = message.photo[-1]  # the largest size
        return "photo", p.file_id, "photo.jpg", "image/jpeg", p.file_size or 0
    if message.video is not None:
        v = message.video
        return "video", v.file_id, v.file_name or "video.mp4", v.mime_type or "video/mp4", v.file_size or 0
    if message.document is not None:
        d = message.document
        return (
            "document",
            d.file_id,
            d.file_name or "document",
            d.mime_type or "application/octet-stream",
            d.file_size or 0,
        )
    return None


@routes.message(Input.msg_wait, not_command)
@routes.message(Input.msg_confirm, not_command)
async def capture(message: Message, bot: Bot, state: FSMContext, messages: MessageService) -> None:
    if message.media_group_id is not None:
        # an album arrives as several updates: answer its first part only
        if (await state.get_data()).get(ALBUM) != message.media_group_id:
            await state.update_data({ALBUM: message.media_group_id})
            mark("U4.5", "album")
            await message.answer(texts.MSG_UNSUPPORTED, reply_markup=kb.cancel_only())
        else:
            mark("U4.5", "album_part")
        return
    media = _media_of(message)
    if media is None and message.text is None:
        mark("U4.5", "unsupported")
        await message.answer(texts.MSG_UNSUPPORTED, reply_markup=kb.cancel_only())
        return
    if media is None:
        draft = MessageDraft(message.text or "", _entities(message.entities))
    else:
        draft = MessageDraft(message.caption or "", _entities(message.caption_entities), media_id=0)
    problem = MessageService.validate(draft)
    if problem is not None:
        mark("U4.6", problem.kind)
        text = (
            texts.MSG_EMPTY if problem.kind == "empty" else texts.msg_too_long(problem.length, problem.limit)
        )
        await state.set_state(Input.msg_wait)
        await message.answer(text, reply_markup=kb.cancel_only())
        return
    kind: str | None = None
    file_id = ""
    if media is not None:
        kind, file_id, _filename, _mime, size = media
        media_id = await _store(bot, messages, media) if size <= BOT_DOWNLOAD_LIMIT else None
        if media_id is None:
            mark("U4.3", "download_failed")
            await message.answer(texts.MSG_FILE_FAILED, reply_markup=kb.cancel_only())
            return
        draft = MessageDraft(draft.text, draft.entities, media_id)
    mark("U4.3")
    await state.set_state(Input.msg_confirm)
    await state.update_data({DRAFT: draft.to_dict(), DRAFT_KIND: kind, DRAFT_FILE: file_id})
    await message.answer(texts.MSG_PREVIEW_HEAD)
    await send_preview(bot, message.chat.id, draft.text, draft.entities, kind, file_id, kb.message_confirm())


async def _store(
    bot: Bot, messages: MessageService, media: tuple[MediaKind, str, str, str, int]
) -> int | None:
    kind, file_id, filename, mime, _ = media
    buffer = io.BytesIO()
    try:
        await bot.download(file_id, destination=buffer)
    except (TelegramAPIError, OSError, TimeoutError) as exc:
        log.warning("media download failed: %s", type(exc).__name__)
        return None
    return await messages.store_media(buffer.getvalue(), kind, filename, mime, bot_file_id=file_id)


@routes.callback_query(cb.Msg.on(cb.MsgAction.save), Input.msg_confirm)
async def save(
    query: CallbackQuery, bot: Bot, state: FSMContext, messages: MessageService, campaigns: CampaignService
) -> None:
    data = await state.get_data()
    raw = data.get(DRAFT)
    await query.answer()
    if not isinstance(raw, dict):
        mark("U4.4", "no_draft")
        await state.set_state(Input.msg_wait)
        await bot.send_message(chat_id_of(query), texts.MSG_SAVE_EXPIRED, reply_markup=kb.cancel_only())
        return
    try:
        await messages.save(query.from_user.id, MessageDraft.from_dict(raw))
    except MessageInvalid as exc:
        mark("U4.6", exc.problem.kind)
        await state.set_state(Input.msg_wait)
        await bot.send_message(
            chat_id_of(query),
            texts.msg_too_long(exc.problem.length, exc.problem.limit)
            if exc.problem.kind == "too_long"
            else texts.MSG_EMPTY,
            reply_markup=kb.cancel_only(),
        )
        return
    except MediaNotFound:
        mark("U4.4", "media_gone")
        await state.set_state(Input.msg_wait)
        await bot.send_message(chat_id_of(query), texts.MSG_SAVE_EXPIRED, reply_markup=kb.cancel_only())
        return
    mark("U4.4")
    await state.clear()
    running = (await campaigns.view(query.from_user.id)).running
    # the preview keeps its look; only its buttons go, and the outcome comes as a new message
    message = query.message
    if isinstance(message, Message):
        try:
            await bot.edit_message_reply_markup(
                chat_id=message.chat.id, message_id=message.message_id, reply_markup=None
            )
        except TelegramAPIError as exc:
            log.info("could not clear preview buttons: %s", type(exc).__name__)
    follow = kb.follow_up(await campaigns.missing(query.from_user.id), running)
    await bot.send_message(chat_id_of(query), texts.msg_saved(running), reply_markup=kb.next_step(follow))
