"""Change signals of the sandbox state: who changed something says so, whoever shows it wakes up.

Each state holder (the chats, the world, the event log) owns a ``Changes``; the mutation points
call ``notify()``. A signal carries no payload: a listener re-reads the state it shows, so many
signals before it gets to run count as one. Only the event loop's thread touches the sandbox
state, so no locking is needed.
"""

from __future__ import annotations

import asyncio


class Listener:
    """Wakes when any ``Changes`` it listens to is notified; signals before a wait are not lost."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._sources: list[Changes] = []

    def wake(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()

    def clear(self) -> None:
        """Forget the signals seen so far (call it before re-reading the state, not after)."""
        self._event.clear()

    def listen(self, *sources: Changes) -> None:
        for source in sources:
            source.add(self)
            self._sources.append(source)

    def detach(self) -> None:
        for source in self._sources:
            source.discard(self)
        self._sources.clear()


class Changes:
    """A version counter plus the listeners to wake when it moves."""

    def __init__(self) -> None:
        self.version = 0
        self._listeners: set[Listener] = set()

    def notify(self) -> None:
        self.version += 1
        for listener in self._listeners:
            listener.wake()

    def add(self, listener: Listener) -> None:
        self._listeners.add(listener)

    def discard(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    @property
    def listeners(self) -> int:
        return len(self._listeners)
