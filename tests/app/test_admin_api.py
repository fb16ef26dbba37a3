"""The HTTP admin API against real PostgreSQL and Redis: auth, actions, audit, errors, runtime figures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from config.settings import Settings
from metrics import REGISTRY
from roles.app.auth import PUBLIC_PATHS
from roles.app.deps import Services, build_services
from roles.app.server import build_app
from services.admin import AdminService
from services.engine import ROUNDS_QUEUE
from storage import keys
from storage.db import Database
from storage.queue import JobQueue
from tests.app.conftest import AUTH, TOKEN_NAMES, TOKENS

pytestmark = pytest.mark.integration

UID = 1001


# --- seeding ----------------------------------------------------------------------------------------


async def add_user(pool: asyncpg.Pool, uid: int, at: Any, *, first_name: str = "", access_status: str = "none",
                   requested_at: Any = None, banned: bool = False, expires_at: Any = None) -> None:
    await pool.execute(
        """INSERT INTO users (user_id, first_name, access_status, access_requested_at, banned, access_expires_at,
                              created_at, last_seen_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $7)""",
        uid, first_name, access_status, requested_at, banned, expires_at, at,
    )


async def connect_account(pool: asyncpg.Pool, uid: int, session_enc: bytes, phone: str = "+15550100123") -> None:
    await pool.execute(
        """INSERT INTO accounts (user_id, phone, tg_user_id, first_name, session_enc, status)
           VALUES ($1, $2, $3, 'Ann', $4, 'connected')""",
        uid, phone, uid + 500_000, session_enc,
    )


async def add_campaign(pool: asyncpg.Pool, uid: int, status: str, next_run_at: Any = None,
                       paused_until: Any = None, interval: int = 3600) -> None:
    await pool.execute(
        """INSERT INTO campaigns (user_id, status, interval_seconds, next_run_at, paused_until)
           VALUES ($1, $2, $3, $4, $5)""",
        uid, status, interval, next_run_at, paused_until,
    )


async def add_round(pool: asyncpg.Pool, uid: int, planned_at: Any, attempts: list[tuple[str, Any]],
                    finished: bool) -> None:
    """A round with one group per attempt: (status, finished_at)."""
    message_id = await pool.fetchval(
        """INSERT INTO messages (user_id, version, text) VALUES ($1, 1, 'hi')
           ON CONFLICT (user_id, version) DO UPDATE SET text = 'hi' RETURNING message_id""", uid)
    round_id = await pool.fetchval(
        """INSERT INTO rounds (user_id, message_id, planned_at, finished_at, status)
           VALUES ($1, $2, $3, $4, $5) RETURNING round_id""",
        uid, message_id, planned_at, planned_at if finished else None, "done" if finished else "running")
    for status, finished_at in attempts:
        peer = await pool.fetchval("SELECT coalesce(max(peer_id), 0) + 1 FROM groups")
        group_id = await pool.fetchval(
            "INSERT INTO groups (user_id, peer_id, kind, title) VALUES ($1, $2, 'group', 'g') RETURNING group_id",
            uid, peer)
        await pool.execute(
            """INSERT INTO attempts (round_id, group_id, peer_id, kind, status, finished_at)
               VALUES ($1, $2, $3, 'group', $4, $5)""",
            round_id, group_id, peer, status, finished_at)


async def audit_rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT actor_kind, actor_id, action, target_user_id, outcome, detail::text AS detail FROM audit_log "
        "ORDER BY audit_id")


def admin_routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, concrete path) of every registered non-public route."""
    found = []
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD" or path in PUBLIC_PATHS:
            continue
        found.append((route.method, path.replace("{user_id}", str(UID))))
    return found


async def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    return body


# --- auth -------------------------------------------------------------------------------------------


async def test_every_admin_route_refuses_a_missing_or_wrong_token(client, admin_app, db_pool):
    routes = admin_routes(admin_app)
    assert len(routes) == 22  # every admin route is covered below, none forgotten
    bad_headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKENS[0]}x"},
        {"Authorization": f"Basic {TOKENS[0]}"},
        {"Authorization": "Bearer "},
        {"Authorization": TOKENS[0]},
    ]
    for method, path in routes:
        for headers in bad_headers:
            response = await client.request(method, path, headers=headers, json={"days": 7, "mode": "approval"})
            await assert_error(response, 401, "unauthorized")
            assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    # nothing happened and nothing was written
    assert await db_pool.fetchval("SELECT count(*) FROM audit_log") == 0
    assert await db_pool.fetchval("SELECT count(*) FROM users") == 0
    assert await db_pool.fetchval("SELECT value::text FROM settings WHERE key = 'global_pause'") == "false"


