"""Keyboards of the control bot; every button carries a callback class from ``callbacks``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from roles.bot import callbacks as cb
from roles.bot import i18n, texts


def button(text: str, data: CallbackData) -> InlineKeyboardButton:
    # a caption captured at import (``START_BUTTON``...) is still a marked msgid: translated here
    return InlineKeyboardButton(text=str(i18n.translated(text)), callback_data=data.pack())


def markup(rows: Iterable[Sequence[InlineKeyboardButton]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[list(row) for row in rows if row])


def main_only() -> InlineKeyboardMarkup:
    return markup([[button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main))]])


# The main menu and the interval menu go with most updates and depend only on their arguments and
# the language: built once per argument set and language (about 0.2 and 0.4 ms of CPU each to build).
# Callers never modify a keyboard.
def main_menu(*, running: bool, admin: bool, choose_groups: bool = False) -> InlineKeyboardMarkup:
    return _main_menu(i18n.current(), running=running, admin=admin, choose_groups=choose_groups)


@lru_cache(maxsize=64)
def _main_menu(language: str, *, running: bool, admin: bool, choose_groups: bool) -> InlineKeyboardMarkup:
    """``language`` is only the cache key: the captions are read in the current one, which it names."""
    rows = [[button(*GROUPS_BUTTON)]] if choose_groups else []
    rows += [
        [
            button(texts.BTN_ACCOUNT, cb.Acc(action=cb.AccAction.menu)),
            button(texts.BTN_GROUPS, cb.Grp(action=cb.GrpAction.menu)),
        ],
        [
            button(texts.BTN_MESSAGE, cb.Msg(action=cb.MsgAction.menu)),
            button(texts.BTN_INTERVAL, cb.Int(action=cb.IntAction.menu)),
        ],
        [button(texts.BTN_SCHEDULE, cb.Sch(action=cb.SchAction.menu))],
        [
            button(texts.BTN_STOP, cb.Bc(action=cb.BcAction.stop))
            if running
            else button(texts.BTN_START, cb.Bc(action=cb.BcAction.start)),
            button(texts.BTN_STATUS, cb.St(action=cb.StAction.show)),
        ],
    ]
    last = [button(texts.BTN_SETTINGS, cb.Set(action=cb.SetAction.menu))]
    if admin:
        last.append(button(texts.BTN_ADMIN, cb.Adm(action=cb.AdmAction.menu)))
    rows.append(last)
    return markup(rows)


def settings_menu(current: str) -> InlineKeyboardMarkup:
    """U12.2: one button per language (each named in its own language), the current one marked."""
    languages = [
        button(f"• {i18n.LANGUAGE_NAMES[code]} •" if code == current else i18n.LANGUAGE_NAMES[code],
               cb.Set(action=cb.SetAction.lang, code=code))
        for code in i18n.LANGUAGES
    ]
    return markup([languages, [button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main))]])


def request_access() -> InlineKeyboardMarkup:
    return markup([[button(texts.BTN_REQUEST, cb.Acc(action=cb.AccAction.request))]])


def admin_request_card(uid: int) -> InlineKeyboardMarkup:
    return markup(
        [
            [
                button(texts.BTN_APPROVE, cb.Adm(action=cb.AdmAction.approve, uid=uid)),
                button(texts.BTN_REJECT, cb.Adm(action=cb.AdmAction.reject, uid=uid)),
            ]
        ]
    )


# account ---------------------------------------------------------------------------------------


def login_offer() -> InlineKeyboardMarkup:
    return markup(
        [
            [button(texts.BTN_LOGIN, cb.Acc(action=cb.AccAction.login))],
            [button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main))],
        ]
    )


def connected_account() -> InlineKeyboardMarkup:
    return markup(
        [
            [button(texts.BTN_LOGOUT, cb.Acc(action=cb.AccAction.logout))],
            [button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main))],
        ]
    )


def logout_confirm(aid: int | None = None) -> InlineKeyboardMarkup:
    """``acc:logout:yes`` (the current account) or ``acc:logout:<aid>:yes`` (a named one, U8.2)."""
    return markup(
        [
            [
                button(texts.BTN_LOGOUT_YES, cb.Acc(action=cb.AccAction.logout, aid=aid, confirm="yes")),
                button(texts.BTN_CANCEL, cb.Acc(action=cb.AccAction.menu)),
            ]
        ]
    )


def accounts_menu(accounts: Sequence[tuple[int, str, bool]], can_add: bool) -> InlineKeyboardMarkup:
    """U8.1: ``acc:sel:<aid>`` per account ((aid, caption, current) each), ``acc:login`` while under
    the limit, ``acc:logout`` for the current account."""
    rows = [[button(caption, cb.Acc(action=cb.AccAction.select, aid=aid))] for aid, caption, _ in accounts]
    if can_add:
        rows.append([button(texts.BTN_ADD_ACCOUNT, cb.Acc(action=cb.AccAction.login))])
    rows.append([button(texts.BTN_LOGOUT, cb.Acc(action=cb.AccAction.logout))])
    rows.append([button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main))])
    return markup(rows)


def account_card(aid: int) -> InlineKeyboardMarkup:
    """U8.2: the selected account's card."""
    return markup(
        [
            [button(texts.BTN_LOGOUT, cb.Acc(action=cb.AccAction.logout, aid=aid))],
            [button(texts.BTN_ALL_ACCOUNTS, cb.Acc(action=cb.AccAction.menu)),
             button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main))],
        ]
    )


