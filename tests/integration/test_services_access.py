from __future__ import annotations

from datetime import timedelta

import pytest

from domain.models import UserProfile
from services.admin import Actor
from tests.integration.services_support import ADMIN_ID, Env, make_env

pytestmark = pytest.mark.integration

ADMIN = Actor.admin(ADMIN_ID)


@pytest.fixture
def env(db_pool) -> Env:
    return make_env(db_pool)


async def test_open_mode_lets_a_new_user_in_and_keeps_the_profile(env: Env) -> None:
    view = await env.access.touch(UserProfile(100, "Grace", "Hopper", "grace", "en"))
    assert view.status == "allowed" and view.is_new and view.mode == "open"

    env.clock.advance(60)
    again = await env.access.touch(UserProfile(100, "Grace", "H.", "grace", "en"))
    assert again.allowed and not again.is_new
    row = await env.fetchrow("SELECT last_name, last_seen_at FROM users WHERE user_id = 100")
    assert row["last_name"] == "H." and row["last_seen_at"] == env.clock()


async def test_approval_mode_request_approve_and_expiry(env: Env) -> None:
    await env.set_mode("approval")
    view = await env.access.touch(UserProfile(200, "Bob"))
    assert view.status == "needs_approval" and view.can_request

    requested = await env.access.request_access(200)
    assert requested.outcome == "requested" and requested.notify_admins == (ADMIN_ID,)
    assert (await env.access.request_access(200)).outcome == "already_pending"
    assert (await env.access.check(200)).status == "pending"

    result = await env.admin.approve(ADMIN, 200, days=7)
    assert result.ok
    view = await env.access.check(200)
    assert view.allowed and view.expires_at == env.clock() + timedelta(days=7)
    kinds = [r["kind"] for r in await env.fetch("SELECT kind FROM notifications WHERE user_id = 200")]
    assert kinds == ["access_approved"]

    env.clock.advance(7 * 86400)
    view = await env.access.check(200)
    assert view.status == "expired" and not view.allowed and view.can_request


async def test_expiry_stops_a_running_broadcast_once_and_tells_the_user(env: Env) -> None:
    await env.set_mode("approval")
    await env.access.touch(UserProfile(300, "Eve"))
    await env.admin.grant(ADMIN, 300, 30)
    await env.ready(300)
    assert (await env.campaigns.start(300)).outcome == "started"

    assert await env.access.expire_due() == []  # not due yet
    env.clock.advance(30 * 86400 + 1)
    assert await env.access.expire_due() == [300]
    assert await env.fetchval("SELECT status FROM campaigns WHERE user_id = 300") == "stopped"
    assert await env.fetchval(
        "SELECT count(*) FROM notifications WHERE user_id = 300 AND kind = 'access_expired'") == 1
    # handled once: a second pass neither stops nor notifies again
    assert await env.access.expire_due() == []
    assert (await env.campaigns.start(300)).missing == ("access",)

    # a new grant clears the handled mark, so the next expiry is handled again
    await env.admin.grant(ADMIN, 300, 7)
    assert (await env.campaigns.start(300)).outcome == "started"
    env.clock.advance(7 * 86400)
    assert await env.access.expire_due() == [300]


async def test_expiry_is_ignored_in_open_mode(env: Env) -> None:
    await env.access.touch(UserProfile(310))
    await env.admin.grant(ADMIN, 310, 7)
    env.clock.advance(8 * 86400)
    assert (await env.access.check(310)).allowed
    assert await env.access.expire_due() == []


async def test_whitelist_mode_is_invitation_only(env: Env) -> None:
    await env.set_mode("whitelist")
    view = await env.access.touch(UserProfile(400))
    assert view.status == "invitation_only" and not view.can_request
    assert (await env.access.request_access(400)).outcome == "not_allowed"
    assert await env.fetchval("SELECT access_status FROM users WHERE user_id = 400") == "none"

    # an invitation may come before the user's first /start
    await env.admin.grant(ADMIN, 401, 0)
    view = await env.access.touch(UserProfile(401))
    assert view.allowed and view.expires_at is None and not view.is_new


async def test_banned_users_are_denied_in_every_mode(env: Env) -> None:
    await env.access.touch(UserProfile(500))
    await env.admin.grant(ADMIN, 500, 0)
    await env.admin.ban(ADMIN, 500)
    for mode in ("open", "approval", "whitelist"):
        await env.set_mode(mode)
        assert (await env.access.touch(UserProfile(500))).status == "banned"
    assert (await env.access.request_access(500)).outcome == "banned"


async def test_admins_always_have_access(env: Env) -> None:
    await env.set_mode("whitelist")
    view = await env.access.touch(UserProfile(ADMIN_ID))
    assert view.allowed and view.is_admin
    assert env.access.is_admin(ADMIN_ID) and not env.access.is_admin(2)


async def test_the_language_is_set_on_first_contact_and_changed_only_by_choice(env: Env) -> None:
    """U12: users.language is the bot's language: the first language seen, then the user's choice."""
    view = await env.access.touch(UserProfile(150, "Ivan", language="ru"))
    assert view.language == "ru"
    env.clock.advance(60)
    again = await env.access.touch(UserProfile(150, "Ivan", language="en"))  # the app's language changed
    assert again.language == "ru"
    await env.access.set_language(150, "en")
    assert (await env.access.touch(UserProfile(150, "Ivan", language="ru"))).language == "en"
    assert await env.fetchval("SELECT language FROM users WHERE user_id = 150") == "en"


async def test_a_row_made_before_first_contact_takes_the_first_language(env: Env) -> None:
    await env.admin.grant(ADMIN, 160, 0)  # an admin grants access before the person ever wrote
    assert await env.fetchval("SELECT language FROM users WHERE user_id = 160") == ""
    assert (await env.access.touch(UserProfile(160, "Olga", language="ru"))).language == "ru"
