"""Retention rules (domain/retention.py), its settings, its scheduler job and the bot's dedupe TTL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest

from config.settings import EngineSettings, RetentionSettings, SettingsError, load_settings
from domain.retention import HistoryTotals, RetentionReport, cutoffs, media_batch, rounds_within
from metrics import REGISTRY
from roles.bot.middlewares import DEDUPE_TTL
from roles.bot.routers.status import render
from scheduler.jobs import SchedulerJobs
from scheduler.runner import build_scheduler
from services.retention import RetentionService
from services.status import StatusView

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_cutoffs_follow_the_two_windows() -> None:
    cut = cutoffs(NOW, 30, 365)
    assert cut.history == NOW - timedelta(days=30)
    assert cut.audit == NOW - timedelta(days=365)
    assert cutoffs(NOW, 1, 0).audit is None  # 0: the audit log is kept forever
    with pytest.raises(ValueError):
        cutoffs(NOW, 0, 365)


@pytest.mark.parametrize(
    ("candidates", "budget", "taken"),
    [
        ([], 1000, []),
        ([(1, 5), (2, 5), (3, 5)], 12, [1, 2]),  # 6 rows a round: two fit in 12, three don't
        ([(1, 5), (2, 5), (3, 5)], 1000, [1, 2, 3]),
        ([(1, 5000), (2, 1)], 1000, [1]),  # a round bigger than the budget still goes, alone
        ([(1, 0), (2, 0)], 1, [1]),
    ],
)
def test_rounds_within_keeps_one_statement_inside_its_budget(
    candidates: list[tuple[int, int]], budget: int, taken: list[int]
) -> None:
    assert rounds_within(candidates, budget) == taken


def test_media_batches_are_smaller_than_row_batches() -> None:
    assert media_batch(1000) == 50
    assert media_batch(5) == 1


def test_a_report_starts_with_every_table_at_zero() -> None:
    report = RetentionReport.empty()
    assert set(report.deleted) == {"attempts", "rounds", "messages", "media", "notifications",
                                   "announcement_deliveries", "audit_log"}
    assert not any(report.deleted.values()) and report.complete


def test_retention_settings_defaults_and_environment() -> None:
    assert load_settings({}, env_file=None).retention == RetentionSettings(
        days=30, audit_days=365, batch=1000, pause=0.05, interval=3600.0)
    settings = load_settings({"RETENTION_DAYS": "7", "AUDIT_RETENTION_DAYS": "0", "RETENTION_BATCH": "250",
                              "RETENTION_PAUSE": "0", "RETENTION_INTERVAL": "600"}, env_file=None)
    assert settings.retention == RetentionSettings(days=7, audit_days=0, batch=250, pause=0.0, interval=600.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [("RETENTION_DAYS", "0"), ("AUDIT_RETENTION_DAYS", "-1"), ("RETENTION_BATCH", "0"),
     ("RETENTION_PAUSE", "-1"), ("RETENTION_INTERVAL", "0"), ("RETENTION_DAYS", "month")],
)
def test_bad_retention_settings_are_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value}, env_file=None)


def test_update_dedupe_keys_live_minutes_not_a_day() -> None:
    # An update is redelivered only until it is confirmed: the next getUpdates (sent as soon as a
    # batch is read; after a crash, by the standby that takes the polling lease within one lease,
    # plus one long poll of 10 s) or a webhook retry. Ten minutes covers both with a wide margin.
    lease = EngineSettings().lease_ttl
    assert DEDUPE_TTL == 10 * 60
    assert 2 * lease + 10 * 2 <= DEDUPE_TTL
    assert DEDUPE_TTL <= 60 * 60


def test_the_scheduler_leader_runs_retention_every_interval() -> None:
    jobs = SchedulerJobs(None, None, None, EngineSettings())  # type: ignore[arg-type]
    service = RetentionService(None, RetentionSettings(interval=600))  # type: ignore[arg-type]
    scheduler = build_scheduler(jobs, 1.0, 30.0, service)
    job = scheduler.get_job("retention")
    assert job is not None and job.trigger.interval == timedelta(seconds=600)
    assert job.max_instances == 1 and job.coalesce
    assert build_scheduler(jobs, 1.0, 30.0).get_job("retention") is None


class _BrokenDatabase:
    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        raise ConnectionResetError("database went away")
        yield


async def test_a_failed_run_is_counted_and_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    service = RetentionService(_BrokenDatabase(), RetentionSettings(), now=lambda: NOW)  # type: ignore[arg-type]
    before = REGISTRY.get_sample_value("retention_runs_total", {"result": "error"}) or 0.0
    assert await service.run_logged() is None
    assert REGISTRY.get_sample_value("retention_runs_total", {"result": "error"}) == before + 1
    assert "retention run failed" in caplog.text


def _view(history: HistoryTotals | None) -> StatusView:
    return StatusView(user_id=1, running=False, interval=None, next_run_at=None, paused_until=None,
                      pause_reason="", global_paused=False, last_round=None, group_outcomes=[], more_groups=0,
                      disabled_groups=[], notify_rounds=True, history=history)


def test_the_status_card_shows_all_time_totals_once_a_round_finished() -> None:
    since = date(2026, 1, 5)
    text = render(_view(HistoryTotals(rounds=96, sent=450, failed=7, skipped=3, since=since)), NOW)
    assert "📈 All time: 450 sent, 7 failed, 3 skipped in 96 rounds since 5 Jan 2026" in text
    assert "in 1 round since" in render(_view(HistoryTotals(rounds=1, sent=1, since=since)), NOW)
    assert "All time" not in render(_view(HistoryTotals()), NOW)
    assert "All time" not in render(_view(None), NOW)