async def test_wrong_token_is_named_invalid_in_the_challenge(client):
    missing = await client.get("/api/overview")
    wrong = await client.get("/api/overview", headers={"Authorization": "Bearer nope"})
    assert "invalid_token" not in missing.headers["WWW-Authenticate"]
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]


async def test_every_configured_token_is_accepted(client):
    for token in TOKENS:
        response = await client.get("/api/control", headers={"Authorization": f"bearer {token}"})
        assert response.status == 200
        assert await response.json() == {"access_mode": "open", "global_paused": False}


async def test_public_routes_need_no_token(client):
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["status"] == "ready"
    doc = await client.get("/openapi.json")
    assert doc.status == 200 and (await doc.json())["openapi"].startswith("3.1")


async def test_no_configured_token_closes_the_api(db_pool, redis_client, services):
    from aiohttp.test_utils import TestClient, TestServer

    app = build_app(Database(db_pool), redis_client, Settings(), services)
    async with TestClient(TestServer(app, host="127.0.0.1")) as closed:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}):
            await assert_error(await closed.get("/api/overview", headers=headers), 401, "unauthorized")


# --- actions and the audit log ------------------------------------------------------------------------


async def test_every_action_changes_state_and_is_audit_logged_as_api(client, db_pool, clock, cipher, gateway):
    now = clock()
    await add_user(db_pool, UID, now - timedelta(days=3), first_name="Ann")
    await add_user(db_pool, 1002, now - timedelta(days=2), access_status="pending", requested_at=now)
    await add_user(db_pool, 1003, now - timedelta(days=1), access_status="pending", requested_at=now)
    await connect_account(db_pool, UID, cipher.encrypt("session-of-ann"))
    await add_campaign(db_pool, UID, "running", next_run_at=now + timedelta(minutes=5))

    async def post(path: str, body: Any = None) -> dict[str, Any]:
        response = await client.post(path, headers=AUTH, json=body)
        assert response.status == 200, await response.text()
        return await response.json()

    granted = await post(f"/api/users/{UID}/grant", {"days": 7})
    assert granted["outcome"] == "ok" and granted["user_id"] == UID and granted["detail"]["days"] == 7
    row = await db_pool.fetchrow("SELECT access_status, access_expires_at FROM users WHERE user_id = $1", UID)
    assert row["access_status"] == "granted" and row["access_expires_at"] == now + timedelta(days=7)

    assert (await post(f"/api/users/{UID}/revoke"))["outcome"] == "ok"
    assert await db_pool.fetchval("SELECT access_status FROM users WHERE user_id = $1", UID) == "revoked"
    assert (await post(f"/api/users/{UID}/revoke"))["outcome"] == "no_change"

    banned = await post(f"/api/users/{UID}/ban")
    assert banned["outcome"] == "ok" and banned["detail"]["broadcast_stopped"] is True
    assert await db_pool.fetchval("SELECT status FROM campaigns WHERE user_id = $1", UID) == "stopped"
    assert (await post(f"/api/users/{UID}/unban"))["outcome"] == "ok"
    assert await db_pool.fetchval("SELECT banned FROM users WHERE user_id = $1", UID) is False

    assert (await post("/api/users/1002/approve", {"days": 30}))["detail"]["days"] == 30
    assert (await post("/api/users/1003/approve"))["detail"]["days"] == 0  # body optional: no expiry
    assert (await post("/api/users/1003/reject"))["outcome"] == "no_change"  # no longer pending
    assert await db_pool.fetchval("SELECT access_status FROM users WHERE user_id = 1002") == "granted"

    await db_pool.execute("UPDATE campaigns SET status = 'running', next_run_at = $2 WHERE user_id = $1", UID, now)
    assert (await post(f"/api/campaigns/{UID}/stop"))["outcome"] == "ok"
    assert (await post(f"/api/campaigns/{UID}/stop"))["outcome"] == "no_change"

    assert (await post(f"/api/users/{UID}/logout"))["outcome"] == "ok"
    assert [ref.session for ref in gateway.logged_out] == ["session-of-ann"]
    assert await db_pool.fetchval("SELECT status FROM accounts WHERE user_id = $1", UID) == "disconnected"

    assert (await post("/api/control/pause"))["outcome"] == "ok"
    assert (await (await client.get("/api/control", headers=AUTH)).json())["global_paused"] is True
    assert (await post("/api/control/resume"))["outcome"] == "ok"
    mode = await client.put("/api/control/access-mode", headers=AUTH, json={"mode": "whitelist"})
    assert mode.status == 200 and (await mode.json())["detail"]["previous"] == "open"
    assert await db_pool.fetchval("SELECT value::text FROM settings WHERE key = 'access_mode'") == '"whitelist"'

    rows = await audit_rows(db_pool)
    assert [(r["action"], r["target_user_id"]) for r in rows] == [
        ("grant", UID), ("revoke", UID), ("revoke", UID), ("ban", UID), ("unban", UID),
        ("approve", 1002), ("approve", 1003), ("reject", 1003), ("stop", UID), ("stop", UID),
        ("logout", UID), ("pause", None), ("resume", None), ("mode", None),
    ]
    assert {r["actor_kind"] for r in rows} == {"api"}
    assert {r["actor_id"] for r in rows} == {None}
    # the audit names the operator whose token matched (ADMIN_API_TOKENS=alice:...,ci:...)
    assert {orjson.loads(r["detail"])["actor_name"] for r in rows} == {TOKEN_NAMES[0]}
    other = {"Authorization": f"Bearer {TOKENS[1]}"}
    assert (await client.post("/api/control/pause", headers=other)).status == 200
    assert orjson.loads((await audit_rows(db_pool))[-1]["detail"])["actor_name"] == TOKEN_NAMES[1]


