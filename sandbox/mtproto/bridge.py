"""What the MTProto endpoint needs from the world beyond its adapter calls.

``World`` exposes login, dialogs and sends by session token (``send_code``, ``sign_in`` ...),
which is all the HTTP adapter needs. MTProto asks for four more things: who a session is
(``users.getUsers(self)`` and ``updates.getState`` must answer, or fail as the session's next
call would, without counting as a world call); the account's 2FA password (to derive the SRP
verifier); the access hash of a basic group (``inputPeerChat`` carries none, the world checks
one); and whether a basic group was upgraded (Telegram shows the old chat deactivated, with a
link to the supergroup). Until ``World`` offers these publicly, they are read here, and only here.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox import world as world_module
from sandbox.world import World


@dataclass(frozen=True)
class Me:
    user_id: int
    first_name: str
    phone: str  # +digits


def session_user(world: World, token: str) -> Me:
    """The account behind a live session; raises ``WorldError`` as the session's next call would."""
    account = world._session_account(token)
    return Me(account.user_id, account.first_name, account.phone)


def two_step_password(world: World, phone: str) -> str | None:
    account = world._accounts.get(phone)
    return None if account is None else account.password


def member_access_hash(phone: str, group_id: int) -> int:
    return world_module._access_hash(phone, group_id)


def migrated_to(world: World, group_id: int) -> int | None:
    group = world._groups.get(group_id)
    return None if group is None else group.migrated_to
