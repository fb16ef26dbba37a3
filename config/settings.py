"""Settings: one object with nested sections, read from the environment and an optional ``.env``.

pydantic-settings reads and converts the variables (``EnvironmentVariables``, one field per variable,
named as the variable); ``load_settings`` turns them into the frozen sections the code uses. Every
variable is documented in ``.env.example``. Secrets are kept in ``Secret`` so that printing or logging
the settings never shows them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationError
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

ROLES = ("bot", "app", "worker", "all", "sandbox")
GATEWAYS = ("sandbox", "telethon")
SANDBOX_BOT_TOKEN = "1000000001:sandbox-bot-token"  # only ever sent to the local sandbox
PLACEHOLDERS = {"", "changeme", "change-me", "placeholder", "secret", "xxx", "todo", "your-key-here"}
ADMIN_TOKEN_MIN_LENGTH = 32  # production refuses shorter admin API tokens
ADMIN_TOKEN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Secret:
    """A string that does not show itself in repr/str/logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = ""  # DATABASE_URL; empty -> embedded PostgreSQL under data_dir/pg
    pool_min: int = 1
    pool_max: int = 10


@dataclass(frozen=True)
class RedisSettings:
    url: str = ""  # REDIS_URL; empty -> embedded Redis under data_dir/redis


@dataclass(frozen=True)
class TelegramSettings:
    bot_token: Secret = field(default_factory=lambda: Secret(""))
    api_id: int = 0
    api_hash: Secret = field(default_factory=lambda: Secret(""))
    bot_api_url: str = ""  # custom Bot API server; set to the sandbox in sandbox mode
    gateway: str = ""  # "telethon" | "sandbox"; empty -> sandbox when no API credentials


@dataclass(frozen=True)
class SandboxSettings:
    enabled: bool | None = None  # None -> on when no Telegram credentials are configured
    host: str = "127.0.0.1"
    port: int = 8081
    seed_file: str = "sandbox/demo_world.json"
    rate_limits: bool = True
    code_ttl: float = 300.0
    account_send_limit: int = 20  # sends per account per window before a flood wait
    account_send_window: float = 60.0
    account_send_limit_hour: int = 0  # sends per account per hour window (0: no such window)
    account_send_window_hour: float = 3600.0
    account_send_limit_day: int = 0  # sends per account per day window (0: no such window)
    account_send_window_day: float = 86400.0
    mtproto_port: int = 8082  # the sandbox's MTProto endpoint for the real Telethon adapter; -1 disables
    mtproto_key_file: str = ""  # its RSA key; empty -> <DATA_DIR>/sandbox/mtproto_rsa.pem

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class AdminToken:
    """One admin API bearer token and the operator it belongs to (the audit log's actor name)."""

    name: str
    token: Secret


@dataclass(frozen=True)
class AppSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    admin_tokens: tuple[AdminToken, ...] = ()
    auth_max_failures: int = 10  # failed bearer tokens per client address per window before 429
    auth_failure_window: int = 300  # seconds
    webhook_url: str = ""  # empty -> long polling
    webhook_secret: Secret = field(default_factory=lambda: Secret(""))


def check_retention(retention: RetentionSettings) -> None:
    """A window under a day would delete the rounds the status view and the admin runtime still show."""
    if retention.days < 1:
        raise SettingsError("RETENTION_DAYS must be at least 1")
    if retention.audit_days < 0:
        raise SettingsError("AUDIT_RETENTION_DAYS must be 0 (keep forever) or more")
    if retention.batch < 1:
        raise SettingsError("RETENTION_BATCH must be at least 1")
    if retention.pause < 0 or retention.interval <= 0:
        raise SettingsError("RETENTION_PAUSE must be 0 or more and RETENTION_INTERVAL above 0")


WEBHOOK_SECRET_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def check_webhook(app: AppSettings) -> None:
    """Webhook mode needs a secret Telegram accepts: 1-256 characters of A-Z, a-z, 0-9, _ and -."""
    if not app.webhook_url:
        return
    secret = app.webhook_secret.get()
    if not secret or len(secret) > 256 or not set(secret) <= WEBHOOK_SECRET_CHARS:
        raise SettingsError("WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and - "
                            "when WEBHOOK_URL is set")


