"""Telegram's API methods, answered from the sandbox world.

``Dispatcher.call`` unwraps ``invokeWithLayer``/``initConnection``/``invokeWithoutUpdates``/
``invokeAfterMsg(s)``, runs the method and returns the serialised result, or raises
``RpcFailure`` with Telegram's error code and message (``FLOOD_WAIT_30``, ``SESSION_REVOKED``,
``PHONE_CODE_INVALID`` ...). World errors become RPC errors as Telegram sends them: wait errors
carry their seconds in the name; a world "network" fault is Telegram's ``-503 Timeout``.

An auth key stands for one login, then one session of the world (``session.KeyBinding``):
``auth.sendCode`` binds the key to the world's temporary session, a successful
``auth.signIn``/``auth.checkPassword`` to the durable one, ``auth.logOut`` unbinds it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

from telethon.tl import functions, types

from sandbox.mtproto import bridge, objects, srp
from sandbox.mtproto.session import AuthKeyRecord, KeyBinding, serialize
from sandbox.world import NETWORK, MediaIn, World, WorldError

logger = logging.getLogger(__name__)

WAIT_ERRORS: Final = frozenset({"FLOOD_WAIT", "SLOWMODE_WAIT", "FLOOD_PREMIUM_WAIT", "FLOOD_TEST_PHONE_WAIT"})
UPLOAD_PART_MAX: Final = 512 * 1024
UPLOAD_PARTS_MAX: Final = 4000
# Uploaded parts stay usable (for any number of sends) this long after their first part, as on
# Telegram, where a client may reuse an InputFile within its lifetime.
UPLOAD_LIFETIME: Final = 3600.0
UPLOADS_PER_KEY: Final = 16
# Given to the world when the SRP proof does not match: no real password equals it, so the world
# answers PASSWORD_HASH_INVALID and counts the attempt as it counts any wrong password.
_FAILED_PROOF: Final = "\x00srp proof mismatch\x00"
_WRAPPERS: Final = (
    functions.InvokeWithLayerRequest,
    functions.InitConnectionRequest,
    functions.InvokeWithoutUpdatesRequest,
    functions.InvokeAfterMsgRequest,
    functions.InvokeAfterMsgsRequest,
)


class RpcFailure(Exception):
    """An ``rpc_error`` to send back."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code} {message}")


def from_world(exc: WorldError) -> RpcFailure:
    if exc.name == NETWORK:
        return RpcFailure(-503, "Timeout")
    if exc.name == "CHAT_MIGRATED":
        # MTProto has no such error: the old basic group is deactivated and refuses the peer.
        return RpcFailure(400, "PEER_ID_INVALID")
    name = exc.name
    if name in WAIT_ERRORS and exc.seconds is not None:
        name = f"{name}_{exc.seconds}"
    return RpcFailure(exc.code, name)


def _digits_to_phone(raw: str) -> str:
    return "+" + raw.lstrip("+")


