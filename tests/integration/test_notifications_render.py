"""Every notification kind the engine and the services queue renders in the bot (U6/U7 notices),
and the outbox drainer survives kinds and payloads it can't render. Real PostgreSQL and Redis."""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from aiogram import Bot
from aiogram.types import InlineKeyboardMarkup

from accounts.crypto import SessionCipher
from domain.errors import AccountThrottled, FloodWait, GroupClosed, MessageRejected, SessionDead
from domain.models import Notification
from roles.bot import notifier
from services import engine
from services import notifications as kinds
from services.notifications import NotificationService
from storage.db import Database
from storage.repositories import notifications as outbox
from tests.integration.engine_support import Engine, FakeSender, seed_user, settings_with
from tests.notification_payloads import PAYLOADS, UNTIL

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# where notifications are queued: the services (the engine's rules and rounds among them), the scheduler
PRODUCERS = [*sorted((ROOT / "services").rglob("*.py")), *sorted((ROOT / "scheduler").glob("*.py"))]
CONSTANT_MODULES = {"notifications": kinds, "kinds": kinds, "engine": engine, "rules": engine}

# callback data of the buttons each kind must offer, row by row
BUTTONS: dict[str, list[str]] = {
    kinds.ROUND_SUMMARY: ["st:show", "st:notify"],
    kinds.SESSION_ENDED: ["acc:login", "menu:main"],
    kinds.GROUP_DISABLED: ["grp:menu"],
    kinds.FLOOD_PAUSE: ["menu:main"],
    kinds.MESSAGE_REJECTED: ["msg:menu", "menu:main"],
    kinds.ACCESS_EXPIRED: ["menu:main"],
    kinds.ACCESS_APPROVED: ["menu:main"],
    kinds.ACCESS_REJECTED: ["menu:main"],
    kinds.ACCESS_GRANTED: ["menu:main"],
    kinds.ACCESS_REVOKED: ["menu:main"],
    kinds.BROADCAST_STOPPED: ["menu:main"],
    kinds.ACCOUNT_RESTRICTED: ["menu:main"],
    kinds.BROADCAST_HALTED: ["menu:main"],
    kinds.NO_GROUPS_LEFT: ["grp:list:0", "menu:main"],
}

def _note(kind: str, payload: dict[str, Any] | None, note_id: int = 1) -> Notification:
    return Notification(note_id, 42, kind, payload or {}, None, datetime(2025, 3, 1, tzinfo=UTC), 0)


def _buttons(markup: InlineKeyboardMarkup) -> list[str]:
    return [str(b.callback_data) for row in markup.inline_keyboard for b in row]


def _kind_arg(call: ast.Call) -> ast.expr | None:
    """The kind argument of a queueing call: ``enqueue(conn, user_id, kind, ...)`` or the engine's
    ``unit.notify(user_id, kind, ...)``; None for any other call."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    position = {"enqueue": 2, "notify": 1}.get(name)
    return call.args[position] if position is not None and len(call.args) > position + 1 else None


def _constant(node: ast.expr, module: ModuleType) -> str | None:
    """The string a kind argument stands for: a literal, ``engine.X``/``notifications.X``, or a
    constant of the producing module; None when it is a variable."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        source = CONSTANT_MODULES.get(node.value.id)
        value = getattr(source, node.attr, None) if source is not None else None
        return value if isinstance(value, str) else None
    if isinstance(node, ast.Name) and node.id.isupper():
        value = getattr(module, node.id, None)
        return value if isinstance(value, str) else None
    return None


def produced_kinds() -> dict[str, set[str]]:
    """Kind -> files that queue it, read from the producers' source.

    A kind passed through a variable (``AdminService._grant(..., kind)``) counts as every kind
    constant the file names (``notifications.ACCESS_*``)."""
    found: dict[str, set[str]] = {}
    for path in PRODUCERS:
        rel = path.relative_to(ROOT)
        module = importlib.import_module(".".join(rel.with_suffix("").parts))
        tree = ast.parse(path.read_text())
        dynamic = False
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (arg := _kind_arg(node)) is not None:
                kind = _constant(arg, module)
                if kind is None:
                    dynamic = True
                else:
                    found.setdefault(kind, set()).add(str(rel))
        if dynamic:
            for node in ast.walk(tree):
                if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                        and node.value.id in ("notifications", "kinds") and node.attr.isupper()):
                    value = getattr(kinds, node.attr, None)
                    if isinstance(value, str) and node.attr != "MAX_DELIVERY_TRIES":
                        found.setdefault(value, set()).add(str(rel))
    return found


