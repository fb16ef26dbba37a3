"""The server side of Telegram's SRP 2FA (core.telegram.org/api/srp).

The world keeps each account's password in clear (it is a test double); the server derives
the verifier ``v = g^x mod p`` from it with the client's KDF
(``x = SH(SH(PBKDF2-SHA512(SH(SH(pwd, salt1), salt2), salt1, 100000), salt2)``, ``SH(d, s) =
SHA256(s + d + s)``) once per account and password. ``account.getPassword`` hands out
``B = k*v + g^b`` and a one-time ``srp_id``; ``auth.checkPassword`` gets ``A`` and ``M1``, and
the server recomputes ``M1`` from ``S = (A * v^u)^b`` to decide.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import struct
from dataclasses import dataclass
from typing import Any, Final

from telethon.tl import types

from sandbox.mtproto.crypto import DH_G, DH_PRIME, sha256

SIZE: Final = 256
ITERATIONS: Final = 100_000
_MIN_BITS: Final = 2048 - 64


def _pad(number: int) -> bytes:
    return number.to_bytes(SIZE, "big")


def _salted(data: bytes, salt: bytes) -> bytes:
    return sha256(salt, data, salt)


@dataclass(frozen=True)
class Verifier:
    salt1: bytes
    salt2: bytes
    v: int

    @property
    def algo(self) -> Any:
        return types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
            salt1=self.salt1, salt2=self.salt2, g=DH_G, p=_pad(DH_PRIME))


@dataclass(frozen=True)
class Challenge:
    """One ``account.getPassword`` answer awaiting its ``auth.checkPassword``."""

    srp_id: int
    b: int
    big_b: int
    verifier: Verifier


def password_hash(password: str, salt1: bytes, salt2: bytes) -> bytes:
    inner = _salted(_salted(password.encode("utf-8"), salt1), salt2)
    return _salted(hashlib.pbkdf2_hmac("sha512", inner, salt1, ITERATIONS), salt2)


def make_verifier(password: str) -> Verifier:
    # Telegram's salt1 is the server's 8 bytes plus 32 the client added when it set the password.
    salt1, salt2 = os.urandom(40), os.urandom(16)
    x = int.from_bytes(password_hash(password, salt1, salt2), "big")
    return Verifier(salt1, salt2, pow(DH_G, x, DH_PRIME))


def _k() -> int:
    return int.from_bytes(sha256(_pad(DH_PRIME), _pad(DH_G)), "big")


def _good(number: int) -> bool:
    return number.bit_length() >= _MIN_BITS and (DH_PRIME - number).bit_length() >= _MIN_BITS


def new_challenge(verifier: Verifier) -> Challenge:
    while True:
        b = int.from_bytes(os.urandom(SIZE), "big")
        big_b = (_k() * verifier.v + pow(DH_G, b, DH_PRIME)) % DH_PRIME
        if _good(big_b):
            srp_id = struct.unpack("<q", os.urandom(8))[0]
            return Challenge(srp_id, b, big_b, verifier)


def password_info(challenge: Challenge | None, hint: str | None = None) -> Any:
    """``account.password`` for an account with (``challenge``) or without a password."""
    new_algo = types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
        salt1=os.urandom(8), salt2=os.urandom(16), g=DH_G, p=_pad(DH_PRIME))
    common = {
        "new_algo": new_algo,
        "new_secure_algo": types.SecurePasswordKdfAlgoPBKDF2HMACSHA512iter100000(salt=os.urandom(8)),
        "secure_random": os.urandom(32),
    }
    if challenge is None:
        return types.account.Password(has_password=False, **common)
    return types.account.Password(
        has_password=True, current_algo=challenge.verifier.algo, srp_B=_pad(challenge.big_b),
        srp_id=challenge.srp_id, hint=hint, **common)


def expected_m1(challenge: Challenge, a_bytes: bytes) -> bytes | None:
    """The ``M1`` a client knowing the password sends with ``A``; None for an unusable ``A``."""
    big_a = int.from_bytes(a_bytes, "big")
    if not 0 < big_a < DH_PRIME:
        return None
    a_pad, b_pad = _pad(big_a), _pad(challenge.big_b)
    u = int.from_bytes(sha256(a_pad, b_pad), "big")
    if u == 0:
        return None
    verifier = challenge.verifier
    s = pow(big_a * pow(verifier.v, u, DH_PRIME) % DH_PRIME, challenge.b, DH_PRIME)
    k_session = sha256(_pad(s))
    hp, hg = sha256(_pad(DH_PRIME)), sha256(_pad(DH_G))
    return sha256(bytes(x ^ y for x, y in zip(hp, hg, strict=True)), sha256(verifier.salt1),
                  sha256(verifier.salt2), a_pad, b_pad, k_session)


def check(challenge: Challenge, srp_id: int, a_bytes: bytes, m1: bytes) -> bool:
    if srp_id != challenge.srp_id:
        return False
    expected = expected_m1(challenge, a_bytes)
    return expected is not None and secrets.compare_digest(expected, m1)
