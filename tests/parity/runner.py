"""Executes one contract case through the sandbox's control API and checks what the user saw.

Everything the runner looks at is what a person would see (messages, edits, deletions,
buttons, callback notices, the admin's chat) plus the FSM state in Redis and a few stored
facts (``checks``). See contract/flows.yaml for the step and expectation vocabulary.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from contract import Case, Contract, Step
from roles.bot import texts
from scheduler.jobs import SchedulerJobs
from services.admin import Actor
from storage.lease import Leases
from storage.queue import JobQueue
from storage.repositories import settings as settings_repo
from tests.integration.engine_support import FAST, Engine
from tests.parity import russian, window_steps
from tests.parity.harness import ADMIN, ADMIN_USER, Harness

# results of this session, for the coverage test and the terminal summary:
# gateway kind -> case name -> outcome
RESULTS: dict[str, dict[str, str]] = {}

ALWAYS_FAILURE = (texts.ERROR,)  # never shown in a passing case
OTHER_PHONE = "+15550009999"
NOTIFIED_TIMEOUT = 60.0  # an announcement to every user of the suite takes a few seconds at 25/s
ROUND_TIMEOUT = 30.0  # a round step: the round sent and what it told the user delivered
_PLACEHOLDER = re.compile(r"\{(\w+)\}")

Json = dict[str, Any]


class CaseFailed(AssertionError):
    pass


def _glob(pattern: str, value: str) -> bool:
    # '*' stands for one ':'-separated segment
    regex = "^" + ":".join("[^:]*" if part == "*" else re.escape(part) for part in pattern.split(":")) + "$"
    return re.match(regex, value) is not None


def _buttons(message: Json) -> list[Json]:
    markup = message.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard") or [] for b in row]


def _phrase_in(phrase: str, haystack: str) -> bool:
    if phrase.startswith("lit:"):
        phrase = phrase[4:]
    if phrase.startswith("re:"):
        return re.search(phrase[3:], haystack, re.IGNORECASE) is not None
    return phrase.lower() in haystack.lower()


def _spaced(digits: str) -> str:
    return " ".join(digits)


def _phone_spaced(phone: str) -> str:
    digits = phone.lstrip("+")
    return f"+{digits[0]} {digits[1:4]} {digits[4:7]} {digits[7:]}"


@dataclass
class Output:
    """What changed in a chat: new bot messages, edited ones, deletions, the callback answer."""

    new: list[Json] = field(default_factory=list)
    changed: list[Json] = field(default_factory=list)
    answer: Json | None = None

    @property
    def shown(self) -> list[Json]:
        return self.new + self.changed

    @property
    def haystack(self) -> str:
        parts = []
        for m in self.shown:
            parts.append(m.get("text") or "")
            parts += [b.get("text", "") for b in _buttons(m)]
        if self.answer and self.answer.get("text"):
            parts.append(str(self.answer["text"]))
        return "\n".join(parts)

    @property
    def callback_ids(self) -> list[str]:
        return [b["callback_data"] for m in self.shown for b in _buttons(m) if "callback_data" in b]


def diff(before: list[Json], after: list[Json]) -> Output:
    old = {m["message_id"]: m for m in before}
    out = Output()
    for m in after:
        if m["from"] != "bot" or m.get("deleted"):
            continue
        previous = old.get(m["message_id"])
        if previous is None:
            out.new.append(m)
        elif any(previous.get(k) != m.get(k) for k in ("text", "reply_markup", "edited", "media", "entities")):
            out.changed.append(m)
    return out


class CaseRunner:
    """Runs one case for a fresh user; ``run()`` raises CaseFailed listing every broken expectation."""

    def __init__(self, harness: Harness, contract: Contract, case: Case, language: str = "en") -> None:
        self.language = language  # "ru": the Russian pass (every person speaks Russian, phrases translated)
        self.h = harness
        self.contract = contract
        self.case = case
        self.uid = 0
        self.account: str | None = None
        self.last_answer: Json | None = None
        self.answered_uid: int | None = None  # whose press last_answer belongs to
        self.last_pressed: int | None = None
        self.last_sent: list[int] = []
        self.kept: int | None = None  # a bot message remembered by a keep step
        self.mode_changed = False
        self.start_codes: dict[str, int] = {}
        self.start_sessions: dict[str, int] = {}
        self.audit_start = 0
        self.topic_changes: list[tuple[int, int, Json]] = []  # (group, topic, how it was) to restore
        self.feed_start: dict[int, int] = {}  # posts in each of the user's groups when the trigger began
        self.window_now: datetime | None = None  # the instant U10's window templates count from

    # --- templates ------------------------------------------------------------------------------

    def _account(self) -> dict[str, Any]:
        if self.account is None:
            raise CaseFailed("a template needs an account: add a login_as step")
        return self.contract.accounts[self.account]

    async def render(self, value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"repeat", "times"}:
            return str(value["repeat"]) * int(value["times"])
        if isinstance(value, dict):
            return {k: await self.render(v) for k, v in value.items()}
        if isinstance(value, list):
            return [await self.render(v) for v in value]
        if not isinstance(value, str) or "{" not in value:
            return value
        names = set(_PLACEHOLDER.findall(value))
        values: dict[str, str] = {"uid": str(self.uid), "admin": str(ADMIN)}
        if names & window_steps.TEMPLATES:
            if self.window_now is None:
                self.window_now = datetime.now(UTC)
            values.update(await window_steps.template_values(self.h, self.uid, self.window_now))
        if names & {"phone", "phone_spaced", "password", "name", "code", "code_spaced", "wrong_code_spaced"}:
            acc = self._account()
            values.update(phone=acc["phone"], phone_spaced=_phone_spaced(acc["phone"]),
                          password=str(acc.get("password", "")), name=str(acc.get("name", "")))
            if names & {"code", "code_spaced", "wrong_code_spaced"}:
                code = await self.h.client.latest_code(acc["phone"])
                wrong = f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"
                values.update(code=code, code_spaced=_spaced(code), wrong_code_spaced=_spaced(wrong))
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), value)

    # --- steps ----------------------------------------------------------------------------------

    async def _newest_with(self, uid: int, data: str | None, text: str | None = None, index: int = 0) -> tuple[int, str]:
        chat = await self.h.client.chat(uid)
        for message in reversed(chat):
            if message["from"] != "bot" or message.get("deleted"):
                continue
            matches = [b for b in _buttons(message) if "callback_data" in b
                       and (data is None or _glob(data, b["callback_data"]))
                       and (text is None or b.get("text", "").startswith(text))]
            if len(matches) > index:
                return message["message_id"], matches[index]["callback_data"]
        raise CaseFailed(f"no bot message offers a button {data!r} {text or ''} in the chat of {uid}")

    async def _press(self, uid: int, message_id: int, data: str) -> Json:
        self.h.count_pushed()
        self.last_pressed = message_id
        answer = await self.h.client.press(uid, message_id, data, timeout=5.0)
        await self.h.settle()
        if not answer.get("answered"):
            raise CaseFailed(f"callback {data!r} was not answered")
        self.last_answer = answer
        self.answered_uid = uid
        return answer

    async def _forge(self, uid: int, data: str) -> None:
        chat = await self.h.client.chat(uid)
        bot_messages = [m for m in chat if m["from"] == "bot" and not m.get("deleted")]
        if not bot_messages:
            raise CaseFailed("forge needs a bot message to press on")
        await self._press(uid, bot_messages[-1]["message_id"], data)

    async def _send(self, body: Json, uid: int | None = None) -> None:
        result = await self.h.client.send(self.uid if uid is None else uid, body)
        ids = [int(i) for i in result.get("message_ids") or [result["message_id"]]]
        self.last_sent = ids
        self.h.count_pushed(len(ids))
        await self.h.settle()

    async def step(self, step: Step) -> None:
        (kind, raw), = step.items()
        if kind == "twice":
            await self._twice(raw)
            return
        value = await self.render(raw)
        uid = self.uid
        if kind == "send":
            await self._send(value if isinstance(value, dict) else {"text": str(value)})
        elif kind == "contact":
            if value == "own":
                body: Json = {"contact": {"phone": self._account()["phone"]}}
            else:
                body = {"contact": {"phone": OTHER_PHONE, "user_id": uid + 500_000, "first_name": "Other"}}
            await self._send(body)
        elif kind == "media":
            spec = {k: v for k, v in value.items() if k != "kind"}
            await self._send({value["kind"]: spec})
        elif kind == "location":
            await self._send({"location": {"latitude": 52.5, "longitude": 13.4}})
        elif kind == "poll":
            await self._send({"poll": {"question": "Lunch?", "options": ["Yes", "No"]}})
        elif kind == "album":
            await self._send({"media_group": _album(value)})
        elif kind == "press":
            spec = value if isinstance(value, dict) else {"data": value}
            message_id, data = await self._newest_with(uid, spec.get("data"), spec.get("text"),
                                                       int(spec.get("index", 0)))
            await self._press(uid, message_id, data)
        elif kind == "scheduler_tick":
            # one due scan of the real scheduler: due campaigns get their round (no worker sends it)
            jobs = SchedulerJobs(self.h.db, JobQueue(self.h.redis, "parity", "parity"), Leases(self.h.redis),
                                 self.h.settings.engine, self.h.redis)
            await jobs.tick()
            await self.h.settle()
        elif kind == "round":
            await self._round()
        elif kind == "topic":
            # a forum admin closes, reopens or deletes a topic (restored after the case)
            group, topic = int(value["group"]), int(value["topic"])
            before = next((t for t in await self.h.client.topics(group) if t["id"] == topic), None)
            if before is None:
                raise CaseFailed(f"group {group} has no topic {topic}")
            self.topic_changes.append((group, topic, before))
            if value.get("deleted"):
                await self.h.client.change_topic(group, topic, deleted=True)
            else:
                await self.h.client.change_topic(group, topic, closed=bool(value.get("closed")))
        elif kind == "run_round":
            # U10.5: one job of the open round through the real engine; the clock moves after one send
            await window_steps.run_round(self.h, uid, float(value))
            await self.h.settle()
        elif kind == "keep":
            self.kept, _ = await self._newest_with(uid, str(value))
        elif kind == "press_kept":
            # a stale client: the press reaches the bot whatever buttons the message shows by now
            if self.kept is None:
                raise CaseFailed("press_kept needs a keep step first")
            await self._press(uid, self.kept, str(value))
        elif kind == "admin_press":
            message_id, data = await self._newest_with(ADMIN, str(value))
            await self._press(ADMIN, message_id, data)
        elif kind == "admin_send":
            await self._send({"text": str(value)}, uid=ADMIN)
        elif kind == "admin_forge":
            await self._forge(ADMIN, str(value))
        elif kind == "forge":
            await self._forge(uid, str(value))
        elif kind == "keypad":
            for key in [*str(value), "ok"]:
                message_id, data = await self._newest_with(uid, f"acc:kp:{key}")
                await self._press(uid, message_id, data)
        elif kind == "login_as":
            self.account = str(value)
        elif kind == "fault":
            spec = dict(value)
            if str(spec.get("error", "")).upper() == "NETWORK":
                # "Telegram unreachable" is an outage for the rest of the case (cleanup clears it), not
                # one lost call: the Telethon adapter retries a failed request, the sandbox one doesn't
                spec.setdefault("times", -1)
            await self.h.client.add_fault(phone=self._account()["phone"], **spec)
        elif kind == "revoke_sessions":
            await self.h.client.revoke_sessions(self.contract.accounts[str(value)]["phone"])
        elif kind == "access_mode":
            self.mode_changed = True
            await self.h.set_mode(str(value))
        elif kind == "ban":
            await self.h.ban(uid)
        elif kind == "advance_clock":
            self.h.clock.offset += float(value)
        elif kind == "language_code":
            await self.h.client.create_user(uid, "Parity", username=f"user{uid}", language_code=str(value))
        else:  # pragma: no cover - contract.load rejects unknown steps
            raise CaseFailed(f"unknown step {kind}")

    async def _round(self) -> None:
        """A round of the user's broadcast made due now, planned by the scheduler and sent by the
        worker's engine through a gateway of the harness's kind (as another process), then what it
        told the user delivered by the bot's notifier."""
        h = self.h
        worker = _WORKERS.get(id(h))
        if worker is None:
            worker = _WORKERS[id(h)] = Engine(h.db, h.redis, h.new_gateway(), replace(h.settings, engine=FAST),
                                              h.cipher, consumer=f"parity-round-{id(h)}")
        async with h.db.connection() as conn:
            await conn.execute("UPDATE campaigns SET next_run_at = now() WHERE user_id = $1 AND status = 'running'",
                               self.uid)
        h.sandbox.world.forget_slow_mode()  # the previous round was an interval (an hour) ago
        await worker.jobs.tick()
        round_id = await h.fetchval("SELECT max(round_id) FROM rounds WHERE user_id = $1 AND finished_at IS NULL",
                                    self.uid)
        if round_id is None:
            raise CaseFailed("the round step found no round: is the broadcast running?")
        await worker.run_until_done([int(round_id)], within=ROUND_TIMEOUT)
        deadline = asyncio.get_running_loop().time() + ROUND_TIMEOUT
        while await h.fetchval("SELECT count(*) FROM notifications WHERE user_id = $1 AND delivered_at IS NULL",
                               self.uid):
            if asyncio.get_running_loop().time() > deadline:
                raise CaseFailed("the round's notifications were not delivered")
            await asyncio.sleep(0.05)

    async def _feeds(self) -> dict[int, list[Json]]:
        """The sandbox feed of each of the user's groups (peer id -> posts)."""
        async with self.h.db.connection() as conn:
            peers = [int(r["peer_id"]) for r in await conn.fetch(
                "SELECT peer_id FROM groups WHERE user_id = $1 AND status <> 'gone'", self.uid)]
        return {peer: await self.h.client.group_messages(peer) for peer in peers}

    async def _twice(self, raw: Step) -> None:
        (kind, value), = raw.items()
        if kind != "press":
            raise CaseFailed("twice supports press only")
        message_id, data = await self._newest_with(self.uid, str(await self.render(value)))
        self.h.count_pushed(2)
        answers = await asyncio.gather(*(self.h.client.press(self.uid, message_id, data, timeout=5.0)
                                         for _ in range(2)))
        await self.h.settle()
        if not all(a.get("answered") for a in answers):
            raise CaseFailed("a double tap left a callback unanswered")
        self.last_pressed = message_id
        texts_ = [a.get("text") or "" for a in answers]
        self.last_answer = {"answered": True, "text": "\n".join(texts_)}
        self.answered_uid = self.uid

    # --- the case -------------------------------------------------------------------------------

    async def run(self) -> None:
        case = self.case
        await self.h.free_accounts()
        self.uid = ADMIN_USER if case.as_admin else await self.h.new_user()
        if self.language != "en":
            await self.h.speak(self.language, ADMIN, ADMIN_USER)
            if not case.as_admin:  # a new person: the bot learns the language from Telegram's language_code
                await self.h.client.create_user(self.uid, "Parity", username=f"user{self.uid}",
                                                language_code=self.language)
        try:
            for name, acc in self.contract.accounts.items():
                self.start_codes[name] = len(await self.h.client.codes(acc["phone"]))
                self.start_sessions[name] = len(await self.h.client.sessions(acc["phone"]))
            for step in self.contract.expand(case.given):
                await self.step(step)
            before = await self.h.client.chat(self.uid)
            admin_before = await self.h.client.chat(ADMIN)
            self.audit_start = int(await self.h.fetchval("SELECT coalesce(max(audit_id), 0) FROM audit_log"))
            if "topic_posts" in (case.expect.get("checks") or {}):
                self.feed_start = {peer: len(posts) for peer, posts in (await self._feeds()).items()}
            self.last_answer = None
            self.answered_uid = None
            self.last_pressed = None
            self.last_sent = []
            assert case.trigger is not None
            for step in self.contract.expand([case.trigger]):
                await self.step(step)
            problems = await self.wait_notified(before)
            after = await self.h.client.chat(self.uid)
            output = diff(before, after)
            admin_out = diff(admin_before, await self.h.client.chat(ADMIN))
            if self.answered_uid == ADMIN and self.uid != ADMIN:
                admin_out.answer = self.last_answer
            else:
                output.answer = self.last_answer
            problems += await self.check(output, after, admin_out)
        finally:
            await self.cleanup()
        if problems:
            shown = output.haystack.replace("\n", " | ")[:1500]
            admin_shown = admin_out.haystack.replace("\n", " | ")[:1500]
            raise CaseFailed(f"{case.name}: " + "; ".join(problems) + f"\n  the bot showed: {shown}"
                             + (f"\n  the admin saw: {admin_shown}" if admin_shown else ""))

    async def _posted(self, back: int) -> dict[int, str]:
        """group id -> the text of the message it got in the user's round ``back`` rounds ago (sent only)."""
        async with self.h.db.connection() as conn:
            rows = await conn.fetch(
                """SELECT a.group_id, m.text FROM attempts a JOIN rounds r USING (round_id)
                   JOIN messages m ON m.message_id = coalesce(a.message_id, r.message_id)
                   WHERE a.status = 'sent' AND r.round_id = (SELECT round_id FROM rounds WHERE user_id = $1
                                                             ORDER BY round_id DESC OFFSET $2 LIMIT 1)""",
                self.uid, back)
        return {int(r["group_id"]): str(r["text"]) for r in rows}

    async def _album_posts(self) -> list[int]:
        async with self.h.db.connection() as conn:
            peers = await conn.fetch("SELECT DISTINCT g.peer_id FROM groups g JOIN attempts a USING (group_id) "
                                     "WHERE g.user_id = $1 AND a.status = 'sent'", self.uid)
        sizes = []
        for row in peers:
            feed = await self.h.client.group_messages(int(row["peer_id"]))
            grouped = feed[-1].get("grouped_id") if feed else None
            sizes.append(sum(1 for post in feed if grouped is not None and post.get("grouped_id") == grouped))
        return sorted(sizes)

    async def cleanup(self) -> None:
        if self.language != "en":
            await self.h.speak("en", ADMIN, ADMIN_USER)
        await self.h.client.clear_faults()
        for group, topic, before in reversed(self.topic_changes):
            if not any(t["id"] == topic for t in await self.h.client.topics(group)):
                await self.h.client.change_topic(group, topic, deleted=False)
            await self.h.client.change_topic(group, topic, closed=bool(before["closed"]))
        self.h.clock.offset = 0.0
        # the switches are global: admin cases may have flipped them through the bot itself
        async with self.h.db.connection() as conn:
            mode = await settings_repo.access_mode(conn)
        if self.mode_changed or mode != "open":
            await self.h.set_mode("open")
        if await self.h.admin.global_paused():
            await self.h.admin.resume(Actor.system("parity"))

    async def wait_notified(self, before: list[Json]) -> list[str]:
        """Phrases the bot sends on its own (outbox, announcements) arrive after the trigger settled."""
        wanted = list(self.case.expect.get("notified", []))
        if not wanted:
            return []
        deadline = asyncio.get_running_loop().time() + NOTIFIED_TIMEOUT
        while True:
            hay = diff(before, await self.h.client.chat(self.uid)).haystack
            missing = [p for p in wanted if not await self.shows(p, hay)]
            if not missing:
                return []
            if asyncio.get_running_loop().time() > deadline:
                return [f"not notified: {p!r}" for p in missing]
            await asyncio.sleep(0.1)

    async def check(self, out: Output, chat: list[Json], admin_out: Output) -> list[str]:
        expect = self.case.expect
        problems: list[str] = []
        hay = out.haystack
        for phrase in expect.get("reply", []):
            if not await self.shows(phrase, hay):
                problems.append(f"reply lacks {await self.render(phrase)!r}{self.said(phrase)}")
        for phrase in [*self.case.failure, *ALWAYS_FAILURE]:
            if await self.shows(phrase, hay, failure=True):
                problems.append(f"reply shows the failure phrase {await self.render(phrase)!r}{self.said(phrase)}")
        ids = out.callback_ids
        for pattern in expect.get("buttons", []):
            pattern = await self.render(pattern)
            if not any(_glob(pattern, i) for i in ids):
                problems.append(f"no button {pattern!r} (buttons: {ids})")
        for pattern in expect.get("no_buttons", []):
            pattern = await self.render(pattern)
            if any(_glob(pattern, i) for i in ids):
                problems.append(f"button {pattern!r} must not be offered")
        if expect.get("contact_button"):
            found = any(b.get("request_contact") for m in out.new
                        for row in (m.get("reply_markup") or {}).get("keyboard") or [] for b in row)
            if not found:
                problems.append("no 'share my number' reply keyboard")
        if "state" in expect:
            state = await self.h.state(self.uid)
            if state != expect["state"]:
                problems.append(f"state is {state!r}, expected {expect['state']!r}")
        if expect.get("edited"):
            if self.last_pressed is None:
                problems.append("edited expects a press trigger")
            elif out.new or self.last_pressed not in [m["message_id"] for m in out.changed]:
                problems.append(f"the pressed message was not edited in place (new: {len(out.new)})")
        if expect.get("input_deleted"):
            by_id = {m["message_id"]: m for m in chat}
            if not self.last_sent or not all(by_id.get(i, {}).get("deleted") for i in self.last_sent):
                problems.append("the user's message was not deleted from the chat")
        if "kept_buttons" in expect:
            kept = next((m for m in chat if m["message_id"] == self.kept), None)
            has = bool(kept is not None and _buttons(kept))
            if has != bool(expect["kept_buttons"]):
                problems.append(f"the kept message {'has' if has else 'has no'} buttons")
        if "new_messages" in expect and len(out.new) != int(expect["new_messages"]):
            problems.append(f"{len(out.new)} new messages, expected {expect['new_messages']}")
        for wanted in expect.get("entities", []):
            if not any(_has_entity(m, wanted) for m in out.shown):
                problems.append(f"no message carries the entity {wanted}")
        if "media" in expect and not any((m.get("media") or {}).get("kind") == expect["media"] for m in out.new):
            problems.append(f"no new {expect['media']} message")
        if "admin" in expect:
            admin_hay = admin_out.haystack
            for phrase in expect["admin"].get("reply", []):
                if not await self.shows(phrase, admin_hay):
                    problems.append(f"admin's chat lacks {await self.render(phrase)!r}{self.said(phrase)}")
            for pattern in expect["admin"].get("buttons", []):
                pattern = await self.render(pattern)
                if not any(_glob(pattern, i) for i in admin_out.callback_ids):
                    problems.append(f"admin's chat has no button {pattern!r}")
            for pattern in expect["admin"].get("no_buttons", []):
                pattern = await self.render(pattern)
                if any(_glob(pattern, i) for i in admin_out.callback_ids):
                    problems.append(f"admin's chat offers the button {pattern!r}")
            for phrase in [*self.case.failure, *ALWAYS_FAILURE]:
                if await self.shows(phrase, admin_hay, failure=True):
                    problems.append(f"admin's chat shows the failure phrase {phrase!r}")
        for name, wanted in (expect.get("checks") or {}).items():
            got = await self.fact(name)
            wanted = await self.render(wanted)
            if got != wanted:
                problems.append(f"check {name}: {got!r}, expected {wanted!r}")
        return problems

    async def shows(self, phrase: str, haystack: str, failure: bool = False) -> bool:
        """Whether ``haystack`` shows the contract ``phrase`` in this pass's language: in the Russian
        pass, any of its Russian meanings (``tests/parity/russian.py``). A failure phrase with no
        Russian meaning is still looked for in English (no English may leak into a Russian chat)."""
        if self.language == "en":
            return _phrase_in(await self.render(phrase), haystack)
        try:
            candidates = russian.meanings(phrase)
        except russian.NoMeaning:
            if not failure:
                raise
            candidates = [phrase]
        return any([_phrase_in(await self.render(c), haystack) for c in candidates])

    def said(self, phrase: str) -> str:
        if self.language == "en":
            return ""
        try:
            return f" (in Russian: {russian.meanings(phrase)})"
        except russian.NoMeaning:
            return ""

    async def fact(self, name: str) -> Any:
        uid = self.uid
        h = self.h
        if name == "account_connected":
            return await h.fetchval("SELECT status = 'connected' FROM accounts "
                                    "WHERE user_id = $1 AND account_id = current_account($1)", uid) or False
        if name == "session_encrypted":
            blob = await h.fetchval("SELECT session_enc FROM accounts WHERE user_id = $1 "
                                    "AND account_id = current_account($1)", uid)
            if blob is None:
                return False
            raw = bytes(blob)
            session = h.cipher.decrypt(raw)
            return (session.encode() not in raw and h.leaked_session(raw.decode("latin-1")) is None
                    and h.is_session(session))
        if name == "selected":
            return await h.fetchval(f"SELECT count(*) FROM groups WHERE user_id = $1 AND {_CURRENT} "
                                    "AND selected AND status = 'active'", uid)
        if name == "campaign":
            return await h.fetchval(f"SELECT status FROM campaigns WHERE user_id = $1 AND {_CURRENT}",
                                    uid) or "stopped"
        if name == "interval":
            return await h.fetchval(f"SELECT interval_seconds FROM campaigns WHERE user_id = $1 AND {_CURRENT}",
                                    uid)
        if name == "due_now":  # the next round is due (its time has come)
            return bool(await h.fetchval(
                f"SELECT next_run_at <= now() FROM campaigns WHERE user_id = $1 AND {_CURRENT}", uid))
        if name == "typed":  # the digits typed on the login keypad so far
            return str((await h.fsm_data(uid)).get("typed", ""))
        if name == "message_version":
            return await h.fetchval(f"SELECT max(version) FROM messages WHERE user_id = $1 AND {_CURRENT}", uid)
        if name == "audit":  # the audit rows written since the trigger started, "action:outcome"
            async with h.db.connection() as conn:
                rows = await conn.fetch("SELECT action, outcome FROM audit_log WHERE audit_id > $1 "
                                        "ORDER BY audit_id", self.audit_start)
            return [f"{r['action']}:{r['outcome']}" for r in rows]
        if name == "banned":
            return bool(await h.fetchval("SELECT banned FROM users WHERE user_id = $1", uid))
        if name == "access":
            return await h.fetchval("SELECT access_status FROM users WHERE user_id = $1", uid)
        if name == "language":
            return await h.fetchval("SELECT language FROM users WHERE user_id = $1", uid)
        if name == "access_mode":
            async with h.db.connection() as conn:
                return await settings_repo.access_mode(conn)
        if name == "global_paused":
            return await h.admin.global_paused()
        if name in ("topics", "topic"):
            # the user's forums (by title): how many topics are known / the title of the chosen one
            async with h.db.connection() as conn:
                rows = await conn.fetch(
                    """SELECT g.title, count(t.topic_id) AS topics,
                              max(t.title) FILTER (WHERE t.topic_id = coalesce(g.topic_id, 1)) AS chosen
                       FROM groups g LEFT JOIN group_topics t USING (group_id)
                       WHERE g.user_id = $1 AND g.is_forum GROUP BY g.group_id, g.title""", uid)
            return {r["title"]: (r["topics"] if name == "topics" else r["chosen"]) for r in rows}
        if name == "topic_posts":
            # the posts that landed since the trigger began, per group (by title): the title of the
            # forum topic each went to, "-" outside forums (read from the sandbox's group feeds)
            async with h.db.connection() as conn:
                titles = {int(r["peer_id"]): r["title"] for r in await conn.fetch(
                    "SELECT peer_id, title FROM groups WHERE user_id = $1 AND selected", uid)}
            out: dict[str, list[str]] = {}
            for peer, posts in (await self._feeds()).items():
                if peer not in titles:
                    continue
                names = {t["id"]: t["title"] for t in await h.client.topics(peer)} if any(
                    "topic_id" in p for p in posts) else {}
                out[titles[peer]] = [names.get(p["topic_id"], f"#{p['topic_id']}") if "topic_id" in p else "-"
                                     for p in posts[self.feed_start.get(peer, 0):]]
            return out
        if name == "groups_disabled_told":  # notifications that a group was disabled, to this user
            return await h.fetchval("SELECT count(*) FROM notifications WHERE user_id = $1 "
                                    "AND kind = 'group_disabled'", uid)
        if name == "messages":  # U9: the active messages, in rotation
            return await h.fetchval(f"SELECT count(*) FROM messages WHERE user_id = $1 AND {_CURRENT} AND active",
                                    uid)
        if name == "rotation":
            return await h.fetchval(f"SELECT rotation FROM campaigns WHERE user_id = $1 AND {_CURRENT}",
                                    uid) or "seq"
        if name == "round_texts":  # the texts (captions) the last round posted, distinct, sorted
            return sorted(set((await self._posted(0)).values()))
        if name == "repeats":  # groups that got the same message in the last two rounds
            last, before = await self._posted(0), await self._posted(1)
            return sum(1 for group, text in last.items() if before.get(group) == text)
        if name == "album_posts":  # each group's newest post in the world: items of its album
            return await self._album_posts()
        if name == "accounts":  # U8: the connected accounts, oldest first
            async with h.db.connection() as conn:
                return [r["first_name"] for r in await conn.fetch(
                    "SELECT first_name FROM accounts WHERE user_id = $1 AND status = 'connected' "
                    "ORDER BY account_id", uid)]
        if name == "current_account":
            return await h.fetchval("SELECT first_name FROM accounts WHERE account_id = current_account($1)", uid)
        if name == "account_rows":
            return await h.fetchval("SELECT count(*) FROM accounts WHERE user_id = $1", uid)
        if name in ("codes_sent", "world_sessions"):
            alias = self.account or next(iter(self.contract.accounts))
            phone = self.contract.accounts[alias]["phone"]
            if name == "codes_sent":
                return len(await h.client.codes(phone)) - self.start_codes[alias]
            return len(await h.client.sessions(phone)) - self.start_sessions[alias]
        if name in window_steps.CHECKS:
            return await window_steps.fact(h, uid, name)
        raise CaseFailed(f"unknown check {name}")


