"""Forum topics (U11): what an import learns about a forum's topics, and the topic a group posts to.

An import lists each forum's topics (``AccountGateway.list_topics``) while it holds the account,
and records them with the page of groups they belong to; a group whose chosen topic is closed or
gone is disabled with that reason (the engine does the same when a send meets TOPIC_CLOSED /
TOPIC_DELETED). ``TopicService`` shows a forum's topics in pages and records the user's choice:
General by default; choosing an open topic makes a group disabled for its topic active again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from accounts.gateway import AccountGateway, AccountRef, ForumTopic, GroupInfo, GroupRef
from domain import rules
from domain.errors import FloodWait, GatewayError, SessionDead, TransientError
from domain.models import Clock, utc_now
from storage.db import Connection, Database
from storage.repositories import group_topics, groups
from storage.repositories.group_topics import GENERAL, TopicRow

log = logging.getLogger(__name__)

TOPIC_PAGE_SIZE = 8
ChooseOutcome = Literal["chosen", "closed", "not_found"]


async def fetch(gateway: AccountGateway, account: AccountRef, listed: Iterable[GroupInfo]
                ) -> dict[int, list[ForumTopic]]:
    """The topics of every forum in ``listed``, by peer id. Trouble that concerns the whole account
    or the moment (flood wait, session ended, a transient error) propagates so the caller retries
    or ends as for the dialogs page; a forum that can't be read (left, closed, no longer a forum)
    is skipped: its topics stay as they were."""
    found: dict[int, list[ForumTopic]] = {}
    for info in listed:
        if not info.is_forum:
            continue
        try:
            found[info.peer_id] = await gateway.list_topics(
                account, GroupRef(info.peer_id, info.access_hash, info.kind))
        except (FloodWait, SessionDead, TransientError):
            raise
        except GatewayError as exc:
            log.info("topics of forum %s not listed: %s", info.peer_id, exc.code)
    return found


async def record(conn: Connection, user_id: int, found: dict[int, list[ForumTopic]], now: datetime,
                 account_id: int | None = None) -> int:
    """Store the listed topics of the forums of ``account_id`` (default: the current account;
    already merged as groups) and disable the ones whose chosen topic is closed or gone; returns
    how many were disabled."""
    if not found:
        return 0
    ids = await group_topics.ids_by_peer(conn, user_id, list(found), account_id)
    for peer_id, topics in found.items():
        group_id = ids.get(peer_id)
        if group_id is not None:
            rows = [TopicRow(t.topic_id, t.title, t.closed) for t in topics]
            await group_topics.replace(conn, group_id, rows)
    return await group_topics.disable_unusable(conn, user_id, list(ids.values()), now)


@dataclass(frozen=True)
class TopicItem:
    topic_id: int
    title: str
    closed: bool
    chosen: bool


@dataclass(frozen=True)
class TopicPage:
    """U11.2: one page of a forum's topics; ``list_page`` is the group list page the forum is on."""

    group_id: int
    title: str
    items: list[TopicItem]
    page: int
    pages: int
    total: int
    chosen: int
    chosen_title: str
    list_page: int
    status: str
    reason: str


class TopicService:
    """U11.2: a forum's topics and the user's choice; every action checks the group is the user's forum."""

    def __init__(self, db: Database, now: Clock = utc_now, page_size: int = TOPIC_PAGE_SIZE,
                 list_page_size: int = 10) -> None:
        self.db = db
        self.now = now
        self.page_size = page_size
        self.list_page_size = list_page_size

    async def page(self, user_id: int, group_id: int, page: int = 0) -> TopicPage | None:
        """None when ``group_id`` is not one of the user's forums (forged or stale)."""
        async with self.db.connection() as conn:
            return await self._page(conn, user_id, group_id, page)

    async def choose(self, user_id: int, group_id: int, topic_id: int
                     ) -> tuple[ChooseOutcome, TopicPage | None]:
        """Posts go to ``topic_id`` from the next send on; a closed topic is refused ("closed")."""
        async with self.db.transaction() as conn:
            group = await groups.get_owned(conn, user_id, group_id, for_update=True)
            if group is None or not group.is_forum:
                return "not_found", None
            topic = await group_topics.get(conn, group_id, topic_id)
            if topic is None:
                return "not_found", await self._page(conn, user_id, group_id, 0)
            if topic.closed:
                return "closed", None
            await group_topics.choose(conn, user_id, group_id, topic_id, self.now())
            log.info("forum topic chosen user_id=%s group_id=%s topic_id=%s", user_id, group_id, topic_id)
            page = await self._page_of(conn, user_id, group_id, topic_id)
        return "chosen", page

    async def page_showing(self, user_id: int, group_id: int, topic_id: int) -> TopicPage | None:
        """The page of the forum's topics that shows ``topic_id`` (the first if it isn't listed)."""
        async with self.db.connection() as conn:
            return await self._page_of(conn, user_id, group_id, topic_id)

    async def _page_of(self, conn: Connection, user_id: int, group_id: int, topic_id: int
                       ) -> TopicPage | None:
        """The page that shows ``topic_id``."""
        rows = await group_topics.page(conn, group_id, 0, 10_000)
        index = next((i for i, t in enumerate(rows) if t.topic_id == topic_id), 0)
        return await self._page(conn, user_id, group_id, index // self.page_size)

    async def _page(self, conn: Connection, user_id: int, group_id: int, page: int) -> TopicPage | None:
        group = await groups.get_owned(conn, user_id, group_id)
        if group is None or not group.is_forum:
            return None
        total = await group_topics.count(conn, group_id)
        current = rules.clamp_page(page, total, self.page_size)
        rows = await group_topics.page(conn, group_id, current * self.page_size, self.page_size)
        chosen = group.topic_id or GENERAL
        chosen_row = await group_topics.get(conn, group_id, chosen)
        position = await group_topics.position(conn, user_id, group_id)
        return TopicPage(
            group_id=group_id, title=group.title,
            items=[TopicItem(t.topic_id, t.title, t.closed, t.topic_id == chosen) for t in rows],
            page=current, pages=rules.page_count(total, self.page_size), total=total, chosen=chosen,
            chosen_title=chosen_row.title if chosen_row is not None else "",
            list_page=position // self.list_page_size, status=group.status, reason=group.reason,
        )
