"""MTProto's TCP transports, server side: full (Telethon's default), intermediate, padded, abridged.

The client picks the transport with its first bytes: ``0xef`` abridged, ``0xeeeeeeee``
intermediate, ``0xdddddddd`` padded intermediate; anything else is the first packet of the
full transport (its length, sequence number and CRC32 around each packet). Obfuscated
transports are not spoken. A transport error (e.g. -404 for an unknown auth key) is a 4-byte
packet holding the negative code, as Telegram sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import zlib
from typing import Final

MAX_PACKET: Final = 4 * 1024 * 1024  # Telegram's own limit is about 1 MiB per container
ABRIDGED_TAG: Final = b"\xef"
INTERMEDIATE_TAG: Final = b"\xee\xee\xee\xee"
PADDED_TAG: Final = b"\xdd\xdd\xdd\xdd"


class TransportError(Exception):
    """The byte stream broke the transport's rules; the connection is closed."""


class Transport:
    """One framed TCP connection. ``read_packet`` raises ``asyncio.IncompleteReadError`` at EOF."""

    name = "base"

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read_packet(self) -> bytes:
        raise NotImplementedError

    def encode(self, payload: bytes) -> bytes:
        raise NotImplementedError

    async def write_packet(self, payload: bytes) -> None:
        self._writer.write(self.encode(payload))
        await self._writer.drain()

    async def write_error(self, code: int) -> None:
        await self.write_packet(struct.pack("<i", -abs(code)))

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()

    async def _exactly(self, size: int) -> bytes:
        if not 0 <= size <= MAX_PACKET:
            raise TransportError(f"packet length {size} out of range")
        return await self._reader.readexactly(size)


class FullTransport(Transport):
    """``len:int32 seq:int32 payload crc32:uint32``; ``len`` counts all four parts."""

    name = "full"

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: bytes) -> None:
        super().__init__(reader, writer)
        self._pending_length: bytes | None = first  # the detector already read the first length
        self._recv_seq = 0
        self._send_seq = 0

    async def read_packet(self) -> bytes:
        head = self._pending_length or await self._reader.readexactly(4)
        self._pending_length = None
        (length,) = struct.unpack("<i", head)
        if length < 12:
            raise TransportError(f"full transport: length {length}")
        rest = await self._exactly(length - 4)
        seq, payload, crc = rest[:4], rest[4:-4], rest[-4:]
        if struct.unpack("<I", crc)[0] != zlib.crc32(head + seq + payload):
            raise TransportError("full transport: bad CRC32")
        if struct.unpack("<i", seq)[0] != self._recv_seq:
            raise TransportError("full transport: packet out of sequence")
        self._recv_seq += 1
        return payload

    def encode(self, payload: bytes) -> bytes:
        data = struct.pack("<ii", len(payload) + 12, self._send_seq) + payload
        self._send_seq += 1
        return data + struct.pack("<I", zlib.crc32(data))


class IntermediateTransport(Transport):
    """``len:int32 payload``."""

    name = "intermediate"

    async def read_packet(self) -> bytes:
        (length,) = struct.unpack("<i", await self._reader.readexactly(4))
        return await self._exactly(length)

    def encode(self, payload: bytes) -> bytes:
        return struct.pack("<i", len(payload)) + payload


class PaddedTransport(IntermediateTransport):
    """Intermediate with 0-3 random bytes after each payload (payloads are multiples of 4)."""

    name = "padded"

    async def read_packet(self) -> bytes:
        packet = await super().read_packet()
        extra = len(packet) % 4
        return packet[:-extra] if extra else packet

    def encode(self, payload: bytes) -> bytes:
        return super().encode(payload + os.urandom(int.from_bytes(os.urandom(1), "big") % 4))


class AbridgedTransport(Transport):
    """Length in 4-byte words: one byte, or ``0x7f`` and three bytes."""

    name = "abridged"

    async def read_packet(self) -> bytes:
        words = (await self._reader.readexactly(1))[0]
        if words >= 0x7F:
            words = int.from_bytes(await self._reader.readexactly(3), "little")
        return await self._exactly(words * 4)

    def encode(self, payload: bytes) -> bytes:
        words = len(payload) // 4
        head = bytes([words]) if words < 0x7F else b"\x7f" + words.to_bytes(3, "little")
        return head + payload


async def open_transport(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Transport:
    """Read the client's first bytes and return the transport they name."""
    first = await reader.readexactly(1)
    if first == ABRIDGED_TAG:
        return AbridgedTransport(reader, writer)
    first += await reader.readexactly(3)
    if first == INTERMEDIATE_TAG:
        return IntermediateTransport(reader, writer)
    if first == PADDED_TAG:
        return PaddedTransport(reader, writer)
    return FullTransport(reader, writer, first)
