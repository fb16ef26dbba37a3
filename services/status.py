"""What the user sees about their broadcast: the main menu card (U1.5) and the status (U7.1)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from config.settings import Settings
from domain import rules, schedule
from domain.models import Clock, RoundCounts, utc_now
from domain.retention import HistoryTotals
from services.groups import GroupCounts
from services.send_limits import PacingView, SendLimitsService
from storage.db import Database
from storage.repositories import accounts, campaigns, groups, users
from storage.repositories import retention as retention_repo
from storage.repositories import settings as settings_repo
from storage.repositories import status as status_repo
from storage.repositories.status import AccountLine

log = logging.getLogger(__name__)

GROUP_OUTCOMES_SHOWN = 10
DISABLED_SHOWN = 10


@dataclass(frozen=True)
class MainCard:
    """U1.5: account (masked phone or not connected), groups, message preview, interval, state."""

    user_id: int
    is_admin: bool
    account_connected: bool
    phone_masked: str  # "" when not connected
    account_name: str
    groups: GroupCounts
    message_set: bool
    message_preview: str  # first 50 characters ("" when not set or media without caption)
    message_media_kind: str | None
    interval: int | None
    running: bool
    next_run_at: datetime | None
    paused_until: datetime | None
    round_ends_at: datetime | None = None  # likely end of the round under way (account limiter)
    no_groups_left: bool = False  # U6.6: running, but no selected group is active: nothing is posted
    accounts: tuple[AccountLine, ...] = ()  # U8.6: every connected account (shown when 2 or more)


@dataclass(frozen=True)
class GroupOutcome:
    """One group's outcome in the last round: status of its attempt and Telegram's error code."""

    group_id: int
    title: str
    status: str  # pending | sending | sent | failed | skipped | flood_wait | unknown
    error_code: str
    message_no: int | None = None  # U9: which message it got (rotation); 0: deleted since


@dataclass(frozen=True)
class DisabledGroup:
    group_id: int
    title: str
    reason: str


@dataclass(frozen=True)
class StatusView:
    """U7.1: state, interval, next run, last round, per-group outcomes (first 10 + more)."""

    user_id: int
    running: bool
    interval: int | None
    next_run_at: datetime | None
    paused_until: datetime | None  # flood/throttle pause of this user's broadcast (future only)
    pause_reason: str
    global_paused: bool
    last_round: RoundCounts | None
    group_outcomes: list[GroupOutcome]
    more_groups: int  # "and N more"
    disabled_groups: list[DisabledGroup]
    notify_rounds: bool
    pacing: PacingView | None = None  # the account limiter: "paced: 48/250 this hour ..."
    no_groups_left: bool = False
    history: HistoryTotals | None = None  # every finished round (summaries of deleted days + stored rounds)
    window_opens_at: datetime | None = None  # U10.4/U10.5: running, outside the window: its next opening
    # U8: the account this status is about (name, masked phone), when the user has two or more connected
    account: tuple[str, str] | None = None


class StatusService:
    """Read-only views; rounds/attempts are written by the engine and only read here."""

    def __init__(self, db: Database, settings: Settings, now: Clock = utc_now,
                 limits: SendLimitsService | None = None) -> None:
        self.db = db
        self.settings = settings
        self.now = now
        self.limits = limits

    async def running_accounts(self, user_id: int) -> set[int]:
        """U8.1: the ids of the user's accounts whose broadcast is running."""
        async with self.db.connection() as conn:
            return {c.account_id for c in await campaigns.of_user(conn, user_id)
                    if c.running and c.account_id is not None}

    async def main_card(self, user_id: int) -> MainCard:
        """U1.5: the summary shown with the main menu."""
        async with self.db.connection() as conn:
            row = await status_repo.main_card(conn, user_id, with_round=self.limits is not None)
        account, counts, message, campaign = row.account, row.groups, row.message, row.campaign
        last = row.last_round
        connected = account is not None and account.connected
        running = campaign is not None and campaign.running
        pacing = await self._pacing(user_id, last) if running else None
        return MainCard(
            user_id=user_id,
            is_admin=user_id in self.settings.bot.admin_ids,
            account_connected=connected,
            phone_masked=rules.mask_phone(account.phone) if account is not None and connected else "",
            account_name=account.first_name if account is not None and connected else "",
            groups=GroupCounts(counts.total, counts.selected, counts.active, counts.disabled, counts.gone),
            message_set=message is not None,
            message_preview=rules.preview(message.text) if message is not None else "",
            message_media_kind=message.media_kind if message is not None else None,
            interval=campaign.interval_seconds if campaign is not None else None,
            running=running,
            next_run_at=campaign.next_run_at if campaign is not None and running else None,
            paused_until=self._future(campaign.paused_until if campaign is not None else None),
            round_ends_at=pacing.round_ends_at if pacing is not None else None,
            no_groups_left=running and counts.selected == 0,
            accounts=row.accounts,
        )

    async def status(self, user_id: int) -> StatusView:
        """U7.1: the broadcast's state and its last round, group by group."""
        async with self.db.connection() as conn:
            campaign = await campaigns.get(conn, user_id)
            global_paused = await settings_repo.global_pause(conn)
            last = await status_repo.last_round(conn, user_id)
            outcomes: list[status_repo.AttemptOutcome] = []
            total = 0
            if last is not None:
                outcomes, total = await status_repo.round_outcomes(conn, last.round_id, GROUP_OUTCOMES_SHOWN)
            disabled = await groups.disabled_selected(conn, user_id, DISABLED_SHOWN)
            selected = await groups.count_selected(conn, user_id)
            user = await users.get(conn, user_id)
            history = await retention_repo.history_totals(conn, user_id)
            account = await accounts.get(conn, user_id)
            several = account is not None and await accounts.count_connected_of(conn, user_id) >= 2
        running = campaign is not None and campaign.running
        paused_until = self._future(campaign.paused_until if campaign is not None else None)
        return StatusView(
            user_id=user_id,
            running=running,
            interval=campaign.interval_seconds if campaign is not None else None,
            next_run_at=campaign.next_run_at if campaign is not None and running else None,
            paused_until=paused_until,
            pause_reason=campaign.pause_reason if campaign is not None and paused_until is not None else "",
            global_paused=global_paused,
            last_round=last,
            group_outcomes=[GroupOutcome(o.group_id, o.title, o.status, o.error_code, o.message_no)
                            for o in outcomes],
            more_groups=max(0, total - len(outcomes)),
            disabled_groups=[DisabledGroup(g.group_id, g.title, g.reason or g.status) for g in disabled],
            notify_rounds=user.notify_rounds if user is not None else True,
            pacing=await self._pacing(user_id, last) if running else None,
            no_groups_left=running and selected == 0,
            history=history,
            window_opens_at=self._window_opens(campaign.window, user.timezone if user is not None else "UTC")
            if running and campaign is not None else None,
            account=(account.first_name, rules.mask_phone(account.phone)) if several and account else None,
        )

    def _window_opens(self, window: schedule.Window | None, zone_name: str) -> datetime | None:
        return schedule.opens_at(window, zone_name, self.now())

    async def _pacing(self, user_id: int, last: RoundCounts | None) -> PacingView | None:
        if self.limits is None:
            return None
        open_sends = last.pending if last is not None and last.finished_at is None else 0
        try:
            return await self.limits.pacing(user_id, open_sends)
        except Exception:  # Redis down: the card goes without its pacing line
            log.warning("pacing of user %s not readable", user_id, exc_info=True)
            return None

    def _future(self, moment: datetime | None) -> datetime | None:
        return moment if moment is not None and moment > self.now() else None
