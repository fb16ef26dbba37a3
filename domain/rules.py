"""Pure rules of the control bot: parsing what people type, masks, durations, access, limits.

Nothing here touches the database, Telegram or the clock: callers pass ``now``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import datetime, timedelta
from typing import Literal

# Telegram counts message length in UTF-16 code units.
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
PREVIEW_CHARS = 50

PHONE_MIN_DIGITS = 8
PHONE_MAX_DIGITS = 15
CODE_MIN_DIGITS = 4
CODE_MAX_DIGITS = 8

INTERVAL_PRESETS_MINUTES = (15, 30, 60, 120, 360, 720, 1440)

AccessMode = Literal["open", "approval", "whitelist"]
ACCESS_MODES: tuple[AccessMode, ...] = ("open", "approval", "whitelist")

# What a user may do, as the bot shows it (U1.1-U1.4).
AccessStatus = Literal["allowed", "needs_approval", "pending", "invitation_only", "banned", "expired"]

# --- phone and code ---------------------------------------------------------------------------

_PHONE_SEPARATORS = re.compile(r"[\s\-.()\[\]/\u00a0\u2010-\u2015]")
_PHONE_SHAPE = re.compile(rf"\+?[0-9]{{{PHONE_MIN_DIGITS},{PHONE_MAX_DIGITS}}}")


def normalize_phone(raw: str) -> str | None:
    """``"+1 (555) 012-34.56"`` -> ``"+15550123456"``; None unless 8-15 digits remain.

    Spaces, dashes, dots, slashes and brackets are removed; a leading ``00`` becomes ``+``;
    the plus is optional (shared contacts often come without it).
    """
    cleaned = _PHONE_SEPARATORS.sub("", raw.strip())
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    if not _PHONE_SHAPE.fullmatch(cleaned):
        return None
    return "+" + cleaned.lstrip("+")


def parse_code(raw: str) -> str | None:
    """Keep only the digits (any separators, any script); None unless 4-8 digits remain."""
    digits = "".join(str(unicodedata.decimal(ch)) for ch in raw if ch.isdecimal())
    if CODE_MIN_DIGITS <= len(digits) <= CODE_MAX_DIGITS:
        return digits
    return None


def mask_phone(phone: str) -> str:
    """``"+15550123"`` -> ``"+1•••0123"``: the first digit and the last four only."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if not digits:
        return ""
    if len(digits) <= 6:
        return "+" + "•••" + digits[-2:]
    return "+" + digits[0] + "•••" + digits[-4:]


# --- intervals and durations ------------------------------------------------------------------

_UNIT_SECONDS: dict[str, int] = {}
for _names, _seconds in (
    (("s", "sec", "secs", "second", "seconds"), 1),
    (("m", "min", "mins", "minute", "minutes"), 60),
    (("h", "hr", "hrs", "hour", "hours"), 3600),
    (("d", "day", "days"), 86400),
):
    for _name in _names:
        _UNIT_SECONDS[_name] = _seconds

_INTERVAL_TOKEN = re.compile(r"\s*(\d+(?:[.,]\d+)?)\s*([a-z]*)\s*")
_CLOCK = re.compile(r"\s*(\d{1,3}):([0-5]\d)\s*")
MAX_PARSED_SECONDS = 366 * 86400


def parse_interval(raw: str) -> int | None:
    """Seconds from ``45`` (minutes), ``45m``, ``90 min``, ``1h30m``, ``1.5h``, ``2 h``, ``1:30``.

    A number without a unit means minutes. Each unit may appear once. Returns None for junk,
    zero, or more than a year (bounds are the caller's business).
    """
    text = raw.strip().lower()
    if not text:
        return None
    clock = _CLOCK.fullmatch(text)
    if clock:
        seconds = int(clock[1]) * 3600 + int(clock[2]) * 60
        return seconds if 0 < seconds <= MAX_PARSED_SECONDS else None
    total = 0.0
    seen: set[int] = set()
    position = 0
    tokens = 0
    while position < len(text):
        match = _INTERVAL_TOKEN.match(text, position)
        if not match or match.end() == position:
            return None
        number, unit = match[1].replace(",", "."), match[2]
        if unit:
            if unit not in _UNIT_SECONDS:
                return None
            factor = _UNIT_SECONDS[unit]
        else:
            # "1h30" reads as 1 h 30 min; a lone bare number is minutes too
            factor = 60
        if factor in seen:
            return None
        seen.add(factor)
        total += float(number) * factor
        position = match.end()
        tokens += 1
    if not math.isfinite(total):
        return None
    seconds = round(total)
    if tokens == 0 or seconds <= 0 or seconds > MAX_PARSED_SECONDS:
        return None
    return seconds


