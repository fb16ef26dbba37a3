"""Telethon clients pointed at the sandbox's MTProto endpoint instead of Telegram (sandbox mode only).

``SandboxClientFactory`` builds the same clients as ``TelethonClientFactory``, with the
session's data centre set to the sandbox (``session.set_dc``; for stored session strings too,
so a sandbox that moved to another port keeps its sessions) and the sandbox's RSA public key
registered through Telethon's public ``telethon.crypto.rsa.add_key``.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Final

from telethon import TelegramClient
from telethon.crypto import rsa

from accounts.telethon.client import TelethonClientFactory
from config.settings import Settings
from sandbox.mtproto import keys

SANDBOX_DC: Final = 2
SECOND_DC: Final = 4  # the sandbox serves it on the main MTProto port + 1 (sandbox.mtproto.server)
DEFAULT_MTPROTO_PORT: Final = 8082
# The sandbox accepts any credentials but refuses empty ones, as Telegram does.
SANDBOX_API_ID: Final = 1
SANDBOX_API_HASH: Final = "sandbox"


def _ip_address(host: str) -> str:
    # StringSession stores the address as packed IP bytes: a host name must be resolved first.
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return str(socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0])


class SandboxClientFactory(TelethonClientFactory):
    """``TelethonClientFactory`` for the sandbox at ``host:port`` with RSA key ``public_key_pem``."""

    def __init__(
        self,
        host: str,
        port: int,
        public_key_pem: str,
        *,
        api_id: int = SANDBOX_API_ID,
        api_hash: str = SANDBOX_API_HASH,
        timeout: float = 10.0,
        dc_ports: dict[int, int] | None = None,
    ) -> None:
        super().__init__(api_id if api_id > 0 else SANDBOX_API_ID, api_hash or SANDBOX_API_HASH,
                         timeout=timeout)
        self.host = _ip_address(host)
        self.port = port
        # the sandbox's other data centres (dc id -> port): a session saved after a PHONE_MIGRATE
        # keeps its data centre, pointed at this sandbox's port for it
        self.dc_ports = {SANDBOX_DC: port, SECOND_DC: port + 1, **(dc_ports or {})}
        rsa.add_key(public_key_pem, old=False)

    @classmethod
    def from_key_file(
        cls, host: str, port: int, public_key_file: str | Path, *, api_id: int = SANDBOX_API_ID,
        api_hash: str = SANDBOX_API_HASH, timeout: float = 10.0,
    ) -> SandboxClientFactory:
        """Read the public key the sandbox wrote next to its private key (``<name>.pub.pem``)."""
        pem = Path(public_key_file).read_text(encoding="ascii")
        return cls(host, port, pem, api_id=api_id, api_hash=api_hash, timeout=timeout)

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxClientFactory:
        """The sandbox named by the settings: ``SANDBOX_HOST``, ``SANDBOX_MTPROTO_PORT`` and the public
        key beside ``SANDBOX_MTPROTO_KEY_FILE`` (default ``<DATA_DIR>/sandbox/mtproto_rsa.pem``).

        The two MTProto settings are read if ``SandboxSettings`` has them, else their defaults apply.
        """
        sandbox = settings.sandbox
        port = int(getattr(sandbox, "mtproto_port", 0) or DEFAULT_MTPROTO_PORT)
        key_file = str(getattr(sandbox, "mtproto_key_file", "") or keys.default_path(settings.data_dir))
        return cls.from_key_file(sandbox.host, port, keys.public_path(key_file),
                                 api_id=settings.telegram.api_id, api_hash=settings.telegram.api_hash.get())

    def __call__(self, session: str) -> TelegramClient:
        client = super().__call__(session)
        dc_id = client.session.dc_id if client.session.dc_id in self.dc_ports else SANDBOX_DC
        client.session.set_dc(dc_id, self.host, self.dc_ports[dc_id])
        # Telethon caches help.getConfig on the class (the DC list it follows *_MIGRATE_X with);
        # a sandbox on other ports in the same process must not be served a stale list
        type(client)._config = None
        return client