@dataclass(frozen=True)
class BotSettings:
    admin_ids: tuple[int, ...] = ()
    login_ttl: float = 600.0
    login_max_attempts: int = 5
    interval_min: int = 15 * 60  # seconds
    interval_max: int = 1440 * 60
    selection_limit: int = 100
    messages_per_account: int = 5  # U9: messages in rotation, per account
    accounts_per_user: int = 3  # U8: Telegram accounts one bot user may connect
    throttle_rate: float = 10.0  # updates per second per user before "slow down"
    lock_wait: float = 5.0  # how long an import or logout waits for a sending batch before "busy"
    pace_sends: bool = True  # spread new messages to Telegram's limits (off: a sandbox without limits)


@dataclass(frozen=True)
class EngineSettings:
    batch_size: int = 5
    gap_min: float = 4.0
    gap_max: float = 8.0
    lease_ttl: float = 30.0
    tick: float = 1.0
    flood_inline_max: int = 120
    peer_flood_pause: int = 6 * 3600
    retry_base: float = 5.0
    retry_max: float = 300.0
    retry_tries: int = 5
    worker_concurrency: int = 8
    client_pool_size: int = 200
    client_idle_timeout: float = 300.0
    # account safety (domain/limits.py): caps per sliding minute/hour/day (0: no cap), breaks, gap widening
    limit_minute: int = 10
    limit_hour: int = 200
    limit_day: int = 1500
    limit_slack: float = 1.0  # seconds added to a cap wait (network jitter between us and Telegram)
    limit_time_scale: float = 1.0  # multiplies the windows and breaks; tests compress time with it
    limit_refresh: float = 10.0  # seconds a worker keeps the admin-set caps before reading them again
    break_after: int = 50  # sends in a row before a break (0: no breaks)
    break_min: float = 600.0
    break_max: float = 1200.0
    gap_widen_max: float = 10.0  # a FLOOD_WAIT doubles the gap factor, up to this
    gap_widen_recover: int = 10  # clean sends over which a widened gap halves back


@dataclass(frozen=True)
class RetentionSettings:
    """How long history is stored (issue 14): older rows are summarised and deleted in small batches."""

    days: int = 30  # finished rounds and attempts, superseded message versions, media, notifications
    audit_days: int = 365  # admin audit log (accountability outlives delivery history); 0 keeps it forever
    batch: int = 1000  # most rows one retention statement deletes
    pause: float = 0.05  # seconds between two batches, so other writers get the tables
    interval: float = 3600.0  # seconds between two runs of the job (scheduler leader only)


@dataclass(frozen=True)
class SecuritySettings:
    session_key: Secret = field(default_factory=lambda: Secret(""))  # SESSION_ENCRYPTION_KEY (Fernet)