def accounts_full() -> InlineKeyboardMarkup:
    """U8.3: at the limit: the list (to disconnect one) or the main menu."""
    return markup(
        [
            [button(texts.BTN_ALL_ACCOUNTS, cb.Acc(action=cb.AccAction.menu)),
             button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main))],
        ]
    )


def share_phone() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=str(texts.BTN_SHARE_PHONE), request_contact=True)],
            [KeyboardButton(text=str(texts.BTN_CANCEL))],
        ],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def remove_reply() -> ReplyKeyboardRemove:
    return ReplyKeyboardRemove()


def code_keypad() -> InlineKeyboardMarkup:
    digits = [[str(d) for d in range(r, r + 3)] for r in (1, 4, 7)]
    rows = [[button(d, cb.Acc(action=cb.AccAction.keypad, key=d)) for d in row] for row in digits]  # type: ignore[arg-type]
    rows.append(
        [
            button(texts.BTN_KP_DEL, cb.Acc(action=cb.AccAction.keypad, key="del")),
            button("0", cb.Acc(action=cb.AccAction.keypad, key="0")),
            button(texts.BTN_KP_OK, cb.Acc(action=cb.AccAction.keypad, key="ok")),
        ]
    )
    rows.append(
        [
            button(texts.BTN_RESEND, cb.Acc(action=cb.AccAction.resend)),
            button(texts.BTN_CANCEL, cb.Acc(action=cb.AccAction.cancel)),
        ]
    )
    return markup(rows)


def resend_or_cancel() -> InlineKeyboardMarkup:
    return markup(
        [
            [
                button(texts.BTN_RESEND, cb.Acc(action=cb.AccAction.resend)),
                button(texts.BTN_CANCEL, cb.Acc(action=cb.AccAction.cancel)),
            ]
        ]
    )


def cancel_only() -> InlineKeyboardMarkup:
    return markup([[button(texts.BTN_CANCEL, cb.Acc(action=cb.AccAction.cancel))]])


# groups ----------------------------------------------------------------------------------------


def groups_menu(follow: Sequence[tuple[str, CallbackData]] = ()) -> InlineKeyboardMarkup:
    return markup(
        [
            *[[button(*step)] for step in follow],
            [
                button(texts.BTN_IMPORT, cb.Grp(action=cb.GrpAction.import_)),
                button(texts.BTN_LIST, cb.Grp(action=cb.GrpAction.list, page=0)),
            ],
            [button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main))],
        ]
    )


