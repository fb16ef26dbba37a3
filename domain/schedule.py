"""The schedule window and the user's time zone (U10), as pure functions: no I/O, no clock.

A *window* is active hours (minutes after local midnight, ``start`` to ``end``; across midnight
when ``end <= start``) on some days of the week, read on the clock of the user's time zone. It is
open at an instant when the local clock then shows a time inside it, on a day it is set for (a
window across midnight belongs to the day it opens on). So a DST change needs no special case:
on the spring-forward day a window opening at 02:30 opens at 03:00 local, the first instant the
clock shows 02:30 or later, and on the fall-back day the repeated hour counts twice.

Time zones are IANA names (``Europe/Berlin``, via ``zoneinfo``) or fixed offsets, stored as
``UTC+03:00`` / ``UTC-05:30``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DAY = 24 * 60  # minutes
ALL_DAYS = 0b111_1111  # bit n: weekday n (0 = Monday … 6 = Sunday), as ``date.weekday()``
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DEFAULT_ZONE = "UTC"

_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
_IANA = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,2}$")
_HOURS = re.compile(r"^\s*(\d{1,2})(?:[:.](\d{2}))?\s*[-–—]\s*(\d{1,2})(?:[:.](\d{2}))?\s*$")
_OFFSET_NAME = re.compile(r"^UTC([+-])(\d{2}):(\d{2})$")
MAX_OFFSET = 14 * 60  # minutes: UTC+14 (Kiribati) … UTC-12 is what Telegram's users live in


@dataclass(frozen=True)
class Window:
    """Active hours ``start``..``end`` (minutes, 0..1440) on the weekdays of ``days`` (a bit mask)."""

    start: int
    end: int
    days: int = ALL_DAYS

    def __post_init__(self) -> None:
        if not (0 <= self.start < DAY and 0 < self.end <= DAY):
            raise ValueError(f"window hours out of range: {self.start}-{self.end}")
        if self.start == self.end:
            raise ValueError("a window needs a length")
        if not (0 < self.days <= ALL_DAYS):
            raise ValueError("a window needs at least one day")

    @property
    def across_midnight(self) -> bool:
        return self.end <= self.start

    @property
    def length(self) -> int:
        """Minutes from the opening to the close (on the local clock)."""
        return self.end - self.start if not self.across_midnight else DAY - self.start + self.end

    def on(self, weekday: int) -> bool:
        return bool(self.days >> weekday & 1)

    def toggled(self, weekday: int) -> Window | None:
        """The window with ``weekday`` switched; None when that would leave no day."""
        days = self.days ^ (1 << weekday)
        return None if days == 0 else Window(self.start, self.end, days)


def window_of(start: int | None, end: int | None, days: int) -> Window | None:
    """The window of stored columns (no hours: no window)."""
    if start is None or end is None:
        return None
    return Window(start, end, days or ALL_DAYS)


# --- time zones -----------------------------------------------------------------------------------

def offset_name(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def parse_zone(text: str) -> str | None:
    """What the user typed as a time zone -> its stored name, or None.

    ``Europe/Berlin`` (any case: ``europe/berlin``), ``UTC``, ``+3``, ``-05:30``, ``UTC+3``, ``+0530``.
    """
    raw = text.strip()
    match = _OFFSET.match(raw)
    if match:
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        total = hours * 60 + minutes
        if minutes >= 60 or total > MAX_OFFSET:
            return None
        return offset_name(total if sign == "+" else -total)
    if raw.upper() in ("UTC", "GMT", "Z"):
        return DEFAULT_ZONE
    if not _IANA.match(raw):
        return None
    name = _zone_names().get(raw.lower())
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    return name


@functools.cache
def _zone_names() -> dict[str, str]:
    """Every IANA name the platform's database knows, by its lower-case spelling."""
    return {name.lower(): name for name in available_timezones()}


def zone(name: str) -> tzinfo:
    """The tzinfo of a stored name (unknown names fall back to UTC rather than fail a reply)."""
    match = _OFFSET_NAME.match(name)
    if match:
        minutes = int(match.group(2)) * 60 + int(match.group(3))
        return timezone(timedelta(minutes=minutes if match.group(1) == "+" else -minutes))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return UTC


def utc_offset_label(name: str, at: datetime) -> str:
    """``UTC+1``, ``UTC-5:30``, ``UTC``: the zone's offset at ``at``."""
    offset = at.astimezone(zone(name)).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def zone_label(name: str, at: datetime) -> str:
    """``Europe/Berlin (UTC+1)``; a fixed offset or UTC names itself: ``UTC+3``."""
    offset = utc_offset_label(name, at)
    if name == DEFAULT_ZONE or _OFFSET_NAME.match(name):
        return offset
    return f"{name} ({offset})"


