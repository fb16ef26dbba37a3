"""Every case of contract/flows.yaml and contract/beyond/, executed against the real bot through the sandbox's Bot API.

With the sandbox gateway the whole contract runs; with the Telethon gateway (over the sandbox's
MTProto endpoint) the rows where the account gateway does the work: every U2 (login) case, the
group import rows U3.3 and U3.4, the several-accounts rows U8.1-U8.6 (two accounts logged in over
MTProto, switched, one logged in again with its old session logged out, one refused), the album row U9.3 (posted over MTProto with sendMultiMedia) and
the forum topic rows U11.1-U11.4 (topics listed over messages.getForumTopics, posts sent into a
topic by a worker's Telethon gateway).

The contract also runs in Russian (U12), on the sandbox gateway only (the language is the bot's
business, not the account gateway's, so a second Telethon pass would add minutes and prove nothing
more): every person speaks Russian, buttons, states, checks and failures are asserted as in English,
and reply phrases through their Russian meaning (``tests/parity/russian.py``).
"""

from __future__ import annotations

import pytest

import contract
from tests.parity.harness import Harness
from tests.parity.runner import pass_name, results, run_case, summary

pytestmark = [pytest.mark.parity, pytest.mark.asyncio(loop_scope="module")]

CONTRACT = contract.load()
CASES = CONTRACT.executable()
# U8: several accounts logged in, switched, re-logged (the old session logged out) and refused over
# MTProto; U9.3: albums posted with sendMultiMedia; U11: forum topics listed and posted into over MTProto
TELETHON_ROWS = frozenset({"U3.3", "U3.4", "U8.1", "U8.2", "U8.3", "U8.4", "U8.5", "U8.6", "U9.3",
                           "U11.1", "U11.2", "U11.3", "U11.4"})


def runs_with(gateway: str, row: str) -> bool:
    return gateway == "sandbox" or row.startswith("U2.") or row in TELETHON_ROWS


def cases_for(gateway: str) -> list[contract.Case]:
    return [c for c in CASES if runs_with(gateway, c.id)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.name == "test_case_in_russian":
        params = [pytest.param("sandbox", case, id=f"sandbox-ru-{case.name}") for case in cases_for("sandbox")]
        metafunc.parametrize(("gateway_kind", "case"), params, indirect=["gateway_kind"], scope="module")
        return
    if metafunc.definition.name != "test_case":
        return
    params = [pytest.param(gateway, case, id=f"{gateway}-{case.name}")
              for gateway in ("sandbox", "telethon") for case in cases_for(gateway)]
    # module scope: one harness per gateway, its cases in a row
    metafunc.parametrize(("gateway_kind", "case"), params, indirect=["gateway_kind"], scope="module")


async def test_case(harness: Harness, case: contract.Case) -> None:
    await run_case(harness, CONTRACT, case)


async def test_case_in_russian(harness: Harness, case: contract.Case) -> None:
    await run_case(harness, CONTRACT, case, language="ru")


@pytest.mark.gateways("sandbox")
async def test_every_row_is_executed_in_russian(harness: Harness) -> None:
    """Every row the sandbox gateway runs passes in Russian too (U12: "the contract runs in both")."""
    rows = [r for r in contract.row_ids() if r not in CONTRACT.pending()]
    errors = []
    outcomes = results(pass_name("sandbox", "ru"))
    for case in cases_for("sandbox"):
        if case.name not in outcomes:
            try:
                await run_case(harness, CONTRACT, case, language="ru")
            except AssertionError as exc:
                errors.append(str(exc))
    not_run = [r for r in rows if any(c.id == r for c in CASES)
               and not all(outcomes.get(c.name) == "passed" for c in CASES if c.id == r)]
    assert not not_run, f"rows without a passing Russian run: {not_run}"
    assert not errors, "\n".join(errors)


@pytest.mark.gateways("sandbox", "telethon")
async def test_every_row_is_executed(harness: Harness) -> None:
    """Fails when a row of flows.md this gateway runs has no executed passing case; pending rows are
    reported. The sandbox gateway runs every row, the Telethon gateway the U2 rows, U3.3, U3.4, U8,
    U9.3 and U11."""
    all_rows = contract.row_ids()
    assert all_rows, "flows.md lists no rows"
    unknown = CONTRACT.rows() - set(all_rows) - {c.id for c in CONTRACT.cases if c.id.startswith("conv.")}
    assert not unknown, f"contract cases name rows flows.md doesn't have: {sorted(unknown)}"
    gateway = harness.gateway_kind
    rows = [r for r in all_rows if runs_with(gateway, r)]
    cases = cases_for(gateway)
    # run here whatever this session hasn't run yet (e.g. when this test is selected alone)
    errors = []
    outcomes = results(gateway)
    for case in cases:
        if case.name not in outcomes:
            try:
                await run_case(harness, CONTRACT, case)
            except AssertionError as exc:
                errors.append(str(exc))
    text = summary(CONTRACT, all_rows)  # printed at the end of the run by conftest's terminal summary
    user_rows = [r for r in rows if r.startswith("U")]
    pending_user_rows = [r for r in user_rows if r in CONTRACT.pending() and r not in contract.beyond_rows()]
    assert not pending_user_rows, f"U rows of flows.md may not be pending: {pending_user_rows}"
    not_run = [r for r in rows if r not in CONTRACT.pending()
               and not any(c.id == r and outcomes.get(c.name) == "passed" for c in cases)]
    assert not not_run, f"rows of flows.md without an executed passing case ({gateway}): {not_run}\n{text}"
    assert not errors, "\n".join(errors)
