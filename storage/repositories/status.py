"""Read-only queries over ``rounds`` and ``attempts`` for the status views.

U8: the views show the user's current account (``scope.current``); the main card also lists every
connected account of the user, one line each.

The engine owns writing these tables; the counts are taken from the attempts themselves so they
are right while a round is still running.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from domain.models import AccountRecord, CampaignRecord, MessageRecord, RoundCounts
from storage.repositories import accounts, campaigns, messages
from storage.repositories.groups import Counts
from storage.repositories.scope import current, named_or_current

CURRENT = current()

_COUNTS = """
    SELECT r.round_id, r.planned_at, r.started_at, r.finished_at, r.status,
           count(a.attempt_id) AS total,
           count(a.attempt_id) FILTER (WHERE a.status = 'sent') AS sent,
           count(a.attempt_id) FILTER (WHERE a.status = 'failed') AS failed,
           count(a.attempt_id) FILTER (WHERE a.status = 'skipped') AS skipped,
           count(a.attempt_id) FILTER (WHERE a.status IN ('pending', 'sending', 'flood_wait')) AS pending,
           count(a.attempt_id) FILTER (WHERE a.status = 'unknown') AS unknown
    FROM rounds r LEFT JOIN attempts a ON a.round_id = r.round_id
"""


@dataclass(frozen=True)
class AttemptOutcome:
    group_id: int
    title: str
    status: str
    error_code: str
    message_no: int | None = None  # U9: with 2+ messages, the number of the one it got (0: deleted since)


def _counts(row: asyncpg.Record) -> RoundCounts:
    return RoundCounts(
        round_id=row["round_id"], planned_at=row["planned_at"], started_at=row["started_at"],
        finished_at=row["finished_at"], status=row["status"], total=row["total"], sent=row["sent"],
        failed=row["failed"], skipped=row["skipped"], pending=row["pending"], unknown=row["unknown"],
    )


async def last_round(conn: asyncpg.Connection, user_id: int) -> RoundCounts | None:
    row = await conn.fetchrow(
        _COUNTS + f""" WHERE r.round_id = (SELECT round_id FROM rounds WHERE {CURRENT}
                                           ORDER BY round_id DESC LIMIT 1)
                       GROUP BY r.round_id""",
        user_id,
    )
    return None if row is None else _counts(row)


# --- the main card (U1.5) in one statement ------------------------------------------------------

# Each table's row comes back under a prefix and is built by that table's own ``to_record``, so a
# column added to a repository's COLUMNS (and its record) reaches the card without touching this.
_MESSAGE_COLUMNS = ("message_id", "user_id", "version", "text", "entities", "media_id", "created_at",
                    "media_kind", "media_filename", "media_bot_file_id")


def _columns(names: str | tuple[str, ...]) -> list[str]:
    if isinstance(names, str):
        return [name.strip() for name in names.split(",") if name.strip()]
    return list(names)


def _aliased(alias: str, names: str | tuple[str, ...]) -> str:
    return ", ".join(f"{alias}.{name} AS {alias}_{name}" for name in _columns(names))


class _Prefixed(Mapping[str, Any]):
    """One table's columns of the card's row, under their own names (for that table's ``to_record``)."""

    def __init__(self, row: asyncpg.Record, alias: str) -> None:
        self.row, self.prefix = row, alias + "_"

    def __getitem__(self, key: str) -> Any:
        return self.row[self.prefix + key]

    def __iter__(self) -> Iterator[str]:
        return (k.removeprefix(self.prefix) for k in self.row.keys()  # noqa: SIM118 (a Record iterates values)
                if k.startswith(self.prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True)
class AccountLine:
    """U8.6: one connected account of the user on the main card."""

    account_id: int
    first_name: str
    phone: str
    current: bool
    selected: int  # selected active groups
    messages: int  # active messages
    interval: int | None
    running: bool
    next_run_at: datetime | None


@dataclass(frozen=True)
class CardRow:
    """What the main card shows, read in one round trip."""

    account: AccountRecord | None
    groups: Counts
    message: MessageRecord | None
    campaign: CampaignRecord | None
    last_round: RoundCounts | None  # only asked for a running campaign (the pacing line needs it)
    accounts: tuple[AccountLine, ...] = ()  # every connected account, oldest first (U8.6)


# The counts of the last round are computed only for a running campaign and when asked ($2):
# a stopped campaign's card never shows them. Every part is a primary-key or user_id/account_id index
# lookup; the details are the current account's (u.account_id), the lines every connected account's.
_CARD = f"""
    SELECT {_aliased("a", accounts.COLUMNS)}, {_aliased("c", campaigns.COLUMNS)},
           {_aliased("m", _MESSAGE_COLUMNS)},
           g.total AS g_total, g.selected AS g_selected, g.active AS g_active,
           g.disabled AS g_disabled, g.gone AS g_gone,
           {_aliased("r", ("round_id", "planned_at", "started_at", "finished_at", "status", "total", "sent",
                           "failed", "skipped", "pending", "unknown"))},
           l.lines AS l_lines
    FROM (SELECT $1::bigint AS user_id, current_account($1) AS account_id) u
    LEFT JOIN accounts a ON a.account_id = u.account_id
    LEFT JOIN campaigns c ON c.user_id = u.user_id AND c.account_id IS NOT DISTINCT FROM u.account_id
    LEFT JOIN LATERAL (
        SELECT m.message_id, m.user_id, m.version, m.text, m.entities, m.media_id, m.created_at,
               md.kind AS media_kind, coalesce(md.filename, '') AS media_filename,
               coalesce(md.bot_file_id, '') AS media_bot_file_id
        FROM messages m LEFT JOIN media md ON md.media_id = m.media_id
        WHERE m.user_id = u.user_id AND m.account_id IS NOT DISTINCT FROM u.account_id
        ORDER BY m.version DESC LIMIT 1
    ) m ON true
    CROSS JOIN LATERAL (
        SELECT count(*) AS total,
               count(*) FILTER (WHERE selected AND status = 'active') AS selected,
               count(*) FILTER (WHERE status = 'active') AS active,
               count(*) FILTER (WHERE status = 'disabled') AS disabled,
               count(*) FILTER (WHERE status = 'gone') AS gone
        FROM groups WHERE user_id = u.user_id AND account_id IS NOT DISTINCT FROM u.account_id
    ) g
    LEFT JOIN LATERAL (
        {_COUNTS} WHERE $2 AND c.status = 'running'
                    AND r.round_id = (SELECT round_id FROM rounds WHERE user_id = u.user_id
                                      AND account_id IS NOT DISTINCT FROM u.account_id
                                      ORDER BY round_id DESC LIMIT 1)
        GROUP BY r.round_id
    ) r ON true
    CROSS JOIN LATERAL (
        -- text, not arrays: a built-in type, so no type introspection round trip on a fresh connection
        SELECT json_agg(json_build_object(
                   'id', x.account_id, 'name', x.first_name, 'phone', x.phone,
                   'selected', (SELECT count(*) FROM groups xg WHERE xg.account_id = x.account_id
                                AND xg.selected AND xg.status = 'active'),
                   'messages', (SELECT count(*) FROM messages xm WHERE xm.account_id = x.account_id
                                AND xm.active),
                   'interval', xc.interval_seconds, 'running', coalesce(xc.status = 'running', false),
                   'next_run', CASE WHEN xc.status = 'running' THEN xc.next_run_at END)
                 ORDER BY x.account_id)::text AS lines
        FROM accounts x LEFT JOIN campaigns xc ON xc.account_id = x.account_id
        WHERE x.user_id = u.user_id AND x.status = 'connected'
    ) l
"""


def _lines(row: asyncpg.Record, current_id: int | None) -> tuple[AccountLine, ...]:
    if row["l_lines"] is None:
        return ()
    return tuple(
        AccountLine(int(x["id"]), x["name"], x["phone"], x["id"] == current_id, int(x["selected"]),
                    int(x["messages"]), x["interval"], bool(x["running"]),
                    datetime.fromisoformat(x["next_run"]) if x["next_run"] else None)
        for x in orjson.loads(row["l_lines"])
    )


async def main_card(conn: asyncpg.Connection, user_id: int, with_round: bool) -> CardRow:
    """The current account, its group counts, latest message, campaign and (``with_round``, running
    only) its last round's counts, and a line for each connected account of ``user_id`` (U8.6): one
    statement, one round trip."""
    row = await conn.fetchrow(_CARD, user_id, with_round)
    assert row is not None  # the FROM is one row whatever exists
    account = accounts.to_record(_Prefixed(row, "a")) if row["a_user_id"] is not None else None
    campaign = campaigns.to_record(_Prefixed(row, "c")) if row["c_user_id"] is not None else None
    message = messages.to_record(_Prefixed(row, "m")) if row["m_message_id"] is not None else None
    groups = Counts(row["g_total"], row["g_selected"], row["g_active"], row["g_disabled"], row["g_gone"])
    last = _counts(_Prefixed(row, "r")) if row["r_round_id"] is not None else None
    return CardRow(account, groups, message, campaign, last,
                   _lines(row, account.account_id if account is not None else None))


async def last_planned_at(
    conn: asyncpg.Connection, user_id: int, account_id: int | None = None
) -> datetime | None:
    """The planned time of the last round of ``account_id`` (default: the current account)."""
    value: datetime | None = await conn.fetchval(
        f"SELECT planned_at FROM rounds WHERE {named_or_current('$1', '$2')} ORDER BY round_id DESC LIMIT 1",
        user_id, account_id,
    )
    return value


async def round_outcomes(
    conn: asyncpg.Connection, round_id: int, limit: int
) -> tuple[list[AttemptOutcome], int]:
    """The first ``limit`` groups of a round by title, and how many attempts it has in all."""
    rows = await conn.fetch(
        """SELECT a.group_id, coalesce(g.title, '') AS title, a.status, a.error_code,
                  count(*) OVER () AS total,
                  CASE WHEN a.message_id IS NULL
                            AND (SELECT count(*) FROM messages x
                                 WHERE x.user_id = m.user_id AND x.active
                                   AND x.account_id IS NOT DISTINCT FROM m.account_id) < 2
                       THEN NULL
                       WHEN NOT m.active THEN 0
                       ELSE (SELECT count(*) FROM messages x
                             WHERE x.user_id = m.user_id AND x.account_id IS NOT DISTINCT FROM m.account_id
                               AND x.active AND x.position <= m.position)::int
                  END AS message_no
           FROM attempts a LEFT JOIN groups g ON g.group_id = a.group_id
           JOIN rounds r ON r.round_id = a.round_id
           LEFT JOIN messages m ON m.message_id = coalesce(a.message_id, r.message_id)
           WHERE a.round_id = $1
           ORDER BY g.title, a.group_id LIMIT $2""",
        round_id, limit,
    )
    total = int(rows[0]["total"]) if rows else 0
    return [AttemptOutcome(r["group_id"], r["title"], r["status"], r["error_code"], r["message_no"])
            for r in rows], total


async def open_rounds(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM rounds WHERE finished_at IS NULL"))


async def sends_since(conn: asyncpg.Connection, since: datetime) -> dict[str, int]:
    """Finished attempts by status since ``since`` (admin runtime: sends in the last hour)."""
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM attempts WHERE finished_at >= $1 GROUP BY status", since
    )
    return {str(r["status"]): int(r["n"]) for r in rows}
