"""The flow contract file: it loads, covers every row of flows.md, and typos are errors."""

from __future__ import annotations

import pytest

import contract


def test_contract_covers_every_row_of_flows_md() -> None:
    loaded = contract.load()
    rows = contract.row_ids()
    assert len(rows) == len(set(rows)) >= 50
    assert set(rows) <= loaded.rows()
    beyond = contract.beyond_rows()
    assert {"U8.1", "U12.2"} <= beyond and not beyond & set(contract.row_ids(contract.FLOWS_MD))
    user_rows = {r for r in rows if r.startswith("U")}
    assert not (user_rows - beyond) & set(loaded.pending()), "U rows of flows.md must be executable"
    unknown = loaded.rows() - set(rows) - {r for r in loaded.rows() if r.startswith("conv.")}
    assert not unknown, f"cases name rows neither markdown file has: {sorted(unknown)}"


def test_a_beyond_file_may_not_redefine_a_precondition() -> None:
    base = {"version": 1, "given": {"started": [{"send": "/start"}]}, "cases": []}
    with pytest.raises(contract.ContractError, match="already defined"):
        contract.merge(base, {"version": 1, "given": {"started": []}}, "x.yaml")
    merged = contract.merge(base, {"version": 1, "cases": [{"id": "U8.1", "pending": "later"}]}, "x.yaml")
    assert contract.parse(merged).pending() == {"U8.1": "later"}


def test_preconditions_expand_recursively() -> None:
    loaded = contract.load()
    steps = loaded.expand([{"given": "connected"}])
    assert steps[0] == {"send": "/start"}
    assert all("given" not in s for s in steps)


BASE = {"version": 1, "given": {"started": [{"send": "/start"}]}}


@pytest.mark.parametrize(("case", "error"), [
    ({"id": "U1.1", "trigger": {"sned": "/start"}}, "unknown step"),
    ({"id": "U1.1", "trigger": {"send": "/start"}, "expect": {"replly": ["x"]}}, "unknown expectation"),
    ({"id": "U1.1", "trigger": {"send": "/start"}, "expect": {"state": "lgoin_code"}}, "unknown state"),
    ({"id": "U1.1", "trigger": {"send": "/start"}, "expect": {"checks": {"nope": 1}}}, "unknown check"),
    ({"id": "U1.1", "given": [{"given": "strated"}], "trigger": {"send": "/start"}}, "unknown precondition"),
    ({"id": "U1.1"}, "needs a trigger"),
    ({"id": "U1.1", "trigger": {"send": "/start"}, "extra": 1}, "unknown field"),
])
def test_typos_are_errors(case: dict[str, object], error: str) -> None:
    with pytest.raises(contract.ContractError, match=error):
        contract.parse({**BASE, "cases": [case]})


def test_duplicate_case_names_are_errors() -> None:
    case = {"id": "U1.1", "trigger": {"send": "/start"}}
    with pytest.raises(contract.ContractError, match="same id"):
        contract.parse({**BASE, "cases": [case, case]})


def test_pending_rows_need_no_trigger() -> None:
    parsed = contract.parse({**BASE, "cases": [{"id": "A1", "pending": "later"}]})
    assert parsed.pending() == {"A1": "later"} and parsed.executable() == []


def test_the_contract_copy_of_flows_md_matches_the_spec() -> None:
    """contract/flows.md is the project's copy of ../shared/spec/flows.md with the amended rows of
    flows-beyond.md ("these rows win") in place: the row ids must not drift, the amendments are verbatim."""
    import re
    from pathlib import Path

    import contract

    spec = Path(__file__).resolve().parents[3] / "shared" / "spec" / "flows.md"
    if not spec.is_file():
        pytest.skip("no ../shared/spec beside this checkout")
    amendments = spec.with_name("flows-beyond.md").read_text(encoding="utf-8").split("## Amendments to flows.md")
    amended = re.findall(r"^\| (U\d+\.\d+) \|.*$", amendments[-1], re.M) if len(amendments) > 1 else []
    assert set(contract.row_ids(contract.FLOWS_MD)) == set(contract.row_ids(spec)) | set(amended)
    copy = contract.FLOWS_MD.read_text(encoding="utf-8")
    for line in re.findall(r"^\| U\d+\.\d+ \|.*$", amendments[-1], re.M) if len(amendments) > 1 else []:
        assert line in copy, line
    # the new rows (U8-U12) are copied verbatim into contract/flows-beyond.md
    beyond = contract.BEYOND_MD.read_text(encoding="utf-8")
    new_rows = re.findall(r"^\| U\d+\.\d+ \|.*$", amendments[0], re.M)
    assert new_rows and all(line in beyond for line in new_rows)
    assert set(contract.row_ids(contract.BEYOND_MD)) == {line.split("|")[1].strip() for line in new_rows}