# U8: the stored facts of the menus are the current account's (the one they act on)
_CURRENT = "account_id IS NOT DISTINCT FROM current_account(user_id)"
_WORKERS: dict[int, Engine] = {}  # harness -> the worker engine of its ``round`` steps


def _album(spec: Any) -> list[Json]:
    """``album: n`` (photos, each with a caption) or ``album: {items: n, kinds: [photo, video, ...],
    caption, entities}`` (the caption on the first item only, as an album carries one)."""
    if not isinstance(spec, dict):
        return [{"photo": {"caption": f"part {i}"}} for i in range(int(spec))]
    kinds = list(spec.get("kinds") or ["photo"])
    items: list[Json] = []
    for i in range(int(spec["items"])):
        body: Json = {}
        if i == 0 and spec.get("caption"):
            body = {"caption": spec["caption"], "entities": list(spec.get("entities") or [])}
        items.append({kinds[i % len(kinds)]: body})
    return items


def _has_entity(message: Json, wanted: Json) -> bool:
    return any(all(e.get(k) == v for k, v in wanted.items()) for e in message.get("entities") or [])


def results(gateway: str = "sandbox") -> dict[str, str]:
    """This session's case outcomes with ``gateway``: case name -> "passed" | "failed"."""
    return RESULTS.setdefault(gateway, {})