def test_the_source_scan_finds_the_producers() -> None:
    found = produced_kinds()
    # one of each way a kind is named: engine constant (rounds), literal (access), variable (admin)
    assert "services/engine/rounds.py" in found[engine.MESSAGE_REJECTED]
    assert "services/access.py" in found[kinds.ACCESS_EXPIRED]
    assert "services/admin.py" in found[kinds.ACCESS_GRANTED]
    assert "scheduler/jobs.py" in found[kinds.NO_GROUPS_LEFT]


def test_every_produced_kind_is_documented_and_rendered() -> None:
    found = produced_kinds()
    assert set(found) <= kinds.KINDS, f"queued but not in services.notifications.KINDS: {set(found) - kinds.KINDS}"
    engine_kinds = {v for k, v in vars(engine).items() if k.isupper() and v in found}
    assert {engine.ROUND_SUMMARY, engine.SESSION_ENDED, engine.GROUP_DISABLED, engine.FLOOD_PAUSE,
            engine.MESSAGE_REJECTED} <= engine_kinds
    assert set(BUTTONS) == kinds.KINDS == set(PAYLOADS)
    documented = kinds.__doc__ or ""
    for kind in kinds.KINDS:
        assert f"``{kind}``" in documented, kind
        rendered = notifier.render(_note(kind, PAYLOADS[kind]))
        assert rendered is not None, kind
        text, markup = rendered
        assert text.strip(), kind
        assert _buttons(markup) == BUTTONS[kind], kind


@pytest.mark.parametrize("kind", sorted(kinds.KINDS))
def test_every_kind_renders_without_a_payload(kind: str) -> None:
    rendered = notifier.render(_note(kind, {}))
    assert rendered is not None
    assert rendered[0].strip()
    assert _buttons(rendered[1]) == BUTTONS[kind]


def test_an_account_restriction_points_to_spambot_and_says_no_group_was_disabled() -> None:
    rendered = notifier.render(_note(kinds.ACCOUNT_RESTRICTED, PAYLOADS[kinds.ACCOUNT_RESTRICTED]))
    assert rendered is not None
    assert "@SpamBot" in rendered[0] and "no group was disabled" in rendered[0] and "14:05" in rendered[0]
    assert "USER_BANNED_IN_CHANNEL" in rendered[0]


def test_flood_pause_texts_by_code() -> None:
    long_wait = notifier.render(_note(kinds.FLOOD_PAUSE, {"seconds": 7200, "until": UNTIL, "code": "FLOOD_WAIT"}))
    assert long_wait is not None
    assert "Telegram asked to wait 2 h" in long_wait[0] and "resuming at 14:05" in long_wait[0]
    # rows queued before the payload carried a code read as a flood wait
    legacy = notifier.render(_note(kinds.FLOOD_PAUSE, {"seconds": 7200, "until": UNTIL}))
    assert legacy is not None and legacy[0] == long_wait[0]
    # a time with an offset is shown in UTC, as the text says
    shifted = notifier.render(_note(kinds.FLOOD_PAUSE, {"seconds": 60, "until": "2025-03-01T16:05:00+02:00"}))
    assert shifted is not None and "14:05" in shifted[0]
    peer = notifier.render(_note(kinds.FLOOD_PAUSE, {"seconds": 21600, "until": UNTIL, "code": "PEER_FLOOD"}))
    assert peer is not None
    assert "Telegram limited your account" in peer[0] and "paused until 14:05" in peer[0]
    assert "asked to wait" not in peer[0]
    # beside the clock time, how far ahead it is from when the pause was written (_note: 2025-03-01 00:00)
    assert "resuming at 14:05 UTC, in 14 h 5 min" in long_wait[0]


def test_message_rejected_text_names_the_code_and_escapes_the_detail() -> None:
    rendered = notifier.render(_note(kinds.MESSAGE_REJECTED, PAYLOADS[kinds.MESSAGE_REJECTED]))
    assert rendered is not None
    text = rendered[0]
    assert "Telegram rejected your message (MESSAGE_TOO_LONG)" in text
    assert "Set message" in text
    assert "over &lt;4096&gt;" in text and "<4096>" not in text  # the bot sends HTML


# --- the drainer, with what the engine really queued ------------------------------------------------


class RecordingBot:
    def __init__(self) -> None:
        self.sent: list[tuple[int, str, InlineKeyboardMarkup | None]] = []

    async def send_message(self, chat_id: int, text: str, reply_markup: InlineKeyboardMarkup | None = None,
                           **_: Any) -> None:
        self.sent.append((chat_id, text, reply_markup))


