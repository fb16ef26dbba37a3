"""Which connections use each auth key right now, and keys Telegram would have killed for it.

Telegram answers AUTH_KEY_DUPLICATED (406) and revokes the key for good when one key is used at
the same time from two places (two IP addresses; here: two open connections with different MTProto
sessions, which is how two processes sharing one session string look). A client that reconnects
closes its old connection first, so its new session is not a second user: a conflict is only
counted when the other connection is still open a moment later (its EOF may still be in flight).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Final

# how long a suspected duplicate waits for the other connection's close to arrive
SETTLE_SECONDS: Final = 0.05


@dataclass
class KeyUse:
    """Open connections per auth key (connection -> its MTProto session id)."""

    live: dict[int, dict[object, int]] = field(default_factory=lambda: defaultdict(dict))
    duplicated: set[int] = field(default_factory=set)  # keys killed by concurrent use
    peak: dict[int, int] = field(default_factory=dict)  # most connections seen at once, per key
    conflicts: int = 0  # times a key was caught in use from two places

    async def note(self, key_id: int, connection: object, session_id: int) -> bool:
        """Record that ``connection`` uses ``key_id``; True when the key is (now) duplicated."""
        users = self.live[key_id]
        users[connection] = session_id
        self.peak[key_id] = max(self.peak.get(key_id, 0), len(users))
        if key_id in self.duplicated:
            return True
        if self._others(key_id, connection, session_id):
            await asyncio.sleep(SETTLE_SECONDS)
            if connection in self.live.get(key_id, {}) and self._others(key_id, connection, session_id):
                self.duplicated.add(key_id)
                self.conflicts += 1
        return key_id in self.duplicated

    def forget(self, connection: object) -> None:
        for key_id in list(self.live):
            self.live[key_id].pop(connection, None)
            if not self.live[key_id]:
                del self.live[key_id]

    def live_connections(self, key_id: int) -> int:
        return len(self.live.get(key_id, {}))

    def _others(self, key_id: int, connection: object, session_id: int) -> bool:
        return any(c is not connection and s != session_id for c, s in self.live.get(key_id, {}).items())
