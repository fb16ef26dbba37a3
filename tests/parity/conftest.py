"""Parity fixtures: one harness (sandbox + real bot + fresh database) per test module and gateway.

The account gateway is a parameter of the harness (``gateway_kind``, as ``ACCOUNT_GATEWAY``).
Tests marked ``@pytest.mark.gateways("sandbox", "telethon")`` run once per listed gateway; the
rest run with the sandbox gateway. ``PARITY_GATEWAYS`` (comma-separated, default
``sandbox,telethon``) selects which gateways run: items of the others are deselected.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

import contract
from accounts.factory import GATEWAY_KINDS
from tests.parity import report as parity_report
from tests.parity.harness import Harness, start_harness

GATEWAYS_ENV = "PARITY_GATEWAYS"
DEFAULT_GATEWAY = "sandbox"
HERE = Path(__file__).resolve().parent



def selected_gateways() -> tuple[str, ...]:
    raw = os.environ.get(GATEWAYS_ENV, ",".join(GATEWAY_KINDS))
    kinds = tuple(dict.fromkeys(k.strip() for k in raw.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in GATEWAY_KINDS]
    if unknown or not kinds:
        raise pytest.UsageError(f"{GATEWAYS_ENV} must list gateways among {', '.join(GATEWAY_KINDS)}, "
                                f"got {raw!r}")
    return kinds


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gateways(*kinds): run the test once per listed account gateway "
                                       f"(those selected by {GATEWAYS_ENV})")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("gateways")
    if marker is None or "gateway_kind" not in metafunc.fixturenames:
        return
    kinds = list(marker.args or GATEWAY_KINDS)
    # module scope: the items of one gateway are grouped, so each module starts one harness per gateway
    metafunc.parametrize("gateway_kind", kinds, indirect=True, scope="module")


def gateway_of(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    return str(callspec.params.get("gateway_kind", DEFAULT_GATEWAY)) if callspec else DEFAULT_GATEWAY


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # called with the whole session's items: only this directory's are ours
    wanted = selected_gateways()
    keep, drop = [], []
    for item in items:
        if not item.path.resolve().is_relative_to(HERE) or "gateway_kind" not in getattr(item, "fixturenames", ()):
            keep.append(item)
            continue
        gateway = gateway_of(item)
        if gateway in wanted:
            parity_report.GATEWAY_OF[item.nodeid] = gateway
            keep.append(item)
        else:
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    parity_report.record(report.nodeid, report.failed, report.duration)


@pytest.fixture(scope="session")
def flow_contract() -> contract.Contract:
    return contract.load()


@pytest.fixture(scope="module")
def gateway_kind(request: pytest.FixtureRequest) -> str:
    """The account gateway of this module's harness: ``sandbox`` unless the test is parametrised."""
    return str(getattr(request, "param", DEFAULT_GATEWAY))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def harness(server_urls: tuple[str, str], pg_server_url: str, flow_contract: contract.Contract,
                  gateway_kind: str) -> AsyncIterator[Harness]:
    async with start_harness(pg_server_url, server_urls[1], flow_contract, gateway=gateway_kind) as h:
        yield h


# the summary itself is printed by tests/conftest.py, which also gathers it from worker processes
def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)  # a pytest-xdist worker
    if workeroutput is not None:
        workeroutput["parity"] = parity_report.export()
