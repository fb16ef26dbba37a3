from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import rules

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


# --- phone ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+15550123", "+15550123"),
        ("+1 (555) 012-34.56", "+15550123456"),
        ("0044 7911 123456", "+447911123456"),
        ("  +49 30 1234 5678 ", "+493012345678"),
        ("15550123", "+15550123"),  # shared contacts come without the plus
        ("+7 [999] 123/45/67", "+79991234567"),
        ("1234567", None),  # 7 digits
        ("+1234567890123456", None),  # 16 digits
        ("+1 555 CALL NOW", None),
        ("+1+5550123", None),
        ("", None),
        ("++15550123", None),
    ],
)
def test_normalize_phone(raw: str, expected: str | None) -> None:
    assert rules.normalize_phone(raw) == expected


@given(st.text(max_size=40))
def test_normalize_phone_returns_plus_and_8_to_15_digits_or_none(raw: str) -> None:
    result = rules.normalize_phone(raw)
    if result is not None:
        assert result[0] == "+"
        assert result[1:].isascii() and result[1:].isdigit()
        assert 8 <= len(result) - 1 <= 15


@given(st.from_regex(r"[1-9][0-9]{7,14}", fullmatch=True), st.sampled_from(["", "+", "00"]),
       st.sampled_from([" ", "-", ".", ""]))
def test_normalize_phone_keeps_the_digits_of_any_spacing(digits: str, prefix: str, sep: str) -> None:
    # country codes never start with 0, which is what makes a leading 00 mean "+"
    spaced = prefix + sep.join(digits[i:i + 3] for i in range(0, len(digits), 3))
    assert rules.normalize_phone(spaced) == "+" + digits


# --- code -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12345", "12345"),
        ("1 2 3 4 5", "12345"),
        ("12-34-5", "12345"),
        ("code: 1.2.3.4.5!", "12345"),
        ("١٢٣٤٥", "12345"),  # Arabic-Indic digits are digits too
        ("1234", "1234"),
        ("12345678", "12345678"),
        ("123", None),
        ("123456789", None),
        ("abcde", None),
        ("", None),
    ],
)
def test_parse_code(raw: str, expected: str | None) -> None:
    assert rules.parse_code(raw) == expected


@given(st.text(max_size=60))
def test_parse_code_never_accepts_fewer_than_4_or_more_than_8_digits(raw: str) -> None:
    result = rules.parse_code(raw)
    if result is not None:
        assert 4 <= len(result) <= 8
        assert result.isascii() and result.isdigit()


@given(st.text(alphabet="0123456789", min_size=4, max_size=8), st.text(alphabet=" -._/", max_size=3))
def test_parse_code_ignores_any_separator(code: str, sep: str) -> None:
    assert rules.parse_code(sep.join(code)) == code


# --- interval ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("45", 45 * 60),
        ("45m", 45 * 60),
        ("45 min", 45 * 60),
        ("90 min", 90 * 60),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("1h30", 5400),
        ("1.5h", 5400),
        ("1,5h", 5400),
        ("2 h", 7200),
        ("2 hours", 7200),
        ("2H", 7200),
        ("1:30", 5400),
        ("30s", 30),
        ("1d", 86400),
    ],
)
def test_parse_interval(raw: str, seconds: int) -> None:
    assert rules.parse_interval(raw) == seconds


@pytest.mark.parametrize("raw", ["", "   ", "abc", "h", "0", "0m", "-5", "1e3", "1h1h", "5 5", "45 parsecs",
                                 "1" * 400, "9999999h", "1:75"])
def test_parse_interval_refuses_junk(raw: str) -> None:
    assert rules.parse_interval(raw) is None


@given(st.integers(min_value=1, max_value=24 * 60))
def test_parse_interval_reads_its_own_format(minutes: int) -> None:
    seconds = minutes * 60
    assert rules.parse_interval(rules.format_interval(seconds).replace(" ", "")) == seconds


@given(st.text(max_size=30))
def test_parse_interval_is_positive_or_none(raw: str) -> None:
    result = rules.parse_interval(raw)
    assert result is None or 0 < result <= rules.MAX_PARSED_SECONDS


def test_interval_presets_within_bounds() -> None:
    assert rules.interval_presets(15 * 60, 1440 * 60) == [15, 30, 60, 120, 360, 720, 1440]
    assert rules.interval_presets(60 * 60, 360 * 60) == [60, 120, 360]


def test_next_run_after_interval_change() -> None:
    planned = NOW - timedelta(minutes=50)
    # last round + new interval is still ahead
    assert rules.next_run_after_interval_change(NOW, planned, None, 3600) == planned + timedelta(hours=1)
    # ... or already past: not before now
    assert rules.next_run_after_interval_change(NOW, planned, None, 900) == NOW
    # no round yet: stays due as it was
    assert rules.next_run_after_interval_change(NOW, None, NOW + timedelta(seconds=5), 900) == NOW + timedelta(seconds=5)
    assert rules.next_run_after_interval_change(NOW, None, None, 900) == NOW


