"""``/metrics`` during a sandbox broadcast: the bot's, the scheduler's, the queue's, the locks' and
the engine's figures move.

The bot (in webhook mode, through the app role), the scheduler and a worker run against the sandbox with short engine settings; a user connects an account, chooses
three groups, sets a message and an interval and presses Start, and the first round posts to the
three groups. The figures are read from the supervisor's METRICS_PORT listener (``/metrics`` is never on
the admin port) and from the registry itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

import contract
from accounts.sandbox_gateway import SandboxGateway
from config.settings import EngineSettings
from metrics import REGISTRY
from roles.worker.loop import round_queue, run_worker
from scheduler.runner import run_scheduler
from tests.parity.harness import Harness, start_harness
from tests.parity.runner import CaseRunner
from tests.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

FAST = EngineSettings(batch_size=5, gap_min=0.0, gap_max=0.0, lease_ttl=3.0, tick=0.1, retry_base=0.05,
                      retry_max=0.2, retry_tries=3, worker_concurrency=2, limit_minute=0, limit_hour=0,
                      limit_day=0, break_after=0)

# (metric sample, labels) whose growth the broadcast must show
WATCHED: dict[str, tuple[str, dict[str, str]]] = {
    "sent": ("broadcast_sends_total", {"outcome": "sent"}),
    "callbacks": ("bot_updates_total", {"type": "callback_query"}),
    "rounds_created": ("broadcast_rounds_total", {"event": "created"}),
    "enqueued": ("queue_jobs_total", {"event": "enqueued"}),
    "fetched": ("queue_jobs_total", {"event": "fetched"}),
    "acked": ("queue_jobs_total", {"event": "acked"}),
    "user_locks": ("lock_acquire_total", {"lock": "user", "result": "acquired"}),
    "scheduler_leads": ("leader_elections_total", {"lock": "scheduler-leader"}),
    "ticks": ("scheduler_ticks_total", {"result": "ok"}),
    "heartbeats": ("worker_heartbeats_total", {}),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def harness(server_urls: tuple[str, str], pg_server_url: str) -> AsyncIterator[Harness]:
    async with start_harness(pg_server_url, server_urls[1], contract.load(), redis_db=8, webhook=True,
                             engine=FAST) as h:
        yield h


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def metrics_url(harness: Harness) -> AsyncIterator[str]:
    """The supervisor's own metrics listener (app.serve_metrics) on a free METRICS_PORT."""
    from app import serve_metrics

    port = free_port()
    runner = await serve_metrics(replace(harness.settings, metrics_port=port), ("bot", "app", "worker"))
    assert runner is not None
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def from_registry() -> dict[str, float]:
    return {key: REGISTRY.get_sample_value(name, labels) or 0.0 for key, (name, labels) in WATCHED.items()}


async def from_endpoint(metrics_url: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as http, http.get(metrics_url + "/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    return {key: samples.get((name, tuple(sorted(labels.items()))), 0.0) for key, (name, labels) in WATCHED.items()}


async def test_metrics_move_during_a_sandbox_broadcast(harness: Harness, metrics_url: str) -> None:
    flows = contract.load()
    runner = CaseRunner(harness, flows, contract.Case(id="metrics"))
    runner.uid = uid = await harness.new_user("Measured")
    for step in flows.expand([{"given": "ready"}, {"press": "menu:main"}]):
        await runner.step(step)

    before_http = await from_endpoint(metrics_url)
    before = from_registry()
    assert before_http == before  # the endpoint serves this registry (nothing else runs yet)
    stop = asyncio.Event()
    gateway = SandboxGateway(harness.sandbox.url)
    queue = round_queue(harness.redis, "metrics-worker", harness.settings)
    tasks = [
        asyncio.create_task(run_scheduler(harness.db, harness.redis, queue, harness.settings, stop)),
        asyncio.create_task(run_worker(harness.db, harness.redis, gateway, harness.settings, stop,
                                       "metrics-worker", cipher=harness.cipher, queue=queue)),
    ]
    try:
        await runner.step({"press": "bc:start"})
        deadline = time.monotonic() + 30
        while not await harness.fetchval(
                "SELECT count(*) FROM rounds WHERE user_id = $1 AND finished_at IS NOT NULL", uid):
            assert time.monotonic() < deadline, "the first round did not finish"
            for task in tasks:
                if task.done():
                    task.result()
            await asyncio.sleep(0.05)
        after = await from_endpoint(metrics_url)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)
        await gateway.close()

    grew = {key: after[key] - before[key] for key in WATCHED}
    sent = await harness.fetchval("SELECT count(*) FROM attempts a JOIN rounds r USING (round_id) "
                                  "WHERE r.user_id = $1 AND a.status = 'sent'", uid)
    assert sent == 3
    assert grew["sent"] == 3, grew
    assert grew["callbacks"] >= 1 and grew["rounds_created"] >= 1, grew
    assert grew["enqueued"] >= 1 and grew["fetched"] >= 1 and grew["acked"] >= 1, grew
    assert grew["user_locks"] >= 1 and grew["scheduler_leads"] >= 1, grew
    assert grew["ticks"] >= 1 and grew["heartbeats"] >= 1, grew
