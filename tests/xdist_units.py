"""Units of work for the suite's worker processes (``make test``: pytest-xdist, ``-n N --dist loadscope``).

A unit runs whole in one worker. A test module is one unit, so its module-scoped fixtures (a parity
harness, a chaos module's servers) are built once, as in a single process; the parity contract is
one unit per pass (English over each gateway, Russian), its three longest stretches, each with its
own harness. Units are handed out heaviest first, so no long one starts while the others run dry.

Why not ``--dist loadgroup`` with ``xdist_group`` marks: pytest-xdist 3.8 groups by rewriting
node ids, which pytest 9.2 no longer lets it do, so the marks are silently ignored
(pytest-dev/pytest-xdist#1386). The unit here is read from the node id, in the controller.
"""

from __future__ import annotations

from typing import Any

import pytest

CONTRACT = "tests/parity/test_contract.py"
# Unit prefixes, heaviest first (figures: --durations of make test on 2 cores); the rest keep their
# collection order after these.
HEAVY_FIRST = (
    f"{CONTRACT}::sandbox",  # the contract's English and Russian passes, 2-3 min each
    f"{CONTRACT}::",  # its Telethon pass, 1.5 min
    "tests/chaos/",  # real worker processes, SIGKILLs, lease expiries: 30-60 s a module
    "tests/parity/",
    "tests/browser/",
    "tests/mtproto/",
    "tests/integration/",
    "tests/sandbox/",
    "tests/app/",
    "tests/unit/",
)


def unit_of(nodeid: str) -> str:
    """The unit of a test: its module, or for the contract its pass (``…::sandbox``, ``…::sandbox-ru``,
    ``…::telethon``), read from the ids tests/parity/test_contract.py gives its tests: ``test_case[<gateway>-…]``,
    ``test_case_in_russian[sandbox-ru-…]`` and the every-row checks ``…[<gateway>]``, which stay with their pass
    (they read the outcomes that pass recorded in its process)."""
    module, _, rest = nodeid.partition("::")
    if module != CONTRACT:
        return module
    name, _, param = rest.partition("[")
    gateway = param.split("-", 1)[0].rstrip("]")
    return f"{CONTRACT}::{gateway}{'-ru' if name.endswith('_in_russian') else ''}"


def rank(unit: str) -> int:
    return next((i for i, prefix in enumerate(HEAVY_FIRST) if unit.startswith(prefix)), len(HEAVY_FIRST))


def order_heaviest_first(items: list[pytest.Item]) -> None:
    """In each worker, the collection the scheduler receives: units by HEAVY_FIRST, each unit's tests in
    pytest's own order (a stable sort)."""
    first_seen: dict[str, int] = {}
    for item in items:
        first_seen.setdefault(unit_of(item.nodeid), len(first_seen))

    def key(item: pytest.Item) -> tuple[int, int]:
        unit = unit_of(item.nodeid)
        return rank(unit), first_seen[unit]

    items.sort(key=key)


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class UnitScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def __init__(self, config: pytest.Config, log: Any = None) -> None:
            super().__init__(config, log)
            # units in the workers' collection order (heaviest first), not by their number of tests
            config.option.loadscopereorder = False

        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    return UnitScheduling(config, log)
