"""Texts of the account limiter (issue 17): the pacing line, the round's likely end, the /limits card.

Kept apart from ``texts.py`` so the status, main-card and admin screens each add one line; translated
the same way (``roles.bot.i18n``, docs/i18n.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from domain import rules
from domain.limits import Caps
from roles.bot.i18n import N_, _, translate_module
from roles.bot.texts import esc, hhmm, units
from services.send_limits import LimitsView, PacingView


def pacing_line(view: PacingView) -> str:
    """ "⏱ paced: 48/250 this hour, next send in 1 min 40 s" or "😴 resting after 50 posts until 14:35". """
    if view.resting_until is not None:
        return _("😴 Resting after {posts} posts until {when}").format(posts=view.rest_after,
                                                                     when=hhmm(view.resting_until))
    cap = str(view.hour_cap) if view.hour_cap > 0 else _("no cap")
    line = _("⏱ Paced: {count}/{cap} this hour").format(count=view.hour_count, cap=cap)
    if view.next_send_in >= 1:
        line += _(", next send in {duration}").format(duration=units(rules.human_duration(view.next_send_in)))
    return line


def round_end_line(ends_at: datetime | None) -> str | None:
    return None if ends_at is None else _("🏁 This round likely ends at {when}").format(when=hhmm(ends_at))


def report_line(pacing: Mapping[str, object]) -> str | None:
    """The pacing line of a round report, from the worker's payload (``Pacing.report``)."""
    hour, cap = pacing.get("hour"), pacing.get("hour_cap")
    rest_after, rest_until = pacing.get("rest_after"), pacing.get("rest_until")
    resting = isinstance(rest_after, int) and rest_after > 0
    if resting and isinstance(rest_until, int | float) and rest_until > 0:
        return _("😴 Resting after {posts} posts until {when}").format(
            posts=rest_after, when=hhmm(datetime.fromtimestamp(rest_until, UTC)))
    if isinstance(hour, int) and isinstance(cap, int):
        return _("⏱ Paced: {count}/{cap} this hour").format(count=hour, cap=cap if cap > 0 else _("no cap"))
    return None


def caps_text(caps: Caps) -> str:
    return ", ".join(f"{value if value > 0 else _('no cap')}/{_(CAP_UNITS.get(name, name))}"
                     for name, value in caps.as_dict().items())


# the caps' names as shown (the /limits command keeps the English keys minute=, hour=, day=)
CAP_UNITS = {"minute": N_("minute"), "hour": N_("hour"), "day": N_("day")}


def limits_card(view: LimitsView) -> str:
    lines = [_("🛡 <b>Send caps per Telegram account</b>"),
             _("Defaults (settings): {caps}").format(caps=caps_text(view.defaults)),
             _("Global: {caps}").format(caps=caps_text(view.global_caps))]
    if view.user_id is not None and view.effective is not None:
        own = ", ".join(f"{'—' if v is None else v}/{k}" for k, v in (view.user_changes or {}).items())
        lines.append(_("User {uid}: {caps}").format(uid=view.user_id,
                                                    caps=esc(own) if own else _("follows the global caps")))
        lines.append(_("In force for this user: {caps}").format(caps=caps_text(view.effective)))
    lines.append(_(LIMITS_HELP))
    return "\n".join(lines)


LIMITS_HELP = N_("Change: <code>/limits minute=10 hour=200 day=1500</code> (global) or "
                 "<code>/limits &lt;user id&gt; hour=100</code>; <code>/limits &lt;user id&gt; reset</code> "
                 "drops a user's caps. 0 means no cap.")
LIMITS_USAGE = N_("🤷 Use /limits [user id] [minute=N] [hour=N] [day=N] or /limits &lt;user id&gt; reset.")
LIMITS_NO_USER = N_("🤷 No such user.")
LIMITS_SAVED = N_("✅ Send caps saved (workers apply them within a few seconds).")
LIMITS_UNCHANGED = N_("ℹ️ Nothing changed: the caps were already so.")

translate_module(__name__)
