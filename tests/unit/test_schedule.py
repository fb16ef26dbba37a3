"""The schedule window and time zones (U10): ``domain.schedule``, by example and by property."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.schedule import (
    ALL_DAYS,
    DAY,
    Window,
    closes_at,
    format_days,
    format_hours,
    is_open,
    next_open,
    parse_hours,
    parse_zone,
    seconds_until_open,
    zone,
    zone_label,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
ZONES = [BERLIN, NEW_YORK, "UTC", "Asia/Kolkata", "Australia/Lord_Howe", "UTC+03:00", "UTC-05:30",
         "Pacific/Chatham", "America/Santiago"]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- parsing ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("typed", "stored"), [
    ("Europe/Berlin", BERLIN), ("europe/berlin", BERLIN), (" Asia/Kolkata ", "Asia/Kolkata"),
    ("UTC", "UTC"), ("utc", "UTC"), ("+3", "UTC+03:00"), ("-05:30", "UTC-05:30"), ("UTC+3", "UTC+03:00"),
    ("+0530", "UTC+05:30"), ("-12", "UTC-12:00"), ("+14", "UTC+14:00"), ("+0", "UTC+00:00"),
])
def test_zone_accepted(typed: str, stored: str) -> None:
    assert parse_zone(typed) == stored


@pytest.mark.parametrize("typed", ["Mars/Olympus", "Berlin", "+15", "+3:75", "", "3", "../etc/passwd",
                                   "Europe/Berlin; DROP", "hello world"])
def test_zone_refused(typed: str) -> None:
    assert parse_zone(typed) is None


def test_zone_label_names_the_offset_at_that_instant() -> None:
    assert zone_label(BERLIN, utc(2026, 1, 15, 12)) == "Europe/Berlin (UTC+1)"
    assert zone_label(BERLIN, utc(2026, 7, 15, 12)) == "Europe/Berlin (UTC+2)"
    assert zone_label("UTC-05:30", utc(2026, 7, 15)) == "UTC-5:30"
    assert zone_label("UTC+03:00", utc(2026, 7, 15)) == "UTC+3"
    assert zone_label("UTC", utc(2026, 7, 15)) == "UTC"


def test_unknown_stored_zone_falls_back_to_utc() -> None:
    assert zone("Nowhere/Land") is UTC


@pytest.mark.parametrize(("typed", "minutes"), [
    ("9-22", (540, 1320)), ("09:00-22:30", (540, 1350)), ("22-06", (1320, 360)), ("0-24", (0, DAY)),
    ("22-0", (1320, DAY)), ("9.30 - 17.45", (570, 1065)), ("23:59-00:01", (1439, 1)),
])
def test_hours_accepted(typed: str, minutes: tuple[int, int]) -> None:
    assert parse_hours(typed) == minutes


@pytest.mark.parametrize("typed", ["9", "9-9", "25-3", "9:60-10", "24:30-1", "abc", "9-24:01", "-"])
def test_hours_refused(typed: str) -> None:
    assert parse_hours(typed) is None


def test_formats() -> None:
    assert format_hours(Window(540, 1350)) == "09:00-22:30"
    assert format_hours(Window(1320, 360)) == "22:00-06:00"
    assert format_days(ALL_DAYS) == "every day"
    assert format_days(0b0011111) == "Mon, Tue, Wed, Thu, Fri"


def test_window_needs_a_day_and_a_length() -> None:
    with pytest.raises(ValueError):
        Window(540, 540)
    with pytest.raises(ValueError):
        Window(540, 600, 0)
    assert Window(540, 600, 1).toggled(0) is None


# --- the window on the clock ------------------------------------------------------------------------

def test_no_window_is_always_open() -> None:
    at = utc(2026, 12, 6, 3)
    assert is_open(None, BERLIN, at) and next_open(None, BERLIN, at) == at and closes_at(None, BERLIN, at) is None


def test_day_window_in_berlin_winter() -> None:
    w = Window(9 * 60, 22 * 60)
    assert not is_open(w, BERLIN, utc(2026, 12, 6, 7, 59))  # 08:59 local
    assert is_open(w, BERLIN, utc(2026, 12, 6, 8, 0))  # 09:00 local
    assert not is_open(w, BERLIN, utc(2026, 12, 6, 21, 0))  # 22:00 local: closed
    assert next_open(w, BERLIN, utc(2026, 12, 6, 21, 0)) == utc(2026, 12, 7, 8, 0)
    assert closes_at(w, BERLIN, utc(2026, 12, 6, 12)) == utc(2026, 12, 6, 21, 0)
    assert seconds_until_open(w, BERLIN, utc(2026, 12, 6, 7, 0)) == 3600


def test_window_across_midnight_belongs_to_the_day_it_opens() -> None:
    friday_night = Window(22 * 60, 6 * 60, 1 << 4)  # Fri 22:00 - Sat 06:00, UTC
    assert is_open(friday_night, "UTC", utc(2026, 12, 11, 23))  # Friday 23:00
    assert is_open(friday_night, "UTC", utc(2026, 12, 12, 5, 59))  # Saturday 05:59
    assert not is_open(friday_night, "UTC", utc(2026, 12, 12, 6))
    assert not is_open(friday_night, "UTC", utc(2026, 12, 11, 5))  # Friday morning: Thursday's night
    assert next_open(friday_night, "UTC", utc(2026, 12, 12, 6)) == utc(2026, 12, 18, 22)
    assert closes_at(friday_night, "UTC", utc(2026, 12, 12, 1)) == utc(2026, 12, 12, 6)


def test_days_are_read_in_the_users_zone() -> None:
    # Monday 01:00 in Tokyo is Sunday 16:00 UTC: a Monday-only window is open then
    monday = Window(0, DAY, 1 << 0)
    assert is_open(monday, "Asia/Tokyo", utc(2026, 12, 6, 16))
    assert not is_open(monday, "UTC", utc(2026, 12, 6, 16))


def test_spring_forward_gap_opens_at_the_end_of_the_gap() -> None:
    # Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00 UTC; a 02:30 opening has no instant
    w = Window(2 * 60 + 30, 10 * 60)
    assert next_open(w, BERLIN, utc(2026, 3, 28, 23)) == utc(2026, 3, 29, 1, 0)
    assert is_open(w, BERLIN, utc(2026, 3, 29, 1, 0))
    assert not is_open(w, BERLIN, utc(2026, 3, 29, 0, 59, 59))


def test_fall_back_repeated_hour_opens_at_its_first_occurrence() -> None:
    # Berlin 2026-10-25: 03:00 CEST goes back to 02:00 CET at 01:00 UTC; 02:30 happens twice
    w = Window(2 * 60 + 30, 2 * 60 + 45)
    assert next_open(w, BERLIN, utc(2026, 10, 24, 22)) == utc(2026, 10, 25, 0, 30)
    assert is_open(w, BERLIN, utc(2026, 10, 25, 1, 35))  # the second 02:35
    assert closes_at(w, BERLIN, utc(2026, 10, 25, 0, 35)) == utc(2026, 10, 25, 0, 45)


def test_new_york_window_moves_with_dst_in_utc() -> None:
    w = Window(9 * 60, 17 * 60)
    assert next_open(w, NEW_YORK, utc(2026, 1, 15, 0)) == utc(2026, 1, 15, 14)  # EST
    assert next_open(w, NEW_YORK, utc(2026, 7, 15, 0)) == utc(2026, 7, 15, 13)  # EDT


# --- properties ---------------------------------------------------------------------------------------

instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31),
                        timezones=st.just(UTC))
windows = st.builds(
    lambda start, length, days: Window(start, (start + length) % DAY or DAY, days),
    st.integers(0, DAY - 1), st.integers(1, DAY - 1), st.integers(1, ALL_DAYS),
)


@settings(max_examples=300, deadline=None)
@given(window=windows, zone_name=st.sampled_from(ZONES), at=instants)
def test_next_open_is_open_and_not_before(window: Window, zone_name: str, at: datetime) -> None:
    opening = next_open(window, zone_name, at)
    assert opening >= at
    assert is_open(window, zone_name, opening)
    assert opening - at <= timedelta(days=8)


@settings(max_examples=200, deadline=None)
@given(window=windows, zone_name=st.sampled_from(ZONES), at=instants)
def test_nothing_opens_earlier(window: Window, zone_name: str, at: datetime) -> None:
    """No instant between ``at`` and the opening found is open (checked on a minute grid)."""
    opening = next_open(window, zone_name, at)
    probe = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    step = max(timedelta(minutes=1), (opening - at) / 400)
    while probe < opening - timedelta(seconds=1):
        assert not is_open(window, zone_name, probe), probe
        probe += step


@settings(max_examples=200, deadline=None)
@given(window=windows, zone_name=st.sampled_from(ZONES), at=instants)
def test_open_until_the_close(window: Window, zone_name: str, at: datetime) -> None:
    close = closes_at(window, zone_name, at)
    if close is None:
        assert not is_open(window, zone_name, at)
        return
    assert close > at
    assert is_open(window, zone_name, close - timedelta(seconds=1)) or close - at <= timedelta(seconds=1)
    # the close is a close, unless the next day's window starts right there (back-to-back days)
    if not is_open(window, zone_name, close):
        assert seconds_until_open(window, zone_name, close) > 0


@settings(max_examples=200, deadline=None)
@given(start=st.integers(0, DAY - 1), length=st.integers(1, DAY - 1), zone_name=st.sampled_from(ZONES),
       at=instants)
def test_every_day_window_opens_within_a_day(start: int, length: int, zone_name: str, at: datetime) -> None:
    window = Window(start, (start + length) % DAY or DAY)
    assert next_open(window, zone_name, at) - at <= timedelta(hours=26)
