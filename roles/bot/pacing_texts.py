"""Texts of the account limiter (issue 17): the pacing line, the round's likely end, the /limits card.

Kept apart from ``texts.py`` so the status, main-card and admin screens each add one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from domain import rules
from domain.limits import Caps
from roles.bot.texts import esc, hhmm
from services.send_limits import LimitsView, PacingView


def pacing_line(view: PacingView) -> str:
    """ "⏱ paced: 48/250 this hour, next send in 1 min 40 s" or "😴 resting after 50 posts until 14:35". """
    if view.resting_until is not None:
        return f"😴 Resting after {view.rest_after} posts until {hhmm(view.resting_until)}"
    cap = str(view.hour_cap) if view.hour_cap > 0 else "no cap"
    line = f"⏱ Paced: {view.hour_count}/{cap} this hour"
    if view.next_send_in >= 1:
        line += f", next send in {rules.human_duration(view.next_send_in)}"
    return line


def round_end_line(ends_at: datetime | None) -> str | None:
    return None if ends_at is None else f"🏁 This round likely ends at {hhmm(ends_at)}"


def report_line(pacing: Mapping[str, object]) -> str | None:
    """The pacing line of a round report, from the worker's payload (``Pacing.report``)."""
    hour, cap = pacing.get("hour"), pacing.get("hour_cap")
    rest_after, rest_until = pacing.get("rest_after"), pacing.get("rest_until")
    resting = isinstance(rest_after, int) and rest_after > 0
    if resting and isinstance(rest_until, int | float) and rest_until > 0:
        return f"😴 Resting after {rest_after} posts until {hhmm(datetime.fromtimestamp(rest_until, UTC))}"
    if isinstance(hour, int) and isinstance(cap, int):
        return f"⏱ Paced: {hour}/{cap if cap > 0 else 'no cap'} this hour"
    return None


def caps_text(caps: Caps) -> str:
    return ", ".join(f"{value if value > 0 else 'no cap'}/{name}" for name, value in caps.as_dict().items())


def limits_card(view: LimitsView) -> str:
    lines = ["🛡 <b>Send caps per Telegram account</b>",
             f"Defaults (settings): {caps_text(view.defaults)}",
             f"Global: {caps_text(view.global_caps)}"]
    if view.user_id is not None and view.effective is not None:
        own = ", ".join(f"{'—' if v is None else v}/{k}" for k, v in (view.user_changes or {}).items())
        lines.append(f"User {view.user_id}: {esc(own) if own else 'follows the global caps'}")
        lines.append(f"In force for this user: {caps_text(view.effective)}")
    lines.append(LIMITS_HELP)
    return "\n".join(lines)


LIMITS_HELP = ("Change: <code>/limits minute=10 hour=200 day=1500</code> (global) or "
               "<code>/limits &lt;user id&gt; hour=100</code>; <code>/limits &lt;user id&gt; reset</code> "
               "drops a user's caps. 0 means no cap.")
LIMITS_USAGE = "🤷 Use /limits [user id] [minute=N] [hour=N] [day=N] or /limits &lt;user id&gt; reset."
LIMITS_NO_USER = "🤷 No such user."
LIMITS_SAVED = "✅ Send caps saved (workers apply them within a few seconds)."
LIMITS_UNCHANGED = "ℹ️ Nothing changed: the caps were already so."
