"""The paged group import on a 5,000-dialog account, through each gateway adapter.

The sandbox world holds the account's dialogs in two folders and throttles dialog paging as
Telegram does; a long FLOOD_WAIT is injected part-way through the listing. The import must read
both folders, merge every group exactly once, mark the archived ones, report its waits, and
answer "already importing" to a second import while the first runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from accounts.crypto import SessionCipher
from accounts.gateway import AccountGateway
from accounts.sandbox_gateway import SandboxGateway
from accounts.telethon import TelethonGateway
from accounts.telethon.sandbox import SandboxClientFactory
from config.settings import SandboxSettings, Settings
from sandbox.events import EventLog
from sandbox.mtproto import keys, start_mtproto
from sandbox.world import World
from services.group_import import GroupImportService, ImportProgress
from services.login import LoginService
from storage.db import Database
from tests.clocks import StepClock
from tests.integration.services_support import Clock
from tests.sandbox.conftest_world import serve_world

pytestmark = pytest.mark.integration

UID = 31
PHONE = "+15550005000"
MAIN, ARCHIVED = 3800, 1200  # 5,000 dialogs in two folders


@dataclass
class Setup:
    world: World
    gateway: AccountGateway
    imports: GroupImportService
    clock: Clock  # the services' clock
    world_clock: StepClock  # the world's (its dialog-paging window)

    async def sleep(self, seconds: float) -> None:
        """The import's waits: both clocks move on at once, nothing waits in real time."""
        self.clock.advance(seconds)
        await self.world_clock.sleep(seconds)


@pytest.fixture(params=["sandbox", "telethon"])
async def setup(request: pytest.FixtureRequest, db: Database, cipher: SessionCipher) -> AsyncIterator[Setup]:
    world_clock = StepClock()
    world = World(SandboxSettings(rate_limits=False), EventLog(limit=1_000_000),
                  clock=world_clock.monotonic, sleep=world_clock.sleep)
    world.seed({"phone": PHONE, "first_name": "Many",
                "generated_groups": {"count": MAIN + ARCHIVED, "first_id": 800_000, "archived": ARCHIVED}})
    world.dialog_pages_burst, world.dialog_pages_window = 20, 5.0  # a short FLOOD_WAIT every 20 pages
    settings, clock = Settings(), Clock()
    async with _gateway(request.param, world) as gateway:
        login = LoginService(db, gateway, cipher, settings, clock)
        step = await login.send_code(UID, PHONE)
        assert step.attempt is not None, step
        done = await login.submit_code(UID, step.attempt, str(world.codes(PHONE)[0]["code"]))
        assert done.outcome == "connected", done
        yield Setup(world, gateway, GroupImportService(db, gateway, cipher, settings, clock), clock, world_clock)


class _gateway:
    def __init__(self, kind: str, world: World) -> None:
        self.kind, self.world = kind, world
        self._closers: list[Any] = []

    async def __aenter__(self) -> AccountGateway:
        if self.kind == "sandbox":
            served = serve_world(self.world)
            url = await served.__aenter__()
            self._closers.append(lambda: served.__aexit__(None, None, None))
            gateway: AccountGateway = SandboxGateway(url)
        else:
            key = keys.generate()
            server = await start_mtproto(self.world, "127.0.0.1", 0, key)
            self._closers.append(server.close)
            gateway = TelethonGateway(Settings(), factory=SandboxClientFactory(
                "127.0.0.1", server.port, keys.public_pem(key), timeout=10))
        self._closers.insert(0, gateway.close)
        return gateway

    async def __aexit__(self, *exc: object) -> None:
        for close in self._closers:
            await close()


