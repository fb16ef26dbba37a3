"""Group import as a job (U3.3 on accounts of any size): paged, resumable, cancellable.

The account's dialogs are read page by page, the main list first, then the archive folder
(groups there are marked archived). After each page the groups found are merged and the job's
cursor (folder + Telegram's paging offset) is saved in one transaction, so:
- a FLOOD_WAIT up to ``short_wait`` is slept off and the same page asked again;
- a longer one is reported with the time the import resumes; the job waits (heartbeating) and
  resumes from the saved cursor, also in another process if this one died (``begin`` takes over
  a job whose runner went quiet);
- every group is merged once: peers already seen by this import are skipped on later pages;
- groups never listed are marked gone only when both folders were read completely.
A second ``begin`` while a runner keeps the job alive answers ``already``; ``cancel`` stops it
before its next page. The session is used under the per-user lock, one page at a time, so a
broadcast batch and the import never share it at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from accounts.crypto import SessionDecryptError
from accounts.gateway import ARCHIVE_FOLDER, MAIN_FOLDER, AccountRef, DialogPage, ForumTopic
from accounts.gateway import release as release_account
from domain.errors import FloodWait, GatewayError, SessionDead, TransientError
from services import topics
from services.groups import GONE_REASON, GroupService, ImportResult, importable
from services.locks import Busy, holding
from storage.repositories import group_imports, group_traits, groups, users

log = logging.getLogger(__name__)

BeginOutcome = Literal["started", "resumed", "already"]
Sleep = Callable[[float], Awaitable[None]]

HEARTBEAT = 20.0  # a waiting runner touches the job this often
STALE_AFTER = 90.0  # a job untouched this long has lost its runner; the next begin takes it over
TRANSIENT_TRIES = 4


@dataclass(frozen=True)
class ImportProgress:
    """What the progress message shows. ``status``: running | waiting (``wait_seconds``, and
    ``resume_at`` for a long wait) | done (``result``) | cancelled | failed (``error``) | session_dead |
    busy (a broadcast batch held the session before the first page: nothing read or changed)."""

    status: str
    chats_read: int
    groups_found: int
    folder: int
    wait_seconds: int = 0
    resume_at: datetime | None = None
    result: ImportResult | None = None
    error: str = ""


Report = Callable[[ImportProgress], Awaitable[None]]


class GroupImportService(GroupService):
    """The paged import job; see the module docstring."""

    @property
    def short_wait(self) -> int:
        """Flood waits up to this long are slept off inside the job (the engine's inline limit)."""
        return int(self.settings.engine.flood_inline_max)

    async def begin(self, user_id: int) -> BeginOutcome:
        """Claim the user's import job; raises ``NotConnected``."""
        await self._connected(user_id)
        now = self.now()
        async with self.db.transaction() as conn:
            await users.lock(conn, user_id)
            claimed = await group_imports.begin(conn, user_id, now, now - timedelta(seconds=STALE_AFTER))
        if claimed is None:
            return "already"
        log.info("group import %s user_id=%s", claimed[0], user_id)
        return "started" if claimed[0] == "started" else "resumed"

    async def cancel(self, user_id: int) -> bool:
        async with self.db.transaction() as conn:
            return await group_imports.request_cancel(conn, user_id, self.now())

    async def run(self, user_id: int, report: Report, sleep: Sleep = asyncio.sleep) -> ImportProgress:
        """Run the job claimed by ``begin`` to its end; ``report`` is called after every page and wait."""
        async with self.db.connection() as conn:
            started = await group_imports.get(conn, user_id)
        # U8: the import lists the account it was started for, even if the user switched meanwhile
        record, sealed = await self._connected(user_id, started.account_id if started is not None else None)
        try:
            ref = AccountRef(record.account_id, self.cipher.decrypt(sealed))
        except SessionDecryptError:
            await self._session_ended(record, "session_undecryptable")
            return await self._end(user_id, "failed", "SESSION_UNDECRYPTABLE", report, "session_dead")
        failures = 0
        while True:
            async with self.db.connection() as conn:
                job = await group_imports.get(conn, user_id)
            if job is None or job.status == "cancelling":
                return await self._end(user_id, "cancelled", "", report)
            try:
                async with holding(self.lock, user_id, self.lock_wait):
                    try:
                        page = await self.gateway.list_groups_page(ref, job.folder, job.page_offset)
                        # U11: the page's forums' topics, read while the account is held
                        seen = set(job.seen)
                        found = await topics.fetch(self.gateway, ref, [
                            g for g in page.groups if g.is_forum and g.peer_id not in seen])
                    finally:
                        # connected only while the lock is held: one session key, one process
                        await release_account(self.gateway, ref)
            except FloodWait as exc:
                if not await self._wait(user_id, exc.seconds, report, sleep):
                    return await self._end(user_id, "cancelled", "", report)
                continue
            except Busy:
                if job.chats_read == 0 and job.folder == MAIN_FOLDER and not job.page_offset:
                    # nothing read yet: say the broadcast is sending and change nothing (as before
                    # imports ran as jobs); "try again in a moment" starts it afresh
                    return await self._end(user_id, "failed", "BUSY", report, "busy")
                await sleep(1.0)  # a broadcast batch holds the session: the next page after it
                continue
            except SessionDead as exc:
                await self._session_ended(record, exc.code)
                return await self._end(user_id, "failed", exc.code, report, "session_dead")
            except TransientError as exc:
                failures += 1
                if failures >= TRANSIENT_TRIES:
                    return await self._end(user_id, "failed", exc.code, report)
                await sleep(2.0 ** failures)
                continue
            except GatewayError as exc:
                return await self._end(user_id, "failed", exc.code, report)
            failures = 0
            status, complete = await self._save(user_id, job, page, found, record.account_id)
            if status == "cancelling":
                return await self._end(user_id, "cancelled", "", report)
            if complete:
                return await self._complete(user_id, report)
            await report(await self._progress(user_id, "running"))

    # --- steps ----------------------------------------------------------------------------------

    async def _save(self, user_id: int, job: group_imports.ImportRow, page: DialogPage,
                    found: dict[int, list[ForumTopic]] | None = None,
                    account_id: int | None = None) -> tuple[str, bool]:
        """Merge one page (groups not yet seen by this import) and its forums' topics, and move the
        cursor on."""
        seen = set(job.seen)
        fresh = [g for g in importable(page.groups) if g.peer_id not in seen]
        folder, offset, complete = job.folder, page.next_offset, False
        if not offset:
            if job.folder == MAIN_FOLDER:
                folder = ARCHIVE_FOLDER
            else:
                complete = True
        now = self.now()
        async with self.db.transaction() as conn:
            await users.lock(conn, user_id)
            new, updated = await groups.merge(conn, user_id, fresh, now, account_id)
            await group_traits.record_forums(conn, user_id, [g.peer_id for g in fresh],
                                             [g.peer_id for g in page.groups if g.is_forum], account_id)
            await topics.record(conn, user_id, found or {}, now, account_id)
            status = await group_imports.save_page(
                conn, user_id, folder=folder, page_offset=offset, read=page.read,
                peers=[g.peer_id for g in fresh], new=new, updated=updated, now=now)
        return status, complete

    async def _wait(self, user_id: int, seconds: int, report: Report, sleep: Sleep) -> bool:
        """Sleep off a flood wait (reported); False when the import was cancelled meanwhile."""
        if seconds <= self.short_wait:
            await report(await self._progress(user_id, "waiting", wait_seconds=seconds))
            await sleep(float(seconds))
            return True
        resume_at = self.now() + timedelta(seconds=seconds)
        async with self.db.transaction() as conn:
            status = await group_imports.set_waiting(conn, user_id, resume_at, self.now())
        if status == "cancelling":
            return False
        log.info("group import waits %ss user_id=%s", seconds, user_id)
        await report(await self._progress(user_id, "waiting", wait_seconds=seconds, resume_at=resume_at))
        while (left := (resume_at - self.now()).total_seconds()) > 0:
            await sleep(min(HEARTBEAT, left))
            async with self.db.transaction() as conn:
                if await group_imports.touch(conn, user_id, self.now()) == "cancelling":
                    return False
        return True

    async def _complete(self, user_id: int, report: Report) -> ImportProgress:
        now = self.now()
        async with self.db.transaction() as conn:
            await users.lock(conn, user_id)
            job = await group_imports.get(conn, user_id)
            assert job is not None
            gone = await groups.mark_gone_except(conn, user_id, job.seen, GONE_REASON, now, job.account_id)
            await group_imports.finish(conn, user_id, "done", "", now)
            counts = await groups.counts(conn, user_id)
        result = ImportResult(total=job.new_count + job.updated_count, new=job.new_count,
                              updated=job.updated_count, gone=gone, disabled=counts.disabled)
        log.info("group import done user_id=%s read=%d new=%d updated=%d gone=%d", user_id, job.chats_read,
                 job.new_count, job.updated_count, gone)
        progress = ImportProgress("done", job.chats_read, len(job.seen), job.folder, result=result)
        await report(progress)
        return progress

    async def _end(self, user_id: int, status: str, error: str, report: Report,
                   shown: str | None = None) -> ImportProgress:
        async with self.db.transaction() as conn:
            await group_imports.finish(conn, user_id, status, error, self.now())
        log.info("group import %s user_id=%s error=%s", status, user_id, error)
        progress = await self._progress(user_id, shown or status, error=error)
        await report(progress)
        return progress

    async def _progress(self, user_id: int, status: str, *, wait_seconds: int = 0,
                        resume_at: datetime | None = None, error: str = "") -> ImportProgress:
        async with self.db.connection() as conn:
            job = await group_imports.get(conn, user_id)
        if job is None:
            return ImportProgress(status, 0, 0, MAIN_FOLDER, error=error)
        return ImportProgress(status, job.chats_read, len(job.seen), job.folder, wait_seconds, resume_at,
                              error=error)
