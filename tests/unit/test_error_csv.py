"""Telegram's documented errors (docs/reference/telegram-errors.csv) against the one error table.

Every (method, error) row must map, by its name, to a deliberate outcome of ``accounts.errors``:
never the numeric fallback and never a bare ``GatewayError``; the outcome must fit the method
(a login error never disables a group, a send error never asks for a login code), and the sandbox
world must answer the same error as Telethon raises it, with the same result.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pytest
from telethon import errors, types

from accounts.errors import Operation, named_rule, split_name, to_domain
from accounts.sandbox_gateway import map_error as sandbox_map_error
from accounts.telethon.errors import map_error as telethon_map_error
from domain.errors import (
    AccountThrottled,
    ClientError,
    CodeExpired,
    CodeInvalid,
    FloodWait,
    GatewayError,
    GroupClosed,
    GroupMigrated,
    LoginBlocked,
    MaybeSent,
    MessageRejected,
    PasswordInvalid,
    PasswordNeeded,
    PhoneBanned,
    PhoneInvalid,
    ResendUnavailable,
    SessionDead,
    TransientError,
)
from sandbox.world import WorldError

CSV_PATH = Path(__file__).resolve().parents[2] / "docs" / "reference" / "telegram-errors.csv"

# the outcome classes of issue 11: account throttled / account dead / group closed with a reason /
# message rejected / login outcome / transient / flood wait (+ our client's own, + maybe sent)
LOGIN = (PhoneInvalid, PhoneBanned, CodeInvalid, CodeExpired, PasswordNeeded, PasswordInvalid, ResendUnavailable,
         LoginBlocked)
DELIBERATE: tuple[type[GatewayError], ...] = (
    AccountThrottled, SessionDead, GroupClosed, GroupMigrated, MessageRejected, TransientError, FloodWait,
    ClientError, MaybeSent, *LOGIN,
)
# what each method is, from the caller's side
OPERATIONS: dict[str, tuple[Operation, ...]] = {
    "auth.sendCode": ("login",), "auth.resendCode": ("login",), "auth.signIn": ("login",),
    "auth.checkPassword": ("login",), "auth.cancelCode": ("login",),
    "messages.getDialogs": ("dialogs",), "messages.getChats": ("dialogs",),
    "messages.sendMessage": ("send",), "messages.sendMedia": ("send",),
    "upload.saveFilePart": ("send",), "upload.saveBigFilePart": ("send",),
    "users.getUsers": ("session",), "help.getConfig": ("session",),
    "invokeWithLayer": ("session",), "initConnection": ("session",),
    "(any method)": ("login", "dialogs", "send", "session"),
}
# outcomes that can't come out of an operation (a login never closes a group ...)
NOT_FOR: dict[Operation, tuple[type[GatewayError], ...]] = {
    "login": (GroupClosed, GroupMigrated, MessageRejected, MaybeSent),
    "dialogs": (MessageRejected, MaybeSent),
    "send": (CodeInvalid, CodeExpired, PasswordInvalid),
    "session": (MessageRejected, MaybeSent),
}


@dataclass(frozen=True)
class CsvRow:
    method: str
    error: str
    codes: tuple[int, ...]

    @property
    def name(self) -> str:
        return self.error[:-2] if self.error.endswith("_X") else self.error

    @property
    def raw(self) -> str:
        """The name as Telegram sends it (``FLOOD_WAIT_X`` arrives as ``FLOOD_WAIT_7``)."""
        return f"{self.name}_7" if self.error.endswith("_X") else self.error

    def __str__(self) -> str:
        return f"{self.method}:{self.error}"


def _rows() -> list[CsvRow]:
    with CSV_PATH.open(encoding="utf-8", newline="") as handle:
        return [
            CsvRow(r["method"], r["error"], tuple(int(c) for c in r["codes"].split()))
            for r in csv.DictReader(handle)
        ]


ROWS = _rows()


def test_the_reference_is_complete() -> None:
    assert len(ROWS) == 155
    assert {r.method for r in ROWS} == set(OPERATIONS)


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_every_documented_row_has_a_deliberate_outcome(row: CsvRow) -> None:
    assert named_rule(row.name) is not None, f"{row} has no row in accounts/errors.py"
    assert split_name(row.raw)[0] == row.name
    for operation in OPERATIONS[row.method]:
        for code in row.codes or (None,):
            error = to_domain(row.raw, rpc_code=code, operation=operation)
            assert isinstance(error, DELIBERATE), f"{row} ({operation}) -> {type(error).__name__}"
            assert not isinstance(error, NOT_FOR[operation]), f"{row} ({operation}) -> {type(error).__name__}"
            assert error.code == row.name


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_the_sandbox_answers_every_row_as_telethon_raises_it(row: CsvRow) -> None:
    code = row.codes[0] if row.codes else 500
    for operation in OPERATIONS[row.method]:
        raised = errors.rpc_message_to_error(types.RpcError(code, row.raw), request=None)
        telethon_error = telethon_map_error(raised, operation)
        number = 7 if row.error.endswith("_X") else None
        world = WorldError(row.name, seconds=number, code=code).to_dict()
        sandbox_error = sandbox_map_error(world, operation)
        assert type(telethon_error) is type(sandbox_error), str(row)
        assert telethon_error.code == sandbox_error.code == row.name
        assert getattr(telethon_error, "seconds", None) == getattr(sandbox_error, "seconds", None)


# --- the rows issue 11 names, outcome by outcome ---------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["USER_BANNED_IN_CHANNEL", "PEER_FLOOD", "FROZEN_METHOD_INVALID", "FROZEN_PARTICIPANT_MISSING",
            "USER_RESTRICTED"])
def test_account_wide_restrictions_pause_the_account(raw: str) -> None:
    error = to_domain(raw, rpc_code=400, operation="send")
    assert type(error) is AccountThrottled and error.spambot


@pytest.mark.parametrize(("raw", "code"), [("TOPIC_CLOSED", 400), ("TOPIC_DELETED", 400),
                                           ("ALLOW_PAYMENT_REQUIRED", 403), ("ALLOW_PAYMENT_REQUIRED_250", 403),
                                           ("CHAT_SEND_PHOTOS_FORBIDDEN", 403), ("CHAT_SEND_POLLS_FORBIDDEN", 403)])
def test_forum_paid_and_media_kind_groups_close_with_their_reason(raw: str, code: int) -> None:
    error = to_domain(raw, rpc_code=code, operation="send")
    assert type(error) is GroupClosed
    assert error.reason == split_name(raw)[0]


def test_a_resent_random_id_is_never_sent_again() -> None:
    assert type(to_domain("RANDOM_ID_DUPLICATE", rpc_code=500, operation="send")) is MaybeSent


@pytest.mark.parametrize("raw", ["PHONE_MIGRATE_2", "USER_MIGRATE_4", "NETWORK_MIGRATE_1", "FILE_MIGRATE_3"])
def test_a_dc_move_that_reaches_the_table_is_transient(raw: str) -> None:
    assert type(to_domain(raw, rpc_code=303, operation="login")) is TransientError
