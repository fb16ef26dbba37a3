"""Service results as JSON objects: the API's stable field names, one function per shape.

These mirror the schemas in ``roles/app/openapi.json``; a field added here is added there.
"""

from __future__ import annotations

from typing import Any

from domain.models import AuditEntry
from domain.retention import HistoryTotals
from roles.app.errors import NotFound
from services.admin import AccountLine, AdminOverview, AdminResult, UserCard, UserPage, UserSummary
from services.engine import FINAL_STATUSES
from services.runtime import RuntimeView, WorkerBeat

SEND_OUTCOMES = tuple(sorted(FINAL_STATUSES))


def action_result(result: AdminResult) -> dict[str, Any]:
    """``ok`` and ``no_change`` are answers (200); ``not_found`` is a 404."""
    if result.outcome == "not_found":
        raise NotFound("no such user" if result.user_id is not None else "not found")
    return {"outcome": result.outcome, "user_id": result.user_id, "detail": result.detail}


def user_summary(user: UserSummary) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "name": user.name,
        "username": user.username,
        "access": user.access,
        "access_status": user.access_status,
        "expires_at": user.expires_at,
        "banned": user.banned,
        "connected": user.connected,
        "running": user.running,
        "requested_at": user.requested_at,
    }


def user_page(page: UserPage, size: int) -> dict[str, Any]:
    return {
        "items": [user_summary(u) for u in page.items],
        "page": page.page,
        "pages": page.pages,
        "size": size,
        "total": page.total,
    }


def user_card(card: UserCard) -> dict[str, Any]:
    return {
        **user_summary(card.user),
        "phone_masked": card.phone_masked,
        "account_name": card.account_name,
        "disconnected_reason": card.disconnected_reason,
        "groups": {
            "total": card.groups_total,
            "selected": card.groups_selected,
            "disabled": card.groups_disabled,
        },
        "message_version": card.message_version,
        "interval_seconds": card.interval,
        "next_run_at": card.next_run_at,
        "paused_until": card.paused_until,
        "created_at": card.created_at,
        "last_seen_at": card.last_seen_at,
        "history": history_totals(card.history),
        "accounts": [account_line(a) for a in card.accounts],
    }


def account_line(line: AccountLine) -> dict[str, Any]:
    """U8: one of the user's Telegram accounts (masked phone, never the session)."""
    return {
        "account_id": line.account_id,
        "name": line.name,
        "phone_masked": line.phone_masked,
        "connected": line.connected,
        "current": line.current,
        "disconnected_reason": line.disconnected_reason,
        "running": line.running,
        "interval_seconds": line.interval,
        "next_run_at": line.next_run_at,
    }


def history_totals(history: HistoryTotals) -> dict[str, Any]:
    return {
        "rounds": history.rounds,
        "cancelled": history.cancelled,
        "attempts": history.total,
        "sent": history.sent,
        "failed": history.failed,
        "skipped": history.skipped,
        "unknown": history.unknown,
        "since": history.since,
    }


def overview(view: AdminOverview) -> dict[str, Any]:
    return {
        "users": view.users,
        "connected": view.connected,
        "running": view.running,
        "pending_requests": view.pending_requests,
        "access_mode": view.access_mode,
        "global_paused": view.global_paused,
    }


def runtime_view(view: RuntimeView) -> dict[str, Any]:
    counts = view.counts
    return {
        "queue": {
            "ready": view.queue.ready,
            "delayed": view.queue.delayed,
            "pending": view.queue.pending,
            "pending_by_consumer": view.queue.pending_by_consumer,
        },
        "workers": {
            "live": view.live_workers,
            "items": [worker_beat(w) for w in view.workers],
        },
        "campaigns": {
            "running": counts.running,
            "open_rounds": counts.open_rounds,
            "flood_paused": counts.flood_paused,
        },
        # every final outcome is present (0 when none), so clients need not guess missing keys
        "sends_last_hour": {**dict.fromkeys(SEND_OUTCOMES, 0), **counts.sends_last_hour},
        "scheduler_lag_seconds": counts.scheduler_lag_seconds,
        "global_paused": counts.global_paused,
    }


def worker_beat(beat: WorkerBeat) -> dict[str, Any]:
    return {"consumer": beat.consumer, "last_heartbeat_at": beat.last_heartbeat_at,
            "age_seconds": beat.age_seconds}


def audit_entry(entry: AuditEntry) -> dict[str, Any]:
    return {
        "audit_id": entry.audit_id,
        "at": entry.at,
        "actor_kind": entry.actor_kind,
        "actor_id": entry.actor_id,
        "action": entry.action,
        "target_user_id": entry.target_user_id,
        "outcome": entry.outcome,
        "detail": entry.detail,
    }
