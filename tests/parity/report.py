"""The parity summary printed at the end of a run, also when the suite runs in worker processes.

Each process records its own parity tests (``record``) and contract outcomes (``runner.RESULTS``);
a pytest-xdist worker hands both to the controller (``export``), which adds them up (``merge``)
and prints the one summary (``lines``) as a single process would.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from typing import Any

# the gateway of every collected parity test, and
# gateway -> test id -> (outcome, seconds of setup + call + teardown)
GATEWAY_OF: dict[str, str] = {}
RAN: dict[str, dict[str, tuple[str, float]]] = defaultdict(dict)


def _test_id(nodeid: str) -> str:
    # --dist loadgroup appends "@<group>" to the node ids after collection
    if nodeid in GATEWAY_OF or "@" not in nodeid:
        return nodeid
    return nodeid.rpartition("@")[0]


def record(nodeid: str, failed: bool, duration: float) -> None:
    test_id = _test_id(nodeid)
    gateway = GATEWAY_OF.get(test_id)
    if gateway is None:
        return
    outcome, seconds = RAN[gateway].get(test_id, ("passed", 0.0))
    RAN[gateway][test_id] = ("failed" if failed else outcome, seconds + duration)


def export() -> dict[str, Any]:
    """This process's share, in types a worker can send to the controller."""
    from tests.parity import runner

    return {"results": {k: dict(v) for k, v in runner.RESULTS.items()},
            "ran": {g: {t: list(v) for t, v in ran.items()} for g, ran in RAN.items()}}


def merge(share: dict[str, Any]) -> None:
    from tests.parity import runner

    for gateway, outcomes in share.get("results", {}).items():
        runner.RESULTS.setdefault(gateway, {}).update(outcomes)
    for gateway, ran in share.get("ran", {}).items():
        for test_id, (outcome, seconds) in ran.items():
            RAN[gateway][test_id] = (str(outcome), float(seconds))


def lines() -> list[str]:
    out: list[str] = []
    runner = sys.modules.get("tests.parity.runner")  # imported by whatever ran a contract case
    if runner is not None and runner.RESULTS:
        import contract

        out.append(runner.summary(contract.load(), contract.row_ids()))
    for gateway in sorted(RAN):
        ran = RAN[gateway]
        passed = sum(1 for outcome, _ in ran.values() if outcome == "passed")
        seconds = sum(s for _, s in ran.values())
        others = sorted({nodeid.split("::")[-1].split("[")[0] for nodeid in ran if "test_case[" not in nodeid})
        out.append(f"parity tests with the {gateway} gateway: {passed} / {len(ran)} passed in {seconds:.1f} s "
                   f"(setup + call + teardown); besides contract cases: {', '.join(others) or 'none'}")
    return out
