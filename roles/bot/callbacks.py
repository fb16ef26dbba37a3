"""Every callback data factory of the control bot, one per area, in one place.

The wire format is the id written in flows.md (``area:action[:arg…]``): the area is the
factory's prefix, the action an ``Enum`` field, and the arguments follow in the order the
action's *shape* names them, so ``Grp(action=GrpAction.toggle, gid=5, page=0)`` packs to
``grp:t:5:0`` and ``Grp(action=GrpAction.list, page=0)`` to ``grp:list:0``. An action may have
several shapes (``acc:logout``, ``acc:logout:yes``, ``acc:logout:<aid>``, ``acc:logout:<aid>:yes``);
two of one length are tried in order, the first the values fit wins. A string that doesn't fit
(unknown action, wrong number of parts, an empty part, a non-number where a number belongs, out of
range) is refused by ``unpack``, so it matches no filter and falls through to the stale-callback handler.
``pack()`` refuses more than 64 bytes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

from aiogram import F
from aiogram.filters.callback_data import MAX_CALLBACK_LENGTH, CallbackData, CallbackQueryFilter
from pydantic import Field, model_validator

# database ids are bigint; pages and minutes are small, bounded so a forged value can't overflow SQL
DbId = Annotated[int, Field(ge=1, lt=2**63)]
Page = Annotated[int, Field(ge=0, le=100_000)]
MessageNo = Annotated[int, Field(ge=1, le=100)]  # U9: message n of the rotation
Minutes = Annotated[int, Field(ge=1, le=100_000)]
UserId = Annotated[int, Field(ge=1, lt=2**63)]
Days = Annotated[int, Field(ge=0, le=3650)]
TopicId = Annotated[int, Field(ge=1, lt=2**31)]  # a forum topic: the id of the message that opened it
KeypadKey = Literal["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "del", "ok"]
AccessModeName = Literal["open", "approval", "whitelist"]

Shape = tuple[str, ...]
T = TypeVar("T")


def need(value: T | None) -> T:
    """An argument the action's shape guarantees (a handler filtered on that action)."""
    if value is None:
        raise ValueError("argument missing for this action")
    return value


class AreaData(CallbackData, prefix="area"):
    """A factory of one area: ``action`` first, then the arguments of the action's shape.

    Subclasses declare ``action`` (an Enum), their argument fields (all optional) and
    ``shapes``: for each action the tuples of argument names it may carry, in wire order.
    """

    action: StrEnum
    shapes: ClassVar[dict[Any, tuple[Shape, ...]]] = {}

    @model_validator(mode="after")
    def _fits_a_shape(self) -> Self:
        self.shape()
        return self

    def shape(self) -> Shape:
        """The argument names this object carries (one of its action's shapes)."""
        given = {
            name for name in type(self).model_fields if name != "action" and getattr(self, name) is not None
        }
        for shape in self.shapes[self.action]:
            if set(shape) == given:
                return shape
        raise ValueError(f"{type(self).__name__}: no shape of {self.action!s} takes {sorted(given)}")

    def pack(self) -> str:
        parts = [self.__prefix__, self._encode_value("action", self.action)]
        parts += [self._encode_value(name, getattr(self, name)) for name in self.shape()]
        if any(self.__separator__ in part for part in parts[1:]):
            raise ValueError(f"separator in the values of {type(self).__name__}")
        data = self.__separator__.join(parts)
        if len(data.encode()) > MAX_CALLBACK_LENGTH:
            raise ValueError(f"callback data too long: {data!r}")
        return data

    @classmethod
    def unpack(cls, value: str) -> Self:
        prefix, *parts = value.split(cls.__separator__)
        if prefix != cls.__prefix__:
            raise ValueError(f"bad prefix {prefix!r}")
        if not parts or "" in parts:
            raise TypeError("missing or empty part")
        action_type = cls.model_fields["action"].annotation
        assert isinstance(action_type, type)
        action = action_type(parts[0])  # ValueError for an unknown action
        args = parts[1:]
        refused: ValueError | None = None
        for shape in cls.shapes[action]:  # two shapes of one length: the first the values fit
            if len(shape) == len(args):
                try:
                    return cls(action=action, **dict(zip(shape, args, strict=True)))
                except ValueError as exc:  # pydantic's ValidationError is a ValueError
                    refused = exc
        if refused is not None:
            raise refused
        raise TypeError(f"{cls.__name__}: {action!s} takes no {len(args)} argument(s)")

    @classmethod
    def on(cls, *actions: StrEnum, **fields: object) -> CallbackQueryFilter:
        """The filter for presses of these actions, with these field values if given
        (``Acc.on(AccAction.logout, confirm=None)`` is ``acc:logout`` but not ``acc:logout:yes``)."""
        rule = F.action.in_(set(actions))
        for name, value in fields.items():
            rule = rule & (getattr(F, name) == value)
        return cls.filter(rule)


