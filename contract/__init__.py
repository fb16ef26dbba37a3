"""The flow contract as data: ``flows.yaml`` + ``beyond/*.yaml`` (executable cases) and
``flows.md`` + ``flows-beyond.md`` (the rows).

``load()`` reads and checks the YAML (unknown step or expectation names, unknown preconditions
and malformed cases are errors, so a typo can't silently skip a check); the files of ``beyond/``
add their preconditions and cases to those of flows.yaml (a name defined twice is an error).
``row_ids()`` lists every row id of both markdown files, which the parity suite requires to be
covered. Only a row of flows-beyond.md may be pending (not built yet, with the reason); the parity
summary prints each one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FLOWS_YAML = HERE / "flows.yaml"
FLOWS_MD = HERE / "flows.md"
BEYOND_MD = HERE / "flows-beyond.md"
BEYOND_DIR = HERE / "beyond"

STEP_KINDS = frozenset(
    {
        "send",
        "contact",
        "media",
        "location",
        "poll",
        "album",
        "press",
        "forge",
        "keypad",
        "login_as",
        "fault",
        "revoke_sessions",
        "access_mode",
        "ban",
        "advance_clock",
        "given",
        "twice",
        "admin_press",
        "admin_send",
        "admin_forge",
        "keep",
        "press_kept",
        "scheduler_tick",
        "round",
        "topic",
        "run_round",
        "language_code",
    }
)
EXPECT_KEYS = frozenset(
    {
        "reply",
        "buttons",
        "no_buttons",
        "contact_button",
        "state",
        "edited",
        "input_deleted",
        "answered",
        "entities",
        "media",
        "admin",
        "checks",
        "new_messages",
        "notified",
        "kept_buttons",
    }
)
CHECK_NAMES = frozenset(
    {
        "account_connected",
        "session_encrypted",
        "selected",
        "campaign",
        "interval",
        "message_version",
        "typed",
        "due_now",
        "codes_sent",
        "world_sessions",
        "audit",
        "banned",
        "access",
        "access_mode",
        "global_paused",
        "topics",
        "topic",
        "topic_posts",
        "groups_disabled_told",
        "messages",
        "rotation",
        "round_texts",
        "repeats",
        "album_posts",
        "timezone",
        "window",
        "window_days",
        "attempts",
        "rounds",
        "language",
        "accounts",
        "current_account",
        "account_rows",
    }
)
STATES = frozenset(
    {
        "idle",
        "login_phone",
        "login_code",
        "login_password",
        "msg_wait",
        "msg_confirm",
        "int_wait",
        "sch_tz",
        "sch_hours",
        "announce_wait",
        "announce_confirm",
    }
)
_ROW = re.compile(r"^\|\s*((?:U\d+\.\d+)|(?:A\d+))\s*\|", re.MULTILINE)

Step = dict[str, Any]


class ContractError(ValueError):
    """The YAML does not describe a valid contract; the message says where."""


@dataclass(frozen=True)
class Case:
    id: str
    case: str = ""
    given: tuple[Step, ...] = ()
    trigger: Step | None = None
    expect: dict[str, Any] = field(default_factory=dict)
    failure: tuple[str, ...] = ()
    pending: str = ""  # a reason: the row is listed but not executable yet
    as_admin: bool = False

    @property
    def name(self) -> str:
        return f"{self.id} {self.case}".strip()

    @property
    def row(self) -> str:
        """The flows.md row this case covers (``conv.*`` cases cover conventions, no row)."""
        return self.id


@dataclass(frozen=True)
class Contract:
    accounts: dict[str, dict[str, Any]]
    settings: dict[str, Any]
    given: dict[str, tuple[Step, ...]]
    cases: tuple[Case, ...]

    def rows(self) -> set[str]:
        return {c.id for c in self.cases}

    def executable(self) -> list[Case]:
        return [c for c in self.cases if not c.pending]

    def pending(self) -> dict[str, str]:
        return {c.id: c.pending for c in self.cases if c.pending}

    def expand(self, steps: tuple[Step, ...] | list[Step]) -> list[Step]:
        """Steps with every ``given: <name>`` replaced by that precondition's steps."""
        out: list[Step] = []
        for step in steps:
            if "given" in step:
                out.extend(self.expand(self.given[str(step["given"])]))
            else:
                out.append(step)
        return out


def _step(raw: Any, where: str, given_names: set[str]) -> Step:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ContractError(f"{where}: a step is a mapping with one key, got {raw!r}")
    ((kind, value),) = raw.items()
    if kind not in STEP_KINDS:
        raise ContractError(f"{where}: unknown step {kind!r}")
    if kind == "given" and value not in given_names:
        raise ContractError(f"{where}: unknown precondition {value!r}")
    if kind == "twice":
        _step(value, f"{where} (twice)", given_names)
    return {str(kind): value}


