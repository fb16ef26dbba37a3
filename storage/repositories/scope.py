"""Which account's rows a statement reads or writes (U8: a broadcast belongs to one account).

The bot's menus act on the user's *current* account (``users.current_account_id``, read by the SQL
function ``current_account`` of migration 0017); the engine, the scheduler, logout and the admin
name an account explicitly. ``user_id`` is always part of the condition: it is what the indexes and
the access checks go by, and it keeps a forged account id of another user from matching anything.
An account id of NULL is the draft of a user who has connected no account yet.
"""

from __future__ import annotations


def current(user: str = "$1", alias: str = "") -> str:
    """Rows of the user's current account."""
    p = f"{alias}." if alias else ""
    return f"{p}user_id = {user} AND {p}account_id IS NOT DISTINCT FROM current_account({user})"


def named_or_current(user: str, account: str, alias: str = "") -> str:
    """Rows of the account ``account`` (a bigint parameter), or of the current one when it is NULL."""
    p = f"{alias}." if alias else ""
    return (f"{p}user_id = {user} AND {p}account_id IS NOT DISTINCT FROM "
            f"coalesce({account}::bigint, current_account({user}))")
