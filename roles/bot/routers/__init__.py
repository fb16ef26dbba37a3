"""One router per flow; ``build_routers()`` gives fresh ones in the order they must be tried.

Handlers are declared with ``Routes`` decorators (aiogram's style) but the aiogram ``Router``
objects are built per dispatcher, so tests and webhook mode can build several.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aiogram import Router

F = TypeVar("F", bound=Callable[..., Any])


class Routes:
    """Handlers of one flow, registered on a new ``Router`` by ``build()``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._entries: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = []

    def message(self, *filters: Any) -> Callable[[F], F]:
        return self._add("message", filters)

    def callback_query(self, *filters: Any) -> Callable[[F], F]:
        return self._add("callback_query", filters)

    def _add(self, observer: str, filters: tuple[Any, ...]) -> Callable[[F], F]:
        def register(handler: F) -> F:
            self._entries.append((observer, handler, filters))
            return handler

        return register

    def build(self) -> Router:
        router = Router(name=self.name)
        for observer, handler, filters in self._entries:
            getattr(router, observer).register(handler, *filters)
        return router


def build_routers() -> list[Router]:
    # start first: /start, /cancel and the Cancel button win in every input state; fallback last
    from roles.bot.routers import (
        account,
        admin,
        broadcast,
        fallback,
        groups,
        interval,
        limits,
        message,
        schedule,
        settings,
        start,
        status,
    )

    flows = [start, account, groups, message, interval, schedule, broadcast, status, settings, admin, limits,
             fallback]
    return [module.routes.build() for module in flows]
