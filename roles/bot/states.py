"""FSM input states of the control bot (kept in Redis, so they survive a restart).

State names are ``Input:<name>``; the part after the colon is the state name of
flows.md (``login_phone`` …), which the parity suite reads back from Redis.
"""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup


class Input(StatesGroup):
    login_phone = State()
    login_code = State()
    login_password = State()
    msg_wait = State()
    msg_confirm = State()
    int_wait = State()
    sch_tz = State()  # U10.2: the time zone is typed
    sch_hours = State()  # U10.3: the active hours are typed
    announce_wait = State()  # A7: an admin types the announcement
    announce_confirm = State()  # A7: its preview waits for adm:announce:send


LOGIN_STATES = (Input.login_phone, Input.login_code, Input.login_password)


def short_name(state: str | None) -> str:
    """``Input:login_code`` -> ``login_code``; no state -> ``idle``."""
    if not state:
        return "idle"
    return state.rpartition(":")[2]
