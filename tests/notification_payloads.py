"""Notification payloads as their producers write them (the engine, the scheduler, the services), one
per kind, for the tests that render them."""

from __future__ import annotations

from typing import Any

from services import notifications as kinds

UNTIL = "2025-03-01T14:05:00+00:00"
PAYLOADS: dict[str, dict[str, Any]] = {
    kinds.ROUND_SUMMARY: {"round_id": 1, "sent": 3, "failed": 1, "skipped": 0, "unknown": 0, "total": 4},
    kinds.SESSION_ENDED: {"reason": "AUTH_KEY_UNREGISTERED"},
    kinds.GROUP_DISABLED: {"group_id": 9, "title": "Cats <&> dogs", "reason": "CHAT_WRITE_FORBIDDEN"},
    kinds.FLOOD_PAUSE: {"seconds": 7200, "until": UNTIL, "code": "FLOOD_WAIT"},
    kinds.MESSAGE_REJECTED: {"round_id": 1, "code": "MESSAGE_TOO_LONG", "detail": "over <4096>"},
    kinds.ACCESS_EXPIRED: {"broadcast_stopped": True},
    kinds.ACCESS_APPROVED: {"days": 30, "expires_at": UNTIL},
    kinds.ACCESS_REJECTED: {},
    kinds.ACCESS_GRANTED: {"days": 0, "expires_at": None},
    kinds.ACCESS_REVOKED: {"broadcast_stopped": False},
    kinds.BROADCAST_STOPPED: {"by": "admin"},
    kinds.ACCOUNT_RESTRICTED: {"seconds": 21600, "until": UNTIL, "code": "USER_BANNED_IN_CHANNEL"},
    kinds.BROADCAST_HALTED: {"code": "SOME_NEW_ERROR"},
    kinds.NO_GROUPS_LEFT: {},
}
# the kinds about one account (U8: written with its ``account_id``); the access notices are about the user
ACCOUNT_KINDS = (kinds.ROUND_SUMMARY, kinds.SESSION_ENDED, kinds.GROUP_DISABLED, kinds.FLOOD_PAUSE,
                 kinds.MESSAGE_REJECTED, kinds.ACCOUNT_RESTRICTED, kinds.BROADCAST_HALTED, kinds.NO_GROUPS_LEFT,
                 kinds.BROADCAST_STOPPED)
