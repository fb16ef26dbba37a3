from __future__ import annotations

import asyncio

import asyncpg
import pytest

from storage.migrator import MigrationError, apply_migrations, discover, is_at_head, pending

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