async def test_audit_log_pages_newest_first_by_cursor(client):
    for _ in range(3):
        assert (await client.post("/api/control/pause", headers=AUTH)).status == 200
        assert (await client.post("/api/control/resume", headers=AUTH)).status == 200
    first = await (await client.get("/api/audit?limit=4", headers=AUTH)).json()
    assert [e["action"] for e in first["items"]] == ["resume", "pause", "resume", "pause"]
    ids = [e["audit_id"] for e in first["items"]]
    assert ids == sorted(ids, reverse=True) and first["next_cursor"] == ids[-1]
    assert {e["actor_kind"] for e in first["items"]} == {"api"}
    second = await (await client.get(f"/api/audit?limit=4&before={first['next_cursor']}", headers=AUTH)).json()
    assert [e["action"] for e in second["items"]] == ["resume", "pause"]
    assert second["next_cursor"] is None
    assert max(e["audit_id"] for e in second["items"]) < min(ids)


async def test_unknown_users_are_404_and_the_attempt_is_audited(client, db_pool):
    await assert_error(await client.get("/api/users/999", headers=AUTH), 404, "not_found")
    for action in ("revoke", "unban", "reject", "logout"):
        await assert_error(await client.post(f"/api/users/999/{action}", headers=AUTH), 404, "not_found")
    await assert_error(await client.post("/api/campaigns/999/stop", headers=AUTH), 404, "not_found")
    rows = await audit_rows(db_pool)
    assert [(r["action"], r["outcome"], r["target_user_id"]) for r in rows] == [
        (a, "failed", 999) for a in ("revoke", "unban", "reject", "logout", "stop")]
    assert await db_pool.fetchval("SELECT count(*) FROM users") == 0


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("POST", f"/api/users/{UID}/grant", {"days": 5}, 422),
    ("POST", f"/api/users/{UID}/grant", {"days": -7}, 422),
    ("POST", f"/api/users/{UID}/grant", {"days": "7"}, 422),
    ("POST", f"/api/users/{UID}/grant", {"days": True}, 422),
    ("POST", f"/api/users/{UID}/grant", {"days": 7.0}, 422),
    ("POST", f"/api/users/{UID}/grant", {}, 422),
    ("POST", f"/api/users/{UID}/grant", [7], 422),
    ("POST", f"/api/users/{UID}/grant", True, 422),
    ("POST", f"/api/users/{UID}/grant", "days", 422),
    ("POST", f"/api/users/{UID}/grant", 7, 422),
    ("POST", f"/api/users/{UID}/grant", None, 400),
    ("POST", f"/api/users/{UID}/grant", b"{days: 7", 400),
    ("POST", f"/api/users/{UID}/approve", {"days": 1}, 422),
    ("POST", "/api/users/abc/grant", {"days": 7}, 422),
    ("POST", "/api/users/0/ban", None, 422),
    ("POST", "/api/users/-5/ban", None, 422),
    ("POST", "/api/users/99999999999999999999/ban", None, 422),
    ("GET", "/api/users/1_000", None, 422),
    ("PUT", "/api/control/access-mode", {"mode": "closed"}, 422),
    ("PUT", "/api/control/access-mode", {"mode": None}, 422),
    ("PUT", "/api/control/access-mode", {}, 422),
    ("PUT", "/api/control/access-mode", ["open"], 422),
    ("PUT", "/api/control/access-mode", "open", 422),
    ("PUT", "/api/control/access-mode", b"not json", 400),
    ("GET", "/api/users?page=-1", None, 422),
    ("GET", "/api/users?page=abc", None, 422),
    ("GET", "/api/users?size=0", None, 422),
    ("GET", "/api/users?size=101", None, 422),
    ("GET", "/api/users?size=", None, 422),
    ("GET", "/api/users?filter=banned", None, 422),
    ("GET", "/api/audit?limit=0", None, 422),
    ("GET", "/api/audit?limit=201", None, 422),
    ("GET", "/api/audit?before=0", None, 422),
    ("GET", "/api/audit?before=1.5", None, 422),
])
async def test_bad_input_is_refused_and_changes_nothing(client, db_pool, method, path, body, status):
    kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
    response = await client.request(method, path, headers=AUTH, **kwargs)
    await assert_error(response, status, "validation_error" if status == 422 else "bad_request")
    assert await db_pool.fetchval("SELECT count(*) FROM audit_log") == 0
    assert await db_pool.fetchval("SELECT count(*) FROM users") == 0


