"""The engine's statements at the repository level (issue 14): the opening statement writes nothing
when no send was interrupted (so it commits without a WAL flush), the round's first claim marks it
started, and a send a crash left in ``sending`` still becomes ``unknown`` at the next opening."""

from __future__ import annotations

import asyncpg
import pytest

from accounts.crypto import SessionCipher
from storage.db import Database
from storage.repositories import attempts, rounds
from storage.repositories.campaigns import DueCampaign
from tests.integration.engine_support import seed_user

pytestmark = pytest.mark.integration

UID = 7


async def _open_round(conn: asyncpg.Connection, cipher: SessionCipher, groups: int) -> tuple[int, int | None]:
    await seed_user(conn, cipher, UID, groups)
    account_id = await conn.fetchval("SELECT account_id FROM accounts WHERE user_id = $1", UID)
    planned = await conn.fetchval("SELECT now()")
    created = await rounds.create_rounds(conn, [DueCampaign(UID, account_id, planned, 3600)])
    assert len(created) == 1
    return created[0].round_id, account_id


async def _versions(conn: asyncpg.Connection, round_id: int) -> list[tuple[str, str]]:
    """The physical version (ctid, xmin) of the round's row and of its attempts: unchanged when
    nothing was written to them."""
    rows = await conn.fetch(
        """SELECT ctid::text, xmin::text FROM rounds WHERE round_id = $1
           UNION ALL (SELECT ctid::text, xmin::text FROM attempts WHERE round_id = $1 ORDER BY attempt_id)""",
        round_id)
    return [(r[0], r[1]) for r in rows]


async def test_the_opening_statement_writes_nothing_and_the_first_claim_starts_the_round(
    db: Database, cipher: SessionCipher
) -> None:
    async with db.connection() as conn:
        round_id, account_id = await _open_round(conn, cipher, 2)
        before = await _versions(conn, round_id)
        xid_before = int(await conn.fetchval("SELECT txid_current()"))

        ctx = await attempts.start_batch(conn, round_id, UID, account_id, 5)
        assert ctx is not None and len(ctx.candidates) == 2
        assert ctx.started_at is not None and ctx.lost == 0  # shown as now until a claim starts it
        # nothing written: no row version changed, and no transaction id was taken
        assert await _versions(conn, round_id) == before
        assert int(await conn.fetchval("SELECT txid_current()")) == xid_before + 1
        assert await conn.fetchval("SELECT started_at FROM rounds WHERE round_id = $1", round_id) is None

        # a second opening before any claim (a job put off by pacing or the window) starts nothing either
        again = await attempts.start_batch(conn, round_id, UID, account_id, 5)
        assert again is not None
        assert await conn.fetchval("SELECT started_at FROM rounds WHERE round_id = $1", round_id) is None

        first = ctx.candidates[0]
        claimed, _ = await attempts.claim(conn, round_id, first.attempt_id, ctx.message_id)
        assert claimed is not None
        started, planned = await conn.fetchrow("SELECT started_at, planned_at FROM rounds WHERE round_id = $1",
                                               round_id)
        assert started is not None
        # this claim started the round: it says so once, with the lag the round-lag metric observes
        assert claimed.started_lag == started - planned

        # the next claim (with the first outcome) leaves the start as it was
        sent = attempts.Outcome(first.attempt_id, "sent", sent_message_id=1)
        second, written = await attempts.claim(conn, round_id, ctx.candidates[1].attempt_id, ctx.message_id,
                                               sent)
        assert second is not None and written and second.started_lag is None
        assert await conn.fetchval("SELECT started_at FROM rounds WHERE round_id = $1", round_id) == started
        later = await attempts.start_batch(conn, round_id, UID, account_id, 5)
        assert later is not None and later.started_at == started


async def test_a_claim_refused_by_a_stop_does_not_start_the_round(db: Database, cipher: SessionCipher) -> None:
    async with db.connection() as conn:
        round_id, account_id = await _open_round(conn, cipher, 1)
        ctx = await attempts.start_batch(conn, round_id, UID, account_id, 5)
        assert ctx is not None
        await conn.execute("UPDATE campaigns SET status = 'stopped' WHERE user_id = $1", UID)
        claimed, _ = await attempts.claim(conn, round_id, ctx.candidates[0].attempt_id, ctx.message_id)
        assert claimed is None
        assert await conn.fetchval("SELECT started_at FROM rounds WHERE round_id = $1", round_id) is None
        # the round's end still gets a start time (the cancel writes it)
        await attempts.skip_open(conn, round_id, "STOPPED", "stopped")
        finished = await rounds.finish_round(conn, round_id, "cancelled")
        assert finished is not None and finished.started_at is not None


async def test_a_send_left_in_sending_becomes_unknown_at_the_next_opening(
    db: Database, cipher: SessionCipher
) -> None:
    async with db.connection() as conn:
        round_id, account_id = await _open_round(conn, cipher, 2)
        ctx = await attempts.start_batch(conn, round_id, UID, account_id, 5)
        assert ctx is not None
        claimed, _ = await attempts.claim(conn, round_id, ctx.candidates[0].attempt_id, ctx.message_id)
        assert claimed is not None
        # the holder dies here, mid-send; the next job's opening statement recovers it
        after = await attempts.start_batch(conn, round_id, UID, account_id, 5)
        assert after is not None and after.lost == 1
        assert [c.attempt_id for c in after.candidates] == [ctx.candidates[1].attempt_id]
        status = await conn.fetchval("SELECT status FROM attempts WHERE attempt_id = $1", claimed.attempt_id)
        assert status == "unknown"
