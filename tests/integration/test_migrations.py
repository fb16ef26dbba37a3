from __future__ import annotations

import asyncio

import asyncpg
import pytest

from storage.migrator import MigrationError, apply_migrations, discover, is_at_head, pending
from storage.repositories import campaigns

pytestmark = pytest.mark.integration


async def test_all_migrations_apply_to_an_empty_database(empty_db_url):
    applied = await apply_migrations(empty_db_url)
    assert applied == [m.filename for m in discover()]
    conn = await asyncpg.connect(empty_db_url)
    try:
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
        assert {"users", "accounts", "groups", "messages", "campaigns", "rounds", "attempts", "settings",
                "audit_log", "notifications", "schema_migrations"} <= tables
        assert await is_at_head(conn)
        # the scheduler's due query is served by an index
        plan = await conn.fetchval(
            "EXPLAIN (FORMAT TEXT) SELECT user_id FROM campaigns WHERE status = 'running' AND next_run_at <= now()"
        )
        assert plan is not None
        index = await conn.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'campaigns_status_next_run_at_idx'"
        )
        assert "(status, next_run_at)" in index
    finally:
        await conn.close()
    # applying again is a no-op
    assert await apply_migrations(empty_db_url) == []


async def test_concurrent_migrators_apply_each_file_once(empty_db_url):
    results = await asyncio.gather(*(apply_migrations(empty_db_url) for _ in range(4)))
    applied = [name for result in results for name in result]
    assert sorted(applied) == sorted(m.filename for m in discover())


async def test_newest_migration_applies_over_data_from_the_previous_head(empty_db_url):
    migrations = discover()
    assert len(migrations) >= 2, "needs a previous head to upgrade from"
    previous, newest = migrations[:-1], migrations[-1]
    await apply_migrations(empty_db_url, previous)
    conn = await asyncpg.connect(empty_db_url)
    try:
        assert [m.filename for m in await pending(conn, migrations)] == [newest.filename]
        await conn.execute("INSERT INTO users (user_id, first_name, access_status) VALUES (42, 'Ada', 'granted')")
        await conn.execute(
            "INSERT INTO accounts (user_id, phone, tg_user_id, session_enc) VALUES (42, '+15550001', 7, '\\x01')"
        )
        await conn.execute("INSERT INTO groups (user_id, peer_id, kind, title, selected) VALUES (42, 9, 'group', 'G', true)")
        await conn.execute("INSERT INTO messages (user_id, version, text) VALUES (42, 1, 'hello')")
        await conn.execute("INSERT INTO campaigns (user_id, status, interval_seconds) VALUES (42, 'running', 3600)")
    finally:
        await conn.close()

    assert await apply_migrations(empty_db_url, migrations) == [newest.filename]

    conn = await asyncpg.connect(empty_db_url)
    try:
        user = await conn.fetchrow("SELECT first_name, access_status FROM users WHERE user_id = 42")
        assert dict(user) == {"first_name": "Ada", "access_status": "granted"}
        assert await conn.fetchval("SELECT title FROM groups WHERE user_id = 42") == "G"
        assert await conn.fetchval("SELECT text FROM messages WHERE user_id = 42") == "hello"
        assert await conn.fetchval("SELECT interval_seconds FROM campaigns WHERE user_id = 42") == 3600
        assert await is_at_head(conn)
    finally:
        await conn.close()


async def test_an_edited_applied_migration_is_refused(empty_db_url):
    migrations = discover()
    await apply_migrations(empty_db_url, migrations)
    edited = [*migrations[:-1], type(migrations[-1])(migrations[-1].version, migrations[-1].name,
                                                       migrations[-1].sql + "\n-- edited")]
    with pytest.raises(MigrationError):
        await apply_migrations(empty_db_url, edited)


