"""config.settings: environment and .env loading, secrets, production refusals, sandbox defaults."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from config.settings import (
    ROLES,
    AppSettings,
    DatabaseSettings,
    EngineSettings,
    Secret,
    Settings,
    SettingsError,
    load_settings,
)

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "PRODUCTION": "1",
    "SESSION_ENCRYPTION_KEY": "k" * 44,
    "BOT_TOKEN": "123456:bot-token-value",
    "TELEGRAM_API_ID": "12345",
    "TELEGRAM_API_HASH": "0123456789abcdef0123456789abcdef",
    "DATABASE_URL": "postgresql://broadcast:pw@db:5432/broadcast",
    "REDIS_URL": "redis://cache:6379/0",
}


def named_variables(message: str) -> list[str]:
    return re.findall(r"\b[A-Z][A-Z0-9_]+\b", message)


def test_environ_mapping_fills_nested_sections_with_converted_types() -> None:
    settings = load_settings(
        {
            "ROLE": "worker",
            "DATA_DIR": "/srv/broadcast",
            "APP_PORT": "9000",
            "DATABASE_POOL_MAX": "25",
            "GAP_MIN": "1.5",
            "GAP_MAX": "2.5",
            "ADMIN_IDS": "11, 22,,33",
            "ADMIN_API_TOKENS": "alice:alpha, ci:beta:with-colon",
            "SANDBOX_ENABLED": "false",
            "SANDBOX_RATE_LIMITS": "off",
        },
        env_file=None,
    )
    assert settings.role == "worker"
    assert settings.data_dir == Path("/srv/broadcast")
    assert settings.app.port == 9000
    assert settings.database.pool_max == 25
    assert settings.engine.gap_min == 1.5 and settings.engine.gap_max == 2.5
    assert settings.bot.admin_ids == (11, 22, 33)
    assert [(t.name, t.token.get()) for t in settings.app.admin_tokens] == [
        ("alice", "alpha"), ("ci", "beta:with-colon")]
    assert settings.sandbox.enabled is False
    assert settings.sandbox.rate_limits is False


def test_untouched_fields_keep_their_defaults_and_sections_keep_their_types() -> None:
    settings = load_settings({"APP_PORT": "9001", "BATCH_SIZE": "7"}, env_file=None)
    assert isinstance(settings.app, AppSettings)
    assert isinstance(settings.engine, EngineSettings)
    assert isinstance(settings.database, DatabaseSettings)
    assert settings.app.host == AppSettings().host
    assert settings.engine.gap_max == EngineSettings().gap_max
    assert settings.engine.batch_size == 7
    assert dataclasses.replace(settings, app=AppSettings(), engine=EngineSettings()) == Settings()


def test_empty_environment_gives_the_defaults() -> None:
    assert load_settings({}, env_file=None) == Settings()


def test_env_file_is_read_and_the_environment_overrides_it(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# a comment line\n"
        "\n"
        "ROLE=bot\n"
        "export LOG_LEVEL=DEBUG\n"
        'BOT_API_URL="http://127.0.0.1:9999"\n'
        "APP_PORT='8181'\n"
        "BATCH_SIZE=3\n"
        "not a variable line\n",
        encoding="utf-8",
    )
    settings = load_settings({"BATCH_SIZE": "9", "ROLE": "app"}, env_file=env_file)
    assert settings.role == "app"
    assert settings.engine.batch_size == 9
    assert settings.log_level == "DEBUG"
    assert settings.telegram.bot_api_url == "http://127.0.0.1:9999"
    assert settings.app.port == 8181


def test_missing_env_file_is_not_an_error(tmp_path: Path) -> None:
    assert load_settings({}, env_file=tmp_path / "absent.env") == Settings()


def test_env_example_loads_to_the_defaults() -> None:
    # An unedited copy of .env.example must start the local product exactly as no file would.
    assert load_settings({}, env_file=ROOT / ".env.example") == Settings()


def test_secrets_never_show_in_repr_or_str() -> None:
    secrets = {
        "SESSION_ENCRYPTION_KEY": "sekrit-session-key-1",
        "BOT_TOKEN": "sekrit-bot-token-2",
        "TELEGRAM_API_HASH": "sekrit-api-hash-3",
        "WEBHOOK_SECRET": "sekrit-webhook-4",
        "ADMIN_API_TOKENS": "a:sekrit-admin-5,b:sekrit-admin-6",
    }
    settings = load_settings(secrets, env_file=None)
    shown = repr(settings) + str(settings) + repr(settings.telegram) + str(settings.security)
    assert "sekrit" not in shown
    assert "**********" in shown
    assert settings.security.session_key.get() == "sekrit-session-key-1"
    assert settings.telegram.bot_token.get() == "sekrit-bot-token-2"
    assert settings.app.admin_tokens[1].token.get() == "sekrit-admin-6"


def test_secret_behaves_like_a_value() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert not Secret("")
    assert Secret("x")
    assert repr(Secret("")) == "Secret('')"


def test_complete_production_settings_pass() -> None:
    settings = load_settings(PRODUCTION_ENV, env_file=None)
    assert settings.production is True
    settings.check_production()
    assert settings.sandbox_enabled is False
    assert settings.gateway_kind == "telethon"


@pytest.mark.parametrize(
    "name", ["SESSION_ENCRYPTION_KEY", "BOT_TOKEN", "TELEGRAM_API_HASH", "DATABASE_URL", "REDIS_URL"]
)
@pytest.mark.parametrize("value", [None, "", "changeme", " CHANGEME ", "placeholder"])
def test_production_refuses_missing_or_placeholder_secret(name: str, value: str | None) -> None:
    env = dict(PRODUCTION_ENV)
    if value is None:
        del env[name]
    else:
        env[name] = value
    settings = load_settings(env, env_file=None)
    with pytest.raises(SettingsError) as caught:
        settings.check_production()
    assert name in named_variables(str(caught.value))


@pytest.mark.parametrize("value", [None, "0", "-5"])
def test_production_refuses_missing_api_id(value: str | None) -> None:
    env = dict(PRODUCTION_ENV)
    if value is None:
        del env["TELEGRAM_API_ID"]
    else:
        env["TELEGRAM_API_ID"] = value
    with pytest.raises(SettingsError) as caught:
        load_settings(env, env_file=None).check_production()
    assert "TELEGRAM_API_ID" in named_variables(str(caught.value))


def test_placeholder_api_id_is_refused_while_loading() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**PRODUCTION_ENV, "TELEGRAM_API_ID": "changeme"}, env_file=None)
    assert "TELEGRAM_API_ID" in named_variables(str(caught.value))


def test_production_refuses_an_enabled_sandbox() -> None:
    settings = load_settings({**PRODUCTION_ENV, "SANDBOX_ENABLED": "1"}, env_file=None)
    with pytest.raises(SettingsError) as caught:
        settings.check_production()
    assert "SANDBOX_ENABLED" in named_variables(str(caught.value))


def test_missing_secrets_are_fine_outside_production() -> None:
    load_settings({}, env_file=None).check_production()


@pytest.mark.parametrize("role", ["", "web", "ALL", "bot,worker"])
def test_invalid_role_names_the_variable(role: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"ROLE": role}, env_file=None)
    assert "ROLE" in named_variables(str(caught.value))


@pytest.mark.parametrize("role", ROLES)
def test_every_known_role_is_accepted(role: str) -> None:
    assert load_settings({"ROLE": role}, env_file=None).role == role


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("APP_PORT", "eighty"),
        ("METRICS_PORT", "9100.5"),
        ("DATABASE_POOL_MAX", ""),
        ("TELEGRAM_API_ID", "12ab"),
        ("GAP_MIN", "fast"),
        ("LEASE_TTL", "30s"),
        ("ADMIN_IDS", "1,two,3"),
        ("PRODUCTION", "maybe"),
        ("SANDBOX_ENABLED", "perhaps"),
        ("SANDBOX_PORT", "-"),
    ],
)
def test_malformed_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({name: value}, env_file=None)
    assert name in named_variables(str(caught.value))


def test_gap_min_above_gap_max_is_refused() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"GAP_MIN": "9", "GAP_MAX": "8"}, env_file=None)
    assert "GAP_MIN" in named_variables(str(caught.value))


def test_no_credentials_means_the_sandbox() -> None:
    settings = load_settings({}, env_file=None)
    assert settings.has_telegram_credentials is False
    assert settings.sandbox.enabled is None
    assert settings.sandbox_enabled is True
    assert settings.gateway_kind == "sandbox"


@pytest.mark.parametrize("missing", ["BOT_TOKEN", "TELEGRAM_API_ID", "TELEGRAM_API_HASH"])
def test_partial_credentials_still_mean_the_sandbox(missing: str) -> None:
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing and k != "PRODUCTION"}
    settings = load_settings(env, env_file=None)
    assert settings.sandbox_enabled is True
    assert settings.gateway_kind == "sandbox"


def test_credentials_mean_telethon_unless_overridden() -> None:
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "PRODUCTION"}
    assert load_settings(env, env_file=None).gateway_kind == "telethon"
    forced = load_settings({**env, "SANDBOX_ENABLED": "1"}, env_file=None)
    assert forced.sandbox_enabled is True
    assert forced.gateway_kind == "sandbox"
    explicit = load_settings({**env, "ACCOUNT_GATEWAY": "sandbox"}, env_file=None)
    assert explicit.sandbox_enabled is False
    assert explicit.gateway_kind == "sandbox"


def test_sandbox_auto_value_means_undecided() -> None:
    settings = load_settings({"SANDBOX_ENABLED": "auto"}, env_file=None)
    assert settings.sandbox.enabled is None
    assert settings.sandbox_enabled is True


@pytest.mark.parametrize("secret", ["", "has space", "x" * 257, "semi;colon"])
def test_webhook_mode_refuses_an_invalid_secret_at_load(secret):
    env = {"WEBHOOK_URL": "https://bot.example.org/telegram/webhook", "WEBHOOK_SECRET": secret}
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET"):
        load_settings(env, env_file=None)


def test_webhook_mode_accepts_a_valid_secret():
    env = {"WEBHOOK_URL": "https://bot.example.org/telegram/webhook", "WEBHOOK_SECRET": "Abc_123-x"}
    assert load_settings(env, env_file=None).app.webhook_secret.get() == "Abc_123-x"


def test_an_unknown_account_gateway_is_refused_at_load():
    with pytest.raises(SettingsError, match="ACCOUNT_GATEWAY"):
        load_settings({"ACCOUNT_GATEWAY": "pyrogram"}, env_file=None)
    assert load_settings({"ACCOUNT_GATEWAY": "telethon"}, env_file=None).telegram.gateway == "telethon"


STRONG_TOKEN = "t" * 32


@pytest.mark.parametrize("value", ["plain-token", "alice:", ":token", "bad name:token", "a:x,a:y"])
def test_admin_tokens_must_be_uniquely_named(value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"ADMIN_API_TOKENS": value}, env_file=None)
    assert "ADMIN_API_TOKENS" in named_variables(str(caught.value))
    assert "x,a:y" not in str(caught.value)


@pytest.mark.parametrize("token", ["s3cr3t", "changeme", "x" * 31, "CHANGEME"])
def test_production_refuses_short_or_placeholder_admin_tokens(token: str) -> None:
    settings = load_settings({**PRODUCTION_ENV, "ADMIN_API_TOKENS": f"ok:{STRONG_TOKEN},weak:{token}"},
                             env_file=None)
    with pytest.raises(SettingsError) as caught:
        settings.check_production()
    message = str(caught.value)
    assert "ADMIN_API_TOKENS" in named_variables(message) and "'weak'" in message
    assert token not in message  # the refusal never echoes the secret


def test_production_accepts_long_named_admin_tokens() -> None:
    settings = load_settings({**PRODUCTION_ENV, "ADMIN_API_TOKENS": f"alice:{STRONG_TOKEN},ci:{'c' * 48}"},
                             env_file=None)
    settings.check_production()
    assert [t.name for t in settings.app.admin_tokens] == ["alice", "ci"]


def test_production_refuses_the_sandbox_gateway() -> None:
    settings = load_settings({**PRODUCTION_ENV, "ACCOUNT_GATEWAY": "sandbox"}, env_file=None)
    with pytest.raises(SettingsError) as caught:
        settings.check_production()
    assert "ACCOUNT_GATEWAY" in named_variables(str(caught.value))
    load_settings({**PRODUCTION_ENV, "ACCOUNT_GATEWAY": "telethon"}, env_file=None).check_production()


def test_the_process_environment_is_read_through_pydantic_settings(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("BATCH_SIZE=3\nROLE=bot\nPOSTGRES_PASSWORD=only-for-compose\n", encoding="utf-8")
    monkeypatch.setenv("ROLE", "worker")
    monkeypatch.setenv("ADMIN_IDS", "5,6")
    settings = load_settings(env_file=env_file)
    assert settings.role == "worker" and settings.engine.batch_size == 3 and settings.bot.admin_ids == (5, 6)
