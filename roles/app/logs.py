"""Logging of the process's HTTP listeners (admin API, metrics): client garbage is not our error."""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError


class ClientGarbageFilter(logging.Filter):
    """aiohttp logs a malformed request (a scanner, TLS on the plain port) as an ERROR with a traceback:
    that is the client's fault, so it becomes one INFO line naming the peer and the parser's reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and record.levelno >= logging.DEBUG:
            reason = str(exc.message).splitlines()[0] if exc.message else type(exc).__name__
            original = record.getMessage()
            record.msg, record.args = "malformed HTTP request refused (%s): %s", (original, reason)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


def quiet_client_garbage() -> None:
    """Install ``ClientGarbageFilter`` once on aiohttp's server logger (every listener of the process)."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(existing, ClientGarbageFilter) for existing in logger.filters):
        logger.addFilter(ClientGarbageFilter())