def import_running() -> InlineKeyboardMarkup:
    """Under the import's progress message: stop it."""
    return markup([[button(texts.BTN_IMPORT_STOP, cb.Grp(action=cb.GrpAction.import_stop))]])


@dataclass(frozen=True)
class GroupButton:
    group_id: int
    title: str
    selected: bool
    status: str
    reason: str
    archived: bool = False
    forum: bool = False


def group_page(groups: Sequence[GroupButton], page: int, pages: int) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    for g in groups:
        row = [button(
            texts.group_button(texts.archived_title(g.title) if g.archived else g.title, g.selected,
                               g.status, g.reason, g.forum)[:64],
            cb.Grp(action=cb.GrpAction.toggle, gid=g.group_id, page=page),
        )]
        if g.forum and g.status != "gone":  # U11.2: the forum's topics, beside it
            row.append(button(texts.BTN_TOPIC, cb.Grp(action=cb.GrpAction.topics, gid=g.group_id)))
        rows.append(row)
    nav = []
    if page > 0:
        nav.append(button(texts.BTN_PREV, cb.Grp(action=cb.GrpAction.list, page=page - 1)))
    if page + 1 < pages:
        nav.append(button(texts.BTN_NEXT, cb.Grp(action=cb.GrpAction.list, page=page + 1)))
    rows.append(nav)
    if groups:
        rows.append(
            [
                button(texts.BTN_ALL, cb.Grp(action=cb.GrpAction.all, page=page)),
                button(texts.BTN_NONE, cb.Grp(action=cb.GrpAction.none, page=page)),
            ]
        )
    rows.append([button(texts.BTN_DONE, cb.Grp(action=cb.GrpAction.menu))])
    return markup(rows)


@dataclass(frozen=True)
class TopicButton:
    topic_id: int
    title: str
    chosen: bool
    closed: bool


def topic_page(group_id: int, topics: Sequence[TopicButton], page: int, pages: int,
               list_page: int) -> InlineKeyboardMarkup:
    """U11.2: one button per topic (``grp:tp:<gid>:<tid>``), the chosen one marked; pages; back."""
    rows: list[list[InlineKeyboardButton]] = [
        [button(texts.topic_button(t.title, t.chosen, t.closed)[:64],
                cb.Grp(action=cb.GrpAction.topics, gid=group_id, tid=t.topic_id))]
        for t in topics
    ]
    nav = []
    if page > 0:
        nav.append(button(texts.BTN_PREV, cb.Grp(action=cb.GrpAction.topic_page, gid=group_id,
                                                 page=page - 1)))
    if page + 1 < pages:
        nav.append(button(texts.BTN_NEXT, cb.Grp(action=cb.GrpAction.topic_page, gid=group_id,
                                                 page=page + 1)))
    rows.append(nav)
    rows.append([button(texts.BTN_BACK_TO_LIST, cb.Grp(action=cb.GrpAction.list, page=list_page))])
    return markup(rows)


def session_ended() -> InlineKeyboardMarkup:
    return login_offer()


# message ---------------------------------------------------------------------------------------


def message_menu(count: int = 0, limit: int = 0, rotation: str = "seq") -> InlineKeyboardMarkup:
    """U4.1 / U9.1: per message a preview and a delete button, add (under the limit), the rotation
    mode (two or more messages), set (replaces message 1) and the main menu."""
    rows = [[button(texts.btn_msg_view(n), cb.Msg(action=cb.MsgAction.view, n=n)),
             button(texts.btn_msg_delete(n), cb.Msg(action=cb.MsgAction.delete, n=n))]
            for n in range(1, count + 1)]
    if count >= 2:
        rows.append([
            button(texts.btn_rotation(texts.BTN_ROTATION_SEQ, rotation == "seq"),
                   cb.Msg(action=cb.MsgAction.mode, rotation="seq")),
            button(texts.btn_rotation(texts.BTN_ROTATION_RND, rotation == "rnd"),
                   cb.Msg(action=cb.MsgAction.mode, rotation="rnd")),
        ])
    set_label = texts.BTN_MSG_REPLACE_FIRST if count >= 2 else texts.BTN_MSG_SET
    rows.append([button(set_label, cb.Msg(action=cb.MsgAction.set))])
    if 1 <= count < limit:
        rows.append([button(texts.BTN_MSG_ADD, cb.Msg(action=cb.MsgAction.add))])
    rows.append([button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main))])
    return markup(rows)


