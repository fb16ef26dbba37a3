"""The Grafana dashboard and the Prometheus config query exactly what metrics/__init__.py exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

import metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy/grafana/dashboard.json"

# The series a counter, histogram, ... family really exposes (a counter's bare name is no series).
_SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}
_PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                 "group_left", "group_right", "inf", "nan", "atan2"}
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.$:])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")

# What the dashboard must chart, whatever the panels are called.
REQUIRED_SERIES = {
    "broadcast_sends_total", "broadcast_flood_waits_total", "broadcast_flood_wait_seconds_bucket",
    "queue_depth", "broadcast_round_lag_seconds_bucket", "lock_contention_total", "lock_acquire_total",
    "lock_wait_seconds_bucket", "leader_elections_total", "leader_changes_total", "leader",
    "workers_live", "scheduler_ticks_total", "scheduler_lag_seconds", "campaigns_running",
    "bot_updates_total", "bot_handler_seconds_bucket", "login_outcomes_total", "http_requests_total",
    "role_up", "retention_deleted_rows_total", "retention_runs_total",
}


def registry_series(registry: CollectorRegistry) -> set[str]:
    """Every series name the registry can expose, including labelled families with no child yet."""
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in _SERIES_SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords or labels."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    return {match.group(1) for match in _IDENTIFIER.finditer(text)
            if not match.group(2) and match.group(1).lower() not in _PROMQL_WORDS}


def panels(node: Any) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in rows."""
    for panel in node.get("panels", []):
        yield panel
        yield from panels(panel)


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in panels(dashboard) for target in panel.get("targets", [])
            if target.get("expr")]


def unknown_metrics(dashboard: dict[str, Any], known: set[str]) -> dict[str, set[str]]:
    """expr -> the metric names it uses that the registry does not expose."""
    found = {}
    for expr in dashboard_exprs(dashboard):
        missing = promql_metric_names(expr) - known
        if missing:
            found[expr] = missing
    return found


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def known() -> set[str]:
    return registry_series(metrics.REGISTRY)


def test_every_dashboard_metric_is_exported(dashboard: dict[str, Any], known: set[str]) -> None:
    assert dashboard_exprs(dashboard)
    assert unknown_metrics(dashboard, known) == {}


def test_the_dashboard_charts_every_required_series(dashboard: dict[str, Any], known: set[str]) -> None:
    used = set().union(*(promql_metric_names(expr) for expr in dashboard_exprs(dashboard)))
    assert sorted(REQUIRED_SERIES - known) == []
    assert sorted(REQUIRED_SERIES - used) == []


def test_a_bogus_or_bare_counter_name_is_reported(dashboard: dict[str, Any], known: set[str]) -> None:
    broken = json.loads(json.dumps(dashboard))
    broken["panels"].append({"type": "timeseries", "targets": [
        {"refId": "A", "expr": "sum(rate(broadcast_sendz_total[5m])) / sum(rate(broadcast_sends[5m]))"},
    ]})
    assert unknown_metrics(broken, known) == {
        "sum(rate(broadcast_sendz_total[5m])) / sum(rate(broadcast_sends[5m]))":
            {"broadcast_sendz_total", "broadcast_sends"},
    }


def test_registry_series_cover_every_metric_type() -> None:
    registry = CollectorRegistry()
    Counter("c_events", "c", ["kind"], registry=registry)
    Histogram("h_seconds", "h", registry=registry)
    Gauge("g_level", "g", ["state"], registry=registry)
    series = registry_series(registry)
    assert {"c_events_total", "c_events_created", "h_seconds_bucket", "h_seconds_sum", "h_seconds_count",
            "g_level"} <= series
    assert "c_events" not in series
    assert "h_seconds" not in series


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('histogram_quantile(0.95, sum by (le, row) (rate(bot_handler_seconds_bucket{row="start"}[5m])))',
         {"bot_handler_seconds_bucket"}),
        ("sum(rate(a_sum[$__rate_interval])) / sum(rate(a_count[$__rate_interval]))", {"a_sum", "a_count"}),
        ('max by (state) (queue_depth{state=~"ready|delayed"}) > bool 1e3', {"queue_depth"}),
        ("sum(rate(x_total[1m])) by (lock) and on(lock) y_total offset 5m", {"x_total", "y_total"}),
        ("role_up{role='worker'} == 0", {"role_up"}),
        ("vector(1)", set()),
    ],
)
def test_promql_metric_names(expr: str, names: set[str]) -> None:
    assert promql_metric_names(expr) == names


def test_dashboard_shape(dashboard: dict[str, Any]) -> None:
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_dashboard_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, (panel["title"], taken.get((x, y)))
                taken[(x, y)] = panel["title"]


def test_prometheus_scrapes_every_role_on_the_metrics_port() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text(encoding="utf-8"))
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"bot", "app", "worker"}
    for name, job in jobs.items():
        assert job.get("metrics_path", "/metrics") == "/metrics"
        service = compose["services"][name]
        assert service["environment"]["ROLE"] == name
        port = int(service["environment"]["METRICS_PORT"])
        discovered = [(sd["names"], sd["port"]) for sd in job["dns_sd_configs"]]
        assert discovered == [([name], port)], name