@dataclass(frozen=True)
class Settings:
    role: str = "all"
    production: bool = False
    data_dir: Path = Path("data")
    log_level: str = "INFO"
    metrics_port: int = 9100  # 0 disables the stand-alone /metrics listener
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    app: AppSettings = field(default_factory=AppSettings)
    bot: BotSettings = field(default_factory=BotSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)

    @property
    def has_telegram_credentials(self) -> bool:
        return bool(self.telegram.bot_token) and self.telegram.api_id > 0 and bool(self.telegram.api_hash)

    @property
    def sandbox_enabled(self) -> bool:
        if self.sandbox.enabled is not None:
            return self.sandbox.enabled
        return not self.has_telegram_credentials

    @property
    def gateway_kind(self) -> str:
        if self.telegram.gateway:
            return self.telegram.gateway
        return "sandbox" if self.sandbox_enabled else "telethon"

    def with_sandbox_defaults(self) -> Settings:
        """In sandbox mode the bot talks to the sandbox's Bot API with a local token."""
        if not self.sandbox_enabled:
            return self
        telegram = self.telegram
        if not telegram.bot_api_url:
            telegram = replace(telegram, bot_api_url=self.sandbox.url)
        if not telegram.bot_token:
            telegram = replace(telegram, bot_token=Secret(SANDBOX_BOT_TOKEN))
        return replace(self, telegram=telegram)

    def check_production(self) -> None:
        """Refuse a production start with a missing or placeholder secret, naming the variable."""
        if not self.production:
            return
        required = {
            "SESSION_ENCRYPTION_KEY": self.security.session_key.get(),
            "BOT_TOKEN": self.telegram.bot_token.get(),
            "TELEGRAM_API_HASH": self.telegram.api_hash.get(),
            "DATABASE_URL": self.database.url,
            "REDIS_URL": self.redis.url,
        }
        for name, value in required.items():
            if value.strip().lower() in PLACEHOLDERS:
                raise SettingsError(f"{name} is missing or a placeholder; production start refused")
        if self.telegram.api_id <= 0:
            raise SettingsError("TELEGRAM_API_ID is missing; production start refused")
        if self.sandbox.enabled:
            raise SettingsError("SANDBOX_ENABLED must be off in production")
        if self.telegram.gateway == "sandbox":
            raise SettingsError("ACCOUNT_GATEWAY=sandbox is refused in production "
                                "(use telethon or leave it empty)")
        for entry in self.app.admin_tokens:
            token = entry.token.get()
            if token.strip().lower() in PLACEHOLDERS or len(token) < ADMIN_TOKEN_MIN_LENGTH:
                raise SettingsError(f"ADMIN_API_TOKENS: the token named {entry.name!r} is a placeholder or "
                                    f"shorter than {ADMIN_TOKEN_MIN_LENGTH} characters; "
                                    "production start refused")


def _split(raw: object) -> object:
    return [item.strip() for item in raw.split(",") if item.strip()] if isinstance(raw, str) else raw


def _admin_tokens(raw: object) -> object:
    """``name:token,name:token`` -> ``AdminToken``s; the name is who the audit log says acted."""
    if not isinstance(raw, str):
        return raw
    parsed: list[AdminToken] = []
    for entry in [item.strip() for item in raw.split(",") if item.strip()]:
        name, sep, token = entry.partition(":")
        name = name.strip()
        if not sep or not token.strip() or not ADMIN_TOKEN_NAME.fullmatch(name):
            raise ValueError("entries must be name:token (name of A-Z, a-z, 0-9, _ . -)")
        if name in {known.name for known in parsed}:
            raise ValueError("token names must be unique")
        parsed.append(AdminToken(name, Secret(token.strip())))
    return tuple(parsed)


def _auto_bool(raw: object) -> object:
    return None if isinstance(raw, str) and raw.strip().lower() in {"", "auto"} else raw


AutoBool = Annotated[bool | None, BeforeValidator(_auto_bool)]
IdList = Annotated[tuple[int, ...], NoDecode, BeforeValidator(_split)]
AdminTokens = Annotated[tuple[AdminToken, ...], NoDecode, BeforeValidator(_admin_tokens)]