def message_view(n: int) -> InlineKeyboardMarkup:
    """U9.1: under a message's preview: delete it, back to the list."""
    return markup([[button(texts.btn_msg_delete(n), cb.Msg(action=cb.MsgAction.delete, n=n)),
                    button(texts.BTN_MSG_MENU, cb.Msg(action=cb.MsgAction.menu))]])


def message_confirm() -> InlineKeyboardMarkup:
    return markup(
        [
            [button(texts.BTN_MSG_SAVE, cb.Msg(action=cb.MsgAction.save))],
            [
                button(texts.BTN_MSG_NEW, cb.Msg(action=cb.MsgAction.set)),
                button(texts.BTN_CANCEL, cb.Acc(action=cb.AccAction.cancel)),
            ],
        ]
    )


# interval --------------------------------------------------------------------------------------


def preset_label(minutes: int) -> str:
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def interval_menu(presets: Sequence[int], current_seconds: int | None) -> InlineKeyboardMarkup:
    """U5.1: ``presets`` in minutes (already within bounds), the current one marked."""
    return _interval_menu(i18n.current(), tuple(presets), current_seconds)


@lru_cache(maxsize=256)
def _interval_menu(
    language: str, presets: tuple[int, ...], current_seconds: int | None
) -> InlineKeyboardMarkup:
    buttons = [
        button(
            texts.interval_preset_caption(preset_label(m), current_seconds == m * 60),
            cb.Int(action=cb.IntAction.set, minutes=m),
        )
        for m in presets
    ]
    rows = [buttons[i : i + 4] for i in range(0, len(buttons), 4)]
    rows.append([button(texts.BTN_INT_CUSTOM, cb.Int(action=cb.IntAction.custom))])
    rows.append([button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main))])
    return markup(rows)


# schedule window and time zone (U10) -------------------------------------------------------------


def schedule_menu(has_window: bool) -> InlineKeyboardMarkup:
    """U10.1: time zone, active hours, days, and "any time" when a window is set."""
    rows = [
        [button(texts.BTN_SCH_TZ, cb.Sch(action=cb.SchAction.tz)),
         button(texts.BTN_SCH_HOURS, cb.Sch(action=cb.SchAction.hours))],
        [button(texts.BTN_SCH_DAYS, cb.Sch(action=cb.SchAction.days))],
    ]
    if has_window:
        rows.append([button(texts.BTN_SCH_OFF, cb.Sch(action=cb.SchAction.off))])
    rows.append([button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main))])
    return markup(rows)


def schedule_days(days: int) -> InlineKeyboardMarkup:
    """The days of the week, each a toggle ``sch:day:<n>`` showing whether it is on."""
    toggles = [button(texts.day_caption(n, bool(days >> n & 1)), cb.Sch(action=cb.SchAction.day, n=n))
               for n in range(7)]
    return markup([toggles[:4], toggles[4:],
                   [button(texts.BTN_SCH_BACK, cb.Sch(action=cb.SchAction.menu))],
                   [button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main))]])


def schedule_saved() -> InlineKeyboardMarkup:
    return markup([[button(texts.BTN_SCH_BACK, cb.Sch(action=cb.SchAction.menu)),
                    button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main))]])


# confirmations (U7.2): the next sensible step beside the main menu ---------------------------------