async def test_a_5000_dialog_account_with_a_flood_wait_mid_listing_imports_every_group_once(
    setup: Setup, db: Database
) -> None:
    reports: list[ImportProgress] = []
    injected = False

    async def report(progress: ImportProgress) -> None:
        nonlocal injected
        reports.append(progress)
        if progress.chats_read >= 2000 and not injected:  # Telegram asks for an hour, part-way through
            injected = True
            setup.world.add_fault({"call": "get_dialogs", "error": "FLOOD_WAIT", "seconds": 3600})

    assert await setup.imports.begin(UID) == "started"
    final = await setup.imports.run(UID, report, setup.sleep)

    assert final.status == "done", final
    assert final.result is not None
    assert (final.result.total, final.result.new, final.result.updated) == (MAIN + ARCHIVED, MAIN + ARCHIVED, 0)
    assert final.chats_read == MAIN + ARCHIVED
    async with db.connection() as conn:
        rows = await conn.fetch("SELECT peer_id, archived, status FROM groups WHERE user_id = $1", UID)
    assert len(rows) == len({r["peer_id"] for r in rows}) == MAIN + ARCHIVED
    assert sum(r["archived"] for r in rows) == ARCHIVED
    assert all(r["status"] == "active" for r in rows)
    waits = [p for p in reports if p.status == "waiting"]
    assert any(p.resume_at is not None and p.wait_seconds == 3600 for p in waits), waits  # reported
    assert any(p.resume_at is None and p.wait_seconds <= 5 for p in waits), waits  # absorbed
    floods = [e for e in setup.world.events.since(0) if e.method == "get_dialogs" and e.error == "FLOOD_WAIT"]
    assert len(floods) >= 2
    progress = [p.chats_read for p in reports if p.status == "running"]
    assert progress == sorted(progress) and progress[0] == 100  # pages of 100, edited in place by the bot

    # an import again: nothing new, every group updated once, none gone
    assert await setup.imports.begin(UID) == "started"
    again = await setup.imports.run(UID, report, setup.sleep)
    assert again.result is not None
    assert (again.result.new, again.result.updated, again.result.gone) == (0, MAIN + ARCHIVED, 0)


async def test_a_second_import_while_the_first_runs_is_already_importing_and_cancel_stops_it(
    setup: Setup,
) -> None:
    paused, go_on = asyncio.Event(), asyncio.Event()

    async def report(progress: ImportProgress) -> None:
        if progress.status == "running" and not paused.is_set():
            paused.set()
            await go_on.wait()

    assert await setup.imports.begin(UID) == "started"
    first = asyncio.create_task(setup.imports.run(UID, report))
    await asyncio.wait_for(paused.wait(), 30)

    assert await setup.imports.begin(UID) == "already"
    assert await setup.imports.cancel(UID) is True
    go_on.set()
    final = await asyncio.wait_for(first, 30)

    assert final.status == "cancelled"
    assert final.chats_read == 100
    assert await setup.imports.begin(UID) == "started"  # a new one may start after the cancel


async def test_an_import_whose_runner_died_is_resumed_from_its_saved_cursor(setup: Setup, db: Database) -> None:
    class Died(Exception):
        pass

    async def die_after_ten_pages(progress: ImportProgress) -> None:
        if progress.status == "running" and progress.chats_read >= 1000:
            raise Died  # the process running the import is gone after its tenth page

    assert await setup.imports.begin(UID) == "started"
    with pytest.raises(Died):
        await setup.imports.run(UID, die_after_ten_pages, setup.sleep)
    assert await setup.imports.begin(UID) == "already"  # its runner may still be alive
    setup.clock.advance(120)  # nothing heard from it for longer than STALE_AFTER
    assert await setup.imports.begin(UID) == "resumed"
    pages: list[int] = []

    async def record(progress: ImportProgress) -> None:
        if progress.status == "running":
            pages.append(progress.chats_read)

    final = await setup.imports.run(UID, record, setup.sleep)

    assert final.status == "done" and final.result is not None
    assert (final.result.new, final.result.updated) == (MAIN + ARCHIVED, 0)  # none merged twice
    assert pages[0] == 1100  # it went on after the tenth page, not from the start
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM groups WHERE user_id = $1", UID) == MAIN + ARCHIVED