def _steps(raw: Any, where: str, given_names: set[str]) -> tuple[Step, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ContractError(f"{where}: steps must be a list")
    return tuple(_step(item, f"{where}[{i}]", given_names) for i, item in enumerate(raw))


def _expect(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ContractError(f"{where}: expect must be a mapping")
    unknown = set(raw) - EXPECT_KEYS
    if unknown:
        raise ContractError(f"{where}: unknown expectation(s) {sorted(unknown)}")
    checks = raw.get("checks") or {}
    if set(checks) - CHECK_NAMES:
        raise ContractError(f"{where}: unknown check(s) {sorted(set(checks) - CHECK_NAMES)}")
    if "state" in raw and raw["state"] not in STATES:
        raise ContractError(f"{where}: unknown state {raw['state']!r}")
    for key in ("reply", "buttons", "no_buttons", "notified"):
        if key in raw and not (isinstance(raw[key], list) and all(isinstance(x, str) for x in raw[key])):
            raise ContractError(f"{where}: {key} must be a list of strings")
    return dict(raw)


def parse(data: Any) -> Contract:
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ContractError("the contract must be a mapping with version: 1")
    raw_given = data.get("given") or {}
    names = set(raw_given)
    given = {str(name): _steps(steps, f"given.{name}", names) for name, steps in raw_given.items()}
    cases: list[Case] = []
    for i, raw in enumerate(data.get("cases") or []):
        where = f"cases[{i}]"
        if not isinstance(raw, dict) or "id" not in raw:
            raise ContractError(f"{where}: a case needs an id")
        where = f"{where} ({raw['id']} {raw.get('case', '')})".strip()
        pending = str(raw.get("pending") or "")
        trigger = None
        if not pending:
            if "trigger" not in raw:
                raise ContractError(f"{where}: a case needs a trigger (or a pending reason)")
            trigger = _step(raw["trigger"], f"{where}.trigger", names)
        unknown = set(raw) - {"id", "case", "given", "trigger", "expect", "failure", "pending", "as_admin"}
        if unknown:
            raise ContractError(f"{where}: unknown field(s) {sorted(unknown)}")
        cases.append(
            Case(
                id=str(raw["id"]),
                case=str(raw.get("case") or ""),
                given=_steps(raw.get("given"), f"{where}.given", names),
                trigger=trigger,
                expect=_expect(raw.get("expect"), f"{where}.expect"),
                failure=tuple(str(x) for x in raw.get("failure") or ()),
                pending=pending,
                as_admin=bool(raw.get("as_admin", False)),
            )
        )
    names_seen = [c.name for c in cases]
    duplicates = {n for n in names_seen if names_seen.count(n) > 1}
    if duplicates:
        raise ContractError(f"cases with the same id and case name: {sorted(duplicates)}")
    return Contract(
        accounts={str(k): dict(v) for k, v in (data.get("accounts") or {}).items()},
        settings=dict(data.get("settings") or {}),
        given=given,
        cases=tuple(cases),
    )


def merge(base: dict[str, Any], extra: dict[str, Any], where: str) -> dict[str, Any]:
    """``base`` with the preconditions and cases of ``extra`` (a file of beyond/) added."""
    if not isinstance(extra, dict) or extra.get("version") != 1:
        raise ContractError(f"{where}: must be a mapping with version: 1")
    unknown = set(extra) - {"version", "given", "cases"}
    if unknown:
        raise ContractError(f"{where}: unknown top-level key(s) {sorted(unknown)}")
    given = dict(base.get("given") or {})
    twice = set(given) & set(extra.get("given") or {})
    if twice:
        raise ContractError(f"{where}: precondition(s) already defined: {sorted(twice)}")
    given.update(extra.get("given") or {})
    return {**base, "given": given, "cases": [*(base.get("cases") or []), *(extra.get("cases") or [])]}


def load(path: Path = FLOWS_YAML, beyond: Path | None = BEYOND_DIR) -> Contract:
    import yaml  # a test/tooling dependency; the running service never loads the contract

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for extra in sorted(beyond.glob("*.yaml")) if beyond is not None else ():
        data = merge(data, yaml.safe_load(extra.read_text(encoding="utf-8")), extra.name)
    return parse(data)


def row_ids(*paths: Path) -> list[str]:
    """Every row id of flows.md and flows-beyond.md (``U1.1`` … ``A7``, ``U8.1`` …), in order."""
    files = paths or (FLOWS_MD, BEYOND_MD)
    return [row for path in files for row in _ROW.findall(path.read_text(encoding="utf-8"))]


def beyond_rows() -> frozenset[str]:
    """The rows of flows-beyond.md: the only ones that may be pending."""
    return frozenset(row_ids(BEYOND_MD))
