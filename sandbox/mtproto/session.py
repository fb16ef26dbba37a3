"""MTProto 2.0 messages on an auth key: encryption, message ids, seq numbers, containers, gzip, acks.

The client's messages arrive as ``auth_key_id msg_key AES-IGE(salt session_id msg_id seq_no
length body padding)``; ``msg_key`` is the middle of SHA256 over part of the key and the
plaintext, and the AES key and IV come from both (``crypto.message_key_data``). The server's
answers use the same scheme with the other half of the key.

The records of ``AuthKeyStore`` outlive connections: a client that reconnects with a saved
session string finds its key, its salt and what the key is signed in as.
"""

from __future__ import annotations

import gzip
import os
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Final

from telethon.extensions import BinaryReader
from telethon.tl.core import GzipPacked, MessageContainer
from telethon.tl.tlobject import TLObject

from sandbox.mtproto.crypto import ige_decrypt, ige_encrypt, message_key, message_key_data, sha1
from sandbox.mtproto.handshake import NewAuthKey

MSG_CONTAINER: Final = 0x73F1F8DC
RPC_RESULT: Final = 0xF35C6D01
RPC_ERROR: Final = 0x2144CA19
BOOL_TRUE: Final = 0x997275B5
BOOL_FALSE: Final = 0xBC799737
VECTOR: Final = 0x1CB5C415
GZIP_THRESHOLD: Final = 512
MAX_PADDING: Final = 1024
# How far a client's msg_id time may be from ours before it is refused (Telegram: 300 s / 30 s).
MSG_ID_TOO_OLD: Final = 300
MSG_ID_TOO_NEW: Final = 30
MAX_SESSIONS: Final = 64


class DecryptError(Exception):
    """A packet that is not a valid message under its auth key; it is dropped."""


@dataclass
class KeyBinding:
    """What an auth key stands for in the world: a login in progress, then a signed-in session."""

    phone: str | None = None  # +digits, from auth.sendCode
    login_token: str | None = None  # the world's temporary session of that login
    session_token: str | None = None  # the world's session once signed in
    srp: Any = None  # the open 2FA challenge (srp.Challenge), one getPassword -> checkPassword
    uploads: dict[int, dict[int, bytes]] = field(default_factory=dict)  # file_id -> part -> bytes
    pts: int = 0  # this account's update counter, as seen by this key


@dataclass
class AuthKeyRecord:
    key: bytes
    key_id: int
    salt: int
    created: float
    binding: KeyBinding = field(default_factory=KeyBinding)
    sessions: dict[int, None] = field(default_factory=dict)  # MTProto session ids seen, oldest first

    def see_session(self, session_id: int) -> bool:
        """Remember ``session_id``; True the first time (the client gets ``new_session_created``)."""
        if session_id in self.sessions:
            return False
        self.sessions[session_id] = None
        while len(self.sessions) > MAX_SESSIONS:  # each connection of Telethon's is a new session
            del self.sessions[next(iter(self.sessions))]
        return True

    @classmethod
    def from_key(cls, new: NewAuthKey) -> AuthKeyRecord:
        key_id = struct.unpack("<Q", sha1(new.key)[12:20])[0]
        return cls(key=new.key, key_id=key_id, salt=new.server_salt, created=time.time())

    @property
    def key_id_bytes(self) -> bytes:
        return struct.pack("<Q", self.key_id)


class AuthKeyStore:
    """Every auth key the sandbox created, by key id (in memory, like the world)."""

    def __init__(self) -> None:
        self._records: dict[int, AuthKeyRecord] = {}

    def add(self, new: NewAuthKey) -> AuthKeyRecord:
        record = AuthKeyRecord.from_key(new)
        self._records[record.key_id] = record
        return record

    def get(self, key_id: int) -> AuthKeyRecord | None:
        return self._records.get(key_id)

    def __len__(self) -> int:
        return len(self._records)

    def clear(self) -> None:
        self._records.clear()


@dataclass(frozen=True)
class Envelope:
    """One decrypted packet: the outer message, before containers are opened."""

    salt: int
    session_id: int
    msg_id: int
    seq_no: int
    body: bytes


@dataclass(frozen=True)
class Message:
    msg_id: int
    seq_no: int
    obj: Any

    @property
    def content_related(self) -> bool:
        return self.seq_no % 2 == 1


def decrypt(record: AuthKeyRecord, packet: bytes) -> Envelope:
    """Decrypt and authenticate a client's packet (its key id was already matched to ``record``)."""
    msg_key, encrypted = packet[8:24], packet[24:]
    if len(encrypted) < 48 or len(encrypted) % 16:
        raise DecryptError("bad encrypted length")
    plain = ige_decrypt(encrypted, *message_key_data(record.key, msg_key, from_client=True))
    if message_key(record.key, plain, from_client=True) != msg_key:
        raise DecryptError("msg_key mismatch")
    salt, session_id, msg_id, seq_no, length = struct.unpack("<qqqii", plain[:32])
    padding = len(plain) - 32 - length
    if length < 0 or length % 4 or not 12 <= padding <= MAX_PADDING:
        raise DecryptError("bad message length")
    return Envelope(salt, session_id, msg_id, seq_no, plain[32:32 + length])


