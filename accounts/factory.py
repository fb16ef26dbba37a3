"""Which account gateway a process uses: the one selection shared by the supervisor and the tests.

``ACCOUNT_GATEWAY`` (``settings.gateway_kind``) picks the adapter: ``sandbox`` talks to the
sandbox world over HTTP; ``telethon`` is the real Telethon adapter, pointed at the sandbox's
MTProto endpoint when the sandbox is enabled and at Telegram otherwise.
"""

from __future__ import annotations

from typing import Final

from accounts.gateway import AccountGateway
from config.settings import GATEWAYS, Settings, SettingsError

GATEWAY_KINDS: Final = GATEWAYS


def build_gateway(settings: Settings, *, mtproto_public_key: str | None = None) -> AccountGateway:
    """The account gateway named by ``settings.gateway_kind``.

    ``mtproto_public_key`` (PEM) is the sandbox's MTProto RSA public key when the caller holds it
    (a sandbox started in-process with an in-memory key); otherwise the Telethon adapter reads it
    from beside ``SANDBOX_MTPROTO_KEY_FILE``. The MTProto endpoint is ``SANDBOX_HOST:SANDBOX_MTPROTO_PORT``.
    """
    kind = settings.gateway_kind
    if kind not in GATEWAY_KINDS:
        raise SettingsError(f"ACCOUNT_GATEWAY must be one of {', '.join(GATEWAY_KINDS)}, not {kind!r}")
    if kind == "sandbox":
        from accounts.sandbox_gateway import SandboxGateway

        return SandboxGateway(settings.sandbox.url)
    from accounts.telethon import TelethonGateway

    if not settings.sandbox_enabled:
        return TelethonGateway(settings)
    # the real Telethon adapter against the sandbox's MTProto endpoint
    from accounts.telethon.sandbox import SandboxClientFactory

    if mtproto_public_key is None:
        factory = SandboxClientFactory.from_settings(settings)
    else:
        factory = SandboxClientFactory(
            settings.sandbox.host, settings.sandbox.mtproto_port, mtproto_public_key,
            api_id=settings.telegram.api_id, api_hash=settings.telegram.api_hash.get(),
        )
    return TelethonGateway(settings, factory=factory)
