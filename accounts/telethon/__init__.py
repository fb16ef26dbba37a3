"""Telethon adapter of the account gateway, split by capability as Telethon splits its client.

``auth`` (login, log-out), ``dialogs`` (groups), ``messages`` (sends), ``pool`` (connected
clients), ``errors`` (the one Telegram error table), joined in ``gateway``.
"""

from accounts.telethon.client import ClientFactory, TelethonClientFactory
from accounts.telethon.errors import map_error
from accounts.telethon.gateway import TelethonGateway

__all__ = ["ClientFactory", "TelethonClientFactory", "TelethonGateway", "map_error"]