NO_ARGS: tuple[Shape, ...] = ((),)


def shapes_of(enum: type[StrEnum], **special: tuple[Shape, ...]) -> dict[Any, tuple[Shape, ...]]:
    """Every action of ``enum`` takes no arguments, except those named in ``special``."""
    return {action: special.get(action.name, NO_ARGS) for action in enum}


# ---- menu -----------------------------------------------------------------------------------


class MenuAction(StrEnum):
    main = "main"


class Menu(AreaData, prefix="menu"):
    action: MenuAction
    shapes = shapes_of(MenuAction)


# ---- settings (U12) ----------------------------------------------------------------------------

LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]


class SetAction(StrEnum):
    menu = "menu"
    lang = "lang"


class Set(AreaData, prefix="set"):
    """``set:menu`` (the settings menu) and ``set:lang:<code>`` (U12.2)."""

    action: SetAction
    code: LanguageCode | None = None
    shapes = shapes_of(SetAction, lang=(("code",),))


# ---- account (U1.2, U2) ---------------------------------------------------------------------


class AccAction(StrEnum):
    menu = "menu"
    login = "login"
    request = "request"
    keypad = "kp"
    resend = "resend"
    cancel = "cancel"  # cancel of any input state (login, message, interval, announcement)
    logout = "logout"  # the current account (acc:logout[:yes]) or a named one (acc:logout:<aid>[:yes])
    select = "sel"  # U8.2: acc:sel:<aid> makes the account current


class Acc(AreaData, prefix="acc"):
    action: AccAction
    key: KeypadKey | None = None
    aid: DbId | None = None
    confirm: Literal["yes"] | None = None
    shapes = shapes_of(AccAction, keypad=(("key",),), select=(("aid",),),
                       logout=((), ("confirm",), ("aid",), ("aid", "confirm")))


# ---- groups (U3) ----------------------------------------------------------------------------


class GrpAction(StrEnum):
    menu = "menu"
    import_ = "import"
    import_stop = "istop"  # the stop button under a running import's progress message
    list = "list"
    toggle = "t"
    all = "all"
    none = "none"
    topics = "tp"  # U11.2: a forum's topics (grp:tp:<gid>), or choose one (grp:tp:<gid>:<tid>)
    topic_page = "tpl"  # another page of a forum's topics (grp:tpl:<gid>:<page>)


class Grp(AreaData, prefix="grp"):
    action: GrpAction
    gid: DbId | None = None
    page: Page | None = None
    tid: TopicId | None = None
    aid: DbId | None = None  # grp:menu:<aid>: a notification's button, for the account it is about (U8)
    shapes = shapes_of(
        GrpAction, menu=((), ("aid",)), list=(("page",),), all=(("page",),), none=(("page",),),
        toggle=(("gid", "page"),), topics=(("gid",), ("gid", "tid")), topic_page=(("gid", "page"),),
    )


# ---- message (U4) ---------------------------------------------------------------------------


