"""The user's groups (U3): import from the account, pages of 10, selection with a limit."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from accounts.crypto import SessionDecryptError
from accounts.gateway import AccountRef, GroupInfo
from accounts.gateway import release as release_account
from domain import rules
from domain.errors import SessionDead
from domain.models import AccountRecord, GroupRecord
from services import topics
from services.locks import holding
from services.login import SessionServiceBase
from storage.db import Connection
from storage.repositories import accounts, campaigns, group_traits, groups, users
from storage.repositories.groups import ImportedGroup

log = logging.getLogger(__name__)

PAGE_SIZE = 10
READ_ONLY_REASON = "CHAT_WRITE_FORBIDDEN"  # imported but the account cannot post there
GONE_REASON = "gone"  # no longer among the account's dialogs

ToggleOutcome = Literal["selected", "unselected", "disabled", "limit_reached", "not_found"]
BulkOutcome = Literal["ok", "limit_reached", "not_found"]


class NotConnected(Exception):
    """The user has no connected account (U3.1): "connect your account first"."""


@dataclass(frozen=True)
class ImportResult:
    """U3.3: "imported N: A new, B updated, C gone" with N = new + updated."""

    total: int
    new: int
    updated: int
    gone: int
    disabled: int  # of the imported ones, how many cannot be written to


@dataclass(frozen=True)
class GroupItem:
    group_id: int
    title: str
    kind: str
    selected: bool
    status: str  # active | disabled | gone
    reason: str  # why it is disabled/gone ("" when active)
    archived: bool = False  # in the account's archive folder
    is_forum: bool = False  # a forum supergroup: posts go to a topic (U11)

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class GroupPage:
    """U3.5. ``page`` is clamped into range; ``requested_page`` is what was asked for."""

    items: list[GroupItem]
    page: int
    pages: int
    total: int
    selected: int
    limit: int
    requested_page: int

    @property
    def out_of_range(self) -> bool:
        return self.page != self.requested_page

    @property
    def has_prev(self) -> bool:
        return self.page > 0

    @property
    def has_next(self) -> bool:
        return self.page + 1 < self.pages


@dataclass(frozen=True)
class GroupCounts:
    """U3.2 / U1.5: ``selected`` counts selected active groups only."""

    total: int
    selected: int
    active: int
    disabled: int
    gone: int


@dataclass(frozen=True)
class ToggleResult:
    """U3.6-U3.8. ``reason`` is set for ``disabled``."""

    outcome: ToggleOutcome
    reason: str = ""
    selected_count: int = 0
    limit: int = 0


@dataclass(frozen=True)
class BulkResult:
    """``grp:all`` / ``grp:none`` on one page: how many changed, and whether the limit cut it."""

    outcome: BulkOutcome
    changed: int
    selected_count: int
    limit: int


class GroupService(SessionServiceBase):
    """U3: groups belong to the user; every action checks ownership (forged ids are not_found)."""

    @property
    def limit(self) -> int:
        return self.settings.bot.selection_limit

    async def import_groups(self, user_id: int) -> ImportResult:
        """U3.3: merge the account's groups into the list.

        New groups come unselected, known ones keep their selection (title, access hash and
        kind refreshed; gone/disabled ones listed as writable become active again), groups no
        longer listed are marked gone and unselected, groups and supergroups the account cannot
        write to are imported disabled (``READ_ONLY_REASON``) and unselected. Broadcast channels it
        cannot post to are not imported at all (one imported earlier is marked gone). Raises
        ``NotConnected``; on ``SessionDead`` (U3.4) the account is marked disconnected and the
        broadcast stopped, then the error is re-raised. Other gateway errors (``FloodWait``,
        ``TransientError``) propagate.
        The account is used under the per-user lock: ``Busy`` when a broadcast batch keeps it
        longer than ``lock_wait`` ("your broadcast is sending right now, try again in a moment").
        """
        await self._connected(user_id)  # fail fast, without waiting for the lock
        # the session is used under the user's lock, never while a broadcast batch sends on it
        async with holding(self.lock, user_id, self.lock_wait):
            record, sealed = await self._connected(user_id)
            try:
                ref = AccountRef(record.account_id, self.cipher.decrypt(sealed))
            except SessionDecryptError:
                await self._session_ended(record, "session_undecryptable")
                raise SessionDead("SESSION_UNDECRYPTABLE") from None
            try:
                listed = await self.gateway.list_groups(ref)
                found = await topics.fetch(self.gateway, ref, listed)  # U11: forums' topics
            except SessionDead as exc:
                await self._session_ended(record, exc.code)
                raise
            finally:
                await release_account(self.gateway, ref)  # connected only while the lock is held
        imported = _dedupe(listed)
        now = self.now()
        async with self.db.transaction() as conn:
            await users.lock(conn, user_id)
            account_id = record.account_id  # U8: the account listed, even if the user switched meanwhile
            new, updated = await groups.merge(conn, user_id, imported, now, account_id)
            listed_peers = [g.peer_id for g in imported]
            forums = [g.peer_id for g in listed if g.is_forum]
            await group_traits.record_forums(conn, user_id, listed_peers, forums, account_id)
            await topics.record(conn, user_id, found, now, account_id)
            gone = await groups.mark_gone_except(conn, user_id, listed_peers, GONE_REASON, now, account_id)
        disabled = sum(1 for g in imported if g.status == "disabled")
        log.info("groups imported user_id=%s new=%d updated=%d gone=%d", user_id, new, updated, gone)
        return ImportResult(total=new + updated, new=new, updated=updated, gone=gone, disabled=disabled)

    async def page(self, user_id: int, page: int, size: int = PAGE_SIZE) -> GroupPage:
        """U3.5: one page ordered by (title, group_id); out-of-range pages are clamped."""
        async with self.db.connection() as conn:
            counts = await groups.counts(conn, user_id)
            current = rules.clamp_page(page, counts.total, size)
            rows = await groups.page(conn, user_id, current * size, size)
        return GroupPage(
            items=[_item(r) for r in rows],
            page=current,
            pages=rules.page_count(counts.total, size),
            total=counts.total,
            selected=counts.selected,
            limit=self.limit,
            requested_page=page,
        )

    async def toggle(self, user_id: int, group_id: int) -> ToggleResult:
        """U3.6-U3.8: flip the selection of one of the user's active groups."""
        now = self.now()
        async with self.db.transaction() as conn:
            await users.lock(conn, user_id)
            group = await groups.get_owned(conn, user_id, group_id, for_update=True)
            selected = await groups.count_selected(conn, user_id)
            if group is None:
                return ToggleResult("not_found", selected_count=selected, limit=self.limit)
            if group.status != "active":
                reason = group.reason or group.status
                return ToggleResult("disabled", reason, selected, self.limit)
            if group.selected:
                await groups.set_selected(conn, user_id, [group_id], False, now)
                return ToggleResult("unselected", selected_count=selected - 1, limit=self.limit)
            if selected >= self.limit:
                return ToggleResult("limit_reached", selected_count=selected, limit=self.limit)
            await groups.set_selected(conn, user_id, [group_id], True, now)
            return ToggleResult("selected", selected_count=selected + 1, limit=self.limit)

    async def select_all(self, user_id: int, page: int, size: int = PAGE_SIZE) -> BulkResult:
        """Select the active groups of one page, up to the selection limit (then limit_reached)."""
        now = self.now()
        async with self.db.transaction() as conn:
            await users.lock(conn, user_id)
            rows = await self._page_rows(conn, user_id, page, size)
            selected = await groups.count_selected(conn, user_id)
            wanted = [r.group_id for r in rows if r.status == "active" and not r.selected]
            room = max(0, self.limit - selected)
            changed = await groups.set_selected(conn, user_id, wanted[:room], True, now) if room else 0
            outcome: BulkOutcome = "limit_reached" if len(wanted) > room else "ok"
            return BulkResult(outcome, changed, selected + changed, self.limit)

    async def select_none(self, user_id: int, page: int, size: int = PAGE_SIZE) -> BulkResult:
        """Unselect the groups of one page."""
        now = self.now()
        async with self.db.transaction() as conn:
            await users.lock(conn, user_id)
            rows = await self._page_rows(conn, user_id, page, size)
            changed = await groups.set_selected(conn, user_id, [r.group_id for r in rows], False, now)
            selected = await groups.count_selected(conn, user_id)
            return BulkResult("ok", changed, selected, self.limit)

    async def counts(self, user_id: int) -> GroupCounts:
        async with self.db.connection() as conn:
            c = await groups.counts(conn, user_id)
        return GroupCounts(c.total, c.selected, c.active, c.disabled, c.gone)

    async def _page_rows(
        self, conn: Connection, user_id: int, page: int, size: int
    ) -> list[GroupRecord]:
        total = (await groups.counts(conn, user_id)).total
        return await groups.page(conn, user_id, rules.clamp_page(page, total, size) * size, size)

    async def _connected(self, user_id: int, account_id: int | None = None) -> tuple[AccountRecord, bytes]:
        """The connected account (``account_id``, default the current one) and its sealed session;
        raises ``NotConnected``."""
        async with self.db.connection() as conn:
            if account_id is None:
                record = await accounts.get(conn, user_id)
            else:
                record = await accounts.get_owned(conn, user_id, account_id)
        if record is None or record.session_enc is None or not record.connected:
            raise NotConnected(user_id)
        return record, record.session_enc

    async def _session_ended(self, record: AccountRecord, reason: str) -> None:
        now = self.now()
        async with self.db.transaction() as conn:
            await campaigns.stop(conn, record.user_id, now, account_id=record.account_id)
            await accounts.disconnect(conn, record.account_id, reason, now)
        log.info("session ended during import user_id=%s account_id=%s reason=%s", record.user_id,
                 record.account_id, reason)


