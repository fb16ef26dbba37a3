"""The server side of MTProto's auth key exchange (core.telegram.org/mtproto/auth_key).

``req_pq_multi`` -> ``resPQ`` (a product of two primes to factor, our key's fingerprint);
``req_DH_params`` carries ``p_q_inner_data`` RSA-encrypted with our key, either padded as
Telethon 1.45 does it (``SHA1(data) + data + random`` as one raw RSA block) or with
``RSA_PAD`` (the AES-wrapped scheme of current official clients) -> ``server_DH_params_ok``
with ``g``, ``dh_prime`` and ``g_a`` AES-IGE-encrypted with a key derived from the nonces;
``set_client_DH_params`` carries ``g_b`` -> ``dh_gen_ok``. The auth key is ``g_ab`` as 256
big-endian bytes. One ``Handshake`` per connection; any violation raises ``HandshakeError``.
"""

from __future__ import annotations

import os
import secrets
import struct
import time
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import rsa
from telethon.extensions import BinaryReader
from telethon.tl import functions, types

from sandbox.mtproto import keys
from sandbox.mtproto.crypto import (
    DH_G,
    DH_PRIME,
    big_endian,
    ige_decrypt,
    ige_encrypt,
    nonce_key_data,
    sha1,
    sha256,
)

SAFETY: Final = 2 ** (2048 - 64)  # g_a and g_b keep this far from 0 and from dh_prime
_PQ_TYPES: Final = (types.PQInnerData, types.PQInnerDataDc, types.PQInnerDataTempDc)
_MR_BASES: Final = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)  # exact for n < 3.3e24


class HandshakeError(Exception):
    """The client broke the key exchange; the connection is dropped."""


@dataclass(frozen=True)
class NewAuthKey:
    key: bytes  # 256 bytes
    server_salt: int


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    for p in _MR_BASES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in _MR_BASES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _random_prime(bits: int) -> int:
    while True:
        candidate = secrets.randbits(bits) | (1 << (bits - 1)) | 1
        if _is_prime(candidate):
            return candidate


def _new_pq() -> tuple[int, int]:
    # Two distinct 31-bit primes, as Telegram uses: the client factors their product.
    p = _random_prime(31)
    q = p
    while q == p:
        q = _random_prime(31)
    return min(p, q), max(p, q)


def _read_hashed(plain: bytes) -> Any:
    """A TL object preceded by the SHA1 of its own serialisation (padding after it is ignored)."""
    reader = BinaryReader(plain[20:])
    try:
        obj = reader.tgread_object()
    except Exception as exc:
        raise HandshakeError("undecodable inner data") from exc
    if sha1(plain[20:20 + reader.tell_position()]) != plain[:20]:
        raise HandshakeError("inner data hash mismatch")
    return obj


def _read_pq_inner(private_key: rsa.RSAPrivateKey, encrypted: bytes) -> Any:
    try:
        block = keys.decrypt_raw(private_key, encrypted)
    except ValueError as exc:
        raise HandshakeError(str(exc)) from exc
    if block[0] == 0:
        # Telethon 1.45: SHA1(data) + data + random padding, 255 bytes, encrypted as one number.
        try:
            return _read_hashed(block[1:])
        except HandshakeError:
            pass  # an RSA_PAD block may start with a zero byte too
    return _read_rsa_pad(block)


def _read_rsa_pad(block: bytes) -> Any:
    aes_encrypted = block[32:]
    temp_key = bytes(a ^ b for a, b in zip(block[:32], sha256(aes_encrypted), strict=True))
    data_with_hash = ige_decrypt(aes_encrypted, temp_key, bytes(32))
    data_with_padding = data_with_hash[:192][::-1]
    if sha256(temp_key, data_with_padding) != data_with_hash[192:]:
        raise HandshakeError("RSA_PAD hash mismatch")
    try:
        return BinaryReader(data_with_padding).tgread_object()
    except Exception as exc:
        raise HandshakeError("undecodable p_q_inner_data") from exc


def _padded(data: bytes) -> bytes:
    return data + os.urandom(-len(data) % 16)


