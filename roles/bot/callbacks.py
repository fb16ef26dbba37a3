"""Every callback data class of the control bot, in one place.

The wire format is the id written in flows.md (``area:action[:arg…]``). aiogram joins
the prefix and the fields with ``:``, and a prefix can't contain ``:``, so each class has
the *area* as prefix and a fixed ``action`` literal as its first field: ``GroupToggle``
packs to ``grp:t:<gid>:<p>``. A string that doesn't fit a class (other action, wrong
number of parts, a non-number where a number belongs, out of range) doesn't match it
and falls through to the stale-callback handler. ``pack()`` refuses more than 64 bytes.
"""

from __future__ import annotations

from typing import Annotated, Literal

from aiogram.filters.callback_data import MAX_CALLBACK_LENGTH, CallbackData
from pydantic import Field

# database ids are bigint; pages and minutes are small, bounded so a forged value can't overflow SQL
DbId = Annotated[int, Field(ge=1, lt=2**63)]
Page = Annotated[int, Field(ge=0, le=100_000)]
Minutes = Annotated[int, Field(ge=1, le=100_000)]
UserId = Annotated[int, Field(ge=1, lt=2**63)]
Days = Annotated[int, Field(ge=0, le=3650)]

# ---- menu -----------------------------------------------------------------------------------


class MainMenu(CallbackData, prefix="menu"):
    action: Literal["main"] = "main"


# ---- account (U1.2, U2) ---------------------------------------------------------------------


class AccMenu(CallbackData, prefix="acc"):
    action: Literal["menu"] = "menu"


class AccLogin(CallbackData, prefix="acc"):
    action: Literal["login"] = "login"


class AccRequest(CallbackData, prefix="acc"):
    action: Literal["request"] = "request"


