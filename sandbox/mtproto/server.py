"""The sandbox's MTProto endpoint: a TCP server speaking enough of Telegram's protocol for Telethon.

``start_mtproto(world, host, port, rsa_private_key)`` serves it beside the sandbox's HTTP
server, on the same world. Per connection: the transport is detected from the first bytes;
unencrypted packets run the key exchange (``handshake``); encrypted ones are checked
(known key, ``msg_key``, server salt, msg_id time) and their messages answered: service
messages at once (pong, future salts, destroy_session), RPC calls each in its own task (a
slow world call does not hold up the connection), answered with ``rpc_result``. Client
messages that need it are acknowledged with ``msgs_ack``, bundled into a container with
whatever goes out next or sent alone after a short delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import rsa
from telethon.tl import functions, types

from sandbox.mtproto import keys
from sandbox.mtproto.handshake import Handshake, HandshakeError
from sandbox.mtproto.key_use import KeyUse
from sandbox.mtproto.rpc import Dispatcher, RpcFailure
from sandbox.mtproto.session import (
    AuthKeyRecord,
    AuthKeyStore,
    DecryptError,
    Envelope,
    Message,
    Outgoing,
    decrypt,
    encrypt,
    msg_id_problem,
    open_messages,
    read_object,
    rpc_error,
    rpc_result,
)
from sandbox.mtproto.transport import Transport, TransportError, open_transport
from sandbox.world import World

logger = logging.getLogger(__name__)

DEFAULT_DC: Final = 2  # the data centre a single endpoint plays (objects.DC_ID)
SECOND_DC: Final = 4  # beside the sandbox, on the main port + 1 (PHONE_MIGRATE_4 leads there)
ACK_DELAY: Final = 0.05  # seconds an ack may wait to travel with an answer
BAD_SALT: Final = 48
AUTH_KEY_UNKNOWN: Final = 404
_IGNORED: Final = (types.MsgsAck, types.MsgsStateReq, types.MsgResendReq, types.MsgsAllInfo,
                   types.MsgDetailedInfo, types.MsgNewDetailedInfo)


class MTProtoServer:
    """A running endpoint; ``port`` is the port actually bound."""

    def __init__(
        self, world: World, private_key: rsa.RSAPrivateKey, host: str, dc_id: int = DEFAULT_DC
    ) -> None:
        self.world = world
        self.private_key = private_key
        self.host = host
        self.port = 0
        self.dc_id = dc_id
        self.peers: list[MTProtoServer] = [self]  # every data centre of this sandbox, this one included
        self.owned: list[MTProtoServer] = []  # other data centres started with this one, closed with it
        self.keys = AuthKeyStore()  # auth keys are per data centre, as at Telegram
        self.key_use = KeyUse()  # open connections per auth key (AUTH_KEY_DUPLICATED)
        self.dispatcher = Dispatcher(world, address=lambda: (self.host, self.port), dc_id=dc_id,
                                     dc_options=lambda: [(p.dc_id, p.host, p.port) for p in self.peers])
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        # Tests set it: the next N key exchanges end with the connection closed on req_DH_params,
        # as Telegram may close one (Telethon's sender notes it for DC migrations).
        self.cut_key_exchanges = 0

    async def start(self, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, port)
        sockets = self._server.sockets or ()
        self.port = int(sockets[0].getsockname()[1]) if sockets else port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = _Connection(self, reader, writer)
        self._connections.add(connection)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)

    async def drop_connections(self) -> None:
        """Close every client connection (clients reconnect by themselves), keeping the keys."""
        await asyncio.gather(*(c.close() for c in list(self._connections)))

    async def close(self) -> None:
        for other in self.owned:
            await other.close()
        if self._server is not None:
            self._server.close()
        await self.drop_connections()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None


async def start_mtproto(
    world: World, host: str, port: int, rsa_private_key: rsa.RSAPrivateKey
) -> MTProtoServer:
    """Serve MTProto for ``world`` on ``host:port`` (0 picks a free port); close with ``close()``."""
    server = MTProtoServer(world, rsa_private_key, host)
    await server.start(port)
    logger.info("sandbox MTProto endpoint listening on %s:%d", host, server.port)
    return server


async def start_mtproto_dcs(
    world: World, host: str, ports: dict[int, int], rsa_private_key: rsa.RSAPrivateKey
) -> dict[int, MTProtoServer]:
    """One endpoint per data centre (``{dc_id: port}``, 0 = a free port) on one world; each lists
    them all in ``help.getConfig`` so clients can follow PHONE_MIGRATE_X. Close each with ``close()``."""
    servers: dict[int, MTProtoServer] = {}
    for dc_id, port in ports.items():
        server = MTProtoServer(world, rsa_private_key, host, dc_id)
        await server.start(port)
        servers[dc_id] = server
    for server in servers.values():
        server.peers = list(servers.values())
    logger.info("sandbox MTProto data centres: %s",
                ", ".join(f"{dc}@{s.host}:{s.port}" for dc, s in servers.items()))
    return servers


async def start_beside_sandbox(
    world: World, host: str, port: int, key_file: str | Path | None = None
) -> MTProtoServer:
    """``start_mtproto`` with the key stored in ``key_file`` (created on first use), or a fresh
    in-memory key when ``key_file`` is None (tests)."""
    key = keys.generate() if key_file is None else keys.load_or_create(key_file)
    main = await start_mtproto(world, host, port, key)
    # the second data centre, for the accounts the world places there ("dc": 4): on the next port, or
    # on any free one when another process has that (help.getConfig lists the port it really got)
    other = MTProtoServer(world, key, host, SECOND_DC)
    for port in (main.port + 1, 0):
        try:
            await other.start(port)
            break
        except OSError as exc:
            logger.warning("sandbox MTProto data centre %d not started on port %d: %s", SECOND_DC, port, exc)
    else:
        return main
    main.peers = other.peers = [main, other]
    main.owned.append(other)
    return main


class _Connection:
    def __init__(
        self, server: MTProtoServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._server = server
        self._reader = reader
        self._writer = writer
        self._transport: Transport | None = None
        self._handshake: Handshake | None = None
        self._record: AuthKeyRecord | None = None
        self._outgoing: Outgoing | None = None
        self._acks: list[int] = []
        self._ack_timer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()
        self._plain_msg_id = 0
        self._duplicated = False  # this connection's key was used from two places at once

    async def run(self) -> None:
        try:
            self._transport = await open_transport(self._reader, self._writer)
            while True:
                packet = await self._transport.read_packet()
                if len(packet) < 8:
                    raise TransportError("packet too short")
                (key_id,) = struct.unpack("<Q", packet[:8])
                if key_id == 0:
                    await self._plain(packet)
                elif not await self._encrypted(key_id, packet):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        except (TransportError, HandshakeError) as exc:
            logger.info("MTProto connection dropped: %s", exc)
        except Exception:  # undecodable bytes and the like: this connection ends, the server goes on
            logger.warning("MTProto connection failed", exc_info=True)
        finally:
            await self.close()

    async def close(self) -> None:
        self._server.key_use.forget(self)
        if self._ack_timer is not None:
            self._ack_timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._transport is not None:
            await self._transport.close()
        else:
            self._writer.close()

    # --- unencrypted: the key exchange -------------------------------------------------------

    async def _plain(self, packet: bytes) -> None:
        (length,) = struct.unpack("<i", packet[16:20])
        request = read_object(packet[20:20 + length])
        starts = isinstance(request, functions.ReqPqMultiRequest | functions.ReqPqRequest)
        if isinstance(request, functions.ReqDHParamsRequest) and self._server.cut_key_exchanges > 0:
            self._server.cut_key_exchanges -= 1
            raise TransportError("key exchange cut (test)")
        if self._handshake is None or starts:
            self._handshake = Handshake(self._server.private_key)
        answer, new_key = self._handshake.handle(request)
        if new_key is not None:
            record = self._server.keys.add(new_key)
            self._handshake = None
            logger.debug("MTProto auth key %016x created", record.key_id)
        body = bytes(answer)
        self._plain_msg_id = max(self._plain_msg_id + 4, (int(time.time() * 2**32) & ~3) | 1)
        assert self._transport is not None
        await self._transport.write_packet(struct.pack("<qqi", 0, self._plain_msg_id, len(body)) + body)

    # --- encrypted ---------------------------------------------------------------------------

    async def _encrypted(self, key_id: int, packet: bytes) -> bool:
        assert self._transport is not None
        record = self._server.keys.get(key_id)
        if record is None:
            # Telegram's answer to a key it doesn't know; Telethon reads it as AuthKeyNotFound.
            await self._transport.write_error(AUTH_KEY_UNKNOWN)
            return False
        try:
            envelope = decrypt(record, packet)
        except DecryptError as exc:
            logger.info("MTProto packet dropped: %s", exc)
            return True
        self._record = record
        self._duplicated = await self._server.key_use.note(key_id, self, envelope.session_id)
        if self._outgoing is None or self._outgoing.session_id != envelope.session_id:
            self._outgoing = Outgoing(envelope.session_id)
        replies = self._check_envelope(record, envelope)
        if replies is None:
            return True
        try:
            messages = open_messages(envelope)
        except Exception:
            logger.warning("MTProto message could not be decoded", exc_info=True)
            return True
        for message in messages:
            if message.content_related:
                self._acks.append(message.msg_id)
            reply = self._service_reply(record, message)
            if reply is not None:
                replies.append((bytes(reply), True))
            elif not isinstance(message.obj, _IGNORED):
                self._spawn(record, message)
        if replies:
            await self._send(replies)
        elif self._acks:
            self._schedule_acks()
        return True

    def _check_envelope(self, record: AuthKeyRecord, envelope: Envelope) -> list[tuple[bytes, bool]] | None:
        """The first replies for a packet, or None when it is refused (bad salt or msg_id)."""
        if envelope.salt != record.salt:
            self._reply_now(types.BadServerSalt(bad_msg_id=envelope.msg_id, bad_msg_seqno=envelope.seq_no,
                                                error_code=BAD_SALT, new_server_salt=record.salt))
            return None
        problem = msg_id_problem(envelope.msg_id, time.time())
        if problem is not None:
            self._reply_now(types.BadMsgNotification(bad_msg_id=envelope.msg_id,
                                                     bad_msg_seqno=envelope.seq_no, error_code=problem))
            return None
        replies: list[tuple[bytes, bool]] = []
        if record.see_session(envelope.session_id):
            created = types.NewSessionCreated(first_msg_id=envelope.msg_id,
                                              unique_id=struct.unpack("<q", os.urandom(8))[0],
                                              server_salt=record.salt)
            replies.append((bytes(created), True))
        return replies

    def _service_reply(self, record: AuthKeyRecord, message: Message) -> Any:
        obj = message.obj
        if isinstance(obj, functions.PingRequest | functions.PingDelayDisconnectRequest):
            return types.Pong(msg_id=message.msg_id, ping_id=obj.ping_id)
        if isinstance(obj, functions.GetFutureSaltsRequest):
            now = int(time.time())
            salt = types.FutureSalt(valid_since=_date(now), valid_until=_date(now + 3600), salt=record.salt)
            return types.FutureSalts(req_msg_id=message.msg_id, now=now, salts=[salt])
        if isinstance(obj, functions.DestroySessionRequest):
            if obj.session_id in record.sessions:
                del record.sessions[obj.session_id]
                return types.DestroySessionOk(session_id=obj.session_id)
            return types.DestroySessionNone(session_id=obj.session_id)
        return None

    def _reply_now(self, obj: Any) -> None:
        self._track(self._send([(bytes(obj), False)]))

    def _spawn(self, record: AuthKeyRecord, message: Message) -> None:
        self._track(self._answer(record, message))

    def _track(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, record: AuthKeyRecord, message: Message) -> None:
        if self._duplicated:
            # Telegram kills a key used from two places at once; every call on it fails from then on
            await self._send([(rpc_error(message.msg_id, 406, "AUTH_KEY_DUPLICATED"), True)])
            return
        try:
            body = rpc_result(message.msg_id, await self._server.dispatcher.call(record, message.obj,
                                                                                   message.msg_id))
        except RpcFailure as exc:
            body = rpc_error(message.msg_id, exc.code, exc.message)
        except Exception:
            logger.exception("MTProto %s failed", type(message.obj).__name__)
            body = rpc_error(message.msg_id, 500, "INTERNAL")
        await self._send([(body, True)])

    def _schedule_acks(self) -> None:
        if self._ack_timer is None or self._ack_timer.done():
            self._ack_timer = asyncio.create_task(self._flush_acks_later())

    async def _flush_acks_later(self) -> None:
        await asyncio.sleep(ACK_DELAY)
        if self._acks:
            await self._send([])

    async def _send(self, items: list[tuple[bytes, bool]]) -> None:
        async with self._send_lock:
            if self._acks:
                items = [(bytes(types.MsgsAck(msg_ids=self._acks)), False), *items]
                self._acks = []
            if not items or self._record is None or self._outgoing is None or self._transport is None:
                return
            msg_id, seq_no, body = self._outgoing.pack(items)
            packet = encrypt(self._record, self._outgoing.session_id, msg_id, seq_no, body)
            with contextlib.suppress(ConnectionError, OSError):
                await self._transport.write_packet(packet)


def _date(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