# --- formatting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5400, "1 h 30 min"), (86400, "24 h"), (45, "45 s"), (900, "15 min"), (3661, "1 h 1 min 1 s"), (0, "0 min")],
)
def test_format_interval(seconds: int, text: str) -> None:
    assert rules.format_interval(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(7500, "2 h 5 min"), (45, "45 s"), (65, "1 min 5 s"), (7200, "2 h"), (90061, "1 d 1 h"), (0, "0 s"),
     (29.6, "30 s")],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert rules.human_duration(seconds) == text


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("+15550123", "+1•••0123"), ("+447911123456", "+4•••3456"), ("447911123456", "+4•••3456"),
     ("+12345", "+•••45"), ("", "")],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert rules.mask_phone(phone) == masked


@given(st.text(alphabet="0123456789", min_size=8, max_size=15))
def test_mask_phone_never_shows_the_middle(digits: str) -> None:
    masked = rules.mask_phone("+" + digits)
    assert masked == "+" + digits[0] + "•••" + digits[-4:]
    assert sum(ch.isdigit() for ch in masked) == 5


# --- messages ---------------------------------------------------------------------------------


def test_utf16_length_counts_astral_characters_twice() -> None:
    assert rules.utf16_length("abc") == 3
    assert rules.utf16_length("😀") == 2
    assert rules.utf16_length("é") == 1


def test_message_limits() -> None:
    assert rules.message_problem("hi", has_media=False) is None
    assert rules.message_problem("", has_media=False) == ("empty", 0, 4096)
    assert rules.message_problem("   ", has_media=False) == ("empty", 3, 4096)
    assert rules.message_problem("", has_media=True) is None  # media without caption is fine
    assert rules.message_problem("x" * 4096, has_media=False) is None
    assert rules.message_problem("x" * 4097, has_media=False) == ("too_long", 4097, 4096)
    assert rules.message_problem("x" * 1024, has_media=True) is None
    assert rules.message_problem("x" * 1025, has_media=True) == ("too_long", 1025, 1024)
    # 2100 emoji are 4200 UTF-16 units though only 2100 characters
    assert rules.message_problem("😀" * 2100, has_media=False) == ("too_long", 4200, 4096)


def test_preview() -> None:
    assert rules.preview("short") == "short"
    assert rules.preview("line one\nline two") == "line one line two"
    long = "word " * 20
    cut = rules.preview(long)
    assert cut.endswith("…") and len(cut) <= 51


# --- access -----------------------------------------------------------------------------------


def decide(mode: str, status: str = "none", expires: datetime | None = None, banned: bool = False,
           admin: bool = False) -> str:
    return rules.decide_access(mode, is_admin=admin, banned=banned, access_status=status, expires_at=expires,
                               now=NOW)


def test_access_open_mode() -> None:
    assert decide("open") == "allowed"
    assert decide("open", banned=True) == "banned"
    assert decide("open", "revoked") == "allowed"


def test_access_approval_mode() -> None:
    assert decide("approval") == "needs_approval"
    assert decide("approval", "pending") == "pending"
    assert decide("approval", "rejected") == "needs_approval"
    assert decide("approval", "granted") == "allowed"
    assert decide("approval", "granted", NOW + timedelta(days=1)) == "allowed"
    assert decide("approval", "granted", NOW) == "expired"
    assert decide("approval", "granted", banned=True) == "banned"


def test_access_whitelist_mode() -> None:
    assert decide("whitelist") == "invitation_only"
    assert decide("whitelist", "pending") == "invitation_only"
    assert decide("whitelist", "granted") == "allowed"
    assert decide("whitelist", "granted", NOW - timedelta(seconds=1)) == "expired"


def test_admins_always_have_access() -> None:
    assert decide("whitelist", admin=True) == "allowed"
    assert decide("approval", "granted", NOW - timedelta(days=1), admin=True) == "allowed"
    assert decide("whitelist", banned=True, admin=True) == "allowed"


def test_grant_expiry_and_mode() -> None:
    assert rules.grant_expiry(NOW, 0) is None
    assert rules.grant_expiry(NOW, 7) == NOW + timedelta(days=7)
    assert rules.as_access_mode("approval") == "approval"
    assert rules.as_access_mode("whitelist") == "whitelist"
    assert rules.as_access_mode("bogus") == "open"


def test_pages() -> None:
    assert rules.page_count(0, 10) == 1
    assert rules.page_count(10, 10) == 1
    assert rules.page_count(11, 10) == 2
    assert rules.clamp_page(5, 11, 10) == 1
    assert rules.clamp_page(-1, 11, 10) == 0
