"""The round engine's database port (``services.engine.ports.RoundStore``) on asyncpg.

A job holds one pooled connection across the statements of its batch (saving the pool's reset
query per statement) and gives it back during pacing waits, so the pool stays free for other
jobs. Every statement is a repository function; this module only holds the connection, the
media cache and the two-statement group migration together.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from domain.models import UnknownHistory, utc_now
from storage.db import Database
from storage.repositories import accounts, attempts, campaigns, groups, notifications, rounds
from storage.repositories import media as media_repo
from storage.repositories.attempts import Claimed, Outcome, RoundContext, Settled, StoredMessage
from storage.repositories.rounds import FinishedRound

MEDIA_CACHE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class StoredMedia:
    """A media row with its bytes, as the engine uploads it."""

    kind: str
    data: bytes
    filename: str
    mime_type: str
    width: int = 0
    height: int = 0
    duration: float = 0.0
    thumb: bytes | None = None
    sha256: str = ""  # names the content: the gateway sends it once per account


class MediaCache:
    """Media rows are immutable: keep recently used ones in memory, bounded by total size."""

    def __init__(self, max_bytes: int = MEDIA_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[int, StoredMedia] = OrderedDict()
        self._size = 0

    async def get(self, conn: asyncpg.Connection, media_id: int) -> StoredMedia | None:
        media = self._items.get(media_id)
        if media is not None:
            self._items.move_to_end(media_id)
            return media
        record = await media_repo.get(conn, media_id)
        data = await media_repo.data(conn, media_id) if record is not None else None
        if record is None or data is None:
            return None
        media = StoredMedia(record.kind, data, record.filename, record.mime_type, record.width, record.height,
                            record.duration, await media_repo.thumb(conn, media_id), record.sha256)
        self._items[media_id] = media
        self._size += len(media.data)
        while self._size > self.max_bytes and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self._size -= len(old.data)
        return media


class RoundStore:
    """Opens a ``RoundUnit`` per job; the media cache is shared by the jobs of the process."""

    def __init__(self, db: Database, media: MediaCache | None = None) -> None:
        self.db = db
        self.media = media or MediaCache()

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[RoundUnit]:
        unit = RoundUnit(self.db, self.media)
        try:
            yield unit
        finally:
            await unit.release()


class RoundUnit:
    """One job's database work on one connection, taken on first use and given back on request."""

    def __init__(self, db: Database, media: MediaCache) -> None:
        self.db = db
        self._media = media
        self._conn: asyncpg.Connection | None = None

    async def _get(self) -> asyncpg.Connection:
        if self._conn is None:
            self._conn = await self.db.pool.acquire()
        return self._conn

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self.db.pool.release(conn)

    async def reset(self) -> None:
        await self.release()

    async def release_if_scarce(self) -> None:
        pool = self.db.pool
        if self._conn is not None and pool.get_idle_size() == 0 and pool.get_size() >= pool.get_max_size():
            await self.release()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with (await self._get()).transaction():
            yield

    # --- rounds and attempts -------------------------------------------------------------------

    async def round_user(self, round_id: int) -> int | None:
        return await rounds.user_of(await self._get(), round_id)

    async def start_batch(self, round_id: int, user_id: int, limit: int) -> RoundContext | None:
        return await attempts.start_batch(await self._get(), round_id, user_id, limit)

    async def media(self, media_id: int) -> StoredMedia | None:
        return await self._media.get(await self._get(), media_id)

    async def message(self, message_id: int) -> StoredMessage | None:
        return await attempts.stored_message(await self._get(), message_id)

    async def claim(self, round_id: int, attempt_id: int, message_id: int,
                    previous: Outcome | None) -> Claimed | None:
        claimed, _ = await attempts.claim(await self._get(), round_id, attempt_id, message_id, previous)
        return claimed

    async def claim_blocker(self, attempt_id: int) -> str:
        return await attempts.claim_blocker(await self._get(), attempt_id)

    async def write_outcome(self, outcome: Outcome) -> bool:
        return await attempts.write_outcome(await self._get(), outcome)

    async def settle(self, round_id: int, last: Outcome | None, *, finish: bool,
                     summary_extra: dict[str, Any], wait_floor: float, jitter: float) -> Settled:
        return await attempts.settle(await self._get(), round_id, last, finish=finish,
                                     summary_extra=summary_extra, wait_floor=wait_floor, jitter=jitter)

    async def expect_job(self, round_id: int, delay: float) -> None:
        await rounds.expect_job(await self._get(), round_id, delay)

    async def defer(self, attempt_id: int, seconds: float) -> None:
        await attempts.defer(await self._get(), attempt_id, seconds)

    async def skip(self, attempt_id: int, code: str, detail: str) -> bool:
        return await attempts.mark_skipped(await self._get(), attempt_id, code, detail)

    async def skip_open(self, round_id: int, code: str, detail: str) -> int:
        return await attempts.skip_open(await self._get(), round_id, code, detail)

    async def finish_round(self, round_id: int, status: str) -> FinishedRound | None:
        return await rounds.finish_round(await self._get(), round_id, status)

    async def migrate_group(self, round_id: int, user_id: int, attempt_id: int, group_id: int,
                            new_peer_id: int, new_access_hash: int) -> bool:
        conn = await self._get()
        async with conn.transaction():
            other = await groups.migrate(conn, user_id, group_id, new_peer_id, new_access_hash)
            # the user has the supergroup as another group with its own attempt: one post, not two
            if other is not None and await attempts.in_round(conn, round_id, other):
                return False
            await attempts.retarget(conn, attempt_id, new_peer_id, new_access_hash)
        return True

    # --- groups, campaigns, accounts, notifications --------------------------------------------

    async def unknown_error_history(self, round_id: int, user_id: int, group_id: int, attempt_id: int,
                                    code: str) -> UnknownHistory:
        return await attempts.unknown_error_history(await self._get(), round_id, user_id, group_id,
                                                    attempt_id, code)

    async def restriction_told(self, account_id: int | None, code: str) -> bool:
        return await campaigns.restriction_told(await self._get(), account_id, code)

    async def disable_group(self, group_id: int, reason: str) -> str | None:
        return await groups.disable(await self._get(), group_id, reason)

    async def pause_campaign(self, account_id: int | None, seconds: float, reason: str) -> datetime | None:
        return await campaigns.pause(await self._get(), account_id, seconds, reason)

    async def paused_until(self, account_id: int | None) -> tuple[datetime | None, datetime] | None:
        return await campaigns.paused_until(await self._get(), account_id)

    async def stop_campaign(self, account_id: int | None) -> None:
        await campaigns.stop(await self._get(), None, account_id=account_id)

    async def disconnect_account(self, account_id: int | None, reason: str) -> None:
        await accounts.disconnect(await self._get(), account_id, reason)

    async def notify(self, user_id: int, kind: str, payload: dict[str, Any], dedupe_key: str) -> None:
        await notifications.enqueue(await self._get(), user_id, kind, payload, dedupe_key, utc_now())