class MsgAction(StrEnum):
    menu = "menu"
    set = "set"
    save = "save"
    add = "add"  # U9.2: another message for the rotation
    view = "v"  # U9.1: preview message n
    delete = "del"  # U9.6: delete message n
    mode = "mode"  # U9.1: rotation seq | rnd


class Msg(AreaData, prefix="msg"):
    action: MsgAction
    n: MessageNo | None = None
    rotation: Literal["seq", "rnd"] | None = None
    aid: DbId | None = None  # msg:menu:<aid>: a notification's button, for the account it is about (U8)
    shapes = shapes_of(
        MsgAction, menu=((), ("aid",)), view=(("n",),), delete=(("n",),), mode=(("rotation",),),
    )


# ---- interval (U5) --------------------------------------------------------------------------


class IntAction(StrEnum):
    menu = "menu"
    set = "set"
    custom = "custom"


class Int(AreaData, prefix="int"):
    action: IntAction
    minutes: Minutes | None = None
    shapes = shapes_of(IntAction, set=(("minutes",),))


# ---- schedule window and time zone (U10) ----------------------------------------------------


class SchAction(StrEnum):
    menu = "menu"
    tz = "tz"
    hours = "hours"
    days = "days"
    day = "day"  # sch:day:<n>: weekday n (0 = Monday) on or off
    off = "off"


class Sch(AreaData, prefix="sch"):
    action: SchAction
    n: Annotated[int, Field(ge=0, le=6)] | None = None
    shapes = shapes_of(SchAction, day=(("n",),))


# ---- broadcast (U6) -------------------------------------------------------------------------


class BcAction(StrEnum):
    start = "start"
    stop = "stop"
    now = "now"  # U6.2: post at once although the interval since the last round hasn't passed


class Bc(AreaData, prefix="bc"):
    action: BcAction
    confirm: Literal["yes"] | None = None
    shapes = shapes_of(BcAction, now=((), ("confirm",)))


# ---- status (U7) ----------------------------------------------------------------------------


class StAction(StrEnum):
    show = "show"
    refresh = "refresh"
    notify = "notify"


class St(AreaData, prefix="st"):
    action: StAction
    aid: DbId | None = None  # st:show:<aid>: a notification's button, for the account it is about (U8)
    shapes = shapes_of(StAction, show=((), ("aid",)))


# ---- admin (A rows) -------------------------------------------------------------------------


class AdmAction(StrEnum):
    menu = "menu"
    users = "users"
    user = "u"
    grant = "grant"
    revoke = "revoke"
    ban = "ban"
    unban = "unban"
    stop = "stop"
    logout = "logout"
    pending = "pending"
    approve = "approve"
    reject = "reject"
    mode = "mode"
    runtime = "runtime"
    pause = "pause"
    resume = "resume"
    announce = "announce"


UID: tuple[Shape, ...] = (("uid",),)


class Adm(AreaData, prefix="adm"):
    action: AdmAction
    uid: UserId | None = None
    days: Days | None = None
    page: Page | None = None
    mode: AccessModeName | None = None
    confirm: Literal["send"] | None = None
    shapes = shapes_of(
        AdmAction,
        users=(("page",),),
        user=UID,
        grant=(("uid", "days"),),
        revoke=UID,
        ban=UID,
        unban=UID,
        stop=UID,
        logout=UID,
        approve=UID,
        reject=UID,
        mode=((), ("mode",)),
        announce=((), ("confirm",)),
    )


AREAS: dict[str, type[AreaData]] = {
    cls.__prefix__: cls for cls in (Menu, Acc, Grp, Msg, Int, Sch, Bc, St, Adm)
}


def parse(data: str) -> AreaData | None:
    """The callback object ``data`` stands for, or None for anything forged, stale or malformed."""
    if not data or len(data.encode()) > MAX_CALLBACK_LENGTH:
        return None
    area = AREAS.get(data.split(":", 1)[0])
    if area is None:
        return None
    try:
        return area.unpack(data)
    except (TypeError, ValueError):
        return None
