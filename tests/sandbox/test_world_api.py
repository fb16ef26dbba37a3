"""The world's HTTP routes: control API under /sandbox/api and the adapter API under /sandbox/world."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from sandbox.world import World
from tests.sandbox.conftest_world import ANN, BEN, PASSWORD, make_world, serve_world


class Client:
    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base = base
        self.http = http

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else orjson.dumps(body)
        async with self.http.request(method, self.base + path, data=data,
                                     headers={"Content-Type": "application/json"}) as response:
            return response.status, orjson.loads(await response.read())

    async def world(self, call: str, **body: Any) -> dict[str, Any]:
        status, answer = await self.request("POST", f"/sandbox/world/{call}", body)
        assert status == 200, answer
        assert isinstance(answer, dict)
        return answer


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.fixture
async def client(world: World) -> AsyncIterator[Client]:
    async with serve_world(world) as base, aiohttp.ClientSession() as http:
        yield Client(base, http)


async def http_login(client: Client, world: World, phone: str = ANN) -> str:
    sent = await client.world("send_code", phone=phone)
    code = world.codes(phone)[0]["code"]
    done = await client.world("sign_in", phone=phone, session=sent["session"],
                              phone_code_hash=sent["phone_code_hash"], code=code)
    if not done["ok"]:
        assert done["error"] == "SESSION_PASSWORD_NEEDED"
        done = await client.world("check_password", phone=phone, session=sent["session"], password=PASSWORD)
    assert done["ok"] is True
    return str(done["session"])


# --- control API ------------------------------------------------------------------------------


async def test_accounts_can_be_added_one_or_many(client: Client, world: World) -> None:
    status, answer = await client.request("POST", "/sandbox/api/accounts", {
        "phone": "+15550004001", "first_name": "Dee", "password": "pw",
        "groups": [{"id": 41, "title": "Dee's", "kind": "group", "slow_mode": 5}]})
    assert (status, answer) == (200, {"phones": ["+15550004001"]})
    status, answer = await client.request("POST", "/sandbox/api/accounts", {"accounts": [
        {"phone": "+15550004002", "first_name": "Eve", "groups": []},
        {"phone": "+15550004003", "first_name": "Fay"}]})
    assert answer == {"phones": ["+15550004002", "+15550004003"]}

    status, accounts = await client.request("GET", "/sandbox/api/accounts")
    dee = next(a for a in accounts if a["phone"] == "+15550004001")
    assert dee["has_password"] is True and dee["groups"][0]["slow_mode"] == 5
    assert {a["phone"] for a in accounts} >= {ANN, BEN, "+15550004002", "+15550004003"}


async def test_bad_accounts_are_a_400(client: Client) -> None:
    status, answer = await client.request("POST", "/sandbox/api/accounts", {"phone": "12"})
    assert status == 400 and "phone" in answer["error"]


async def test_codes_are_listed_newest_first_and_phones_accept_any_spelling(client: Client) -> None:
    sent = await client.world("send_code", phone=ANN)
    await client.world("resend_code", phone=ANN, session=sent["session"], phone_code_hash=sent["phone_code_hash"])

    status, codes = await client.request("GET", f"/sandbox/api/accounts/{ANN}/codes")
    status2, same = await client.request("GET", "/sandbox/api/accounts/%2B15550001001/codes")

    assert status == status2 == 200 and codes == same
    assert [c["state"] for c in codes] == ["live", "replaced"]
    assert codes[0]["date"] >= codes[1]["date"]


async def test_unknown_account_and_group_are_404(client: Client) -> None:
    assert (await client.request("GET", "/sandbox/api/accounts/+15559999999/codes"))[0] == 404
    assert (await client.request("GET", "/sandbox/api/accounts/+15559999999/sessions"))[0] == 404
    assert (await client.request("DELETE", "/sandbox/api/accounts/+15559999999/sessions"))[0] == 404
    assert (await client.request("GET", "/sandbox/api/groups/12345/messages"))[0] == 404
    assert (await client.request("GET", "/sandbox/api/groups/abc/messages"))[0] == 400


async def test_sessions_are_listed_and_terminated(client: Client, world: World) -> None:
    session = await http_login(client, world)

    status, listed = await client.request("GET", f"/sandbox/api/accounts/{ANN}/sessions")
    assert status == 200 and len(listed) == 1 and listed[0]["user_id"] == 501
    status, answer = await client.request("DELETE", f"/sandbox/api/accounts/{ANN}/sessions")
    assert answer == {"revoked": 1}

    answer = await client.world("get_dialogs", session=session)
    assert answer == {"ok": False, "error": "SESSION_REVOKED", "code": 401}
    assert (await client.request("GET", f"/sandbox/api/accounts/{ANN}/sessions"))[1] == []


async def test_faults_can_be_added_listed_and_cleared(client: Client) -> None:
    status, fault = await client.request("POST", "/sandbox/api/faults",
                                         {"call": "send_code", "error": "FLOOD_WAIT", "seconds": 8, "times": -1})
    assert status == 200 and fault["times"] == -1
    assert (await client.request("GET", "/sandbox/api/faults"))[1] == [fault]

    answer = await client.world("send_code", phone=ANN)
    assert answer == {"ok": False, "error": "FLOOD_WAIT", "code": 420, "seconds": 8,
                      "description": "injected fault"}

    assert (await client.request("DELETE", "/sandbox/api/faults"))[1] == {"cleared": 1}
    assert (await client.world("send_code", phone=ANN))["ok"] is True


async def test_bad_fault_is_a_400(client: Client) -> None:
    status, answer = await client.request("POST", "/sandbox/api/faults", {"call": "nope", "error": "X"})
    assert status == 400 and "call" in answer["error"]


# --- world API --------------------------------------------------------------------------------


async def test_login_over_http_with_2fa(client: Client, world: World) -> None:
    sent = await client.world("send_code", phone=BEN)
    assert sent["ok"] is True and sent["phone"] == BEN and sent["session"] and sent["phone_code_hash"]
    code = world.codes(BEN)[0]["code"]

    needed = await client.world("sign_in", phone=BEN, session=sent["session"],
                                phone_code_hash=sent["phone_code_hash"], code=code)
    wrong = await client.world("check_password", phone=BEN, session=sent["session"], password="no")
    done = await client.world("check_password", phone=BEN, session=sent["session"], password=PASSWORD)

    assert needed["error"] == "SESSION_PASSWORD_NEEDED"
    assert wrong["error"] == "PASSWORD_HASH_INVALID"
    assert done["ok"] is True and done["user_id"] == 502 and done["first_name"] == "Ben"


async def test_dialogs_and_json_send_with_base64_media(client: Client, world: World) -> None:
    session = await http_login(client, world)
    dialogs = (await client.world("get_dialogs", session=session))["groups"]
    shared = next(g for g in dialogs if g["id"] == 1)
    data = b"GIF89a-bytes"

    sent = await client.world("send_message", session=session, group_id=1, access_hash=shared["access_hash"],
                              text="look", entities=[{"type": "italic", "offset": 0, "length": 4}],
                              media={"kind": "animation", "filename": "a.gif", "mime_type": "image/gif",
                                     "data_b64": base64.b64encode(data).decode()})

    assert sent["ok"] is True and sent["message_id"] == 1
    status, feed = await client.request("GET", "/sandbox/api/groups/1/messages")
    assert status == 200 and len(feed) == 1
    post = feed[0]
    assert post["from_phone"] == ANN and post["text"] == "look" and post["entities"][0]["type"] == "italic"
    assert post["media"]["size"] == len(data) and post["media"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert isinstance(post["date"], float) and isinstance(post["date_ms"], int)


async def test_multipart_send_carries_the_bytes(client: Client, world: World) -> None:
    session = await http_login(client, world)
    dialogs = (await client.world("get_dialogs", session=session))["groups"]
    access_hash = next(g["access_hash"] for g in dialogs if g["id"] == 2)
    data = bytes(range(256)) * 1000
    form = aiohttp.FormData()
    form.add_field("payload", orjson.dumps({
        "session": session, "group_id": 2, "access_hash": access_hash, "text": "doc",
        "media": {"kind": "document", "filename": "data.bin", "mime_type": "application/octet-stream"}}).decode(),
        content_type="application/json")
    form.add_field("media", data, filename="data.bin", content_type="application/octet-stream")

    async with client.http.post(client.base + "/sandbox/world/send_message", data=form) as response:
        answer = await response.json()

    assert answer["ok"] is True
    media = world.group_messages(2)[0]["media"]
    assert (media["size"], media["sha256"], media["filename"]) == (len(data), hashlib.sha256(data).hexdigest(),
                                                                   "data.bin")


async def test_world_errors_carry_name_code_and_data(client: Client, world: World) -> None:
    session = await http_login(client, world)
    dialogs = {g["id"]: g for g in (await client.world("get_dialogs", session=session))["groups"]}

    migrated = await client.world("send_message", session=session, group_id=6,
                                  access_hash=dialogs[6]["access_hash"], text="x")
    closed = await client.world("send_message", session=session, group_id=3,
                                access_hash=dialogs[3]["access_hash"], text="x")

    assert migrated == {"ok": False, "error": "CHAT_MIGRATED", "code": 400, "new_id": 60,
                        "new_access_hash": dialogs[60]["access_hash"]}
    assert closed == {"ok": False, "error": "CHAT_WRITE_FORBIDDEN", "code": 403}


async def test_network_fault_drops_the_connection(client: Client, world: World) -> None:
    await client.request("POST", "/sandbox/api/faults", {"call": "send_code", "error": "NETWORK"})

    with pytest.raises(aiohttp.ClientConnectionError):
        await client.request("POST", "/sandbox/world/send_code", {"phone": ANN})

    assert (await client.world("send_code", phone=ANN))["ok"] is True
    methods = [(e.method, e.ok, e.error) for e in world.events.since(0)]
    assert methods == [("send_code", False, "NETWORK"), ("send_code", True, None)]


async def test_malformed_world_requests_are_a_400(client: Client) -> None:
    status, answer = await client.request("POST", "/sandbox/world/sign_in", {"phone": ANN})
    assert status == 400 and answer["ok"] is False and answer["error"] == "BAD_REQUEST"
    status, answer = await client.request("POST", "/sandbox/world/send_message",
                                          {"session": "s", "group_id": "x", "access_hash": 1})
    assert status == 400
    async with client.http.post(client.base + "/sandbox/world/send_code", data=b"not json") as response:
        assert response.status == 400


async def test_world_calls_are_events_and_control_calls_are_not(client: Client, world: World) -> None:
    await http_login(client, world)
    await client.request("GET", f"/sandbox/api/accounts/{ANN}/sessions")
    await client.request("GET", "/sandbox/api/faults")
    assert [e.method for e in world.events.since(0)] == ["send_code", "sign_in"]
    assert all(e.api == "world" for e in world.events.since(0))