async def test_unknown_paths_and_methods_answer_in_the_error_shape(client):
    await assert_error(await client.get("/api/nothing-here", headers=AUTH), 404, "not_found")
    wrong_method = await client.delete("/api/users", headers=AUTH)
    await assert_error(wrong_method, 405, "method_not_allowed")
    assert "GET" in wrong_method.headers["Allow"]


async def test_unexpected_errors_are_500_without_details(db_pool, redis_client, api_settings, gateway, cipher):
    from aiohttp.test_utils import TestClient, TestServer

    class BrokenAdmin(AdminService):
        async def overview(self, actor):  # type: ignore[no-untyped-def]
            raise RuntimeError("connection string postgres://user:hunter2@db")

    base = build_services(api_settings, Database(db_pool), redis_client, gateway, cipher)
    broken = Services(admin=BrokenAdmin(base.admin.db, api_settings, base.admin.login), runtime=base.runtime,
                      limits=base.limits)
    app = build_app(Database(db_pool), redis_client, api_settings, broken)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        response = await test_client.get("/api/overview", headers=AUTH)
        body = await assert_error(response, 500, "internal_error")
        assert "hunter2" not in await response.text() and "Traceback" not in await response.text()
        assert body["error"]["message"] == "internal error"


async def test_requests_are_counted_by_route_template_and_status(client):
    def count(route: str, status: str) -> float:
        return REGISTRY.get_sample_value("http_requests_total", {"route": route, "status": status}) or 0.0

    before_404, before_401 = count("/api/users/{user_id}", "404"), count("/api/users/{user_id}", "401")
    before_unmatched = count("unmatched", "404")
    await client.get("/api/users/4242", headers=AUTH)
    await client.get("/api/users/4343", headers=AUTH)
    await client.get("/api/users/4242")
    await client.get("/no/such/route", headers=AUTH)
    assert count("/api/users/{user_id}", "404") == before_404 + 2
    assert count("/api/users/{user_id}", "401") == before_401 + 1
    assert count("unmatched", "404") == before_unmatched + 1


# --- reads --------------------------------------------------------------------------------------------


