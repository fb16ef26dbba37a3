"""Keyboards of the control bot; every button carries a callback class from ``callbacks``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from roles.bot import callbacks as cb
from roles.bot import texts


def button(text: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def markup(rows: Iterable[Sequence[InlineKeyboardButton]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[list(row) for row in rows if row])


def main_only() -> InlineKeyboardMarkup:
    return markup([[button(texts.BTN_MAIN, cb.MainMenu())]])


def main_menu(*, running: bool, admin: bool) -> InlineKeyboardMarkup:
    rows = [
        [button(texts.BTN_ACCOUNT, cb.AccMenu()), button(texts.BTN_GROUPS, cb.GrpMenu())],
        [button(texts.BTN_MESSAGE, cb.MsgMenu()), button(texts.BTN_INTERVAL, cb.IntMenu())],
        [
            button(texts.BTN_STOP, cb.BcStop()) if running else button(texts.BTN_START, cb.BcStart()),
            button(texts.BTN_STATUS, cb.StShow()),
        ],
    ]
    if admin:
        rows.append([button(texts.BTN_ADMIN, cb.AdmMenu())])
    return markup(rows)


def request_access() -> InlineKeyboardMarkup:
    return markup([[button(texts.BTN_REQUEST, cb.AccRequest())]])


def admin_request_card(uid: int) -> InlineKeyboardMarkup:
    return markup(
        [[button(texts.BTN_APPROVE, cb.AdmApprove(uid=uid)), button(texts.BTN_REJECT, cb.AdmReject(uid=uid))]]
    )


# account ---------------------------------------------------------------------------------------


def login_offer() -> InlineKeyboardMarkup:
    return markup([[button(texts.BTN_LOGIN, cb.AccLogin())], [button(texts.BTN_MAIN, cb.MainMenu())]])


def connected_account() -> InlineKeyboardMarkup:
    return markup([[button(texts.BTN_LOGOUT, cb.AccLogout())], [button(texts.BTN_MAIN, cb.MainMenu())]])


def logout_confirm() -> InlineKeyboardMarkup:
    return markup([[button(texts.BTN_LOGOUT_YES, cb.AccLogoutYes()), button(texts.BTN_CANCEL, cb.AccMenu())]])


def share_phone() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=texts.BTN_SHARE_PHONE, request_contact=True)],
            [KeyboardButton(text=texts.BTN_CANCEL)],
        ],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def remove_reply() -> ReplyKeyboardRemove:
    return ReplyKeyboardRemove()


def code_keypad() -> InlineKeyboardMarkup:
    digits = [[str(d) for d in range(r, r + 3)] for r in (1, 4, 7)]
    rows = [[button(d, cb.AccKeypad(key=d)) for d in row] for row in digits]  # type: ignore[arg-type]
    rows.append(
        [
            button(texts.BTN_KP_DEL, cb.AccKeypad(key="del")),
            button("0", cb.AccKeypad(key="0")),
            button(texts.BTN_KP_OK, cb.AccKeypad(key="ok")),
        ]
    )
    rows.append([button(texts.BTN_RESEND, cb.AccResend()), button(texts.BTN_CANCEL, cb.AccCancel())])
    return markup(rows)


def resend_or_cancel() -> InlineKeyboardMarkup:
    return markup([[button(texts.BTN_RESEND, cb.AccResend()), button(texts.BTN_CANCEL, cb.AccCancel())]])


def cancel_only() -> InlineKeyboardMarkup:
    return markup([[button(texts.BTN_CANCEL, cb.AccCancel())]])


# groups ----------------------------------------------------------------------------------------


def groups_menu() -> InlineKeyboardMarkup:
    return markup(
        [
            [button(texts.BTN_IMPORT, cb.GrpImport()), button(texts.BTN_LIST, cb.GrpList(page=0))],
            [button(texts.BTN_MAIN, cb.MainMenu())],
        ]
    )


def import_running() -> InlineKeyboardMarkup:
    """Under the import's progress message: stop it."""
    return markup([[button(texts.BTN_IMPORT_STOP, cb.GrpImportCancel())]])


@dataclass(frozen=True)
class GroupButton:
    group_id: int
    title: str
    selected: bool
    status: str
    reason: str
    archived: bool = False


def group_page(groups: Sequence[GroupButton], page: int, pages: int) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = [
        [
            button(
                texts.group_button(texts.archived_title(g.title) if g.archived else g.title, g.selected,
                                   g.status, g.reason)[:64],
                cb.GrpToggle(gid=g.group_id, page=page),
            )
        ]
        for g in groups
    ]
    nav = []
    if page > 0:
        nav.append(button(texts.BTN_PREV, cb.GrpList(page=page - 1)))
    if page + 1 < pages:
        nav.append(button(texts.BTN_NEXT, cb.GrpList(page=page + 1)))
    rows.append(nav)
    if groups:
        rows.append(
            [button(texts.BTN_ALL, cb.GrpAll(page=page)), button(texts.BTN_NONE, cb.GrpNone(page=page))]
        )
    rows.append([button(texts.BTN_DONE, cb.GrpMenu())])
    return markup(rows)


def session_ended() -> InlineKeyboardMarkup:
    return login_offer()


# message ---------------------------------------------------------------------------------------


def message_menu() -> InlineKeyboardMarkup:
    return markup([[button(texts.BTN_MSG_SET, cb.MsgSet())], [button(texts.BTN_MAIN, cb.MainMenu())]])


def message_confirm() -> InlineKeyboardMarkup:
    return markup(
        [
            [button(texts.BTN_MSG_SAVE, cb.MsgSave())],
            [button(texts.BTN_MSG_NEW, cb.MsgSet()), button(texts.BTN_CANCEL, cb.AccCancel())],
        ]
    )


