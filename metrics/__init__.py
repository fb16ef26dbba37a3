"""Prometheus metrics: one registry, every figure each role exposes.

The Grafana dashboard in ``deploy/grafana/`` queries exactly these names (a
test checks it). Labels are kept low-cardinality: never a user or group id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

# engine
SENDS = Counter("broadcast_sends_total", "Sends by outcome", ["outcome"], registry=REGISTRY)
FLOOD_WAITS = Counter("broadcast_flood_waits_total", "Flood waits by kind", ["kind"], registry=REGISTRY)
FLOOD_WAIT_SECONDS = Histogram(
    "broadcast_flood_wait_seconds",
    "Flood wait hints received",
    buckets=(1, 5, 15, 30, 60, 120, 300, 900, 3600, 21600),
    registry=REGISTRY,
)
ROUNDS = Counter("broadcast_rounds_total", "Rounds by event", ["event"], registry=REGISTRY)
ROUND_LAG = Histogram(
    "broadcast_round_lag_seconds",
    "Round start minus planned time",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
JOBS = Counter("queue_jobs_total", "Queue jobs by event", ["event"], registry=REGISTRY)
QUEUE_DEPTH = Gauge("queue_depth", "Queue depth by state", ["state"], registry=REGISTRY)
# One acquisition is one try (the worker's, no wait) or one bounded wait (a service's ``hold``), however
# often the wait polls: result acquired | busy (a try found it held) | timeout (a wait gave up).
LOCK_ACQUIRES = Counter("lock_acquire_total", "Lock acquisitions by result, one per acquisition",
                        ["lock", "result"], registry=REGISTRY)
LOCK_CONTENTION = Counter("lock_contention_total", "Lock acquisitions that found the lock held, once each",
                          ["lock"], registry=REGISTRY)
LOCK_WAIT_SECONDS = Histogram(
    "lock_wait_seconds",
    "Time a bounded wait for a lock took, until acquired or given up",
    ["lock"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
# Leader leases (the scheduler, the bot's polling) are not locks: standbys polling for leadership
# count nothing; a won election and the end of a leadership are counted here.
LEADER_ELECTIONS = Counter("leader_elections_total", "Leader leases won by this process", ["lock"],
                           registry=REGISTRY)
LEADER_CHANGES = Counter("leader_changes_total", "Leaderships held here that ended (lost | stepped_down)",
                         ["lock", "how"], registry=REGISTRY)
LEADER = Gauge("leader", "1 while this process holds the leader lease", ["lock"], registry=REGISTRY)
WORKERS_LIVE = Gauge("workers_live", "Workers with a fresh heartbeat", registry=REGISTRY)
WORKER_HEARTBEATS = Counter("worker_heartbeats_total", "Heartbeats written here", registry=REGISTRY)
SCHEDULER_TICKS = Counter("scheduler_ticks_total", "Scheduler ticks by result", ["result"], registry=REGISTRY)
SCHEDULER_LAG = Gauge("scheduler_lag_seconds", "Age of the oldest due campaign at the last tick",
                      registry=REGISTRY)
CAMPAIGNS_RUNNING = Gauge("campaigns_running", "Campaigns in state running", registry=REGISTRY)
# retention (issue 14): rows deleted by table, runs by result, how long a run took
RETENTION_DELETED = Counter("retention_deleted_rows_total", "Rows the retention job deleted, by table",
                            ["table"], registry=REGISTRY)
RETENTION_SUMMARISED = Counter("retention_summarised_rounds_total",
                               "Rounds folded into round_summaries before deletion", registry=REGISTRY)
RETENTION_RUNS = Counter("retention_runs_total", "Retention runs by result (complete | partial | error)",
                         ["result"], registry=REGISTRY)
RETENTION_SECONDS = Histogram("retention_run_seconds", "Duration of one retention run",
                              buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600), registry=REGISTRY)

# bot
BOT_UPDATES = Counter("bot_updates_total", "Bot updates by type", ["type"], registry=REGISTRY)
BOT_HANDLER_SECONDS = Histogram("bot_handler_seconds", "Bot handler latency", ["row"], registry=REGISTRY)
LOGINS = Counter("login_outcomes_total", "Login steps by outcome", ["outcome"], registry=REGISTRY)
ANNOUNCEMENT_SENDS = Counter("announcement_sends_total", "A7 announcement messages by outcome", ["outcome"],
                             registry=REGISTRY)

# app
HTTP_REQUESTS = Counter("http_requests_total", "Admin API requests", ["route", "status"], registry=REGISTRY)

# supervisor
ROLE_UP = Gauge("role_up", "1 while a role's task group runs", ["role"], registry=REGISTRY)