async def test_what_the_engine_queues_is_delivered_and_unknown_kinds_never_stop_the_drainer(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    async with db.connection() as conn:
        rejected = await seed_user(conn, cipher, 1, 3)
        peer_flood = await seed_user(conn, cipher, 2, 2)
        long_flood = await seed_user(conn, cipher, 3, 2)
        dead = await seed_user(conn, cipher, 4, 2)
    gateway = FakeSender()
    # two groups reject the message: the user is told once for the round
    gateway.faults[rejected.peer_ids[0]] = [MessageRejected("MESSAGE_TOO_LONG", "4100 characters")]
    gateway.faults[rejected.peer_ids[1]] = [MessageRejected("MESSAGE_TOO_LONG", "4100 characters")]
    gateway.faults[rejected.peer_ids[2]] = [GroupClosed("CHAT_WRITE_FORBIDDEN")]
    gateway.faults[peer_flood.peer_ids[0]] = [AccountThrottled("PEER_FLOOD")]
    gateway.faults[long_flood.peer_ids[0]] = [FloodWait(7200)]
    gateway.faults[dead.peer_ids[0]] = [SessionDead("AUTH_KEY_UNREGISTERED")]
    eng = Engine(db, redis_client, gateway, settings_with(), cipher)
    assert (await eng.jobs.tick()).created == 4
    await eng.run_until_done()

    async with db.connection() as conn:
        # a kind this bot has never heard of, and a known kind with a payload of the wrong shape
        unknown_id = await NotificationService.enqueue(conn, 1, "from_the_future", {"x": 1})
        odd_id = await NotificationService.enqueue(conn, 2, kinds.FLOOD_PAUSE, {"seconds": "soon", "until": 5e20})
        # and one whose payload isn't even an object: rendering it raises inside the notifier
        broken_id = await conn.fetchval(
            """INSERT INTO notifications (user_id, kind, payload, created_at)
               VALUES (3, $1, '[1, 2]'::jsonb, now()) RETURNING notification_id""", kinds.GROUP_DISABLED)
        queued = await conn.fetch("SELECT notification_id, user_id, kind, payload::text AS payload "
                                  "FROM notifications ORDER BY notification_id")
    by_user = {(r["user_id"], r["kind"]) for r in queued}
    assert {(1, kinds.MESSAGE_REJECTED), (1, kinds.GROUP_DISABLED), (1, kinds.ROUND_SUMMARY),
            (2, kinds.FLOOD_PAUSE), (3, kinds.FLOOD_PAUSE), (4, kinds.SESSION_ENDED)} <= by_user
    assert sum(1 for r in queued if r["kind"] == kinds.MESSAGE_REJECTED) == 1  # once per round
    assert {r["kind"] for r in queued} - {"from_the_future"} <= kinds.KINDS

    outbox = NotificationService(db)
    bot = RecordingBot()
    handled = await notifier.deliver_once(cast(Bot, bot), outbox)
    assert handled == len(queued)
    failed = {unknown_id, broken_id}
    delivered = {r["notification_id"] for r in queued} - failed
    texts: dict[int, list[tuple[str, list[str]]]] = {chat: [] for chat in (1, 2, 3, 4)}
    for chat, text, markup in bot.sent:
        assert text.strip() and markup is not None
        texts[chat].append((text, _buttons(markup)))
    assert len(bot.sent) == len(delivered)
    assert any("Telegram rejected your message (MESSAGE_TOO_LONG)" in t and b == BUTTONS[kinds.MESSAGE_REJECTED]
               for t, b in texts[1])
    assert any("Telegram limited your account; broadcast paused until" in t for t, _ in texts[2])
    assert any(re.search(r"Telegram asked to wait 2 h; resuming at \d\d:\d\d", t) for t, _ in texts[3])
    assert any(b == BUTTONS[kinds.SESSION_ENDED] for _, b in texts[4])

    async with db.connection() as conn:
        rows = {r["notification_id"]: r for r in await conn.fetch(
            "SELECT notification_id, delivered_at, tries FROM notifications")}
    for note_id in failed:  # marked failed, not delivered
        assert (rows[note_id]["delivered_at"], rows[note_id]["tries"]) == (None, 1)
    assert odd_id in delivered and rows[odd_id]["delivered_at"] is not None
    assert all(rows[i]["delivered_at"] is not None for i in delivered)
    # the failed rows are retried a few times, then given up; they never block the others
    for _ in range(10):
        await notifier.deliver_once(cast(Bot, bot), outbox)
    assert await outbox.pending() == []
    assert len(bot.sent) == len(delivered)


def test_a_flood_pause_is_told_on_the_recipients_clock() -> None:
    """U10.6: the drainer renders each notification in its recipient's time zone, named."""
    payload = {"seconds": 7200, "until": UNTIL, "code": "FLOOD_WAIT"}
    berlin = notifier._render_safely(replace(_note(kinds.FLOOD_PAUSE, payload), timezone="Europe/Berlin"))
    assert berlin is not None and "resuming at 15:05 Europe/Berlin, in 14 h 5 min" in berlin[0]
    kolkata = notifier._render_safely(replace(_note(kinds.FLOOD_PAUSE, payload), timezone="UTC+05:30"))
    assert kolkata is not None and "resuming at 19:35 UTC+5:30" in kolkata[0]
    # the zone is the recipient's only: the next one is on its own clock again
    plain = notifier._render_safely(_note(kinds.FLOOD_PAUSE, payload))
    assert plain is not None and "resuming at 14:05 UTC" in plain[0]


async def test_the_outbox_reads_each_recipients_time_zone(db: Database) -> None:
    async with db.connection() as conn:
        await conn.execute("INSERT INTO users (user_id, timezone) VALUES (77, 'Asia/Tokyo'), (78, DEFAULT)")
        for uid in (77, 78):
            await outbox.enqueue(conn, uid, kinds.NO_GROUPS_LEFT, {}, f"tz:{uid}", datetime.now(UTC))
        pending = await outbox.pending(conn, 10, 5)
    assert {(n.user_id, n.timezone) for n in pending} == {(77, "Asia/Tokyo"), (78, "UTC")}


async def test_a_round_summary_names_the_account_of_a_user_with_two(
    db: Database, redis_client: aioredis.Redis, cipher: SessionCipher
) -> None:
    """U8: the summary the engine writes carries its account; the outbox joins the account's name and
    phone, and the text names it for a user with two accounts, not for one with a single account."""
    async with db.connection() as conn:
        two = await seed_user(conn, cipher, 1, 2, phone="+15550001111")
        await seed_user(conn, cipher, 2, 2, phone="+15550002222")
        await conn.execute("UPDATE accounts SET first_name = 'Ann' WHERE user_id = 1")
        await conn.execute(
            """INSERT INTO accounts (user_id, phone, tg_user_id, first_name, session_enc)
               VALUES (1, '+15550003333', 30001, 'Other', $1)""", cipher.encrypt("session-other"))
        # a disconnected account of the single-account user does not make them a two-account user
        await conn.execute(
            """INSERT INTO accounts (user_id, phone, tg_user_id, first_name, status, session_enc)
               VALUES (2, '+15550004444', 30002, 'Gone', 'disconnected', NULL)""")
    eng = Engine(db, redis_client, FakeSender(), settings_with(), cipher)
    assert (await eng.jobs.tick()).created == 2
    await eng.run_until_done()
    async with db.connection() as conn:
        payloads = {r["user_id"]: r["payload"] for r in await conn.fetch(
            "SELECT user_id, payload FROM notifications WHERE kind = $1", kinds.ROUND_SUMMARY)}
    assert payloads[1]["account_id"] == two.account_id and payloads[1]["sent"] == 2

    bot = RecordingBot()
    await notifier.deliver_once(cast(Bot, bot), NotificationService(db))
    sent = {chat: text for chat, text, _ in bot.sent}
    assert sent[1].startswith("👤 Account Ann (+1•••1111):\n")
    assert "Other" not in sent[1] and "3333" not in sent[1]
    assert not sent[2].startswith("👤") and "2222" not in sent[2]
    assert sent[1].split("\n", 1)[1] == sent[2]  # the same round, named for the two-account user only


async def test_the_outbox_joins_only_the_recipients_own_account(db: Database, cipher: SessionCipher) -> None:
    """U8: ``pending`` names the account the payload's ``account_id`` names only when it is the
    recipient's; a malformed or missing ``account_id`` reads as no account, never fails the batch."""
    async with db.connection() as conn:
        mine = await seed_user(conn, cipher, 1, 1, phone="+15550001111")
        theirs = await seed_user(conn, cipher, 2, 1, phone="+15550002222")
        now = datetime.now(UTC)
        for key, payload in {"own": {"account_id": mine.account_id}, "other": {"account_id": theirs.account_id},
                             "text": {"account_id": "x"}, "none": {}}.items():
            await outbox.enqueue(conn, 1, kinds.BROADCAST_HALTED, payload, key, now)
        pending = {n.dedupe_key: n for n in await outbox.pending(conn, 10, 5)}
    assert (pending["own"].account_phone, pending["own"].user_accounts) == ("+15550001111", 1)
    for key in ("other", "text", "none"):
        assert (pending[key].account_name, pending[key].account_phone) == ("", ""), key
