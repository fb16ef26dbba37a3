"""accounts.crypto: session strings encrypted at rest, key handling, the dev key file."""

from __future__ import annotations

import asyncio
import dataclasses
import stat
from pathlib import Path

import pytest

from accounts.crypto import (
    KEY_FILE_NAME,
    SessionCipher,
    SessionDecryptError,
    SessionKeyError,
    generate_key,
    load_or_create_key,
)
from config.settings import Secret, SecuritySettings, Settings, SettingsError

SESSION = "1BVtsOKEBu2Nq0S9vFiXbQ_session-string-with-an-auth-key=="


def _settings(tmp_path: Path, key: str = "", production: bool = False) -> Settings:
    return Settings(production=production, data_dir=tmp_path / "data",
                    security=SecuritySettings(session_key=Secret(key)))


def test_round_trip() -> None:
    cipher = SessionCipher(generate_key())
    token = cipher.encrypt(SESSION)
    assert isinstance(token, bytes)
    assert cipher.decrypt(token) == SESSION


def test_ciphertext_does_not_contain_the_plaintext() -> None:
    cipher = SessionCipher(generate_key())
    token = cipher.encrypt(SESSION)
    assert SESSION.encode() not in token
    assert b"auth-key" not in token
    assert cipher.encrypt(SESSION) != token  # a fresh IV every time


def test_wrong_key_fails() -> None:
    token = SessionCipher(generate_key()).encrypt(SESSION)
    with pytest.raises(SessionDecryptError):
        SessionCipher(generate_key()).decrypt(token)


def test_tampered_ciphertext_fails() -> None:
    cipher = SessionCipher(generate_key())
    token = bytearray(cipher.encrypt(SESSION))
    token[-5] ^= 1
    with pytest.raises(SessionDecryptError):
        cipher.decrypt(bytes(token))


def test_rotation_old_key_still_decrypts_new_key_encrypts() -> None:
    old, new = generate_key(), generate_key()
    stored = SessionCipher(old).encrypt(SESSION)
    rotated = SessionCipher(f"{new},{old}")
    assert rotated.decrypt(stored) == SESSION
    assert SessionCipher(new).decrypt(rotated.encrypt(SESSION)) == SESSION


@pytest.mark.parametrize("key", ["", "   ", "not-a-key", "k" * 44, "é" * 44])
def test_missing_or_malformed_key_is_a_clear_error(key: str) -> None:
    with pytest.raises(SessionKeyError, match="SESSION_ENCRYPTION_KEY") as info:
        SessionCipher(key)
    assert isinstance(info.value, SettingsError)


def test_repr_does_not_show_the_key() -> None:
    key = generate_key()
    assert key not in repr(SessionCipher(key))


def test_configured_key_is_used(tmp_path: Path) -> None:
    key = generate_key()
    cipher = load_or_create_key(_settings(tmp_path, key))
    assert SessionCipher(key).decrypt(cipher.encrypt(SESSION)) == SESSION
    assert not (tmp_path / "data" / KEY_FILE_NAME).exists()


def test_production_without_a_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SessionKeyError, match="production"):
        load_or_create_key(_settings(tmp_path, production=True))
    assert not (tmp_path / "data").exists()


def test_development_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first = load_or_create_key(settings)
    path = tmp_path / "data" / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = first.encrypt(SESSION)
    second = load_or_create_key(dataclasses.replace(settings))
    assert second.decrypt(token) == SESSION  # stable across restarts
    assert [p.name for p in path.parent.iterdir()] == [KEY_FILE_NAME]  # no temp file left


async def test_processes_starting_together_share_one_key_file(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    ciphers = await asyncio.gather(*(asyncio.to_thread(load_or_create_key, settings) for _ in range(8)))
    token = ciphers[0].encrypt(SESSION)
    assert all(cipher.decrypt(token) == SESSION for cipher in ciphers)


def test_empty_key_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / KEY_FILE_NAME).write_text("")
    with pytest.raises(SessionKeyError, match="empty"):
        load_or_create_key(_settings(tmp_path))
