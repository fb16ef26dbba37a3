"""U4, U9: the messages to broadcast: capture (text, one media with caption, or an album),
preview, save; the list of messages in rotation, their previews, delete, add, rotation mode.

The preview is sent with the user's own entities and no parse mode, so it looks exactly as
it will be posted (an album as a media group, its buttons on a message below it, as a media
group carries none). Media is downloaded through the Bot API and stored by MessageService.
An album's parts arrive together through ``roles.bot.album.AlbumMiddleware``.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from aiogram import Bot, flags
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    InputMediaVideo,
    Message,
    MessageEntity,
)

from accounts.gateway import MediaKind
from roles.bot import callbacks as cb
from roles.bot import keyboards as kb
from roles.bot import texts
from roles.bot.middlewares import mark
from roles.bot.routers import Routes
from roles.bot.states import Input
from roles.bot.ui import chat_id_of, not_command, show
from services.campaigns import CampaignService
from services.messages import (
    ALBUM_MAX,
    ALBUM_MIN,
    MediaNotFound,
    MessageDraft,
    MessageInvalid,
    MessageLimitReached,
    MessageService,
    MessageView,
)

log = logging.getLogger(__name__)
routes = Routes("message")

DRAFT = "draft"
DRAFT_KIND = "draft_kind"
DRAFT_FILE = "draft_file"
PROMPT = "msg_prompt"  # the "send me the message" prompt, retitled as the preview heading
DRAFT_ALBUM = "draft_album"  # U9.3: [[kind, file_id], ...] of the album in the preview
TARGET = "msg_target"  # "add" (U9.2): the save adds a message; otherwise it replaces message 1
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


async def send_album_preview(
    bot: Bot, chat_id: int, text: str, entities: list[dict[str, Any]], items: list[tuple[str, str]],
    head: str, markup: InlineKeyboardMarkup,
) -> None:
    """U9.3: the album as a media group (the caption on its first item), then ``head`` with the buttons."""
    ents = [MessageEntity.model_validate(e) for e in entities] or None
    media: list[Any] = []
    for i, (kind, file_id) in enumerate(items):
        caption, caption_entities = (text or None, ents) if i == 0 else (None, None)
        if kind == "video":
            media.append(InputMediaVideo(media=file_id, caption=caption, caption_entities=caption_entities,
                                         parse_mode=None))
        else:
            media.append(InputMediaPhoto(media=file_id, caption=caption, caption_entities=caption_entities,
                                         parse_mode=None))
    try:
        await bot.send_media_group(chat_id, media)
    except TelegramAPIError as exc:  # e.g. a file id of another bot token: the buttons still come
        log.warning("album preview failed: %s", type(exc).__name__)
        head = f"{texts.MSG_ALBUM_NO_PREVIEW}\n{head}"
    await bot.send_message(chat_id, head, reply_markup=markup)


async def preview_view(
    bot: Bot, chat_id: int, view: MessageView, head: str, markup: InlineKeyboardMarkup
) -> None:
    """A stored message as it is posted; ``head`` goes with an album's buttons."""
    if view.is_album:
        await send_album_preview(bot, chat_id, view.text, view.entities,
                                 list(zip(view.album_kinds, view.album_file_ids, strict=True)), head, markup)
        return
    await send_preview(bot, chat_id, view.text, view.entities, view.media_kind, view.media_bot_file_id,
                       markup)


def _label(view: MessageView) -> str:
    return texts.msg_preview_label(view.media_kind, view.preview, len(view.album_kinds))


@routes.callback_query(cb.Msg.on(cb.MsgAction.menu))
@flags.leave_input("answer")
@flags.account_of_button
async def message_menu(
    query: CallbackQuery,
    bot: Bot,
    messages: MessageService,
) -> None:
    found = await messages.active(query.from_user.id)
    rotation = await messages.rotation(query.from_user.id)
    mark("U4.1", "set" if found else "not_set")
    if not found:
        await show(bot, query, texts.MSG_NOT_SET, kb.message_menu())
        return
    listing = texts.msg_list([_label(v) for v in found], messages.limit, rotation)
    keyboard = kb.message_menu(len(found), messages.limit, rotation)
    if len(found) >= 2:
        mark("U9.1", f"{len(found)}")
        await show(bot, query, listing, keyboard)
        return
    # one message: the list's line, then the message itself as it is posted (U4.1)
    await show(bot, query, listing)
    await preview_view(bot, query.from_user.id, found[0], texts.msg_view_head(1), keyboard)


@routes.callback_query(cb.Msg.on(cb.MsgAction.view))
@flags.leave_input("answer")
async def message_view(
    query: CallbackQuery, callback_data: cb.Msg, bot: Bot, messages: MessageService
) -> None:
    n = callback_data.n or 0
    view = await messages.get(query.from_user.id, n)
    if view is None:
        mark("U9.1", "view_gone")
        await bot.send_message(query.from_user.id, texts.MSG_GONE, reply_markup=kb.message_menu())
        return
    mark("U9.1", "view")
    await preview_view(bot, query.from_user.id, view, texts.msg_view_head(n), kb.message_view(n))


