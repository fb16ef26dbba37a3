"""Fixtures shared by the engine tests here: a Database on the per-test database and a cipher."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from accounts.crypto import SessionCipher
from storage.db import Database
from tests.integration.engine_support import new_cipher


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await Database.connect(db_url, max_size=20)
    yield database
    await database.close()


@pytest.fixture
def cipher() -> SessionCipher:
    return new_cipher()