async def test_users_list_pages_filters_and_card(client, db_pool, clock, cipher):
    now = clock()
    await add_user(db_pool, 2001, now - timedelta(hours=3), first_name="Old", access_status="pending",
                   requested_at=now - timedelta(minutes=9))
    await add_user(db_pool, 2002, now - timedelta(hours=2), first_name="Mid", access_status="pending",
                   requested_at=now - timedelta(minutes=5))
    await add_user(db_pool, 2003, now - timedelta(hours=1), first_name="New", access_status="granted",
                   expires_at=now + timedelta(days=7))
    await connect_account(db_pool, 2003, cipher.encrypt("s"), phone="+15550123")
    await add_campaign(db_pool, 2003, "running", next_run_at=now + timedelta(minutes=1), interval=5400)
    # U8: a second Telegram account of the user, logged out
    await db_pool.execute("""INSERT INTO accounts (user_id, phone, tg_user_id, first_name, status, disconnected_reason)
                             VALUES (2003, '+15550456', 777, 'Zed', 'disconnected', 'logout')""")

    first = await (await client.get("/api/users?size=2", headers=AUTH)).json()
    assert [u["user_id"] for u in first["items"]] == [2003, 2002]
    assert (first["page"], first["pages"], first["size"], first["total"]) == (0, 2, 2, 3)
    assert first["items"][0]["connected"] is True and first["items"][0]["running"] is True
    last = await (await client.get("/api/users?size=2&page=99", headers=AUTH)).json()
    assert last["page"] == 1 and [u["user_id"] for u in last["items"]] == [2001]

    pending = await (await client.get("/api/users?filter=pending&size=1&page=1", headers=AUTH)).json()
    assert [u["user_id"] for u in pending["items"]] == [2002]  # oldest request first
    assert (pending["page"], pending["pages"], pending["total"]) == (1, 2, 2)
    assert pending["items"][0]["access_status"] == "pending"

    card = await (await client.get("/api/users/2003", headers=AUTH)).json()
    assert card["user_id"] == 2003 and card["name"] == "New"
    assert card["phone_masked"] == "+1•••0123" and "+15550123" not in str(card)
    assert card["interval_seconds"] == 5400 and card["running"] is True
    assert card["groups"] == {"total": 0, "selected": 0, "disabled": 0}
    assert [(a["name"], a["phone_masked"], a["connected"], a["current"], a["running"], a["interval_seconds"],
             a["disconnected_reason"]) for a in card["accounts"]] == [
        ("Ann", "+1•••0123", True, True, True, 5400, ""), ("Zed", "+1•••0456", False, False, False, None, "logout")]
    assert "+15550456" not in str(card) and "session" not in str(card["accounts"])
    assert card["access_status"] == "granted" and card["access"] == "allowed"
    # reads are not actions: nothing is audit-logged
    assert await db_pool.fetchval("SELECT count(*) FROM audit_log") == 0