@routes.callback_query(cb.Msg.on(cb.MsgAction.delete))
@flags.leave_input("answer")
async def message_delete(
    query: CallbackQuery, callback_data: cb.Msg, bot: Bot, messages: MessageService
) -> None:
    n = callback_data.n or 0
    result = await messages.delete(query.from_user.id, n)
    if result.outcome == "not_found":
        mark("U9.6", "gone")
        await show(bot, query, texts.MSG_GONE, kb.message_menu(result.remaining, messages.limit))
        return
    mark("U9.6", "stopped" if result.stopped else "deleted")
    rotation = await messages.rotation(query.from_user.id)
    await show(bot, query, texts.msg_deleted(n, result.remaining, result.stopped),
               kb.message_menu(result.remaining, messages.limit, rotation))


@routes.callback_query(cb.Msg.on(cb.MsgAction.mode))
@flags.leave_input("answer")
async def message_rotation(
    query: CallbackQuery, callback_data: cb.Msg, bot: Bot, messages: MessageService
) -> None:
    mode = callback_data.rotation or "seq"
    await messages.set_rotation(query.from_user.id, mode)
    found = await messages.active(query.from_user.id)
    mark("U9.1", f"mode_{mode}")
    listing = texts.msg_list([_label(v) for v in found], messages.limit, mode)
    await show(bot, query, f"{texts.rotation_set(mode)}\n\n{listing}",
               kb.message_menu(len(found), messages.limit, mode))


@routes.callback_query(cb.Msg.on(cb.MsgAction.set))
@flags.leave_input
async def message_set(
    query: CallbackQuery, bot: Bot, state: FSMContext
) -> None:
    mark("U4.2")
    await state.set_state(Input.msg_wait)
    await query.answer()
    prompt = await show(bot, query, texts.MSG_ASK, kb.cancel_only())
    await state.update_data({PROMPT: prompt, TARGET: None})


@routes.callback_query(cb.Msg.on(cb.MsgAction.add))
@flags.leave_input
async def message_add(query: CallbackQuery, bot: Bot, state: FSMContext, messages: MessageService) -> None:
    await query.answer()
    count = await messages.count(query.from_user.id)
    if count >= messages.limit:
        mark("U9.2", "limit")
        rotation = await messages.rotation(query.from_user.id)
        await show(bot, query, texts.msg_limit(messages.limit),
                   kb.message_menu(count, messages.limit, rotation))
        return
    mark("U9.2")
    await state.set_state(Input.msg_wait)
    prompt = await show(bot, query, texts.MSG_ASK_ANOTHER, kb.cancel_only())
    await state.update_data({PROMPT: prompt, TARGET: "add"})


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


def _attributes(message: Message) -> tuple[int, int, float, str]:
    """(width, height, duration, thumbnail file_id) as the Bot API reported them (0 / "" if absent)."""
    item: Any = message.animation or message.video or message.document
    if item is None and message.photo:
        item = message.photo[-1]
    if item is None:
        return 0, 0, 0.0, ""
    thumb = getattr(item, "thumbnail", None)
    return (int(getattr(item, "width", 0) or 0), int(getattr(item, "height", 0) or 0),
            float(getattr(item, "duration", 0) or 0), thumb.file_id if thumb is not None else "")


@routes.message(Input.msg_wait, not_command)
@routes.message(Input.msg_confirm, not_command)
async def capture(message: Message, bot: Bot, state: FSMContext, messages: MessageService,
                  album: list[Message] | None = None) -> None:
    if message.media_group_id is not None:
        # the album middleware hands over every part with the first one
        await capture_album(album or [message], bot, state, messages)
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
        fits = size <= BOT_DOWNLOAD_LIMIT
        media_id = await _store(bot, messages, media, _attributes(message)) if fits else None
        if media_id is None:
            mark("U4.3", "download_failed")
            await message.answer(texts.MSG_FILE_FAILED, reply_markup=kb.cancel_only())
            return
        draft = MessageDraft(draft.text, draft.entities, media_id)
    mark("U4.3")
    await state.set_state(Input.msg_confirm)
    prompt = (await state.get_data()).get(PROMPT)
    await state.update_data({DRAFT: draft.to_dict(), DRAFT_KIND: kind, DRAFT_FILE: file_id, PROMPT: None})
    # one new message per step (Telegram allows about one a second per chat): the preview's heading
    # replaces the prompt above it, in place; a new heading only when that prompt is gone
    if not isinstance(prompt, int) or not await _retitle(bot, message.chat.id, prompt):
        await message.answer(texts.MSG_PREVIEW_HEAD)
    await send_preview(bot, message.chat.id, draft.text, draft.entities, kind, file_id, kb.message_confirm())


