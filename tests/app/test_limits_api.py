"""/api/limits: the send caps per Telegram account, set globally and per user, every change audit-logged."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.app.conftest import AUTH
from tests.app.test_admin_api import UID, add_user, assert_error, audit_rows


async def test_global_caps_change_with_an_audit_row_and_bad_input_changes_nothing(client, db_pool, clock):
    got = await (await client.get("/api/limits", headers=AUTH)).json()
    assert got == {"defaults": {"minute": 10, "hour": 200, "day": 1500},
                   "global": {"minute": 10, "hour": 200, "day": 1500}}

    response = await client.put("/api/limits", headers=AUTH, json={"hour": 120, "day": 0})
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["outcome"] == "ok" and body["detail"]["after"] == {"minute": 10, "hour": 120, "day": 0}
    got = await (await client.get("/api/limits", headers=AUTH)).json()
    assert got["global"] == {"minute": 10, "hour": 120, "day": 0}
    again = await (await client.put("/api/limits", headers=AUTH, json={"hour": 120})).json()
    assert again["outcome"] == "no_change"

    for bad in ({"hour": -1}, {"week": 5}, {"hour": "12"}, {"hour": True}, {}, {"hour": 100001}):
        await assert_error(await client.put("/api/limits", headers=AUTH, json=bad), 422, "validation_error")
    await assert_error(await client.put("/api/limits", headers=AUTH, data=b"not json"), 400, "bad_request")
    got = await (await client.get("/api/limits", headers=AUTH)).json()
    assert got["global"] == {"minute": 10, "hour": 120, "day": 0}  # unchanged by any of them

    rows = [r for r in await audit_rows(db_pool) if r["action"] == "limits"]
    assert [(r["actor_kind"], r["outcome"]) for r in rows] == [("api", "ok"), ("api", "ok")]
    assert '"after"' in rows[0]["detail"] and '"no_change"' in rows[1]["detail"]


async def test_a_users_caps_override_some_windows_and_reset_drops_them(client, db_pool, clock):
    await add_user(db_pool, UID, clock() - timedelta(days=1))

    async def call(method: str, body: Any = None, uid: int = UID) -> Any:
        return await client.request(method, f"/api/users/{uid}/limits", headers=AUTH, json=body)

    got = await (await call("GET")).json()
    assert got == {"user_id": UID, "override": None, "effective": {"minute": 10, "hour": 200, "day": 1500},
                   "global": {"minute": 10, "hour": 200, "day": 1500}}
    assert (await (await call("PUT", {"minute": 3})).json())["outcome"] == "ok"
    assert (await (await call("PUT", {"day": 400})).json())["outcome"] == "ok"
    assert (await (await call("PUT", {"day": 400})).json())["outcome"] == "no_change"
    await client.put("/api/limits", headers=AUTH, json={"hour": 50})
    got = await (await call("GET")).json()
    assert got["override"] == {"minute": 3, "hour": None, "day": 400}
    assert got["effective"] == {"minute": 3, "hour": 50, "day": 400}  # the hour follows the global caps
    assert (await (await call("DELETE")).json())["outcome"] == "ok"
    assert (await (await call("DELETE")).json())["outcome"] == "no_change"
    assert (await (await call("GET")).json())["override"] is None
    await assert_error(await call("PUT", {"minute": -3}), 422, "validation_error")

    for method, body in (("GET", None), ("PUT", {"hour": 1}), ("DELETE", None)):
        await assert_error(await call(method, body, uid=999_999), 404, "not_found")
    assert await db_pool.fetchval("SELECT count(*) FROM send_caps WHERE user_id = 999999") == 0
    actions = [(r["target_user_id"], r["outcome"]) for r in await audit_rows(db_pool) if r["action"] == "limits"]
    assert (UID, "ok") in actions and (999_999, "failed") in actions
