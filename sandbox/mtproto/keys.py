"""The sandbox's RSA key for the MTProto key exchange.

Telegram's clients carry the public keys of Telegram's servers; the sandbox has its own key,
which a client registers with ``telethon.crypto.rsa.add_key(public_pem, old=False)``.
``load_or_create`` keeps it in a PEM file (so clients in other processes can read the
public half next to it, ``<name>.pub.pem``); tests use ``generate()`` at run time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

logger = logging.getLogger(__name__)

KEY_BITS = 2048  # MTProto's RSA step encrypts exactly 256 bytes
KEY_FILE = Path("sandbox") / "mtproto_rsa.pem"  # under DATA_DIR, unless configured otherwise


def generate() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def default_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / KEY_FILE


def public_path(private_path: str | Path) -> Path:
    """Where ``load_or_create`` writes the public half: ``<name>.pub.pem`` beside the key."""
    path = Path(private_path)
    return path.with_name(path.stem + ".pub.pem")


def load_or_create(path: str | Path) -> rsa.RSAPrivateKey:
    """The key stored at ``path``; a new one is generated and stored (with its public half) if absent."""
    private_path = Path(path)
    if private_path.is_file():
        key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != KEY_BITS:
            raise ValueError(f"{private_path} does not hold a {KEY_BITS}-bit RSA private key")
    else:
        key = generate()
        private_path.parent.mkdir(parents=True, exist_ok=True)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        # The private half is a test double's key, but still not world-readable.
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        logger.info("sandbox MTProto RSA key created at %s", private_path)
    public_path(private_path).write_text(public_pem(key), encoding="ascii")
    return key


def public_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    """The public key as ``-----BEGIN RSA PUBLIC KEY-----`` (PKCS#1), the form ``add_key`` reads."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode("ascii")


def _tl_bytes(data: bytes) -> bytes:
    # TL "bytes" (length prefix, padding to 4), the form Telegram hashes for the fingerprint.
    head = bytes([len(data)]) if len(data) < 254 else b"\xfe" + len(data).to_bytes(3, "little")
    body = head + data
    return body + bytes(-len(body) % 4)


def fingerprint(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> int:
    """The signed 64-bit fingerprint the client looks for in ``resPQ``: lower 8 bytes of SHA1(n, e)."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    numbers = public.public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    digest = hashlib.sha1(_tl_bytes(n) + _tl_bytes(e)).digest()
    return int(struct.unpack("<q", digest[-8:])[0])


def decrypt_raw(key: rsa.RSAPrivateKey, block: bytes) -> bytes:
    """Textbook RSA (no padding scheme): MTProto pads the plaintext itself. 256 bytes out."""
    numbers = key.private_numbers()
    value = int.from_bytes(block, "big")
    n = numbers.public_numbers.n
    if value >= n:
        raise ValueError("RSA block not below the modulus")
    return pow(value, numbers.d, n).to_bytes(KEY_BITS // 8, "big")