async def test_schema_constraints_hold(db_url):
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("INSERT INTO users (user_id) VALUES (1)")
        await conn.execute("INSERT INTO groups (user_id, peer_id, kind) VALUES (1, 5, 'group')")
        await conn.execute("INSERT INTO messages (user_id, version, text) VALUES (1, 1, 'x')")
        round_id = await conn.fetchval(
            "INSERT INTO rounds (user_id, message_id, planned_at) SELECT 1, message_id, now() FROM messages RETURNING round_id"
        )
        group_id = await conn.fetchval("SELECT group_id FROM groups")
        await conn.execute("INSERT INTO attempts (round_id, group_id, peer_id, kind) VALUES ($1, $2, 5, 'group')",
                           round_id, group_id)
        # one attempt per (round, group)
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute("INSERT INTO attempts (round_id, group_id, peer_id, kind) VALUES ($1, $2, 5, 'group')",
                               round_id, group_id)
        # one unfinished round per user
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO rounds (user_id, message_id, planned_at) SELECT 1, message_id, now() + interval '1h' FROM messages"
            )
        # a connected account needs a session and a disconnected one keeps none
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("INSERT INTO accounts (user_id, phone, tg_user_id, status) VALUES (1, '+1', 1, 'connected')")
    finally:
        await conn.close()


async def test_messages_rotation_upgrade_keeps_the_current_message_as_message_1(empty_db_url):
    """U9's migration: of the versions saved before it, the latest is the active message 1; a writer
    that knows nothing of positions still replaces message 1."""
    migrations = discover()
    index = next(i for i, m in enumerate(migrations) if m.name.endswith("messages_rotation_albums"))
    await apply_migrations(empty_db_url, migrations[:index])
    conn = await asyncpg.connect(empty_db_url)
    try:
        await conn.execute("INSERT INTO users (user_id) VALUES (1), (2)")
        await conn.execute("INSERT INTO messages (user_id, version, text) VALUES (1, 1, 'old'), (1, 2, 'current'),"
                           " (2, 1, 'only')")
    finally:
        await conn.close()
    await apply_migrations(empty_db_url, migrations)
    conn = await asyncpg.connect(empty_db_url)
    try:
        active = await conn.fetch("SELECT user_id, text, position FROM messages WHERE active ORDER BY user_id")
        assert [tuple(r) for r in active] == [(1, "current", 1), (2, "only", 1)]
        await conn.execute("INSERT INTO messages (user_id, version, text) VALUES (1, 3, 'newer')")
        await conn.execute("INSERT INTO messages (user_id, version, text, position) VALUES (1, 4, 'second', 2)")
        assert [r["text"] for r in await conn.fetch(
            "SELECT text FROM messages WHERE user_id = 1 AND active ORDER BY position")] == ["newer", "second"]
        assert await conn.fetchval("SELECT rotation FROM campaigns WHERE user_id = 1") is None  # no row yet
    finally:
        await conn.close()