def pass_name(gateway: str, language: str = "en") -> str:
    """The key of a pass in ``RESULTS``: the gateway, with ``-ru`` for the Russian pass."""
    return gateway if language == "en" else f"{gateway}-{language}"


async def run_case(harness: Harness, contract: Contract, case: Case, language: str = "en") -> None:
    """Run ``case`` and record its outcome in ``RESULTS`` under the harness's gateway (and language)."""
    outcomes = results(pass_name(harness.gateway_kind, language))
    try:
        await CaseRunner(harness, contract, case, language).run()
    except BaseException:
        outcomes[case.name] = "failed"
        raise
    outcomes[case.name] = "passed"


def coverage(contract: Contract, rows: list[str], gateway: str = "sandbox",
             ) -> tuple[list[str], list[str], dict[str, str], list[str]]:
    """(executed rows, missing rows, pending rows with reasons, failed rows) from ``RESULTS``."""
    executed, missing, failed = [], [], []
    pending = contract.pending()
    outcomes_of = results(gateway)
    for row in rows:
        cases = [c for c in contract.executable() if c.id == row]
        outcomes = [outcomes_of.get(c.name) for c in cases]
        if any(o == "failed" for o in outcomes):
            failed.append(row)
        elif row in pending:
            continue  # listed with a reason; its executable cases (if any) still must pass
        elif cases and all(o == "passed" for o in outcomes):
            executed.append(row)
        else:
            missing.append(row)
    return executed, missing, pending, failed


