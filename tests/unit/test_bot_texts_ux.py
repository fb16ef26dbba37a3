"""Wording a first-time user meets: relative times, which way an interval is wrong, what comes next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiogram.types import InlineKeyboardMarkup

from domain import rules
from roles.bot import keyboards as kb
from roles.bot import texts

NOW = datetime(2026, 12, 6, 14, 23, 10, tzinfo=UTC)


def _ids(markup: InlineKeyboardMarkup) -> list[str]:
    return [str(b.callback_data) for row in markup.inline_keyboard for b in row]


def test_times_carry_the_relative_form() -> None:
    assert texts.hhmm(NOW + timedelta(minutes=12), NOW) == "14:35 UTC, in 12 min"
    assert texts.hhmm(NOW + timedelta(minutes=65), NOW) == "15:28 UTC, in 1 h 5 min"
    assert texts.hhmm(NOW + timedelta(seconds=20), NOW) == "14:23 UTC, now"
    assert texts.hhmm(NOW - timedelta(minutes=3), NOW) == "14:20 UTC, 3 min ago"
    assert texts.hhmm(NOW) == "14:23 UTC"  # no clock given: the time alone


def test_a_start_inside_the_interval_says_when_the_round_comes() -> None:
    later = texts.started(2, "15 min", NOW + timedelta(minutes=12), NOW)
    assert "Started: 2 groups every 15 min" in later and "14:35 UTC, in 12 min" in later
    assert "starts now" in texts.started(1, "15 min", NOW, NOW)


def test_first_run_on_start_respects_the_interval() -> None:
    last = NOW - timedelta(minutes=3)
    assert rules.first_run_on_start(NOW, last, 900) == last + timedelta(seconds=900)
    assert rules.first_run_on_start(NOW, NOW - timedelta(hours=1), 900) == NOW
    assert rules.first_run_on_start(NOW, None, 900) == NOW


def test_interval_refusals_say_which_way() -> None:
    assert "didn't understand “abc”" in texts.interval_not_understood("abc")
    assert "90 s is below the minimum of 15 min" in texts.interval_below("90 s", "15 min")
    assert "25 h is above the maximum of 24 h" in texts.interval_above("25 h", "24 h")
    assert texts.interval_not_understood("x" * 100).count("x") < 50  # long junk is shortened


def test_confirmations_offer_the_next_step() -> None:
    assert _ids(kb.next_step(kb.follow_up(["interval"], running=False))) == ["int:menu", "menu:main"]
    assert _ids(kb.next_step(kb.follow_up(["account", "interval"], running=False)))[0] == "acc:login"
    assert _ids(kb.next_step(kb.follow_up([], running=False))) == ["bc:start", "menu:main"]
    assert _ids(kb.next_step(kb.follow_up([], running=True))) == ["st:show", "menu:main"]
    assert _ids(kb.next_step(kb.follow_up(["access"], running=False))) == ["menu:main"]


def test_wording_a_new_user_reads_without_guessing() -> None:
    assert texts.notify_caption(True) == "🔕 Turn round reports off"  # the button names its action
    assert "Back" not in texts.BTN_PREV
    assert "selected active groups" not in texts.missing(["groups"])
    assert "version" not in texts.msg_saved(False)
    card = texts.main_card(phone_masked="+1555***01", account_name="A", selected=0, total=3,
                           message_snippet="Hi", interval="1 h", running=True, next_run=NOW,
                           media_kind="photo", now=NOW, no_groups_left=True)
    assert "🖼 photo + “Hi”" in card and "no groups left to post to" in card
    assert "▶️ running" not in card and "Next run" not in card


def test_times_are_shown_on_the_users_clock_and_named() -> None:
    """U10.6: the zone set for the update (or notification) names every clock time."""
    moment, now = datetime(2026, 12, 6, 13, 35, tzinfo=UTC), datetime(2026, 12, 6, 13, 23, tzinfo=UTC)
    assert texts.hhmm(moment, now) == "13:35 UTC, in 12 min"
    for zone_name, shown in (("Europe/Berlin", "14:35 Europe/Berlin, in 12 min"),
                             ("UTC-05:30", "08:05 UTC-5:30, in 12 min")):
        token = texts.SHOWN_ZONE.set(zone_name)
        try:
            assert texts.hhmm(moment, now) == shown
        finally:
            texts.SHOWN_ZONE.reset(token)
    assert texts.hhmm(moment) == "13:35 UTC"


def test_the_status_says_when_the_window_opens_with_the_zone_as_written() -> None:
    """U10.4: "waiting for the window: starts HH:MM", the zone's name keeps its capitals."""
    now = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
    token = texts.SHOWN_ZONE.set("Europe/Berlin")
    try:
        card = texts.status_card(running=True, interval="1 h", next_run=now + timedelta(hours=2), last_round=None,
                                 groups=[], more=0, paused_until=None, disabled=[], now=now,
                                 window_opens=now + timedelta(hours=2))
    finally:
        texts.SHOWN_ZONE.reset(token)
    assert "⏸ Waiting for the window: starts 09:00 Europe/Berlin, in 2 h" in card
    assert "Next run: 09:00 Europe/Berlin, in 2 h" in card


def test_the_status_names_its_account_only_when_told() -> None:
    """U8: with two accounts or more the card says which account it is about; with one, as before."""
    now = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
    common = {"running": False, "interval": None, "next_run": None, "last_round": None, "groups": [], "more": 0,
              "paused_until": None, "disabled": [], "now": now}
    plain = texts.status_card(**common)  # type: ignore[arg-type]
    named = texts.status_card(**common, account=texts.account_label("Ann <b>", "+1•••0123"))  # type: ignore[arg-type]
    assert "Account" not in plain
    head, rest = named.split("\n", 1)
    assert head == plain.split("\n", 1)[0]
    assert rest == "👤 Account: Ann &lt;b&gt; (+1•••0123)\n" + plain.split("\n", 1)[1]
