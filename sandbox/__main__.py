"""``python -m sandbox``: the local Telegram on its own (port from ``SANDBOX_PORT``, default 8081)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from config.settings import load_settings
from sandbox.server import run_sandbox


async def _serve() -> None:
    settings = load_settings()
    server = await run_sandbox(settings.sandbox, settings.sandbox.seed_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve())


if __name__ == "__main__":
    main()
