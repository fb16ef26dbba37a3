"""Fixtures: one RSA key per test session (generating it is the slow part); per test, a seeded world
served over MTProto on a free 127.0.0.1 port (``mt``, see ``support.MTSandbox``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from config.settings import SandboxSettings
from sandbox.events import EventLog
from sandbox.mtproto import keys, start_mtproto
from sandbox.world import World
from tests.mtproto.support import WORLD, MTSandbox


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return keys.generate()


@pytest.fixture
async def mt(rsa_key: rsa.RSAPrivateKey) -> AsyncIterator[MTSandbox]:
    world = World(SandboxSettings(rate_limits=False), EventLog())
    world.seed(WORLD)
    server = await start_mtproto(world, "127.0.0.1", 0, rsa_key)
    box = MTSandbox(world, server, rsa_key)
    yield box
    await box.close()