def _album_item(part: Message) -> tuple[MediaKind, str, str, str, int] | None:
    """A part of an album to broadcast: a photo or a video (documents and audio albums are not)."""
    media = _media_of(part)
    return media if media is not None and media[0] in ("photo", "video") else None


async def capture_album(parts: list[Message], bot: Bot, state: FSMContext, messages: MessageService) -> None:
    """U9.3: an album of 2-10 photos/videos with one caption; previewed as an album."""
    chat_id = parts[0].chat.id
    items = [_album_item(part) for part in parts]
    if any(item is None for item in items):
        mark("U4.5", "album_kinds")
        await bot.send_message(chat_id, texts.MSG_ALBUM_KINDS, reply_markup=kb.cancel_only())
        return
    if not ALBUM_MIN <= len(parts) <= ALBUM_MAX:  # Telegram sends 2-10; a part may have gone astray
        mark("U9.3", "album_size")
        await bot.send_message(chat_id, texts.MSG_ALBUM_SIZE, reply_markup=kb.cancel_only())
        return
    captioned = next((part for part in parts if part.caption), parts[0])
    draft = MessageDraft(captioned.caption or "", _entities(captioned.caption_entities),
                         album=[0] * len(parts))
    problem = MessageService.validate(draft)
    if problem is not None:
        mark("U4.6", problem.kind)
        await state.set_state(Input.msg_wait)
        await bot.send_message(chat_id, texts.msg_too_long(problem.length, problem.limit),
                               reply_markup=kb.cancel_only())
        return
    media_ids: list[int] = []
    for part, item in zip(parts, items, strict=True):
        assert item is not None
        fits = item[4] <= BOT_DOWNLOAD_LIMIT
        media_id = await _store(bot, messages, item, _attributes(part)) if fits else None
        if media_id is None:
            mark("U9.3", "download_failed")
            await bot.send_message(chat_id, texts.MSG_FILE_FAILED, reply_markup=kb.cancel_only())
            return
        media_ids.append(media_id)
    draft = MessageDraft(draft.text, draft.entities, album=media_ids)
    shown = [[item[0], item[1]] for item in items if item is not None]
    mark("U9.3")
    await state.set_state(Input.msg_confirm)
    prompt = (await state.get_data()).get(PROMPT)
    await state.update_data({DRAFT: draft.to_dict(), DRAFT_KIND: "album", DRAFT_FILE: "", DRAFT_ALBUM: shown,
                             PROMPT: None})
    if not isinstance(prompt, int) or not await _retitle(bot, chat_id, prompt):
        await bot.send_message(chat_id, texts.MSG_PREVIEW_HEAD)
    await send_album_preview(bot, chat_id, draft.text, draft.entities, [(k, f) for k, f in shown],
                             texts.MSG_PREVIEW_ALBUM, kb.message_confirm())


async def _retitle(bot: Bot, chat_id: int, message_id: int) -> bool:
    try:
        await bot.edit_message_text(text=texts.MSG_PREVIEW_HEAD, chat_id=chat_id, message_id=message_id,
                                    reply_markup=None)
    except TelegramAPIError as exc:
        log.info("could not turn the prompt into the preview heading: %s", type(exc).__name__)
        return False
    return True


async def _store(
    bot: Bot, messages: MessageService, media: tuple[MediaKind, str, str, str, int],
    attributes: tuple[int, int, float, str],
) -> int | None:
    kind, file_id, filename, mime, _ = media
    width, height, duration, thumb_id = attributes
    buffer = io.BytesIO()
    try:
        await bot.download(file_id, destination=buffer)
    except (TelegramAPIError, OSError, TimeoutError) as exc:
        log.warning("media download failed: %s", type(exc).__name__)
        return None
    thumb: bytes | None = None
    if thumb_id:
        thumb_buffer = io.BytesIO()
        try:
            await bot.download(thumb_id, destination=thumb_buffer)
            thumb = thumb_buffer.getvalue() or None
        except (TelegramAPIError, OSError, TimeoutError) as exc:  # the post goes without a thumbnail
            log.info("thumbnail download failed: %s", type(exc).__name__)
    return await messages.store_media(buffer.getvalue(), kind, filename, mime, bot_file_id=file_id,
                                      width=width, height=height, duration=duration, thumb=thumb)


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
    add = data.get(TARGET) == "add"
    try:
        await messages.save(query.from_user.id, MessageDraft.from_dict(raw), add=add)
    except MessageLimitReached as exc:
        mark("U9.2", "limit")
        await state.clear()
        await bot.send_message(chat_id_of(query), texts.msg_limit(exc.limit), reply_markup=kb.next_step([]))
        return
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
    saved = texts.msg_saved(running)
    if add:
        saved = texts.msg_added(await messages.count(query.from_user.id), running)
    await bot.send_message(chat_id_of(query), saved, reply_markup=kb.next_step(follow))