def _split(seconds: int) -> list[tuple[int, str]]:
    days, rest = divmod(max(0, seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]


def format_interval(seconds: int) -> str:
    """Exact and readable: ``5400`` -> ``"1 h 30 min"``, ``86400`` -> ``"24 h"``, ``45`` -> ``"45 s"``."""
    if seconds <= 0:
        return "0 min"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{value} {unit}" for value, unit in ((hours, "h"), (minutes, "min"), (secs, "s")) if value]
    return " ".join(parts)


def human_duration(seconds: float) -> str:
    """Roughly, the two largest units: ``7500`` -> ``"2 h 5 min"``, ``45`` -> ``"45 s"``."""
    whole = max(0, round(seconds))
    if whole == 0:
        return "0 s"
    parts = [(value, unit) for value, unit in _split(whole) if value]
    return " ".join(f"{value} {unit}" for value, unit in parts[:2])


def interval_presets(minimum: int, maximum: int) -> list[int]:
    """The preset intervals (minutes) that fall within the bounds (seconds)."""
    return [m for m in INTERVAL_PRESETS_MINUTES if minimum <= m * 60 <= maximum]


def interval_within(seconds: int, minimum: int, maximum: int) -> bool:
    return minimum <= seconds <= maximum


def first_run_on_start(now: datetime, last_planned_at: datetime | None, interval: int) -> datetime:
    """U6.2: a start posts now unless the last round began less than one interval ago; then the
    first round is due at that round's start + interval (a quick stop/start never posts early)."""
    if last_planned_at is None or interval <= 0:
        return now
    due = last_planned_at + timedelta(seconds=interval)
    return due if due > now else now


def next_run_after_interval_change(
    now: datetime, last_planned_at: datetime | None, current_next_run: datetime | None, interval: int
) -> datetime:
    """U5.2: next run = last round's start + new interval, never before now.

    The last round's planned time is the anchor because the scheduler keeps a drift-free grid
    from planned times; without any round yet the campaign stays due as it was.
    """
    if last_planned_at is not None:
        candidate = last_planned_at + timedelta(seconds=interval)
    else:
        candidate = current_next_run or now
    return max(now, candidate)


# --- messages ---------------------------------------------------------------------------------


def utf16_length(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units: an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


MessageProblemKind = Literal["empty", "too_long"]


def message_problem(text: str, has_media: bool) -> tuple[MessageProblemKind, int, int] | None:
    """(problem, length, limit) or None: empty without media, or over the text/caption limit."""
    limit = CAPTION_LIMIT if has_media else TEXT_LIMIT
    length = utf16_length(text)
    if not has_media and not text.strip():
        return ("empty", length, limit)
    if length > limit:
        return ("too_long", length, limit)
    return None


def preview(text: str, chars: int = PREVIEW_CHARS) -> str:
    """The first ``chars`` characters on one line, with an ellipsis when cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= chars else flat[:chars].rstrip() + "…"


# --- access -----------------------------------------------------------------------------------


def as_access_mode(value: object) -> AccessMode:
    """A stored or typed mode; anything unknown reads as ``open``."""
    if value == "approval":
        return "approval"
    if value == "whitelist":
        return "whitelist"
    return "open"


def access_expired(access_status: str, expires_at: datetime | None, now: datetime) -> bool:
    return access_status == "granted" and expires_at is not None and expires_at <= now


def decide_access(
    mode: str,
    *,
    is_admin: bool,
    banned: bool,
    access_status: str,
    expires_at: datetime | None,
    now: datetime,
) -> AccessStatus:
    """What a user may do under the access mode.

    Admins always may. A ban beats everything else. In ``open`` mode everyone else may; in
    ``approval`` and ``whitelist`` only a grant that has not expired counts (an expired grant is
    ``expired``); ``approval`` lets others request access (``pending`` once requested),
    ``whitelist`` does not.
    """
    if is_admin:
        return "allowed"
    if banned:
        return "banned"
    if mode == "open":
        return "allowed"
    if access_status == "granted":
        return "expired" if access_expired(access_status, expires_at, now) else "allowed"
    if mode == "whitelist":
        return "invitation_only"
    if access_status == "pending":
        return "pending"
    return "needs_approval"


def grant_expiry(now: datetime, days: int) -> datetime | None:
    """Expiry of a grant for ``days`` (0 = no expiry)."""
    return None if days <= 0 else now + timedelta(days=days)


def page_count(total: int, size: int) -> int:
    return max(1, -(-total // size))


def clamp_page(page: int, total: int, size: int) -> int:
    return min(max(0, page), page_count(total, size) - 1)