START_BUTTON = (texts.BTN_START, cb.Bc(action=cb.BcAction.start))
INTERVAL_BUTTON = (texts.BTN_INTERVAL, cb.Int(action=cb.IntAction.menu))
MESSAGE_BUTTON = (texts.BTN_MSG_SET, cb.Msg(action=cb.MsgAction.set))
GROUPS_BUTTON = (texts.BTN_LIST, cb.Grp(action=cb.GrpAction.list, page=0))
STATUS_BUTTON = (texts.BTN_STATUS, cb.St(action=cb.StAction.show))


def follow_up(missing: Sequence[str], running: bool) -> list[tuple[str, CallbackData]]:
    """The next sensible step after a confirmation: fix the first missing item (U6.1's order), or
    start a stopped broadcast, or look at the status of a running one."""
    fixable = [item for item in missing if item in FIX_BUTTONS and item != "access"]
    if fixable:
        return [FIX_BUTTONS[fixable[0]]]
    if missing:
        return []
    return [STATUS_BUTTON] if running else [START_BUTTON]


def next_step(steps: Sequence[tuple[str, CallbackData]]) -> InlineKeyboardMarkup:
    """A confirmation's keyboard: the next steps (first one first), then the main menu."""
    rows = [[button(*step)] for step in steps]
    rows.append([button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main))])
    return markup(rows)


# broadcast -------------------------------------------------------------------------------------

FIX_BUTTONS: dict[str, tuple[str, CallbackData]] = {
    "access": (texts.BTN_REQUEST, cb.Acc(action=cb.AccAction.request)),
    "account": (texts.BTN_LOGIN, cb.Acc(action=cb.AccAction.login)),
    "groups": (texts.BTN_GROUPS, cb.Grp(action=cb.GrpAction.menu)),
    "message": (texts.BTN_MSG_SET, cb.Msg(action=cb.MsgAction.set)),
    "interval": (texts.BTN_INTERVAL, cb.Int(action=cb.IntAction.menu)),
}


def post_now() -> InlineKeyboardMarkup:
    """U6.2: a start whose first round waits for the interval offers to post at once."""
    return markup(
        [
            [button(texts.BTN_POST_NOW, cb.Bc(action=cb.BcAction.now))],
            [button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main))],
        ]
    )


def post_now_confirm() -> InlineKeyboardMarkup:
    return markup(
        [
            [
                button(texts.BTN_POST_NOW_YES, cb.Bc(action=cb.BcAction.now, confirm="yes")),
                button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main)),
            ]
        ]
    )


def missing(items: Sequence[str]) -> InlineKeyboardMarkup:
    rows = [[button(*FIX_BUTTONS[item])] for item in items if item in FIX_BUTTONS]
    rows.append([button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main))])
    return markup(rows)


# status ----------------------------------------------------------------------------------------


def status(notify_on: bool, choose_groups: bool = False) -> InlineKeyboardMarkup:
    return markup(
        [
            [button(*GROUPS_BUTTON)] if choose_groups else [],
            [
                button(texts.BTN_REFRESH, cb.St(action=cb.StAction.refresh)),
                button(texts.notify_caption(notify_on), cb.St(action=cb.StAction.notify)),
            ],
            [button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main))],
        ]
    )


# admin -------------------------------------------------------------------------------------------

GRANT_DAYS = (7, 30, 0)  # the grant presets of a user card; 0 = no expiry


def admin_back() -> list[InlineKeyboardButton]:
    return [button(texts.BTN_ADM_BACK, cb.Adm(action=cb.AdmAction.menu))]