class Dispatcher:
    """Answers one request on behalf of an auth key (see the module docstring)."""

    def __init__(self, world: World, *, address: Callable[[], tuple[str, int]], dc_id: int = objects.DC_ID,
                 dc_options: Callable[[], list[tuple[int, str, int]]] | None = None) -> None:
        self.world = world
        self._address = address
        self.dc_id = dc_id  # the data centre this endpoint plays
        self._dc_options = dc_options  # every data centre of the sandbox: (id, host, port)
        self._verifiers: dict[tuple[str, str], srp.Verifier] = {}
        self._pts: dict[str, int] = {}  # account-wide update counter (basic groups), by phone
        self._channel_pts: dict[tuple[str, int], int] = {}
        self._known_groups: dict[tuple[str, int], dict[str, Any]] = {}
        self._upload_started: dict[tuple[int, int], float] = {}  # (id of the key's binding, file id)
        self._handlers: dict[type, Callable[[KeyBinding, Any, int], Awaitable[Any]]] = {
            functions.help.GetConfigRequest: self._get_config,
            functions.help.GetNearestDcRequest: self._nearest_dc,
            functions.PingRequest: self._ping,
            functions.auth.SendCodeRequest: self._send_code,
            functions.auth.ResendCodeRequest: self._resend_code,
            functions.auth.SignInRequest: self._sign_in,
            functions.auth.CancelCodeRequest: self._cancel_code,
            functions.account.GetPasswordRequest: self._get_password,
            functions.auth.CheckPasswordRequest: self._check_password,
            functions.auth.LogOutRequest: self._log_out,
            functions.users.GetUsersRequest: self._get_users,
            functions.updates.GetStateRequest: self._get_state,
            functions.updates.GetDifferenceRequest: self._get_difference,
            functions.updates.GetChannelDifferenceRequest: self._get_channel_difference,
            functions.messages.GetDialogsRequest: self._get_dialogs,
            functions.messages.GetChatsRequest: self._get_chats,
            functions.messages.GetMessagesRequest: self._get_messages,
            functions.channels.GetMessagesRequest: self._get_channel_messages,
            functions.messages.GetForumTopicsRequest: self._get_forum_topics,
            functions.messages.SendMessageRequest: self._send_message,
            functions.messages.SendMediaRequest: self._send_media,
            functions.messages.UploadMediaRequest: self._upload_media,
            functions.messages.SendMultiMediaRequest: self._send_multi_media,
            functions.upload.SaveFilePartRequest: self._save_file_part,
            functions.upload.SaveBigFilePartRequest: self._save_file_part,
        }

    async def call(self, record: AuthKeyRecord, request: Any, msg_id: int) -> bytes:
        while isinstance(request, _WRAPPERS):
            request = request.query
        handler = self._handlers.get(type(request))
        if handler is None:
            logger.info("MTProto method %s is not simulated", type(request).__name__)
            raise RpcFailure(400, "METHOD_INVALID")
        try:
            return serialize(await handler(record.binding, request, msg_id))
        except WorldError as exc:
            raise from_world(exc) from exc

    # --- connection -----------------------------------------------------------------------

    async def _get_config(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        host, port = self._address()
        listed = self._dc_options() if self._dc_options is not None else [(self.dc_id, host, port)]
        date = objects.now()
        return types.Config(
            date=date, expires=datetime.fromtimestamp(date.timestamp() + 3600, UTC), test_mode=False,
            this_dc=self.dc_id,
            dc_options=[types.DcOption(id=dc, ip_address=ip, port=p) for dc, ip, p in listed],
            dc_txt_domain_name="", chat_size_max=200, megagroup_size_max=200000, forwarded_count_max=100,
            online_update_period_ms=210000, offline_blur_timeout_ms=5000, offline_idle_timeout_ms=30000,
            online_cloud_timeout_ms=300000, notify_cloud_delay_ms=30000, notify_default_delay_ms=1500,
            push_chat_period_ms=60000, push_chat_limit=2, edit_time_limit=172800,
            revoke_time_limit=2147483647, revoke_pm_time_limit=2147483647, rating_e_decay=2419200,
            stickers_recent_limit=200,
            channels_read_media_period=604800, call_receive_timeout_ms=20000, call_ring_timeout_ms=90000,
            call_connect_timeout_ms=30000, call_packet_timeout_ms=10000, me_url_prefix="https://t.me/",
            caption_length_max=1024, message_length_max=4096, webfile_dc_id=objects.DC_ID)

    async def _nearest_dc(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        return types.NearestDc(country="ZZ", this_dc=self.dc_id, nearest_dc=self.dc_id)

    async def _ping(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        return types.Pong(msg_id=msg_id, ping_id=request.ping_id)

    # --- login ----------------------------------------------------------------------------

    @staticmethod
    def _sent_code(sent: dict[str, Any]) -> Any:
        return objects.sent_code(sent)

    async def _send_code(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        if request.api_id <= 0 or not request.api_hash:
            raise RpcFailure(400, "API_ID_INVALID")
        self._check_home_dc(request.phone_number)
        sent = await self.world.send_code(_digits_to_phone(request.phone_number), session=binding.login_token)
        binding.phone, binding.login_token = str(sent["phone"]), str(sent["session"])
        return self._sent_code(sent)

    def _check_home_dc(self, phone_number: str) -> None:
        """An account that lives in another data centre: Telegram names it (the client moves there)."""
        home = self.world.home_dc(_digits_to_phone(phone_number))
        if home is not None and home != self.dc_id:
            raise RpcFailure(303, f"PHONE_MIGRATE_{home}")

    async def _resend_code(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        sent = await self.world.resend_code(_digits_to_phone(request.phone_number), binding.login_token or "",
                                            request.phone_code_hash)
        binding.login_token = str(sent["session"])
        return self._sent_code(sent)

    async def _cancel_code(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        if binding.login_token:
            await self.world.cancel_login(binding.login_token)
        binding.login_token = None
        return True

    def _signed_in(self, binding: KeyBinding, done: dict[str, Any]) -> Any:
        binding.session_token, binding.login_token, binding.srp = str(done["session"]), None, None
        binding.phone = str(done["phone"])
        me = bridge.Me(int(done["user_id"]), str(done["first_name"]), binding.phone)
        logger.info("MTProto key signed in as user %s", me.user_id)
        return types.auth.Authorization(user=objects.me_user(me))

    async def _sign_in(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        done = await self.world.sign_in(_digits_to_phone(request.phone_number), binding.login_token or "",
                                        request.phone_code_hash, request.phone_code or "")
        return self._signed_in(binding, done)

    async def _get_password(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        password = bridge.two_step_password(self.world, binding.phone) if binding.phone else None
        if password is None:
            binding.srp = None
            return srp.password_info(None)
        key = (binding.phone or "", password)
        verifier = self._verifiers.get(key)
        if verifier is None:
            # PBKDF2 with 100000 rounds: off the event loop, other connections go on meanwhile.
            verifier = self._verifiers[key] = await asyncio.to_thread(srp.make_verifier, password)
        binding.srp = srp.new_challenge(verifier)
        return srp.password_info(binding.srp)

    async def _check_password(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        challenge, binding.srp = binding.srp, None  # one proof per getPassword, as on Telegram
        proof = request.password
        if challenge is None or not isinstance(proof, types.InputCheckPasswordSRP) \
                or proof.srp_id != challenge.srp_id:
            raise RpcFailure(400, "SRP_ID_INVALID")
        phone = binding.phone or ""
        password = bridge.two_step_password(self.world, phone)
        matches = password is not None and srp.check(challenge, proof.srp_id, proof.A, proof.M1)
        done = await self.world.check_password(phone, binding.login_token or "",
                                               password if matches and password else _FAILED_PROOF)
        return self._signed_in(binding, done)

    async def _log_out(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        await self.world.log_out(binding.session_token or "")
        binding.session_token = None
        return types.auth.LoggedOut()

    # --- the signed-in account --------------------------------------------------------------

    def _me(self, binding: KeyBinding) -> bridge.Me:
        if not binding.session_token:
            raise RpcFailure(401, "AUTH_KEY_UNREGISTERED")
        return bridge.session_user(self.world, binding.session_token)

    def _state(self, me: bridge.Me) -> Any:
        return types.updates.State(pts=self._pts.get(me.phone, 1), qts=0, date=objects.now(), seq=0,
                                   unread_count=0)

    async def _get_users(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        me = self._me(binding)
        users = []
        for wanted in request.id:
            if isinstance(wanted, types.InputUserSelf) or getattr(wanted, "user_id", None) == me.user_id:
                users.append(objects.me_user(me))
        return users

    async def _get_state(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        return self._state(self._me(binding))

    async def _get_difference(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        state = self._state(self._me(binding))
        if request.pts == state.pts:
            return types.updates.DifferenceEmpty(date=state.date, seq=0)
        # Nothing but the account's own sends happens here: the client only needs the counter.
        return types.updates.Difference(new_messages=[], new_encrypted_messages=[], other_updates=[],
                                        chats=[], users=[], state=state)

    async def _get_channel_difference(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        me = self._me(binding)
        channel_id = getattr(request.channel, "channel_id", 0)
        return types.updates.ChannelDifferenceEmpty(pts=self._channel_pts.get((me.phone, channel_id), 1),
                                                    final=True)

    async def _get_dialogs(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        page = await self.world.get_dialogs_page(binding.session_token or "", request.folder_id,
                                                 objects.offset_id_of(request.offset_peer), request.limit)
        me = self._me(binding)
        for group in page["dialogs"]:
            self._known_groups[(me.phone, int(group["id"]))] = group
            self._note_upgrade(me.phone, group)
        return objects.dialogs_page(page, me)

    def _note_upgrade(self, phone: str, group: dict[str, Any]) -> None:
        if group["kind"] == "group":
            new_id = bridge.migrated_to(self.world, int(group["id"]))
            if new_id is not None:
                group["migrated_to"] = (new_id, bridge.member_access_hash(phone, new_id))

    async def _get_chats(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        me = self._me(binding)
        chats = []
        for chat_id in request.id:
            group = self._known_groups.get((me.phone, chat_id))
            if group is None and bridge.migrated_to(self.world, chat_id) is not None:
                group = {"id": chat_id, "title": "", "kind": "group", "access_hash": 0}
            if group is not None and group["kind"] == "group":
                self._note_upgrade(me.phone, group)
                chats.append(objects.chat_object(group))
        return types.messages.Chats(chats=chats)

    # --- forum topics -----------------------------------------------------------------------

    async def _get_forum_topics(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        """``messages.getForumTopics``: a page after ``offset_topic`` (0: from the top)."""
        kind, group_id, access_hash = self._target(binding, request.peer)
        if kind == "group":
            raise RpcFailure(400, "CHANNEL_INVALID")  # a basic group is never a forum
        page = await self.world.get_forum_topics(binding.session_token or "", group_id, access_hash,
                                                 request.offset_topic or None, request.limit)
        me = self._me(binding)
        known = self._known_groups.get((me.phone, group_id))
        chat = objects.chat_object(known) if known else objects.chat_object(
            {"id": group_id, "title": "", "kind": kind, "access_hash": access_hash, "forum": True})
        return types.messages.ForumTopics(
            count=int(page["count"]), topics=[objects.forum_topic(group_id, t, me) for t in page["topics"]],
            messages=[], chats=[chat], users=[objects.me_user(me)],
            pts=self._channel_pts.get((me.phone, group_id), 1))

    # --- sends ----------------------------------------------------------------------------

    def _target(self, binding: KeyBinding, peer: Any) -> tuple[str, int, int]:
        """``(kind, group id, access hash)``; a basic group's hash is the world's membership hash."""
        if isinstance(peer, types.InputPeerChannel):
            known = self._known_groups.get((binding.phone or "", peer.channel_id))
            kind = str(known["kind"]) if known else "supergroup"
            return kind, peer.channel_id, peer.access_hash
        if isinstance(peer, types.InputPeerChat):
            return "group", peer.chat_id, bridge.member_access_hash(binding.phone or "", peer.chat_id)
        raise RpcFailure(400, "PEER_ID_INVALID")

    async def _send_message(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        return await self._post(binding, request, None)

    async def _send_media(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        media = request.media
        if not isinstance(media, types.InputMediaUploadedPhoto | types.InputMediaUploadedDocument
                          | types.InputMediaPhoto | types.InputMediaDocument):
            raise RpcFailure(400, "MEDIA_INVALID")
        return await self._post(binding, request, media)

    async def _upload_media(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        """``messages.uploadMedia``: an uploaded photo/document becomes the account's file (no post)."""
        media = request.media
        if not isinstance(media, types.InputMediaUploadedPhoto | types.InputMediaUploadedDocument):
            raise RpcFailure(400, "MEDIA_INVALID")
        self._target(binding, request.peer)
        uploaded, _ = self._media_of(binding, media)
        assert uploaded is not None
        stored = self.world.upload_media(binding.session_token or "", uploaded)
        return objects.message_media(stored, objects.now())

    async def _send_multi_media(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        """``messages.sendMultiMedia``: an album of files uploaded before (``inputMediaPhoto`` /
        ``inputMediaDocument`` per ``inputSingleMedia``), one post each with one ``grouped_id``; the
        caption is the first item's message."""
        kind, group_id, access_hash = self._target(binding, request.peer)
        items = list(request.multi_media or [])
        refs = []
        for item in items:
            if not isinstance(item.media, types.InputMediaPhoto | types.InputMediaDocument):
                raise RpcFailure(400, "MEDIA_INVALID")
            ref = objects.input_file_ref(item.media)
            if ref is None:
                raise RpcFailure(400, "MEDIA_EMPTY")
            refs.append(ref)
        first = items[0] if items else None
        text = str(getattr(first, "message", "") or "")
        raw_entities = list(getattr(first, "entities", None) or [])
        entities = [e for e in (objects.entity_to_dict(x) for x in raw_entities) if e is not None]
        posted = await self.world.send_album(binding.session_token or "", group_id, access_hash, text,
                                             entities, refs, reply_to=objects.reply_target(request.reply_to))
        me = self._me(binding)
        date = datetime.fromtimestamp(int(posted["date"]), UTC)
        sent = []
        for i, (item, message_id, ref) in enumerate(zip(items, posted["message_ids"], posted["media_refs"],
                                                        strict=True)):
            if kind == "group":
                pts = self._pts[me.phone] = self._pts.get(me.phone, 1) + 1
            else:
                key = (me.phone, group_id)
                pts = self._channel_pts[key] = self._channel_pts.get(key, 1) + 1
            media = objects.message_media(self.world.file_by_ref(me.phone, ref), date)
            sent.append(objects.SentItem(int(message_id), item.random_id, text if i == 0 else "",
                                         raw_entities if i == 0 else None, media, pts))
        known = self._known_groups.get((me.phone, group_id))
        chat = objects.chat_object(known) if known else objects.chat_object(
            {"id": group_id, "title": "", "kind": kind, "access_hash": access_hash})
        return objects.album_updates(me=me, chat=chat, kind=kind, group_id=group_id, date=date,
                                     grouped_id=int(posted["grouped_id"]), items=sent)

    def _media_of(self, binding: KeyBinding, media: Any) -> tuple[MediaIn | None, dict[str, Any] | None]:
        """The uploaded media, or the reference of a file sent before (id + file reference)."""
        if media is None:
            return None, None
        if isinstance(media, types.InputMediaPhoto | types.InputMediaDocument):
            ref = objects.input_file_ref(media)
            if ref is None:
                raise RpcFailure(400, "MEDIA_EMPTY")
            stored = self.world.file_by_ref(binding.phone or "", ref)
            if (stored.media.kind == "photo") != isinstance(media, types.InputMediaPhoto):
                raise RpcFailure(400, "MEDIA_INVALID")  # a photo's id sent as a document or the reverse
            return None, ref
        data = self._take_upload(binding, media.file)
        thumb = getattr(media, "thumb", None)
        stored_media = objects.media_in(media, data, self._take_upload(binding, thumb) if thumb else None)
        if stored_media.kind == "photo" and not objects.is_image(data):
            raise RpcFailure(400, "IMAGE_PROCESS_FAILED")
        return stored_media, None

    async def _post(self, binding: KeyBinding, request: Any, media: Any) -> Any:
        kind, group_id, access_hash = self._target(binding, request.peer)
        entities = [e for e in (objects.entity_to_dict(x) for x in request.entities or []) if e is not None]
        stored, ref = self._media_of(binding, media)
        posted = await self.world.send_message(binding.session_token or "", group_id, access_hash,
                                               request.message, entities, stored, media_ref=ref,
                                               reply_to=objects.reply_target(request.reply_to))
        me = self._me(binding)
        date = datetime.fromtimestamp(int(posted["date"]), UTC)
        if kind == "group":
            pts = self._pts[me.phone] = self._pts.get(me.phone, 1) + 1
        else:
            pts = self._channel_pts[(me.phone, group_id)] = self._channel_pts.get((me.phone, group_id), 1) + 1
        known = self._known_groups.get((me.phone, group_id))
        chat = objects.chat_object(known) if known else objects.chat_object(
            {"id": group_id, "title": "", "kind": kind, "access_hash": access_hash})
        return objects.sent_updates(
            me=me, chat=chat, kind=kind, group_id=group_id, message_id=int(posted["message_id"]), date=date,
            text=request.message, entities=request.entities,
            media=self._sent_media(me, posted, date), random_id=request.random_id, pts=pts,
            topic_id=posted.get("topic_id"))

    def _sent_media(self, me: bridge.Me, posted: dict[str, Any], date: datetime) -> Any:
        ref = posted.get("media_ref")
        return None if ref is None else objects.message_media(self.world.file_by_ref(me.phone, ref), date)

    # --- refetching messages (fresh file references) -----------------------------------------

    def _messages_of(self, me: bridge.Me, kind: str, group_id: int, ids: list[Any]) -> list[Any]:
        out = []
        for wanted in ids:
            post = self.world.group_post(group_id, int(getattr(wanted, "id", 0)))
            if post is None or post.get("from_phone") != me.phone:
                continue
            file_id = (post.get("media") or {}).get("file_id")
            stored = self.world.fresh_reference(int(file_id)) if file_id is not None else None
            media = None if stored is None else objects.message_media(stored, objects.now())
            out.append(objects.feed_message(me, kind, group_id, post, media))
        return out

    async def _get_messages(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        me = self._me(binding)
        found: list[Any] = []
        # basic groups share the account's message ids on Telegram; here each group counts its own,
        # so the account's posts with those ids are looked up in all its basic groups
        for group_id, kind in self.world.member_groups(me.phone):
            if kind == "group":
                found += self._messages_of(me, "group", group_id, list(request.id))
        return types.messages.Messages(messages=found, topics=[], chats=[], users=[objects.me_user(me)])

    async def _get_channel_messages(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        me = self._me(binding)
        channel_id = int(getattr(request.channel, "channel_id", 0))
        known = self._known_groups.get((me.phone, channel_id))
        kind = str(known["kind"]) if known else "supergroup"
        found = self._messages_of(me, kind, channel_id, list(request.id))
        return types.messages.ChannelMessages(pts=self._channel_pts.get((me.phone, channel_id), 1),
                                              count=len(found), messages=found, topics=[], chats=[], users=[])

    # --- uploads ---------------------------------------------------------------------------

    async def _save_file_part(self, binding: KeyBinding, request: Any, msg_id: int) -> Any:
        me = self._me(binding)
        if not 0 <= request.file_part < UPLOAD_PARTS_MAX:
            raise RpcFailure(400, "FILE_PART_INVALID")
        if not 0 < len(request.bytes) <= UPLOAD_PART_MAX:
            raise RpcFailure(400, "FILE_PART_SIZE_INVALID")
        self._forget_old_uploads(binding)
        if request.file_id not in binding.uploads:
            if len(binding.uploads) >= UPLOADS_PER_KEY:  # the oldest goes, as its lifetime would end it
                oldest = next(iter(binding.uploads))
                binding.uploads.pop(oldest)
                self._upload_started.pop((id(binding), oldest), None)
            self._upload_started[(id(binding), request.file_id)] = time.monotonic()
        binding.uploads.setdefault(request.file_id, {})[request.file_part] = request.bytes
        self.world.record_upload(me.phone, len(request.bytes))
        return True

    def _forget_old_uploads(self, binding: KeyBinding) -> None:
        now = time.monotonic()
        for file_id in list(binding.uploads):
            started = self._upload_started.get((id(binding), file_id), now)
            if now - started > UPLOAD_LIFETIME:
                binding.uploads.pop(file_id, None)
                self._upload_started.pop((id(binding), file_id), None)

    def _take_upload(self, binding: KeyBinding, file: Any) -> bytes:
        """The bytes of an uploaded file; the parts stay for more sends within their lifetime."""
        if not isinstance(file, types.InputFile | types.InputFileBig):
            raise RpcFailure(400, "MEDIA_INVALID")
        self._forget_old_uploads(binding)
        parts = binding.uploads.get(file.id, {})
        for index in range(file.parts):
            if index not in parts:
                raise RpcFailure(400, f"FILE_PART_{index}_MISSING")
        data = b"".join(parts[index] for index in range(file.parts))
        if isinstance(file, types.InputFile) and file.md5_checksum and \
                hashlib.md5(data, usedforsecurity=False).hexdigest() != file.md5_checksum:
            raise RpcFailure(400, "MD5_CHECKSUM_INVALID")
        return data