class Handshake:
    """One client's key exchange, step by step; ``handle`` returns the answer and, at the end, the key."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self._key = private_key
        self._fingerprint = keys.fingerprint(private_key)
        self._nonce: int | None = None
        self._server_nonce = 0
        self._pq = (0, 0)
        self._new_nonce = 0
        self._a = 0
        self._tmp: tuple[bytes, bytes] = (b"", b"")

    def handle(self, request: Any) -> tuple[Any, NewAuthKey | None]:
        if isinstance(request, functions.ReqPqMultiRequest | functions.ReqPqRequest):
            return self._res_pq(request), None
        if isinstance(request, functions.ReqDHParamsRequest):
            return self._server_dh_params(request), None
        if isinstance(request, functions.SetClientDHParamsRequest):
            return self._dh_gen(request)
        raise HandshakeError(f"{type(request).__name__} is not a key exchange step")

    def _check_nonces(self, request: Any) -> None:
        if self._nonce is None or request.nonce != self._nonce or request.server_nonce != self._server_nonce:
            raise HandshakeError("nonce mismatch")

    def _res_pq(self, request: Any) -> Any:
        self._nonce = request.nonce
        self._server_nonce = int.from_bytes(os.urandom(16), "little", signed=True)
        self._pq = _new_pq()
        return types.ResPQ(nonce=request.nonce, server_nonce=self._server_nonce,
                           pq=big_endian(self._pq[0] * self._pq[1]),
                           server_public_key_fingerprints=[self._fingerprint])

    def _server_dh_params(self, request: Any) -> Any:
        self._check_nonces(request)
        p, q = self._pq
        if request.public_key_fingerprint != self._fingerprint:
            raise HandshakeError("unknown RSA key fingerprint")
        if request.p != big_endian(p) or request.q != big_endian(q):
            raise HandshakeError("wrong factorisation")
        inner = _read_pq_inner(self._key, request.encrypted_data)
        if not isinstance(inner, _PQ_TYPES):
            raise HandshakeError(f"{type(inner).__name__} is not p_q_inner_data")
        if (inner.nonce, inner.server_nonce) != (self._nonce, self._server_nonce) or \
                inner.pq != big_endian(p * q) or (inner.p, inner.q) != (request.p, request.q):
            raise HandshakeError("p_q_inner_data does not match the exchange")
        self._new_nonce = inner.new_nonce
        self._tmp = nonce_key_data(self._server_nonce, self._new_nonce)
        g_a = 0
        while not SAFETY <= g_a <= DH_PRIME - SAFETY:
            self._a = int.from_bytes(os.urandom(256), "big")
            g_a = pow(DH_G, self._a, DH_PRIME)
        answer = bytes(types.ServerDHInnerData(
            nonce=self._nonce, server_nonce=self._server_nonce, g=DH_G, dh_prime=big_endian(DH_PRIME),
            g_a=big_endian(g_a), server_time=int(time.time())))
        encrypted = ige_encrypt(_padded(sha1(answer) + answer), *self._tmp)
        return types.ServerDHParamsOk(nonce=self._nonce, server_nonce=self._server_nonce,
                                      encrypted_answer=encrypted)

    def _dh_gen(self, request: Any) -> tuple[Any, NewAuthKey | None]:
        self._check_nonces(request)
        if not self._a or len(request.encrypted_data) % 16:
            raise HandshakeError("set_client_DH_params out of order")
        inner = _read_hashed(ige_decrypt(request.encrypted_data, *self._tmp))
        if not isinstance(inner, types.ClientDHInnerData) or \
                (inner.nonce, inner.server_nonce) != (self._nonce, self._server_nonce):
            raise HandshakeError("client_DH_inner_data does not match the exchange")
        g_b = int.from_bytes(inner.g_b, "big")
        if not SAFETY <= g_b <= DH_PRIME - SAFETY:
            raise HandshakeError("g_b out of the safe range")
        shared = pow(g_b, self._a, DH_PRIME)
        key = shared.to_bytes(256, "big")
        new_nonce = self._new_nonce.to_bytes(32, "little", signed=True)
        aux_hash = sha1(key)[:8]
        self._a = 0
        if key[0] == 0:
            # Telethon keeps the key as a variable-length number, so a leading zero byte would
            # leave the two sides with different keys: ask for another exchange.
            retry_hash = sha1(new_nonce, b"\x02", aux_hash)[4:20]
            return types.DhGenRetry(nonce=self._nonce, server_nonce=self._server_nonce,
                                    new_nonce_hash2=int.from_bytes(retry_hash, "little", signed=True)), None
        ok_hash = sha1(new_nonce, b"\x01", aux_hash)[4:20]
        server_nonce = self._server_nonce.to_bytes(16, "little", signed=True)
        salt = bytes(a ^ b for a, b in zip(new_nonce[:8], server_nonce[:8], strict=True))
        answer = types.DhGenOk(nonce=self._nonce, server_nonce=self._server_nonce,
                               new_nonce_hash1=int.from_bytes(ok_hash, "little", signed=True))
        return answer, NewAuthKey(key=key, server_salt=struct.unpack("<q", salt)[0])
