"""The MTProto tests' world and helpers (the fixtures in ``conftest.py`` build on them).

``MTSandbox.gateway()`` builds a new ``TelethonGateway`` with a new ``SandboxClientFactory``,
as a restarted process would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from accounts.gateway import AccountRef
from accounts.telethon import TelethonGateway
from accounts.telethon.sandbox import SandboxClientFactory
from config.settings import Settings
from domain.errors import PasswordNeeded
from sandbox.mtproto import MTProtoServer, keys
from sandbox.world import World

ANN = "+15550001001"  # no 2FA
BEN = "+15550001002"  # 2FA
BEN_PASSWORD = "correct horse"

GROUP, SUPER, CHANNEL, CLOSED, READONLY_CHANNEL, SLOW, OLD_GROUP, NEW_SUPER = (
    501, 502, 503, 504, 505, 506, 507, 508)

WORLD: dict[str, Any] = {"accounts": [
    {"phone": ANN, "first_name": "Ann", "user_id": 7001, "groups": [
        {"id": GROUP, "title": "Basic group", "kind": "group"},
        {"id": SUPER, "title": "Supergroup", "kind": "supergroup"},
        {"id": CHANNEL, "title": "Own channel", "kind": "channel"},
        {"id": CLOSED, "title": "Read-only group", "kind": "supergroup", "can_send": False},
        {"id": READONLY_CHANNEL, "title": "Someone's channel", "kind": "channel", "can_send": False},
        {"id": SLOW, "title": "Slow group", "kind": "supergroup", "slow_mode": 30},
        {"id": OLD_GROUP, "title": "Upgraded group", "kind": "group", "migrated_to": NEW_SUPER},
    ]},
    {"phone": BEN, "first_name": "Ben", "user_id": 7002, "password": BEN_PASSWORD, "groups": [
        {"id": SUPER, "title": "Supergroup", "kind": "supergroup"},
    ]},
    {"phone": "+15550001003", "first_name": "Banned", "banned": True},
]}


@dataclass
class MTSandbox:
    world: World
    server: MTProtoServer
    rsa_key: rsa.RSAPrivateKey
    gateways: list[TelethonGateway] = field(default_factory=list)

    def factory(self) -> SandboxClientFactory:
        return SandboxClientFactory("127.0.0.1", self.server.port, keys.public_pem(self.rsa_key), timeout=5)

    def gateway(self) -> TelethonGateway:
        gateway = TelethonGateway(Settings(), factory=self.factory())
        self.gateways.append(gateway)
        return gateway

    def last_code(self, phone: str) -> str:
        return str(self.world.codes(phone)[0]["code"])

    def world_calls(self, method: str | None = None) -> list[Any]:
        return [e for e in self.world.events.since(0) if method is None or e.method == method]

    async def login(self, gateway: TelethonGateway, phone: str = ANN) -> AccountRef:
        """A finished login (with the password for BEN), as an account reference for sends."""
        state = await gateway.send_code(f"login_{phone[-4:]}", phone)
        try:
            done = await gateway.sign_in(state, self.last_code(phone))
        except PasswordNeeded:
            done = await gateway.check_password(state, BEN_PASSWORD)
        return AccountRef(account_id=int(phone[-4:]), session=done.session)

    async def close(self) -> None:
        for gateway in self.gateways:
            await gateway.close()
        await self.server.close()