def importable(listed: list[GroupInfo]) -> list[ImportedGroup]:
    """The import rule (see ``_dedupe``), for the paged import job too."""
    return _dedupe(listed)


def _dedupe(listed: list[GroupInfo]) -> list[ImportedGroup]:
    """One row per peer (the last listing wins), disabled when the account can't write there.

    Broadcast channels the account cannot post to are left out: following news channels is not
    having somewhere to broadcast, and listing each of them disabled would bury the real groups.
    Both gateway adapters list them (``can_send`` False), so the rule lives here, once.
    """
    by_peer = {info.peer_id: info for info in listed}
    return [
        ImportedGroup(
            peer_id=info.peer_id,
            access_hash=info.access_hash,
            kind=info.kind,
            title=info.title,
            status="active" if info.can_send else "disabled",
            reason="" if info.can_send else READ_ONLY_REASON,
            archived=info.archived,
        )
        for info in by_peer.values()
        if info.can_send or info.kind != "channel"
    ]


def _item(record: GroupRecord) -> GroupItem:
    return GroupItem(
        group_id=record.group_id,
        title=record.title,
        kind=record.kind,
        selected=record.selected and record.status == "active",
        status=record.status,
        reason=record.reason,
        archived=record.archived,
        is_forum=record.is_forum,
    )
