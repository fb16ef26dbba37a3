"""Data-centre migration (issue 11.6): the sandbox's MTProto endpoint serves two data centres, answers
PHONE_MIGRATE_X for an account that lives in the other one, and the real Telethon adapter logs in
across the move; the saved session works after a restart and from another worker's gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from telethon.sessions import StringSession

from accounts.gateway import AccountRef, GroupRef, OutgoingMessage
from accounts.telethon import TelethonGateway
from accounts.telethon.sandbox import SandboxClientFactory
from config.settings import SandboxSettings, Settings
from sandbox.events import EventLog
from sandbox.mtproto import MTProtoServer, keys, start_mtproto_dcs
from sandbox.world import World

HOME, OTHER = 2, 4  # the endpoint clients start at, and the one the migrated account lives in
MOVED = "+15550004004"
STAYS = "+15550004002"
GROUP = 4501

@pytest.fixture
async def dcs(rsa_key: rsa.RSAPrivateKey) -> AsyncIterator[tuple[World, dict[int, MTProtoServer]]]:
    world = World(SandboxSettings(rate_limits=False), EventLog())
    world.seed({"accounts": [
        {"phone": MOVED, "first_name": "Moved", "dc": OTHER,
         "groups": [{"id": GROUP, "title": "Far group", "kind": "supergroup"}]},
        {"phone": STAYS, "first_name": "Stays", "groups": [{"id": GROUP, "title": "Far group", "kind": "supergroup"}]},
    ]})
    servers = await start_mtproto_dcs(world, "127.0.0.1", {HOME: 0, OTHER: 0}, rsa_key)
    yield world, servers
    for server in servers.values():
        await server.close()


def gateway(servers: dict[int, MTProtoServer], rsa_key: rsa.RSAPrivateKey) -> TelethonGateway:
    factory = SandboxClientFactory("127.0.0.1", servers[HOME].port, keys.public_pem(rsa_key), timeout=5,
                                   dc_ports={dc: s.port for dc, s in servers.items()})
    return TelethonGateway(Settings(), factory=factory)


async def login(world: World, gw: TelethonGateway, phone: str) -> str:
    state = await gw.send_code(f"dc_{phone[-4:]}", phone)
    signed = await gw.sign_in(state, str(world.codes(phone)[0]["code"]))
    return signed.session


async def test_a_login_follows_phone_migrate_and_the_session_lives_on_in_that_dc(
    dcs: tuple[World, dict[int, MTProtoServer]], rsa_key: rsa.RSAPrivateKey
) -> None:
    world, servers = dcs
    bot_side = gateway(servers, rsa_key)
    try:
        session = await login(world, bot_side, MOVED)
    finally:
        await bot_side.close()
    sends = [e for e in world.events.since(0) if e.method == "send_code"]
    assert [e.ok for e in sends] == [True]  # the world saw one code request: on the account's own DC
    assert len(servers[OTHER].keys) >= 1  # the client made itself a key in the other data centre
    assert StringSession(session).dc_id == OTHER  # and the saved session says where the account lives

    # a restarted bot and another worker: new gateways, new clients, the stored session string
    for _ in range(2):
        worker = gateway(servers, rsa_key)
        try:
            account = AccountRef(1, session)
            [info] = await worker.list_groups(account)
            await worker.send_message(account, GroupRef(info.peer_id, info.access_hash, info.kind),
                                      OutgoingMessage("from the far DC"))
        finally:
            await worker.close()
    assert [p["text"] for p in world.group_messages(GROUP)] == ["from the far DC"] * 2


async def test_an_account_of_the_first_dc_never_moves(
    dcs: tuple[World, dict[int, MTProtoServer]], rsa_key: rsa.RSAPrivateKey
) -> None:
    world, servers = dcs
    gw = gateway(servers, rsa_key)
    try:
        await login(world, gw, STAYS)
    finally:
        await gw.close()
    assert len(servers[OTHER].keys) == 0


def test_the_world_names_the_home_dc_and_refuses_a_bad_one() -> None:
    world = World(SandboxSettings(rate_limits=False), EventLog())
    world.seed({"accounts": [{"phone": MOVED, "dc": OTHER}, {"phone": STAYS}]})
    assert (world.home_dc(MOVED), world.home_dc(STAYS)) == (OTHER, None)
    with pytest.raises(ValueError, match="dc"):
        world.seed({"accounts": [{"phone": "+15550004009", "dc": 9}]})
