"""The sandbox's event log: every Bot API call and world call, in order.

``GET /sandbox/api/events?since=<seq>`` serves it; tests and benchmarks read
latency and pacing from ``ts_ms`` (milliseconds since the epoch).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

from sandbox.changes import Changes

Api = Literal["bot", "world"]


@dataclass(frozen=True)
class Event:
    seq: int
    ts_ms: float
    api: Api
    method: str
    ok: bool
    user_id: int | None = None
    phone: str | None = None
    group_id: int | None = None
    error: str | None = None
    retry_after: int | None = None
    bytes: int | None = None  # uploads: file bytes the account sent (counted per part as it arrives)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None or k in ("seq", "ts_ms", "ok")}


class EventLog:
    """Append-only, bounded in memory (the sandbox is a test double, not a store)."""

    def __init__(self, limit: int = 200_000) -> None:
        self._events: list[Event] = []
        self._seq = 0
        self._limit = limit
        self.changes = Changes()

    def record(
        self,
        api: Api,
        method: str,
        *,
        ok: bool = True,
        user_id: int | None = None,
        phone: str | None = None,
        group_id: int | None = None,
        error: str | None = None,
        retry_after: int | None = None,
        nbytes: int | None = None,
    ) -> Event:
        self._seq += 1
        event = Event(self._seq, round(time.time() * 1000, 3), api, method, ok, user_id, phone, group_id,
                      error, retry_after, nbytes)
        self._events.append(event)
        if len(self._events) > self._limit:
            del self._events[: len(self._events) - self._limit]
        self.changes.notify()
        return event

    def since(self, seq: int = 0) -> list[Event]:
        # events are ordered by seq; skip the prefix quickly
        if not self._events or seq < self._events[0].seq:
            return list(self._events)
        start = seq - self._events[0].seq + 1
        return self._events[start:]

    def clear(self) -> None:
        self._events.clear()
