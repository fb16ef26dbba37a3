"""Every case of contract/flows.yaml, executed against the real bot through the sandbox's Bot API."""

from __future__ import annotations

import pytest

import contract
from tests.parity.harness import Harness
from tests.parity.runner import RESULTS, run_case, summary

pytestmark = [pytest.mark.parity, pytest.mark.asyncio(loop_scope="module")]

CONTRACT = contract.load()
CASES = CONTRACT.executable()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_case(harness: Harness, case: contract.Case) -> None:
    await run_case(harness, CONTRACT, case)


async def test_every_row_is_executed(harness: Harness) -> None:
    """Fails when a row of flows.md has no executed passing case; pending rows are reported."""
    rows = contract.row_ids()
    assert rows, "flows.md lists no rows"
    unknown = CONTRACT.rows() - set(rows) - {c.id for c in CONTRACT.cases if c.id.startswith("conv.")}
    assert not unknown, f"contract cases name rows flows.md doesn't have: {sorted(unknown)}"
    # run here whatever this session hasn't run yet (e.g. when this test is selected alone)
    errors = []
    for case in CASES:
        if case.name not in RESULTS:
            try:
                await run_case(harness, CONTRACT, case)
            except AssertionError as exc:
                errors.append(str(exc))
    text = summary(CONTRACT, rows)  # printed at the end of the run by conftest's terminal summary
    user_rows = [r for r in rows if r.startswith("U")]
    pending_user_rows = [r for r in user_rows if r in CONTRACT.pending()]
    assert not pending_user_rows, f"U rows may not be pending: {pending_user_rows}"
    not_run = [r for r in rows if r not in CONTRACT.pending()
               and not any(c.id == r and RESULTS.get(c.name) == "passed" for c in CASES)]
    assert not not_run, f"rows of flows.md without an executed passing case: {not_run}\n{text}"
    assert not errors, "\n".join(errors)
