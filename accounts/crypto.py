"""Encryption at rest of account session strings (Fernet: AES-128-CBC + HMAC-SHA256).

The key comes from ``SESSION_ENCRYPTION_KEY``. Several comma-separated keys allow a
rotation: the first encrypts, any of them decrypts. Outside production, with no key
set, a random key is created once in ``<data_dir>/session.key`` (mode 0600) and
reused; production refuses to start without a key (``Settings.check_production``,
and again here).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from config.settings import Settings, SettingsError

logger = logging.getLogger(__name__)

KEY_FILE_NAME = "session.key"


class SessionKeyError(SettingsError):
    """The session encryption key is missing or malformed (the message names the variable)."""


class SessionDecryptError(Exception):
    """Stored ciphertext that this key can't decrypt: a different key, or corrupted data."""


def generate_key() -> str:
    """A new random key in the format ``SESSION_ENCRYPTION_KEY`` expects."""
    return Fernet.generate_key().decode("ascii")


class SessionCipher:
    """Encrypts and decrypts session strings with the configured key(s)."""

    def __init__(self, key: str | bytes) -> None:
        raw = key.decode("ascii") if isinstance(key, bytes) else key
        keys = [part.strip() for part in raw.split(",") if part.strip()]
        if not keys:
            raise SessionKeyError("SESSION_ENCRYPTION_KEY is missing")
        try:
            self._fernet = MultiFernet([Fernet(part.encode("ascii")) for part in keys])
        except (ValueError, UnicodeEncodeError) as exc:
            raise SessionKeyError(
                "SESSION_ENCRYPTION_KEY is malformed: expected 32 bytes in url-safe base64 (make one with "
                "`python -c 'from accounts.crypto import generate_key; print(generate_key())'`)"
            ) from exc

    def __repr__(self) -> str:
        return "SessionCipher(**********)"

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode("utf-8")
        except (InvalidToken, UnicodeDecodeError) as exc:
            raise SessionDecryptError("session ciphertext does not match the key (or is corrupted)") from exc


def load_or_create_key(settings: Settings) -> SessionCipher:
    """The cipher for ``settings``: the configured key, or (not in production) the data-dir key file."""
    configured = settings.security.session_key.get()
    if configured.strip():
        return SessionCipher(configured)
    if settings.production:
        raise SessionKeyError("SESSION_ENCRYPTION_KEY is missing; production start refused")
    return SessionCipher(_key_file(Path(settings.data_dir) / KEY_FILE_NAME))


def _key_file(path: Path) -> str:
    if not path.exists():
        _create_key_file(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        logger.warning("%s is readable by others (mode %o); it should be 0600", path, mode)
    key = path.read_text(encoding="ascii").strip()
    if not key:
        raise SessionKeyError(f"{path} is empty; delete it or set SESSION_ENCRYPTION_KEY")
    return key


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written to a private temp file, then hard-linked into place: linking never overwrites,
    # so two processes starting together end up reading the same complete key.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(generate_key() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
            logger.warning("no SESSION_ENCRYPTION_KEY set: created %s (development only)", path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