async def test_runtime_figures_for_a_seeded_state(client, db_pool, redis_client: aioredis.Redis, clock,
                                                  api_settings):
    now = clock()
    # campaigns: one due 30 s ago, one due 10 s ago, one flood-paused (due but paused), one stopped
    for uid in (3001, 3002, 3003, 3004):
        await add_user(db_pool, uid, now - timedelta(days=1))
    await add_campaign(db_pool, 3001, "running", next_run_at=now - timedelta(seconds=30))
    await add_campaign(db_pool, 3002, "running", next_run_at=now - timedelta(seconds=10))
    await add_campaign(db_pool, 3003, "running", next_run_at=now - timedelta(hours=2),
                       paused_until=now + timedelta(hours=1))
    await add_campaign(db_pool, 3004, "stopped")
    # sends: 3 sent + 1 failed + 1 skipped within the hour, 2 sent before it, 1 still pending (open round)
    recent = now - timedelta(minutes=20)
    await add_round(db_pool, 3001, now - timedelta(hours=3),
                    [("sent", now - timedelta(hours=2)), ("sent", now - timedelta(minutes=61))], finished=True)
    await add_round(db_pool, 3002, now - timedelta(minutes=30),
                    [("sent", recent), ("sent", recent), ("failed", recent), ("skipped", recent)], finished=True)
    await add_round(db_pool, 3001, now - timedelta(minutes=10), [("sent", recent), ("pending", None)],
                    finished=False)
    # queue: 3 ready, 1 of them delivered (pending), 2 delayed
    queue = JobQueue(redis_client, ROUNDS_QUEUE, "worker-a")
    for n in range(3):
        assert await queue.enqueue(f"round:{n}", {"round_id": n})
    for n in range(3, 5):
        assert await queue.enqueue(f"round:{n}", {"round_id": n}, delay=600)
    assert len(await queue.fetch(count=1, block_ms=0)) == 1
    # workers: two fresh heartbeats, one older than the lease
    now_ms = int(now.timestamp() * 1000)
    lease_ms = int(api_settings.engine.lease_ttl * 1000)
    await redis_client.zadd(keys.WORKER_HEARTBEAT, {"worker-a": now_ms - 1000, "worker-b": now_ms - 4000,
                                                     "worker-dead": now_ms - lease_ms - 1})
    await db_pool.execute("UPDATE settings SET value = 'true'::jsonb WHERE key = 'global_pause'")

    response = await client.get("/api/runtime", headers=AUTH)
    assert response.status == 200
    runtime = await response.json()
    assert runtime["queue"] == {"ready": 2, "delayed": 2, "pending": 1, "pending_by_consumer": {"worker-a": 1}}
    assert runtime["workers"]["live"] == 2
    assert [(w["consumer"], w["age_seconds"]) for w in runtime["workers"]["items"]] == [
        ("worker-a", 1.0), ("worker-b", 4.0)]
    assert runtime["campaigns"] == {"running": 3, "open_rounds": 1, "flood_paused": 1}
    assert runtime["sends_last_hour"] == {"sent": 3, "failed": 1, "skipped": 1, "unknown": 0}
    assert runtime["scheduler_lag_seconds"] == 30.0
    assert runtime["global_paused"] is True


async def test_runtime_of_an_idle_system_is_all_zero(client):
    runtime = await (await client.get("/api/runtime", headers=AUTH)).json()
    assert runtime["queue"] == {"ready": 0, "delayed": 0, "pending": 0, "pending_by_consumer": {}}
    assert runtime["workers"] == {"live": 0, "items": []}
    assert runtime["sends_last_hour"] == {"failed": 0, "sent": 0, "skipped": 0, "unknown": 0}
    assert runtime["scheduler_lag_seconds"] == 0
    overview = await (await client.get("/api/overview", headers=AUTH)).json()
    assert overview == {"users": 0, "connected": 0, "running": 0, "pending_requests": 0,
                        "access_mode": "open", "global_paused": False}


def test_token_matching_compares_every_token_exactly():
    from config.settings import AdminToken, Secret
    from roles.app.auth import match_token

    tokens = (AdminToken("a", Secret("first-token")), AdminToken("b", Secret("")),
              AdminToken("c", Secret("second-token")))
    assert match_token("first-token", tokens) == tokens[0]
    assert match_token("second-token", tokens) == tokens[2]
    for wrong in ("", "first-toke", "first-token ", "FIRST-TOKEN", "second-token\x00", "\udcff"):
        assert match_token(wrong, tokens) is None
    assert match_token("anything", ()) is None


async def test_the_user_card_counts_every_round_including_the_summarised_days(client, db_pool, clock):
    await add_user(db_pool, UID, clock(), access_status="granted")
    message_id = await db_pool.fetchval(
        "INSERT INTO messages (user_id, version, text) VALUES ($1, 1, 'hi') RETURNING message_id", UID)
    await db_pool.execute(
        """INSERT INTO round_summaries (user_id, day, rounds, cancelled, total, sent, failed, skipped, unknown)
           VALUES ($1, '2026-01-02', 10, 1, 50, 40, 5, 3, 2)""", UID)
    await db_pool.execute(
        """INSERT INTO rounds (user_id, message_id, planned_at, finished_at, status, total, sent, failed)
           VALUES ($1, $2, $3, $3, 'done', 5, 4, 1)""", UID, message_id, clock())
    response = await client.get(f"/api/users/{UID}", headers=AUTH)
    assert response.status == 200
    history = (await response.json())["history"]
    assert history == {"rounds": 11, "cancelled": 1, "attempts": 55, "sent": 44, "failed": 6, "skipped": 3,
                       "unknown": 2, "since": "2026-01-02"}
