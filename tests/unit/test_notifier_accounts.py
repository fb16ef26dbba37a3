"""U8: a notification about one account names it when the user has two or more; with one account
(or a row from the previous release, naming none) the text is exactly as before."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.models import Notification
from roles.bot import notifier
from roles.bot.i18n import use_locale
from services import notifications as kinds
from tests.notification_payloads import ACCOUNT_KINDS, PAYLOADS, UNTIL

# the account-specific kinds with payloads as the engine (and the scheduler) write them
ACCOUNT_PAYLOADS = {kind: PAYLOADS[kind] for kind in ACCOUNT_KINDS}
PEER_FLOOD = {"seconds": 3600, "until": UNTIL, "code": "PEER_FLOOD"}


def _note(kind: str, payload: dict[str, Any], **account: Any) -> Notification:
    note = Notification(1, 42, kind, {**payload, "account_id": 7}, None, datetime(2025, 3, 1, tzinfo=UTC), 0)
    return replace(note, **account)


def _text(note: Notification, language: str = "en") -> str:
    with use_locale(language):
        rendered = notifier.render(note)
    assert rendered is not None
    return rendered[0]


CASES = [*ACCOUNT_PAYLOADS.items(), (kinds.FLOOD_PAUSE, PEER_FLOOD)]


@pytest.mark.parametrize(("kind", "payload"), CASES, ids=[f"{k}-{p.get('code', '')}" for k, p in CASES])
def test_with_two_accounts_the_notification_names_its_account(kind: str, payload: dict[str, Any]) -> None:
    plain = _text(_note(kind, payload))
    named = _text(_note(kind, payload, account_name="Ann <b>", account_phone="+15550001234", user_accounts=2))
    # the account as the account menu shows it: name (escaped) and masked phone, then the usual text
    assert named == f"👤 Account Ann &lt;b&gt; (+1•••1234):\n{plain}"
    assert "5550001234" not in named
    three = _text(_note(kind, payload, account_name="Bob", account_phone="+4930123456", user_accounts=3))
    assert three.startswith("👤 Account Bob (+4•••3456):\n")


@pytest.mark.parametrize(("kind", "payload"), CASES, ids=[f"{k}-{p.get('code', '')}" for k, p in CASES])
def test_with_one_account_the_text_is_as_before(kind: str, payload: dict[str, Any]) -> None:
    before = _text(Notification(1, 42, kind, payload, None, datetime(2025, 3, 1, tzinfo=UTC), 0))
    one = _note(kind, payload, account_name="Ann", account_phone="+15550001234", user_accounts=1)
    assert _text(one) == before
    assert "Ann" not in before and "•••" not in before
    # a row naming no account (the previous release) or one no longer found: as before too
    assert _text(_note(kind, payload, user_accounts=2)) == before


def test_the_account_line_is_translated() -> None:
    note = _note(kinds.ROUND_SUMMARY, ACCOUNT_PAYLOADS[kinds.ROUND_SUMMARY],
                 account_name="Ann", account_phone="+15550001234", user_accounts=2)
    assert _text(note, "ru").startswith("👤 Аккаунт Ann (+1•••1234):\n")


def test_access_notices_are_not_about_an_account() -> None:
    for kind in (kinds.ACCESS_APPROVED, kinds.ACCESS_REVOKED, kinds.ACCESS_EXPIRED):
        note = Notification(1, 42, kind, {}, None, datetime(2025, 3, 1, tzinfo=UTC), 0, user_accounts=2)
        assert not _text(note).startswith("👤")


def _buttons(note: Notification) -> list[str]:
    with use_locale("en"):
        rendered = notifier.render(note)
    assert rendered is not None
    return [str(b.callback_data) for row in rendered[1].inline_keyboard for b in row]


# the buttons that open a menu of one account, by kind: with one account the flows.md ids
ONE_ACCOUNT_BUTTONS = {
    kinds.ROUND_SUMMARY: ["st:show", "st:notify"],
    kinds.GROUP_DISABLED: ["grp:menu"],
    kinds.NO_GROUPS_LEFT: ["grp:list:0", "menu:main"],
    kinds.MESSAGE_REJECTED: ["msg:menu", "menu:main"],
}
TWO_ACCOUNT_BUTTONS = {
    kinds.ROUND_SUMMARY: ["st:show:7", "st:notify"],
    kinds.GROUP_DISABLED: ["grp:menu:7"],
    kinds.NO_GROUPS_LEFT: ["grp:menu:7", "menu:main"],
    kinds.MESSAGE_REJECTED: ["msg:menu:7", "menu:main"],
}


@pytest.mark.parametrize("kind", sorted(ONE_ACCOUNT_BUTTONS))
def test_with_two_accounts_the_buttons_open_the_notifications_account(kind: str) -> None:
    payload = ACCOUNT_PAYLOADS[kind]
    one = _note(kind, payload, account_name="Ann", account_phone="+15550001234", user_accounts=1)
    assert _buttons(one) == ONE_ACCOUNT_BUTTONS[kind]
    two = _note(kind, payload, account_name="Ann", account_phone="+15550001234", user_accounts=2)
    assert _buttons(two) == TWO_ACCOUNT_BUTTONS[kind]
    # a row of the previous release, naming no account: the current account's menus, as before
    unnamed = Notification(1, 42, kind, payload, None, datetime(2025, 3, 1, tzinfo=UTC), 0,
                           account_name="Ann", account_phone="+15550001234", user_accounts=2)
    assert _buttons(unnamed) == ONE_ACCOUNT_BUTTONS[kind]


@pytest.mark.parametrize(("kind", "payload"), CASES, ids=[f"{k}-{p.get('code', '')}" for k, p in CASES])
def test_every_button_of_a_two_account_notification_is_an_account_or_a_user_wide_one(
    kind: str, payload: dict[str, Any]
) -> None:
    two = _note(kind, payload, account_name="Ann", account_phone="+15550001234", user_accounts=2)
    for data in _buttons(two):
        # an account's menu names the account; the rest act on the user (main card, login, notify switch)
        assert data.endswith(":7") or data in {"menu:main", "acc:login", "st:notify"}, (kind, data)
