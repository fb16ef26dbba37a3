"""The Telethon adapter of the account gateway, joined from its capabilities like Telethon's client."""

from __future__ import annotations

from accounts.gateway import AccountRef
from accounts.telethon.auth import AuthMethods
from accounts.telethon.client import ClientFactory, TelethonClientFactory
from accounts.telethon.dialogs import DialogMethods
from accounts.telethon.messages import MessageMethods
from accounts.telethon.pool import ClientPool
from config.settings import Settings, SettingsError


class TelethonGateway(AuthMethods, DialogMethods, MessageMethods):
    """``AccountGateway`` on real Telegram: login, group listing, sends through a client pool.

    Raises only the errors of ``domain.errors`` (mapped through the one table in ``accounts.errors``).
    ``factory`` builds a client from a session string; by default real ``TelegramClient``
    objects with the API credentials of ``settings.telegram``.
    """

    def __init__(self, settings: Settings, *, factory: ClientFactory | None = None) -> None:
        if factory is None:
            if settings.telegram.api_id <= 0 or not settings.telegram.api_hash:
                raise SettingsError("the Telethon gateway needs TELEGRAM_API_ID and TELEGRAM_API_HASH")
            factory = TelethonClientFactory.from_settings(settings)
        self._factory = factory
        self._pool = ClientPool(
            self._new_client,
            max_size=settings.engine.client_pool_size,
            idle_timeout=settings.engine.client_idle_timeout,
        )

    @property
    def pool(self) -> ClientPool:
        return self._pool

    async def release(self, account: AccountRef) -> None:
        """The holder's lease on the account ended: disconnect its client (``accounts.gateway.release``)."""
        await self._pool.discard(account.account_id)

    async def close(self) -> None:
        """Disconnect every pooled client."""
        await self._pool.close()