def admin_menu(*, paused: bool) -> InlineKeyboardMarkup:
    if paused:
        switch = button(texts.BTN_ADM_RESUME, cb.Adm(action=cb.AdmAction.resume))
    else:
        switch = button(texts.BTN_ADM_PAUSE, cb.Adm(action=cb.AdmAction.pause))
    return markup(
        [
            [
                button(texts.BTN_ADM_USERS, cb.Adm(action=cb.AdmAction.users, page=0)),
                button(texts.BTN_ADM_PENDING, cb.Adm(action=cb.AdmAction.pending)),
            ],
            [
                button(texts.BTN_ADM_RUNTIME, cb.Adm(action=cb.AdmAction.runtime)),
                button(texts.BTN_ADM_MODE, cb.Adm(action=cb.AdmAction.mode)),
            ],
            [switch, button(texts.BTN_ADM_ANNOUNCE, cb.Adm(action=cb.AdmAction.announce))],
            [button(texts.BTN_MAIN, cb.Menu(action=cb.MenuAction.main))],
        ]
    )


@dataclass(frozen=True)
class UserButton:
    user_id: int
    caption: str


def admin_users(users: Sequence[UserButton], page: int, pages: int) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = [
        [button(u.caption, cb.Adm(action=cb.AdmAction.user, uid=u.user_id))] for u in users
    ]
    nav = []
    if page > 0:
        nav.append(button(texts.BTN_PREV, cb.Adm(action=cb.AdmAction.users, page=page - 1)))
    if page + 1 < pages:
        nav.append(button(texts.BTN_NEXT, cb.Adm(action=cb.AdmAction.users, page=page + 1)))
    rows.append(nav)
    rows.append(admin_back())
    return markup(rows)


def admin_user_card(uid: int, *, banned: bool, page: int = 0) -> InlineKeyboardMarkup:
    if banned:
        ban = button(texts.BTN_ADM_UNBAN, cb.Adm(action=cb.AdmAction.unban, uid=uid))
    else:
        ban = button(texts.BTN_ADM_BAN, cb.Adm(action=cb.AdmAction.ban, uid=uid))
    return markup(
        [
            [
                button(texts.grant_caption(days), cb.Adm(action=cb.AdmAction.grant, uid=uid, days=days))
                for days in GRANT_DAYS
            ],
            [button(texts.BTN_ADM_REVOKE, cb.Adm(action=cb.AdmAction.revoke, uid=uid)), ban],
            [
                button(texts.BTN_ADM_STOP, cb.Adm(action=cb.AdmAction.stop, uid=uid)),
                button(texts.BTN_ADM_LOGOUT, cb.Adm(action=cb.AdmAction.logout, uid=uid)),
            ],
            [button(texts.BTN_ADM_USERS, cb.Adm(action=cb.AdmAction.users, page=page)), *admin_back()],
        ]
    )


def admin_pending(users: Sequence[tuple[int, str]]) -> InlineKeyboardMarkup:
    rows = [
        [
            button(texts.pending_caption(True, name, uid), cb.Adm(action=cb.AdmAction.approve, uid=uid)),
            button(texts.pending_caption(False, name, uid), cb.Adm(action=cb.AdmAction.reject, uid=uid)),
        ]
        for uid, name in users
    ]
    rows.append([button(texts.BTN_REFRESH, cb.Adm(action=cb.AdmAction.pending)), *admin_back()])
    return markup(rows)


def admin_modes(current: str) -> InlineKeyboardMarkup:
    modes: tuple[cb.AccessModeName, ...] = ("open", "approval", "whitelist")
    return markup(
        [
            [
                button(texts.mode_caption(m, m == current), cb.Adm(action=cb.AdmAction.mode, mode=m))
                for m in modes
            ],
            admin_back(),
        ]
    )


def admin_runtime() -> InlineKeyboardMarkup:
    return markup([[button(texts.BTN_REFRESH, cb.Adm(action=cb.AdmAction.runtime)), *admin_back()]])


def announce_confirm() -> InlineKeyboardMarkup:
    return markup(
        [
            [
                button(texts.BTN_ADM_SEND, cb.Adm(action=cb.AdmAction.announce, confirm="send")),
                button(texts.BTN_CANCEL, cb.Acc(action=cb.AccAction.cancel)),
            ]
        ]
    )


def admin_only() -> InlineKeyboardMarkup:
    return markup([admin_back()])