async def test_several_accounts_upgrade_makes_each_users_one_account_current_with_all_it_had(empty_db_url):
    """U8's migration over data of the previous head: each user's one account is current, and its
    groups, messages, broadcast and history belong to it; a user with no account keeps a draft."""
    migrations = discover()
    index = next(i for i, m in enumerate(migrations) if m.name.endswith("several_accounts_per_user"))
    await apply_migrations(empty_db_url, migrations[:index])
    conn = await asyncpg.connect(empty_db_url)
    try:
        await conn.execute("INSERT INTO users (user_id, first_name) VALUES (1, 'Ada'), (2, 'Bo'), (3, 'Cy')")
        await conn.execute(
            """INSERT INTO accounts (user_id, phone, tg_user_id, session_enc) VALUES (1, '+15550001', 71, '\\x01');
               INSERT INTO accounts (user_id, phone, tg_user_id, status, disconnected_reason)
               VALUES (3, '+15550003', 73, 'disconnected', 'logout')""")
        await conn.execute("""INSERT INTO groups (user_id, peer_id, kind, title, selected)
                              VALUES (1, 9, 'group', 'G9', true), (1, 8, 'group', 'G8', false),
                                     (3, 9, 'group', 'C9', true)""")
        await conn.execute("""INSERT INTO messages (user_id, version, text, position)
                              VALUES (1, 1, 'first', 1), (1, 2, 'second', 2), (2, 1, 'draft', 1)""")
        await conn.execute(
            """INSERT INTO campaigns (user_id, status, interval_seconds, next_run_at, rotation, window_start, window_end)
               VALUES (1, 'running', 3600, now() - interval '1 minute', 'rnd', 540, 1320), (2, 'stopped', 900, NULL,
                       'seq', NULL, NULL)""")
        round_id = await conn.fetchval(
            """INSERT INTO rounds (user_id, message_id, planned_at, finished_at, status, total, sent)
               SELECT 1, message_id, now() - interval '2 hours', now() - interval '2 hours', 'done', 1, 1
               FROM messages WHERE user_id = 1 AND version = 1 RETURNING round_id""")
        await conn.execute("UPDATE campaigns SET last_round_id = $1 WHERE user_id = 1", round_id)
        await conn.execute("""INSERT INTO attempts (round_id, group_id, peer_id, kind, status)
                              SELECT $1, group_id, peer_id, kind, 'sent' FROM groups WHERE user_id = 1 AND peer_id = 9""",
                           round_id)
        await conn.execute("INSERT INTO group_imports (user_id, status) VALUES (1, 'done')")
        await conn.execute("INSERT INTO round_summaries (user_id, day, rounds, total, sent) VALUES (1, '2026-01-01', 3, 6, 6)")
    finally:
        await conn.close()

    await apply_migrations(empty_db_url, migrations)

    conn = await asyncpg.connect(empty_db_url)
    try:
        accounts = dict(await conn.fetch("SELECT user_id, account_id FROM accounts"))
        current = dict(await conn.fetch("SELECT user_id, current_account_id FROM users"))
        assert current == {1: accounts[1], 2: None, 3: accounts[3]}
        for table in ("groups", "messages", "campaigns", "rounds", "group_imports", "round_summaries"):
            rows = await conn.fetch(f"SELECT DISTINCT user_id, account_id FROM {table}")
            assert all(r["account_id"] == current[r["user_id"]] for r in rows), (table, rows)
        assert await conn.fetchval("SELECT count(*) FROM groups WHERE account_id = $1", accounts[1]) == 2
        assert [r["text"] for r in await conn.fetch(
            "SELECT text FROM messages WHERE account_id = $1 AND active ORDER BY position", accounts[1])] == [
            "first", "second"]
        campaign = await conn.fetchrow("SELECT * FROM campaigns WHERE account_id = $1", accounts[1])
        assert (campaign["status"], campaign["interval_seconds"], campaign["rotation"], campaign["window_start"],
                campaign["last_round_id"]) == ("running", 3600, "rnd", 540, round_id)
        assert await conn.fetchval("SELECT count(*) FROM attempts WHERE round_id = $1", round_id) == 1
        # the scheduler's due scan finds the running broadcast by its account
        due = await conn.fetch(campaigns.DUE_QUERY, 10)
        assert [(r["user_id"], r["account_id"]) for r in due] == [(1, accounts[1])]
        # the draft of the user with no account goes to the first account they connect
        bo = await conn.fetchval("INSERT INTO accounts (user_id, phone, tg_user_id, session_enc) "
                                 "VALUES (2, '+15550002', 72, '\\x02') RETURNING account_id")
        assert await conn.fetchval("SELECT current_account_id FROM users WHERE user_id = 2") == bo
        assert await conn.fetchval("SELECT account_id FROM messages WHERE user_id = 2") == bo
        assert await conn.fetchval("SELECT interval_seconds FROM campaigns WHERE account_id = $1", bo) == 900
        # a second account of a user: another Telegram account, its own chat rows for the same peer
        second = await conn.fetchval("INSERT INTO accounts (user_id, phone, tg_user_id, session_enc) "
                                     "VALUES (1, '+15550004', 74, '\\x03') RETURNING account_id")
        await conn.execute("INSERT INTO groups (user_id, account_id, peer_id, kind) VALUES (1, $1, 9, 'group')", second)
        # one row per (bot user, Telegram account)
        with pytest.raises(asyncpg.UniqueViolationError, match="accounts_user_id_tg_user_id_key"):
            await conn.execute("INSERT INTO accounts (user_id, phone, tg_user_id, status) "
                               "VALUES (1, '+15550001', 71, 'disconnected')")
    finally:
        await conn.close()
