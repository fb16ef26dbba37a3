"""JobQueue against a real Redis: dedupe, delays, acks, redelivery after a SIGKILL, flushes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from metrics import REGISTRY
from storage import keys
from storage.queue import Job, JobQueue

pytestmark = pytest.mark.integration

PROC = Path(__file__).with_name("queue_worker_proc.py")
ROOT = Path(__file__).resolve().parents[2]


def spawn(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(PROC), *args], env=env, cwd=ROOT)


async def wait_for_key(client: aioredis.Redis, key: str, within: float = 15.0) -> str:
    deadline = time.monotonic() + within
    while (value := await client.get(key)) is None:
        assert time.monotonic() < deadline, f"{key} never set"
        await asyncio.sleep(0.02)
    return text(value)


async def fetch_until(queue: JobQueue, within: float, count: int = 10) -> list[Job]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if jobs := await queue.fetch(count=count, block_ms=100):
            return jobs
    return []


@contextlib.asynccontextmanager
async def maintenance(queue: JobQueue, interval: float = 0.05) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(queue.run_maintenance(stop, interval))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_duplicate_job_id_enqueued_once_while_ready_delayed_or_running(
        redis_client: aioredis.Redis) -> None:
    queue = JobQueue(redis_client, "dedupe", "w1")
    duplicates_before = sample("queue_jobs_total", event="duplicate")

    assert await queue.enqueue("round:1", {"round": 1})
    assert not await queue.enqueue("round:1", {"round": 1})  # ready
    assert await queue.enqueue("round:2", {"round": 2}, delay=30)
    assert not await queue.enqueue("round:2", {"round": 2})  # delayed
    assert not await queue.enqueue("round:2", {"round": 2}, delay=1)

    [job] = await queue.fetch(count=10, block_ms=0)
    assert (job.id, job.payload, job.deliveries) == ("round:1", {"round": 1}, 1)
    assert not await queue.enqueue("round:1", {"round": 1})  # running (delivered, not acked)
    assert await queue.is_queued("round:1")

    await queue.ack(job)
    assert not await queue.is_queued("round:1")
    assert await queue.enqueue("round:1", {"round": 1, "again": True})
    [again] = await queue.fetch(count=10, block_ms=0)
    assert again.payload == {"round": 1, "again": True}
    assert sample("queue_jobs_total", event="duplicate") - duplicates_before == 4
    depth = await queue.depth()
    assert (depth.ready, depth.delayed, depth.pending) == (0, 1, 1)


async def test_delayed_job_does_not_run_early_and_due_order_is_kept(redis_client: aioredis.Redis) -> None:
    queue = JobQueue(redis_client, "delays", "w1")
    start = time.time()
    delays = {"c": 0.6, "a": 0.2, "b": 0.4}
    for job_id, delay in delays.items():
        assert await queue.enqueue(job_id, {}, delay=delay)

    assert await queue.fetch(count=10, block_ms=0) == []
    assert await queue.fetch(count=10, block_ms=100) == []

    seen: list[tuple[str, float]] = []
    while len(seen) < 3:
        jobs = await queue.fetch(count=10, block_ms=2000)
        assert jobs, "a delayed job never became due"
        seen += [(job.id, time.time()) for job in jobs]
        await queue.ack_many(jobs)
    assert [job_id for job_id, _ in seen] == ["a", "b", "c"]
    for job_id, at in seen:
        assert at >= start + delays[job_id]
        assert at <= start + delays[job_id] + 0.5


async def test_requeue_acks_and_delays_the_same_job_id_atomically(redis_client: aioredis.Redis) -> None:
    queue = JobQueue(redis_client, "requeue", "w1")
    await queue.enqueue("round:7", {"batch": 1})
    [job] = await queue.fetch(block_ms=0)

    assert await queue.requeue(job, 0.3, {"batch": 2})
    depth = await queue.depth()
    assert (depth.ready, depth.delayed, depth.pending) == (0, 1, 0)
    assert not await queue.enqueue("round:7", {"batch": 99})  # the continuation holds the id
    await queue.ack(job)  # a repeated ack of the old entry must not free the continuation's id
    assert await queue.is_queued("round:7")

    assert await queue.fetch(block_ms=0) == []
    [cont] = await fetch_until(queue, 2.0)
    assert (cont.id, cont.payload, cont.deliveries) == ("round:7", {"batch": 2}, 1)
    assert cont.entry_id != job.entry_id
    await queue.ack(cont)
    assert not await queue.is_queued("round:7")
    assert await redis_client.xlen(queue.stream) == 0  # acked entries are deleted


async def test_stale_consumer_cannot_disturb_a_reclaimed_job(redis_client: aioredis.Redis) -> None:
    slow = JobQueue(redis_client, "stale", "slow", lease_ms=200)
    other = JobQueue(redis_client, "stale", "other", lease_ms=200)
    await slow.enqueue("round:3", {"n": 3})
    [old] = await slow.fetch(block_ms=0)
    assert await slow.touch(old)

    assert await other.reclaim_stale() == 0  # not idle long enough
    await asyncio.sleep(0.3)
    assert await other.reclaim_stale() == 1
    [new] = await other.fetch(block_ms=0)
    assert (new.id, new.payload, new.deliveries) == ("round:3", {"n": 3}, 2)

    assert not await slow.touch(old)  # it was taken over
    assert not await slow.requeue(old, 0.0)  # the running instance already holds the job id
    assert (await other.depth()).pending_by_consumer == {"other": 1}
    assert await other.requeue(new, 0.0)
    [cont] = await other.fetch(block_ms=0)
    await slow.ack(old)  # stale ack: leaves the live instance alone
    assert await other.is_queued("round:3")
    await other.ack(cont)
    assert not await other.is_queued("round:3")


async def test_sigkilled_worker_job_runs_again_on_another_worker_after_the_lease(
        redis_url: str, redis_client: aioredis.Redis) -> None:
    lease_ms = 1000
    survivor = JobQueue(redis_client, "kill", "survivor", lease_ms=lease_ms)
    await survivor.ensure_group()
    assert await survivor.enqueue("round:42", {"round": 42})
    proc = spawn("job", redis_url, "kill", "doomed", str(lease_ms), "test:kill:got")
    try:
        assert await wait_for_key(redis_client, "test:kill:got") == "round:42"
        async with maintenance(survivor) as loop_task:
            # alive and touching it: the job is not taken even well past the lease
            assert await survivor.fetch(block_ms=int(lease_ms * 1.5)) == []
            assert (await survivor.depth()).pending_by_consumer == {"doomed": 1}

            proc.send_signal(signal.SIGKILL)
            proc.wait(5)
            killed_at = time.monotonic()
            jobs = await fetch_until(survivor, lease_ms / 1000 + 1.5)
            elapsed = time.monotonic() - killed_at
            assert not loop_task.done()
        assert [(job.id, job.payload, job.deliveries) for job in jobs] == [("round:42", {"round": 42}, 2)]
        # last touch was at most lease/3 before the kill, so the lease (not luck) set the timing
        assert lease_ms / 1000 * 0.5 <= elapsed <= lease_ms / 1000 + 1.0
        await survivor.ack(jobs[0])
        depth = await survivor.depth()
        assert (depth.ready, depth.delayed, depth.pending) == (0, 0, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


async def test_many_producers_jobs_come_out_in_due_order_none_lost_none_duplicated(
        redis_client: aioredis.Redis) -> None:
    producers, per_producer, max_delay = 5, 200, 1.0
    rng = random.Random(7)
    plan = [[(f"p{p}:{i}", rng.choice([0.0, rng.uniform(0, max_delay)])) for i in range(per_producer)]
            for p in range(producers)]
    due: dict[str, float] = {}
    fetched: dict[str, list[tuple[str, float, str]]] = {}
    total = producers * per_producer

    async def produce(jobs: list[tuple[str, float]]) -> None:
        queue = JobQueue(redis_client, "many", "producer")
        for job_id, delay in jobs:
            due[job_id] = time.time() + delay
            assert await queue.enqueue(job_id, {"id": job_id}, delay=delay)
            await asyncio.sleep(0)

    async def consume(name: str, done: asyncio.Event) -> None:
        queue = JobQueue(redis_client, "many", name)
        while not done.is_set():
            jobs = await queue.fetch(count=50, block_ms=100)
            now = time.time()
            for job in jobs:
                assert job.payload == {"id": job.id}
                fetched.setdefault(job.id, []).append((name, now, job.entry_id))
            await queue.ack_many(jobs)
            if len(fetched) >= total:
                done.set()

    done = asyncio.Event()
    consumers = [asyncio.create_task(consume(f"c{i}", done)) for i in range(3)]
    await asyncio.gather(*(produce(jobs) for jobs in plan))
    await asyncio.wait_for(done.wait(), max_delay + 10)
    await asyncio.gather(*consumers)

    assert set(fetched) == set(due)
    assert all(len(deliveries) == 1 for deliveries in fetched.values()), "a job was delivered twice"
    for job_id, [(_, at, _)] in fetched.items():
        assert at >= due[job_id], f"{job_id} ran {due[job_id] - at:.3f}s early"
    # stream order is the order jobs became ready: due times along it may only step back by the
    # promotion latency
    order = sorted(fetched, key=lambda j: tuple(int(x) for x in fetched[j][0][2].split("-")))
    latest_due = 0.0
    for job_id in order:
        assert due[job_id] >= latest_due - 0.3, f"{job_id} out of due order"
        latest_due = max(latest_due, due[job_id])
    depth = await JobQueue(redis_client, "many", "c0").depth()
    assert (depth.ready, depth.delayed, depth.pending) == (0, 0, 0)


async def test_flushall_mid_use_recreates_the_group_and_continues(redis_client: aioredis.Redis) -> None:
    queue = JobQueue(redis_client, "flush", "w1", lease_ms=300)
    got: list[str] = []
    errors: list[BaseException] = []
    stop = asyncio.Event()

    async def worker() -> None:
        try:
            while not stop.is_set():
                jobs = await queue.fetch(count=5, block_ms=200)
                got.extend(job.id for job in jobs)
                await queue.ack_many(jobs)
        except BaseException as exc:  # the assertion below reports it
            errors.append(exc)
            raise

    async def got_at_least(n: int) -> None:
        deadline = time.monotonic() + 5
        while len(got) < n:
            assert time.monotonic() < deadline, f"only {got} consumed"
            await asyncio.sleep(0.02)

    async with maintenance(queue) as loop_task:
        task = asyncio.create_task(worker())
        for i in range(5):
            await queue.enqueue(f"before:{i}", {})
        await queue.enqueue("delayed:0", {}, delay=30)
        await got_at_least(5)
        assert sorted(got) == [f"before:{i}" for i in range(5)]

        await redis_client.flushall()  # the worker is blocked in XREADGROUP meanwhile
        await asyncio.sleep(0.3)
        assert not await queue.is_queued("delayed:0")
        for i in range(5):
            assert await queue.enqueue(f"after:{i}", {})
        await queue.enqueue("after:delayed", {}, delay=0.2)
        await got_at_least(11)
        stop.set()
        await asyncio.wait_for(task, 5)
        assert not loop_task.done()
    assert errors == []
    assert sorted(got[5:]) == sorted([f"after:{i}" for i in range(5)] + ["after:delayed"])
    assert await redis_client.xinfo_groups(queue.stream)


async def test_jobs_held_across_a_flush_can_still_be_acked_and_continued(
        redis_client: aioredis.Redis) -> None:
    queue = JobQueue(redis_client, "flush2", "w1")
    await queue.enqueue("a", {"n": 1})
    await queue.enqueue("b", {"n": 2})
    first, second = await queue.fetch(count=2, block_ms=0)
    await redis_client.flushall()

    await queue.ack(first)  # nothing to ack any more: must not fail
    assert await queue.requeue(second, 0.0, {"n": 3})  # the continuation survives the flush
    await queue.touch(second)
    [cont] = await queue.fetch(block_ms=0)
    assert (cont.id, cont.payload) == ("b", {"n": 3})
    assert await queue.reclaim_stale() == 0
    depth = await queue.depth()
    assert (depth.ready, depth.delayed, depth.pending) == (0, 0, 1)


async def test_depth_reports_ready_delayed_and_pending_per_consumer(redis_client: aioredis.Redis) -> None:
    one = JobQueue(redis_client, "depth", "one")
    two = JobQueue(redis_client, "depth", "two")
    assert await one.depth() == type(await one.depth())(0, 0, 0, {})
    for i in range(6):
        await one.enqueue(f"r{i}", {})
    for i in range(2):
        await one.enqueue(f"d{i}", {}, delay=60)
    jobs_one = await one.fetch(count=1, block_ms=0)
    jobs_two = await two.fetch(count=2, block_ms=0)

    depth = await one.depth()
    assert (depth.ready, depth.delayed, depth.pending) == (3, 2, 3)
    assert depth.pending_by_consumer == {"one": 1, "two": 2}
    assert sample("queue_depth", state="ready") == 3
    assert sample("queue_depth", state="delayed") == 2
    assert sample("queue_depth", state="pending") == 3

    await two.ack_many(jobs_one + jobs_two)
    depth = await two.depth()
    assert (depth.ready, depth.delayed, depth.pending, depth.pending_by_consumer) == (3, 2, 0, {})
    assert await redis_client.xlen(one.stream) == 3


class CountingRedis(aioredis.Redis):
    """Counts commands sent (one per round trip here: no pipelines are used)."""

    sent = 0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent += 1
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


async def test_round_trips_per_job_are_amortised(redis_url: str) -> None:
    client = CountingRedis.from_url(redis_url)
    assert isinstance(client, CountingRedis)
    try:
        queue = JobQueue(client, "trips", "w1")
        await queue.ensure_group()
        await queue.fetch(block_ms=0)  # loads the scripts once
        client.sent = 0
        jobs_total = 300
        for i in range(jobs_total):
            await queue.enqueue(f"j{i}", {"i": i})
        done = 0
        while done < jobs_total:
            jobs = await queue.fetch(count=50, block_ms=0)
            await queue.ack_many(jobs)
            done += len(jobs)
        assert client.sent <= jobs_total + 2 * (jobs_total // 50) + 2
        assert client.sent / jobs_total < 1.1
    finally:
        await client.aclose()


async def test_keys_live_under_the_project_prefix(redis_client: aioredis.Redis) -> None:
    queue = JobQueue(redis_client, "prefix", "w1")
    await queue.enqueue("x", {}, delay=10)
    await queue.enqueue("y", {})
    names = {text(key) for key in await redis_client.keys("*")}
    assert names == {
        keys.QUEUE_STREAM.format(name="prefix"),
        keys.QUEUE_DELAYED.format(name="prefix"),
        keys.QUEUE_PAYLOADS.format(name="prefix"),
        keys.QUEUE_DEDUPE.format(name="prefix"),
    }


async def test_idle_consumers_without_pending_entries_are_pruned(redis_client: aioredis.Redis) -> None:
    me = JobQueue(redis_client, "prune", "me")
    ghost = JobQueue(redis_client, "prune", "ghost")
    busy = JobQueue(redis_client, "prune", "busy")
    for job_id in ("a", "b", "c"):
        await me.enqueue(job_id, {})
    # Redis 6.2 creates a consumer on its first delivery (7.x on its first read)
    await ghost.ack_many(await ghost.fetch(count=1, block_ms=0))
    await me.ack_many(await me.fetch(count=1, block_ms=0))
    [job] = await busy.fetch(count=1, block_ms=0)
    await asyncio.sleep(0.05)

    assert await me.prune_consumers(idle_ms=10_000) == 0  # nobody idle that long
    assert await me.prune_consumers(idle_ms=20) == 1
    infos = await redis_client.xinfo_consumers(me.stream, me.group)
    consumers = {text(c["name"]): int(c["pending"]) for c in infos}
    assert consumers == {"me": 0, "busy": 1}  # itself and consumers with pending jobs are kept
    await busy.ack(job)


async def test_claimed_keeps_a_long_job_and_reports_when_it_is_lost(redis_client: aioredis.Redis) -> None:
    worker = JobQueue(redis_client, "claimed", "worker", lease_ms=300)
    other = JobQueue(redis_client, "claimed", "other", lease_ms=300)
    await worker.enqueue("long", {})
    [job] = await worker.fetch(block_ms=0)
    async with worker.claimed(job) as lost:
        for _ in range(4):  # well past the lease
            await asyncio.sleep(0.2)
            assert await other.reclaim_stale() == 0
        assert not lost.is_set()
        await redis_client.flushall()
        await asyncio.wait_for(lost.wait(), 1.0)