class EnvironmentVariables(BaseSettings):
    """Every variable the service reads, named exactly as in the environment; unset ones stay ``None``
    so the section defaults above remain the single source of defaults."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", env_file_encoding="utf-8",
                                      arbitrary_types_allowed=True)

    ROLE: str | None = None
    PRODUCTION: bool | None = None
    DATA_DIR: Path | None = None
    LOG_LEVEL: str | None = None
    METRICS_PORT: int | None = None
    DATABASE_URL: str | None = None
    DATABASE_POOL_MIN: int | None = None
    DATABASE_POOL_MAX: int | None = None
    REDIS_URL: str | None = None
    BOT_TOKEN: str | None = None
    TELEGRAM_API_ID: int | None = None
    TELEGRAM_API_HASH: str | None = None
    BOT_API_URL: str | None = None
    ACCOUNT_GATEWAY: str | None = None
    SANDBOX_ENABLED: AutoBool | None = None
    SANDBOX_HOST: str | None = None
    SANDBOX_PORT: int | None = None
    SANDBOX_SEED_FILE: str | None = None
    SANDBOX_RATE_LIMITS: bool | None = None
    SANDBOX_CODE_TTL: float | None = None
    SANDBOX_ACCOUNT_SEND_LIMIT: int | None = None
    SANDBOX_ACCOUNT_SEND_WINDOW: float | None = None
    SANDBOX_ACCOUNT_SEND_LIMIT_HOUR: int | None = None
    SANDBOX_ACCOUNT_SEND_WINDOW_HOUR: float | None = None
    SANDBOX_ACCOUNT_SEND_LIMIT_DAY: int | None = None
    SANDBOX_ACCOUNT_SEND_WINDOW_DAY: float | None = None
    SANDBOX_MTPROTO_PORT: int | None = None
    SANDBOX_MTPROTO_KEY_FILE: str | None = None
    APP_HOST: str | None = None
    APP_PORT: int | None = None
    ADMIN_API_TOKENS: AdminTokens | None = None
    ADMIN_AUTH_MAX_FAILURES: int | None = None
    ADMIN_AUTH_FAILURE_WINDOW: int | None = None
    WEBHOOK_URL: str | None = None
    WEBHOOK_SECRET: str | None = None
    ADMIN_IDS: IdList | None = None
    LOGIN_TTL: float | None = None
    LOGIN_MAX_ATTEMPTS: int | None = None
    INTERVAL_MIN_SECONDS: int | None = None
    INTERVAL_MAX_SECONDS: int | None = None
    SELECTION_LIMIT: int | None = None
    MESSAGES_PER_ACCOUNT: int | None = None
    THROTTLE_RATE: float | None = None
    LOCK_WAIT_SECONDS: float | None = None
    BATCH_SIZE: int | None = None
    GAP_MIN: float | None = None
    GAP_MAX: float | None = None
    LEASE_TTL: float | None = None
    SCHEDULER_TICK: float | None = None
    FLOOD_INLINE_MAX: int | None = None
    PEER_FLOOD_PAUSE: int | None = None
    RETRY_BASE: float | None = None
    RETRY_MAX: float | None = None
    RETRY_TRIES: int | None = None
    WORKER_CONCURRENCY: int | None = None
    CLIENT_POOL_SIZE: int | None = None
    CLIENT_IDLE_TIMEOUT: float | None = None
    SEND_LIMIT_MINUTE: int | None = None
    SEND_LIMIT_HOUR: int | None = None
    SEND_LIMIT_DAY: int | None = None
    SEND_LIMIT_SLACK: float | None = None
    SEND_LIMIT_TIME_SCALE: float | None = None
    SEND_LIMIT_REFRESH: float | None = None
    BREAK_AFTER: int | None = None
    BREAK_MIN: float | None = None
    BREAK_MAX: float | None = None
    GAP_WIDEN_MAX: float | None = None
    GAP_WIDEN_RECOVER: int | None = None
    SESSION_ENCRYPTION_KEY: str | None = None
    RETENTION_DAYS: int | None = None
    AUDIT_RETENTION_DAYS: int | None = None
    RETENTION_BATCH: int | None = None
    RETENTION_PAUSE: float | None = None
    RETENTION_INTERVAL: float | None = None

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the process environment overrides .env; nothing else is read
        return env_settings, dotenv_settings


class GivenVariables(EnvironmentVariables):
    """The same variables from an explicit mapping (tests, tools) instead of the process environment."""

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, dotenv_settings


# Environment variable -> (section, field). The single place that maps variables onto the sections.
ENV_MAP: dict[str, tuple[str, str]] = {
    "ROLE": ("", "role"),
    "PRODUCTION": ("", "production"),
    "DATA_DIR": ("", "data_dir"),
    "LOG_LEVEL": ("", "log_level"),
    "METRICS_PORT": ("", "metrics_port"),
    "DATABASE_URL": ("database", "url"),
    "DATABASE_POOL_MIN": ("database", "pool_min"),
    "DATABASE_POOL_MAX": ("database", "pool_max"),
    "REDIS_URL": ("redis", "url"),
    "BOT_TOKEN": ("telegram", "bot_token"),
    "TELEGRAM_API_ID": ("telegram", "api_id"),
    "TELEGRAM_API_HASH": ("telegram", "api_hash"),
    "BOT_API_URL": ("telegram", "bot_api_url"),
    "ACCOUNT_GATEWAY": ("telegram", "gateway"),
    "SANDBOX_ENABLED": ("sandbox", "enabled"),
    "SANDBOX_HOST": ("sandbox", "host"),
    "SANDBOX_PORT": ("sandbox", "port"),
    "SANDBOX_SEED_FILE": ("sandbox", "seed_file"),
    "SANDBOX_RATE_LIMITS": ("sandbox", "rate_limits"),
    "SANDBOX_CODE_TTL": ("sandbox", "code_ttl"),
    "SANDBOX_ACCOUNT_SEND_LIMIT": ("sandbox", "account_send_limit"),
    "SANDBOX_ACCOUNT_SEND_WINDOW": ("sandbox", "account_send_window"),
    "SANDBOX_ACCOUNT_SEND_LIMIT_HOUR": ("sandbox", "account_send_limit_hour"),
    "SANDBOX_ACCOUNT_SEND_WINDOW_HOUR": ("sandbox", "account_send_window_hour"),
    "SANDBOX_ACCOUNT_SEND_LIMIT_DAY": ("sandbox", "account_send_limit_day"),
    "SANDBOX_ACCOUNT_SEND_WINDOW_DAY": ("sandbox", "account_send_window_day"),
    "SANDBOX_MTPROTO_PORT": ("sandbox", "mtproto_port"),
    "SANDBOX_MTPROTO_KEY_FILE": ("sandbox", "mtproto_key_file"),
    "APP_HOST": ("app", "host"),
    "APP_PORT": ("app", "port"),
    "ADMIN_API_TOKENS": ("app", "admin_tokens"),
    "ADMIN_AUTH_MAX_FAILURES": ("app", "auth_max_failures"),
    "ADMIN_AUTH_FAILURE_WINDOW": ("app", "auth_failure_window"),
    "WEBHOOK_URL": ("app", "webhook_url"),
    "WEBHOOK_SECRET": ("app", "webhook_secret"),
    "ADMIN_IDS": ("bot", "admin_ids"),
    "LOGIN_TTL": ("bot", "login_ttl"),
    "LOGIN_MAX_ATTEMPTS": ("bot", "login_max_attempts"),
    "INTERVAL_MIN_SECONDS": ("bot", "interval_min"),
    "INTERVAL_MAX_SECONDS": ("bot", "interval_max"),
    "SELECTION_LIMIT": ("bot", "selection_limit"),
    "MESSAGES_PER_ACCOUNT": ("bot", "messages_per_account"),
    "ACCOUNTS_PER_USER": ("bot", "accounts_per_user"),
    "THROTTLE_RATE": ("bot", "throttle_rate"),
    "BOT_PACE_SENDS": ("bot", "pace_sends"),
    "LOCK_WAIT_SECONDS": ("bot", "lock_wait"),
    "BATCH_SIZE": ("engine", "batch_size"),
    "GAP_MIN": ("engine", "gap_min"),
    "GAP_MAX": ("engine", "gap_max"),
    "LEASE_TTL": ("engine", "lease_ttl"),
    "SCHEDULER_TICK": ("engine", "tick"),
    "FLOOD_INLINE_MAX": ("engine", "flood_inline_max"),
    "PEER_FLOOD_PAUSE": ("engine", "peer_flood_pause"),
    "RETRY_BASE": ("engine", "retry_base"),
    "RETRY_MAX": ("engine", "retry_max"),
    "RETRY_TRIES": ("engine", "retry_tries"),
    "WORKER_CONCURRENCY": ("engine", "worker_concurrency"),
    "CLIENT_POOL_SIZE": ("engine", "client_pool_size"),
    "CLIENT_IDLE_TIMEOUT": ("engine", "client_idle_timeout"),
    "SEND_LIMIT_MINUTE": ("engine", "limit_minute"),
    "SEND_LIMIT_HOUR": ("engine", "limit_hour"),
    "SEND_LIMIT_DAY": ("engine", "limit_day"),
    "SEND_LIMIT_SLACK": ("engine", "limit_slack"),
    "SEND_LIMIT_TIME_SCALE": ("engine", "limit_time_scale"),
    "SEND_LIMIT_REFRESH": ("engine", "limit_refresh"),
    "BREAK_AFTER": ("engine", "break_after"),
    "BREAK_MIN": ("engine", "break_min"),
    "BREAK_MAX": ("engine", "break_max"),
    "GAP_WIDEN_MAX": ("engine", "gap_widen_max"),
    "GAP_WIDEN_RECOVER": ("engine", "gap_widen_recover"),
    "SESSION_ENCRYPTION_KEY": ("security", "session_key"),
    "RETENTION_DAYS": ("retention", "days"),
    "AUDIT_RETENTION_DAYS": ("retention", "audit_days"),
    "RETENTION_BATCH": ("retention", "batch"),
    "RETENTION_PAUSE": ("retention", "pause"),
    "RETENTION_INTERVAL": ("retention", "interval"),
}


def _read(environ: Mapping[str, str] | None, env_file: Path | None) -> dict[str, Any]:
    try:
        if environ is None:
            variables: EnvironmentVariables = EnvironmentVariables(_env_file=env_file)  # type: ignore[call-arg]
        else:
            given: dict[str, Any] = {name: value for name, value in environ.items() if name in ENV_MAP}
            variables = GivenVariables(_env_file=env_file, **given)  # type: ignore[call-arg]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else "a variable"
        reason = str(error.get("ctx", {}).get("error", "")) if error["type"] == "value_error" else ""
        raise SettingsError(f"{name} has an invalid value" + (f": {reason}" if reason else "")) from None
    return {name: getattr(variables, name) for name in variables.model_fields_set}


def load_settings(environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")) -> Settings:
    """Build settings from ``.env`` (if present) overridden by the real environment (or ``environ``)."""
    values = _read(environ, env_file if env_file is not None and env_file.is_file() else None)
    base = Settings()
    sections: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for name, (section, attr) in ENV_MAP.items():
        if name not in values:
            continue
        holder = base if not section else getattr(base, section)
        value = values[name]
        if isinstance(getattr(holder, attr), Secret):
            value = Secret(value)
        (top if not section else sections.setdefault(section, {}))[attr] = value
    for section, changes in sections.items():
        current = getattr(base, section)
        top[section] = type(current)(**{**_as_kwargs(current), **changes})
    settings = Settings(**{**_as_kwargs(base), **top})
    if settings.role not in ROLES:
        raise SettingsError(f"ROLE must be one of {', '.join(ROLES)}")
    if settings.engine.gap_min > settings.engine.gap_max:
        raise SettingsError("GAP_MIN must not exceed GAP_MAX")
    if settings.engine.break_min > settings.engine.break_max:
        raise SettingsError("BREAK_MIN must not exceed BREAK_MAX")
    if settings.engine.limit_time_scale <= 0:
        raise SettingsError("SEND_LIMIT_TIME_SCALE must be above 0")
    check_retention(settings.retention)
    if settings.bot.messages_per_account < 1:
        raise SettingsError("MESSAGES_PER_ACCOUNT must be at least 1")
    if settings.bot.accounts_per_user < 1:
        raise SettingsError("ACCOUNTS_PER_USER must be at least 1")
    check_webhook(settings.app)
    if settings.telegram.gateway and settings.telegram.gateway not in GATEWAYS:
        raise SettingsError(f"ACCOUNT_GATEWAY must be one of {', '.join(GATEWAYS)} (or empty)")
    return settings


def _as_kwargs(obj: Any) -> dict[str, Any]:
    assert is_dataclass(obj)
    return {f.name: getattr(obj, f.name) for f in fields(obj)}