def short_zone(name: str, at: datetime) -> str:
    """The name shown beside a clock time: ``Europe/Berlin``, ``UTC+3``, ``UTC``."""
    return utc_offset_label(name, at) if name == DEFAULT_ZONE or _OFFSET_NAME.match(name) else name


# --- hours ----------------------------------------------------------------------------------------

def parse_hours(text: str) -> tuple[int, int] | None:
    """``9-22``, ``09:00-22:30``, ``22-06`` (across midnight), ``0-24`` -> (start, end) minutes."""
    match = _HOURS.match(text)
    if not match:
        return None
    h1, m1, h2, m2 = (int(g) if g is not None else 0 for g in match.groups())
    if m1 >= 60 or m2 >= 60 or h1 > 23 or h2 > 24 or (h2 == 24 and m2):
        return None
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end == 0:
        end = DAY  # "22-0": until midnight
    if start == end:
        return None
    return start, end


def format_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def format_hours(window: Window) -> str:
    """``09:00-22:00``, ``22:00-06:00``, ``00:00-24:00``."""
    return f"{format_minutes(window.start)}-{format_minutes(window.end)}"


def format_days(days: int) -> str:
    if days == ALL_DAYS:
        return "every day"
    return ", ".join(name for n, name in enumerate(DAY_NAMES) if days >> n & 1)


# --- the window on the clock ----------------------------------------------------------------------

def is_open(window: Window | None, zone_name: str, at: datetime) -> bool:
    """Whether sends may start at ``at`` (no window: always)."""
    if window is None:
        return True
    local = at.astimezone(zone(zone_name))
    minute = local.hour * 60 + local.minute
    weekday = local.weekday()
    if not window.across_midnight:
        return window.on(weekday) and window.start <= minute < window.end
    if minute >= window.start:
        return window.on(weekday)
    return minute < window.end and window.on((weekday - 1) % 7)


def next_open(window: Window | None, zone_name: str, at: datetime) -> datetime:
    """``at`` when the window is open then, else the first instant after it when it opens."""
    if window is None or is_open(window, zone_name, at):
        return at
    tz = zone(zone_name)
    today = at.astimezone(tz).date()
    # a day has one opening; the next one is at most a week (+1 day of DST slack) away
    for shift in range(-1, 9):
        day = today + timedelta(days=shift)
        if not window.on(day.weekday()):
            continue
        opening = _first_instant_at(day, window.start, tz)
        if opening > at:
            return opening
    raise AssertionError("a window with a day opens within a week")  # pragma: no cover


def closes_at(window: Window | None, zone_name: str, at: datetime) -> datetime | None:
    """When the window open at ``at`` closes (None: no window, or it is closed at ``at``)."""
    if window is None or not is_open(window, zone_name, at):
        return None
    tz = zone(zone_name)
    local = at.astimezone(tz)
    day = local.date()
    if window.across_midnight and local.hour * 60 + local.minute < window.end:
        day -= timedelta(days=1)  # opened yesterday
    end_day = day + timedelta(days=1) if window.across_midnight or window.end == DAY else day
    return _first_instant_at(end_day, window.end % DAY, tz)


def opens_at(window: Window | None, zone_name: str, at: datetime) -> datetime | None:
    """None while the window is open (or there is none); else its next opening."""
    return None if is_open(window, zone_name, at) else next_open(window, zone_name, at)


def due_at(window: Window | None, zone_name: str, wanted: datetime) -> datetime:
    """When a round wanted at ``wanted`` may start: then, or at the window's next opening (U10.4)."""
    return next_open(window, zone_name, wanted)


def seconds_until_open(window: Window | None, zone_name: str, at: datetime) -> float:
    """0 when sends may start now; else how long until the next opening (U10.5's requeue delay)."""
    return max(0.0, (next_open(window, zone_name, at) - at).total_seconds())


def _first_instant_at(day: date, minutes: int, tz: tzinfo) -> datetime:
    """The first instant the local clock of ``tz`` on ``day`` shows ``minutes`` after midnight or
    later: the wall time itself, its earlier occurrence when repeated (fall back), the end of the
    gap when skipped (spring forward)."""
    wall = datetime.combine(day, time(minutes // 60, minutes % 60))
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # skipped by a DST gap: the first whole second whose local time is at or after ``wall``
    low = int(wall.replace(tzinfo=tz, fold=1).astimezone(UTC).timestamp())  # before the gap
    high = int(first.timestamp())  # after the gap
    low, high = min(low, high), max(low, high)
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, tz).replace(tzinfo=None) >= wall:
            high = mid
        else:
            low = mid
    return datetime.fromtimestamp(high, UTC)
