"""Domain errors raised by the account gateway.

Every Telegram error is mapped once, in the gateway adapters, to one of these
types. They carry data as attributes (seconds to wait, the reason a group is
closed, the new id of a migrated group) so the engine and the services decide
what to do without knowing Telegram's error names. ``code`` keeps the name
Telegram used (``FLOOD_WAIT``, ``CHAT_WRITE_FORBIDDEN`` ...) for the attempt
log.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the account gateway raises."""

    kind = "unknown"

    def __init__(self, code: str = "", detail: str = "") -> None:
        self.code = code or self.kind.upper()
        self.detail = detail
        super().__init__(f"{self.code}: {detail}" if detail else self.code)


# --- sending (engine.md, "Errors from Telegram") -------------------------------------------


class FloodWait(GatewayError):
    """Telegram asked to wait ``seconds`` (FLOOD_WAIT_X, SLOWMODE_WAIT_X)."""

    kind = "flood_wait"

    def __init__(self, seconds: int, code: str = "FLOOD_WAIT", detail: str = "") -> None:
        self.seconds = max(0, int(seconds))
        super().__init__(code, detail or f"wait {self.seconds}s")

    @property
    def is_slow_mode(self) -> bool:
        return self.code == "SLOWMODE_WAIT"


class AccountThrottled(GatewayError):
    """The whole account is limited by Telegram, not one group: PEER_FLOOD, USER_BANNED_IN_CHANNEL
    (banned from writing in every supergroup/channel), USER_RESTRICTED, FROZEN_* (a frozen account).

    The broadcast pauses; no group is disabled for it. ``spambot`` says whether Telegram's
    @SpamBot is where the user can see and appeal the limit (true for the names above; false for
    an unknown 406 that pauses the account only to be safe).
    """

    kind = "account_throttled"

    def __init__(self, code: str = "", detail: str = "", spambot: bool = True) -> None:
        self.spambot = spambot
        super().__init__(code, detail)


class GroupClosed(GatewayError):
    """The group can't be written to any more (banned, private, write forbidden ...)."""

    kind = "group_closed"

    @property
    def reason(self) -> str:
        return self.code


class GroupMigrated(GatewayError):
    """CHAT_MIGRATED: a basic group became a supergroup with ``new_peer_id``."""

    kind = "group_migrated"

    def __init__(self, new_peer_id: int, new_access_hash: int = 0, code: str = "CHAT_MIGRATED") -> None:
        self.new_peer_id = new_peer_id
        self.new_access_hash = new_access_hash
        super().__init__(code, f"moved to {new_peer_id}")


class SessionDead(GatewayError):
    """The account's session no longer works (revoked, unregistered, deactivated)."""

    kind = "session_dead"


class TransientError(GatewayError):
    """Network errors, RPC 5xx, timeouts: worth retrying later."""

    kind = "transient"


class ClientError(GatewayError):
    """Telegram refused the request our client built (credentials, layer, protocol): neither the
    account's, the group's nor the message's fault; nothing the user can fix."""

    kind = "client_error"


class MaybeSent(GatewayError):
    """RANDOM_ID_DUPLICATE: a request with this message's random id already reached Telegram, so
    the message may well be posted; it is never sent again in that round."""

    kind = "maybe_sent"


class MessageRejected(GatewayError):
    """Telegram refused the message itself (too long, bad media, bad entities)."""

    kind = "message_rejected"


# --- login ----------------------------------------------------------------------------------


class PhoneInvalid(GatewayError):
    kind = "phone_invalid"


class PhoneBanned(GatewayError):
    kind = "phone_banned"


class CodeInvalid(GatewayError):
    kind = "code_invalid"


class CodeExpired(GatewayError):
    kind = "code_expired"


class PasswordNeeded(GatewayError):
    """The code was right and the account has two-step verification on."""

    kind = "password_needed"


class PasswordInvalid(GatewayError):
    kind = "password_invalid"


class LoginBlocked(GatewayError):
    """Telegram will not send a code this app can use: the login must be finished elsewhere.

    ``reason``: ``setup_email_required`` (the account must set up a login email in the
    official app first) or ``payment_required`` (Telegram asks for a paid sign-up/verification
    in the official app).
    """

    kind = "login_blocked"

    @property
    def reason(self) -> str:
        return self.detail or self.code.lower()


class ResendUnavailable(GatewayError):
    """SEND_CODE_UNAVAILABLE: every way of delivering the code has been used."""

    kind = "resend_unavailable"


# --- not from Telegram ----------------------------------------------------------------------


class Busy(Exception):
    """The account is in use right now (a broadcast batch is sending): try again in a moment."""

    def __init__(self, user_id: int) -> None:
        super().__init__(f"the account of user {user_id} is in use")
        self.user_id = user_id


class AlreadyRunning(Exception):
    """A one-at-a-time thing (an A7 announcement) is already running; ``what`` names it."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is already running")
        self.what = what
