"""The limiter as people see it: /limits arguments, the pacing line, the round's likely end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.limits import AccountPace, Caps, Policy
from roles.bot import pacing_texts
from roles.bot.routers.limits import Usage, parse_args
from services.send_limits import pacing_view

WALL = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
POLICY = Policy(gap_min=4, gap_max=8, break_after=50, break_min=600, break_max=1200, slack=1)


@pytest.mark.parametrize(("raw", "expected"), [
    ("", (None, {})),
    ("123", (123, {})),
    ("hour=100 day=0", (None, {"hour": 100, "day": 0})),
    ("123 minute=5", (123, {"minute": 5})),
    ("123 reset", (123, None)),
])
def test_limits_arguments(raw: str, expected: object) -> None:
    assert parse_args(raw) == expected


@pytest.mark.parametrize("raw", ["reset", "hour", "hour=x", "hour=-1", "hour=1 hour=2", "abc", "1 2"])
def test_unreadable_limits_arguments_are_refused(raw: str) -> None:
    with pytest.raises(Usage):
        parse_args(raw)


def test_the_pacing_line_while_sending_and_while_resting() -> None:
    now = 1_000_000.0
    state = AccountPace(sends=[now - 3000 + i * 60 for i in range(48)], next_at=now + 100, last=now - 5,
                        streak=10)
    view = pacing_view(state, now, WALL, Caps(10, 250, 1500), POLICY, open_sends=0)
    assert pacing_texts.pacing_line(view) == "⏱ Paced: 48/250 this hour, next send in 1 min 40 s"
    assert view.round_ends_at is None

    resting = AccountPace(sends=[now - 10], rest_until=now + 35 * 60, rest_after=50, last=now - 10)
    view = pacing_view(resting, now, WALL, Caps(10, 250, 1500), POLICY, open_sends=5)
    assert pacing_texts.pacing_line(view) == "😴 Resting after 50 posts until 14:35 UTC"
    assert view.round_ends_at is not None and view.round_ends_at > WALL + timedelta(minutes=35)
    assert pacing_texts.round_end_line(view.round_ends_at) == (
        f"🏁 This round likely ends at {view.round_ends_at.strftime('%H:%M UTC')}")


def test_the_round_report_line_from_the_workers_payload() -> None:
    rest_until = (WALL + timedelta(minutes=35)).timestamp()
    assert pacing_texts.report_line({"hour": 48, "hour_cap": 250, "rest_after": 0, "rest_until": 0}) == (
        "⏱ Paced: 48/250 this hour")
    assert pacing_texts.report_line({"hour": 50, "hour_cap": 250, "rest_after": 50, "rest_until": rest_until}) == (
        "😴 Resting after 50 posts until 14:35 UTC")
    assert pacing_texts.report_line({"hour": "x"}) is None