def summary(contract: Contract, rows: list[str]) -> str:
    """The sandbox gateway runs the whole contract; other gateways report the rows they ran."""
    lines: list[str] = []
    if "sandbox" in RESULTS:
        lines += _sandbox_summary(contract, rows)
    for gateway in sorted(set(RESULTS) - {"sandbox"}):
        ran_rows = [r for r in rows if any(c.id == r and c.name in RESULTS[gateway] for c in contract.executable())]
        passed_rows, _, _, failed_rows = coverage(contract, ran_rows, gateway)
        passed = sum(1 for v in RESULTS[gateway].values() if v == "passed")
        lines.append(f"flow contract ({gateway} gateway): rows executed {len(passed_rows)} / rows run "
                     f"{len(ran_rows)} (cases passed {passed} / run {len(RESULTS[gateway])}): "
                     + ", ".join(ran_rows))
        if failed_rows:
            lines.append("  failed rows: " + ", ".join(failed_rows))
    return "\n".join(lines)


def _sandbox_summary(contract: Contract, rows: list[str]) -> list[str]:
    executed, missing, pending, failed = coverage(contract, rows)
    outcomes = results("sandbox")
    lines = [f"flow contract (sandbox gateway): rows executed {len(executed)} / rows in contract {len(rows)}"
             f" (cases passed {sum(1 for v in outcomes.values() if v == 'passed')}"
             f" / executable {len(contract.executable())})"]
    if failed:
        lines.append("  failed rows: " + ", ".join(failed))
    if missing:
        lines.append("  rows without an executed case: " + ", ".join(missing))
    for row, reason in sorted(pending.items()):
        ran = [c for c in contract.executable() if c.id == row and outcomes.get(c.name) == "passed"]
        partial = f" ({len(ran)} case(s) executed)" if ran else ""
        lines.append(f"  pending {row}{partial}: {reason}")
    return lines
