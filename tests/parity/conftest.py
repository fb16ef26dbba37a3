"""Parity fixtures: one harness (sandbox + real bot + fresh database) per test module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

import contract
from tests.parity import runner
from tests.parity.harness import Harness, start_harness


@pytest.fixture(scope="session")
def flow_contract() -> contract.Contract:
    return contract.load()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def harness(server_urls: tuple[str, str], pg_server_url: str,
                  flow_contract: contract.Contract) -> AsyncIterator[Harness]:
    async with start_harness(pg_server_url, server_urls[1], flow_contract) as h:
        yield h


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if runner.RESULTS:
        terminalreporter.write_line(runner.summary(contract.load(), contract.row_ids()))