KeypadKey = Literal["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "del", "ok"]


class AccKeypad(CallbackData, prefix="acc"):
    action: Literal["kp"] = "kp"
    key: KeypadKey


class AccResend(CallbackData, prefix="acc"):
    action: Literal["resend"] = "resend"


class AccCancel(CallbackData, prefix="acc"):
    """Cancel of any input state (login, message, interval)."""

    action: Literal["cancel"] = "cancel"


class AccLogout(CallbackData, prefix="acc"):
    action: Literal["logout"] = "logout"


class AccLogoutYes(CallbackData, prefix="acc"):
    action: Literal["logout"] = "logout"
    confirm: Literal["yes"] = "yes"


# ---- groups (U3) ----------------------------------------------------------------------------


class GrpMenu(CallbackData, prefix="grp"):
    action: Literal["menu"] = "menu"


class GrpImport(CallbackData, prefix="grp"):
    action: Literal["import"] = "import"


class GrpImportCancel(CallbackData, prefix="grp"):
    action: Literal["istop"] = "istop"


class GrpList(CallbackData, prefix="grp"):
    action: Literal["list"] = "list"
    page: Page


class GrpToggle(CallbackData, prefix="grp"):
    action: Literal["t"] = "t"
    gid: DbId
    page: Page


class GrpAll(CallbackData, prefix="grp"):
    action: Literal["all"] = "all"
    page: Page


class GrpNone(CallbackData, prefix="grp"):
    action: Literal["none"] = "none"
    page: Page


# ---- message (U4) ---------------------------------------------------------------------------


class MsgMenu(CallbackData, prefix="msg"):
    action: Literal["menu"] = "menu"


class MsgSet(CallbackData, prefix="msg"):
    action: Literal["set"] = "set"


class MsgSave(CallbackData, prefix="msg"):
    action: Literal["save"] = "save"


# ---- interval (U5) --------------------------------------------------------------------------


class IntMenu(CallbackData, prefix="int"):
    action: Literal["menu"] = "menu"


class IntSet(CallbackData, prefix="int"):
    action: Literal["set"] = "set"
    minutes: Minutes


class IntCustom(CallbackData, prefix="int"):
    action: Literal["custom"] = "custom"


# ---- broadcast (U6) -------------------------------------------------------------------------


class BcStart(CallbackData, prefix="bc"):
    action: Literal["start"] = "start"


class BcStop(CallbackData, prefix="bc"):
    action: Literal["stop"] = "stop"


# ---- status (U7) ----------------------------------------------------------------------------


class StShow(CallbackData, prefix="st"):
    action: Literal["show"] = "show"


class StRefresh(CallbackData, prefix="st"):
    action: Literal["refresh"] = "refresh"


class StNotify(CallbackData, prefix="st"):
    action: Literal["notify"] = "notify"


# ---- admin (A rows) -------------------------------------------------------------------------

AccessModeName = Literal["open", "approval", "whitelist"]


class AdmMenu(CallbackData, prefix="adm"):
    action: Literal["menu"] = "menu"


class AdmUsers(CallbackData, prefix="adm"):
    action: Literal["users"] = "users"
    page: Page


class AdmUser(CallbackData, prefix="adm"):
    action: Literal["u"] = "u"
    uid: UserId


class AdmGrant(CallbackData, prefix="adm"):
    action: Literal["grant"] = "grant"
    uid: UserId
    days: Days


class AdmRevoke(CallbackData, prefix="adm"):
    action: Literal["revoke"] = "revoke"
    uid: UserId


class AdmBan(CallbackData, prefix="adm"):
    action: Literal["ban"] = "ban"
    uid: UserId


class AdmUnban(CallbackData, prefix="adm"):
    action: Literal["unban"] = "unban"
    uid: UserId


class AdmStop(CallbackData, prefix="adm"):
    action: Literal["stop"] = "stop"
    uid: UserId


class AdmLogout(CallbackData, prefix="adm"):
    action: Literal["logout"] = "logout"
    uid: UserId


class AdmPending(CallbackData, prefix="adm"):
    action: Literal["pending"] = "pending"


class AdmApprove(CallbackData, prefix="adm"):
    action: Literal["approve"] = "approve"
    uid: UserId


class AdmReject(CallbackData, prefix="adm"):
    action: Literal["reject"] = "reject"
    uid: UserId


class AdmModeMenu(CallbackData, prefix="adm"):
    action: Literal["mode"] = "mode"


class AdmMode(CallbackData, prefix="adm"):
    action: Literal["mode"] = "mode"
    mode: AccessModeName


class AdmRuntime(CallbackData, prefix="adm"):
    action: Literal["runtime"] = "runtime"


class AdmPause(CallbackData, prefix="adm"):
    action: Literal["pause"] = "pause"


class AdmResume(CallbackData, prefix="adm"):
    action: Literal["resume"] = "resume"


class AdmAnnounce(CallbackData, prefix="adm"):
    action: Literal["announce"] = "announce"


class AdmAnnounceSend(CallbackData, prefix="adm"):
    action: Literal["announce"] = "announce"
    confirm: Literal["send"] = "send"


ADMIN: tuple[type[CallbackData], ...] = (
    AdmMenu,
    AdmUsers,
    AdmUser,
    AdmGrant,
    AdmRevoke,
    AdmBan,
    AdmUnban,
    AdmStop,
    AdmLogout,
    AdmPending,
    AdmApprove,
    AdmReject,
    AdmModeMenu,
    AdmMode,
    AdmRuntime,
    AdmPause,
    AdmResume,
    AdmAnnounce,
    AdmAnnounceSend,
)


ALL: tuple[type[CallbackData], ...] = (
    MainMenu,
    AccMenu,
    AccLogin,
    AccRequest,
    AccKeypad,
    AccResend,
    AccCancel,
    AccLogout,
    AccLogoutYes,
    GrpMenu,
    GrpImport,
    GrpImportCancel,
    GrpList,
    GrpToggle,
    GrpAll,
    GrpNone,
    MsgMenu,
    MsgSet,
    MsgSave,
    IntMenu,
    IntSet,
    IntCustom,
    BcStart,
    BcStop,
    StShow,
    StRefresh,
    StNotify,
    *ADMIN,
)


def parse(data: str) -> CallbackData | None:
    """The callback object ``data`` stands for, or None for anything forged, stale or malformed."""
    if not data or len(data.encode()) > MAX_CALLBACK_LENGTH:
        return None
    for cls in ALL:
        try:
            return cls.unpack(data)
        except (TypeError, ValueError):
            continue
    return None
