"""The bot's access cache (issue 14): no write for a known unchanged user, and every access change,
whoever writes it, invalidates it through PostgreSQL's notification before the next decision."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from domain.models import UserProfile
from services.access import AccessCache
from services.admin import Actor
from storage.access_events import AccessChangeListener
from tests.integration.services_support import ADMIN_ID, Env, make_env

pytestmark = pytest.mark.integration

ADMIN = Actor.admin(ADMIN_ID)
GRACE = UserProfile(100, "Grace", "Hopper", "grace", "en")


@pytest.fixture
def env(db_pool) -> Env:
    return make_env(db_pool)


@pytest.fixture
async def listening(env: Env) -> AsyncIterator[AccessChangeListener]:
    listener = AccessChangeListener(env.db, env.access.cache, retry=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    await asyncio.wait_for(listener.listening.wait(), 5)
    yield listener
    stop.set()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """A notification is delivered after the commit, on the listening connection: wait for it (bounded)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"not within 5 s: {what}")


async def forgotten(cache: AccessCache, user_id: int) -> None:
    await eventually(lambda: cache.get(user_id) is None, f"user {user_id} forgotten")


async def test_a_known_unchanged_user_is_decided_without_a_write(env: Env, listening: AccessChangeListener) -> None:
    first = await env.access.touch(GRACE)
    assert first.is_new and first.allowed
    seen = await env.fetchrow("SELECT last_seen_at, xmin::text AS version FROM users WHERE user_id = 100")

    env.clock.advance(60)
    again = await env.access.touch(GRACE)
    assert again.allowed and not again.is_new
    row = await env.fetchrow("SELECT last_seen_at, xmin::text AS version FROM users WHERE user_id = 100")
    assert (row["last_seen_at"], row["version"]) == (seen["last_seen_at"], seen["version"]), "no write"

    # a changed profile is written at once; last_seen_at is refreshed after seen_every
    renamed = await env.access.touch(UserProfile(100, "Grace", "H.", "grace", "en"))
    assert renamed.allowed
    assert (await env.fetchrow("SELECT last_name FROM users WHERE user_id = 100"))["last_name"] == "H."
    env.clock.advance(env.access.seen_every.total_seconds())
    await env.access.touch(UserProfile(100, "Grace", "H.", "grace", "en"))
    row = await env.fetchrow("SELECT last_seen_at FROM users WHERE user_id = 100")
    assert row["last_seen_at"] == env.clock()


async def test_a_ban_by_another_writer_is_effective_on_the_next_update(
    env: Env, listening: AccessChangeListener
) -> None:
    assert (await env.access.touch(GRACE)).allowed
    assert env.access.cache.get(100) is not None

    await env.admin.ban(ADMIN, 100)  # the admin service: its own transaction, no reference to the cache
    await forgotten(env.access.cache, 100)
    assert (await env.access.touch(GRACE)).status == "banned"

    # a raw SQL change (a script, another process) is announced too
    await env.admin.unban(ADMIN, 100)
    await forgotten(env.access.cache, 100)
    assert (await env.access.touch(GRACE)).allowed
    await env.db.pool.execute("UPDATE users SET banned = true WHERE user_id = 100")
    await forgotten(env.access.cache, 100)
    assert (await env.access.touch(GRACE)).status == "banned"


async def test_a_mode_change_clears_the_cache(env: Env, listening: AccessChangeListener) -> None:
    assert (await env.access.touch(GRACE)).allowed
    await env.set_mode("whitelist")
    await eventually(lambda: env.access.cache.mode is None, "mode forgotten")
    assert (await env.access.touch(GRACE)).status == "invitation_only"


async def test_without_the_listener_nothing_is_cached(env: Env) -> None:
    assert not env.access.cache.enabled
    await env.access.touch(GRACE)
    assert env.access.cache.get(100) is None and len(env.access.cache) == 0
    await env.admin.ban(ADMIN, 100)
    assert (await env.access.touch(GRACE)).status == "banned"


async def test_a_lost_listening_connection_turns_the_cache_off(env: Env, listening: AccessChangeListener) -> None:
    await env.access.touch(GRACE)
    assert env.access.cache.get(100) is not None
    pid = await env.db.pool.fetchval(
        "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database()")
    assert pid is not None
    await env.db.pool.execute("SELECT pg_terminate_backend($1)", pid)
    await eventually(lambda: env.access.cache.get(100) is None, "cache off after the connection was lost")
    await asyncio.wait_for(listening.listening.wait(), 5)  # reconnected; the cache starts empty
    assert len(env.access.cache) == 0


def test_a_record_read_before_an_invalidation_is_not_stored() -> None:
    cache = AccessCache()
    cache.set_enabled(True)
    generation = cache.generation
    cache.forget(100)  # a ban's notification arrives while the old record is being read
    from datetime import UTC, datetime

    from domain.models import UserRecord

    now = datetime.now(UTC)
    stale = UserRecord(100, "G", "", "", "", "granted", None, None, False, False, True, now, now)
    cache.store(stale, "open", generation)
    assert cache.get(100) is None
    cache.store(stale, "open", cache.generation)
    assert cache.get(100) == stale


async def test_a_new_time_zone_reaches_the_cached_view(env: Env, listening: AccessChangeListener) -> None:
    """U10.6: every time shown is on the zone in the access view; a change by any writer is announced."""
    assert (await env.access.touch(GRACE)).timezone == "UTC"
    assert env.access.cache.get(100) is not None
    await env.db.pool.execute("UPDATE users SET timezone = 'Europe/Berlin' WHERE user_id = 100")
    await forgotten(env.access.cache, 100)
    assert (await env.access.touch(GRACE)).timezone == "Europe/Berlin"
