"""Fixtures shared by the chaos suites: the servers each module's cluster runs against."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chaos.cluster import Servers


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    """PostgreSQL and Redis for one module (external ones when TEST_*_URL are set)."""
    started = Servers.start()
    yield started
    started.stop()