def encrypt(record: AuthKeyRecord, session_id: int, msg_id: int, seq_no: int, body: bytes) -> bytes:
    data = struct.pack("<qqqii", record.salt, session_id, msg_id, seq_no, len(body)) + body
    data += os.urandom(12 + (-(len(data) + 12) % 16))
    msg_key = message_key(record.key, data, from_client=False)
    return record.key_id_bytes + msg_key + ige_encrypt(data, *message_key_data(record.key, msg_key,
                                                                                   from_client=False))


def read_object(body: bytes) -> Any:
    with BinaryReader(body) as reader:
        return reader.tgread_object()


def open_messages(outer: Envelope) -> list[Message]:
    """The messages a packet carries: containers opened, gzip_packed bodies unpacked."""
    obj = _unpacked(read_object(outer.body))
    if isinstance(obj, MessageContainer):
        return [Message(inner.msg_id, inner.seq_no, _unpacked(inner.obj)) for inner in obj.messages]
    return [Message(outer.msg_id, outer.seq_no, obj)]


def _unpacked(obj: Any) -> Any:
    while isinstance(obj, GzipPacked):
        obj = read_object(obj.data)
    return obj


def msg_id_problem(msg_id: int, now: float) -> int | None:
    """The bad_msg_notification code for a client msg_id, or None when it is acceptable."""
    if msg_id % 4:
        return 18  # client message ids are divisible by 4
    sent = msg_id >> 32
    if sent < now - MSG_ID_TOO_OLD:
        return 16
    if sent > now + MSG_ID_TOO_NEW:
        return 17
    return None


# --- the server's side of one session --------------------------------------------------------


def serialize(value: Any) -> bytes:
    """A result as TL: objects, ``bool`` and vectors of objects."""
    if isinstance(value, bool):
        return struct.pack("<I", BOOL_TRUE if value else BOOL_FALSE)
    if isinstance(value, list):
        return struct.pack("<Ii", VECTOR, len(value)) + b"".join(serialize(item) for item in value)
    if isinstance(value, bytes):
        return value
    if isinstance(value, TLObject):
        data: bytes = value._bytes()
        return data
    raise TypeError(f"cannot serialise {type(value).__name__}")


def maybe_gzip(body: bytes) -> bytes:
    if len(body) <= GZIP_THRESHOLD:
        return body
    compressed: bytes = TLObject.serialize_bytes(gzip.compress(body))
    packed = struct.pack("<I", GzipPacked.CONSTRUCTOR_ID) + compressed
    return packed if len(packed) < len(body) else body


def rpc_result(req_msg_id: int, body: bytes) -> bytes:
    return struct.pack("<Iq", RPC_RESULT, req_msg_id) + maybe_gzip(body)


def rpc_error(req_msg_id: int, code: int, message: str) -> bytes:
    text: bytes = TLObject.serialize_bytes(message)
    return struct.pack("<IqIi", RPC_RESULT, req_msg_id, RPC_ERROR, code) + text


class Outgoing:
    """Message ids and seq numbers of what the server sends in one MTProto session."""

    def __init__(self, session_id: int) -> None:
        self.session_id = session_id
        self._last_msg_id = 0
        self._content_sent = 0

    def next_msg_id(self, *, response: bool = True) -> int:
        # Server message ids are odd: 1 mod 4 for answers, 3 mod 4 for messages of its own.
        low = 1 if response else 3
        candidate = (int(time.time() * 2**32) & ~3) | low
        if candidate <= self._last_msg_id:
            candidate = ((self._last_msg_id + 4) & ~3) | low
        self._last_msg_id = candidate
        return candidate

    def next_seq_no(self, content_related: bool) -> int:
        if not content_related:
            return self._content_sent * 2
        self._content_sent += 1
        return self._content_sent * 2 - 1

    def pack(self, items: list[tuple[bytes, bool]]) -> tuple[int, int, bytes]:
        """``(msg_id, seq_no, body)`` for one item, or a container for several."""
        if len(items) == 1:
            body, content = items[0]
            return self.next_msg_id(), self.next_seq_no(content), body
        parts = [struct.pack("<Ii", MSG_CONTAINER, len(items))]
        for body, content in items:
            parts.append(struct.pack("<qii", self.next_msg_id(), self.next_seq_no(content), len(body)))
            parts.append(body)
        return self.next_msg_id(), self.next_seq_no(False), b"".join(parts)