# interval --------------------------------------------------------------------------------------


def preset_label(minutes: int) -> str:
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def interval_menu(presets: Sequence[int], current_seconds: int | None) -> InlineKeyboardMarkup:
    """U5.1: ``presets`` in minutes (already within bounds), the current one marked."""
    buttons = [
        button(
            texts.interval_preset_caption(preset_label(m), current_seconds == m * 60), cb.IntSet(minutes=m)
        )
        for m in presets
    ]
    rows = [buttons[i : i + 4] for i in range(0, len(buttons), 4)]
    rows.append([button(texts.BTN_INT_CUSTOM, cb.IntCustom())])
    rows.append([button(texts.BTN_MAIN, cb.MainMenu())])
    return markup(rows)


# broadcast -------------------------------------------------------------------------------------

FIX_BUTTONS: dict[str, tuple[str, CallbackData]] = {
    "access": (texts.BTN_REQUEST, cb.AccRequest()),
    "account": (texts.BTN_LOGIN, cb.AccLogin()),
    "groups": (texts.BTN_GROUPS, cb.GrpMenu()),
    "message": (texts.BTN_MSG_SET, cb.MsgSet()),
    "interval": (texts.BTN_INTERVAL, cb.IntMenu()),
}


def missing(items: Sequence[str]) -> InlineKeyboardMarkup:
    rows = [[button(*FIX_BUTTONS[item])] for item in items if item in FIX_BUTTONS]
    rows.append([button(texts.BTN_MAIN, cb.MainMenu())])
    return markup(rows)


# status ----------------------------------------------------------------------------------------


def status(notify_on: bool) -> InlineKeyboardMarkup:
    return markup(
        [
            [
                button(texts.BTN_REFRESH, cb.StRefresh()),
                button(texts.notify_caption(notify_on), cb.StNotify()),
            ],
            [button(texts.BTN_MAIN, cb.MainMenu())],
        ]
    )


# admin -------------------------------------------------------------------------------------------

GRANT_DAYS = (7, 30, 0)  # the grant presets of a user card; 0 = no expiry


def admin_back() -> list[InlineKeyboardButton]:
    return [button(texts.BTN_ADM_BACK, cb.AdmMenu())]


def admin_menu(*, paused: bool) -> InlineKeyboardMarkup:
    if paused:
        switch = button(texts.BTN_ADM_RESUME, cb.AdmResume())
    else:
        switch = button(texts.BTN_ADM_PAUSE, cb.AdmPause())
    return markup(
        [
            [
                button(texts.BTN_ADM_USERS, cb.AdmUsers(page=0)),
                button(texts.BTN_ADM_PENDING, cb.AdmPending()),
            ],
            [button(texts.BTN_ADM_RUNTIME, cb.AdmRuntime()), button(texts.BTN_ADM_MODE, cb.AdmModeMenu())],
            [switch, button(texts.BTN_ADM_ANNOUNCE, cb.AdmAnnounce())],
            [button(texts.BTN_MAIN, cb.MainMenu())],
        ]
    )


@dataclass(frozen=True)
class UserButton:
    user_id: int
    caption: str


def admin_users(users: Sequence[UserButton], page: int, pages: int) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = [[button(u.caption, cb.AdmUser(uid=u.user_id))] for u in users]
    nav = []
    if page > 0:
        nav.append(button(texts.BTN_PREV, cb.AdmUsers(page=page - 1)))
    if page + 1 < pages:
        nav.append(button(texts.BTN_NEXT, cb.AdmUsers(page=page + 1)))
    rows.append(nav)
    rows.append(admin_back())
    return markup(rows)


def admin_user_card(uid: int, *, banned: bool, page: int = 0) -> InlineKeyboardMarkup:
    if banned:
        ban = button(texts.BTN_ADM_UNBAN, cb.AdmUnban(uid=uid))
    else:
        ban = button(texts.BTN_ADM_BAN, cb.AdmBan(uid=uid))
    return markup(
        [
            [button(texts.grant_caption(days), cb.AdmGrant(uid=uid, days=days)) for days in GRANT_DAYS],
            [button(texts.BTN_ADM_REVOKE, cb.AdmRevoke(uid=uid)), ban],
            [
                button(texts.BTN_ADM_STOP, cb.AdmStop(uid=uid)),
                button(texts.BTN_ADM_LOGOUT, cb.AdmLogout(uid=uid)),
            ],
            [button(texts.BTN_ADM_USERS, cb.AdmUsers(page=page)), *admin_back()],
        ]
    )


def admin_pending(users: Sequence[tuple[int, str]]) -> InlineKeyboardMarkup:
    rows = [
        [
            button(texts.pending_caption(True, name, uid), cb.AdmApprove(uid=uid)),
            button(texts.pending_caption(False, name, uid), cb.AdmReject(uid=uid)),
        ]
        for uid, name in users
    ]
    rows.append([button(texts.BTN_REFRESH, cb.AdmPending()), *admin_back()])
    return markup(rows)


def admin_modes(current: str) -> InlineKeyboardMarkup:
    modes = ("open", "approval", "whitelist")
    return markup(
        [
            [button(texts.mode_caption(m, m == current), cb.AdmMode(mode=m)) for m in modes],  # type: ignore[arg-type]
            admin_back(),
        ]
    )


def admin_runtime() -> InlineKeyboardMarkup:
    return markup([[button(texts.BTN_REFRESH, cb.AdmRuntime()), *admin_back()]])


def announce_confirm() -> InlineKeyboardMarkup:
    return markup(
        [[button(texts.BTN_ADM_SEND, cb.AdmAnnounceSend()), button(texts.BTN_CANCEL, cb.AccCancel())]]
    )


def admin_only() -> InlineKeyboardMarkup:
    return markup([admin_back()])
