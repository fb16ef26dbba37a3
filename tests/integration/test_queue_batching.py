"""JobQueue batching against a real Redis: concurrent enqueues and acks share round trips without
changing what each caller sees (order, dedupe, errors), and fetched jobs survive any job id."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from storage.queue import Job, JobQueue

pytestmark = pytest.mark.integration


class CountingRedis(aioredis.Redis):
    """Counts the commands sent; ``fail`` makes the next ones raise as a lost connection would."""

    sent = 0
    fail = False

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent += 1
        if self.fail:
            raise RedisConnectionError("connection lost")
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[CountingRedis]:
    redis = CountingRedis.from_url(redis_url)
    assert isinstance(redis, CountingRedis)
    yield redis
    await redis.aclose()


async def _warm(queue: JobQueue) -> None:
    """Load the scripts (a first EVALSHA may be answered NOSCRIPT and sent again)."""
    await queue.ensure_group()
    await queue.fetch(block_ms=0)
    await queue.enqueue("warm", {})
    [job] = await queue.fetch(block_ms=0)
    await queue.ack(job)


async def _drain(queue: JobQueue, count: int = 500) -> list[Job]:
    jobs: list[Job] = []
    while batch := await queue.fetch(count=count, block_ms=0):
        jobs += batch
    return jobs


async def test_concurrent_enqueues_share_round_trips_and_keep_order_and_dedupe(client: CountingRedis) -> None:
    queue = JobQueue(client, "batch", "w1")
    await _warm(queue)
    client.sent = 0
    ids = [f"j{i}" for i in range(300)] + ["j7", "j299"]  # two duplicates within the same burst
    added = await asyncio.gather(*(queue.enqueue(job_id, {"i": n}) for n, job_id in enumerate(ids)))
    assert added == [True] * 300 + [False, False]
    assert client.sent <= 3  # one script call for the burst (up to the batch limit), not 302
    jobs = await _drain(queue)
    assert [j.id for j in jobs] == ids[:300]  # in call order
    assert [j.payload["i"] for j in jobs] == list(range(300))  # the first instance of each id won


async def test_concurrent_acks_share_round_trips_and_each_returns_when_its_job_is_acked(
    client: CountingRedis,
) -> None:
    queue = JobQueue(client, "batch", "w1")
    await _warm(queue)
    for i in range(200):
        await queue.enqueue(f"j{i}", {"i": i})
    jobs = await _drain(queue)
    assert len(jobs) == 200
    client.sent = 0
    await asyncio.gather(*(queue.ack(job) for job in jobs))
    assert client.sent <= 2
    assert (await queue.depth()).pending == 0
    assert await client.hlen(queue.dedupe) == 0  # every dedupe id freed
    assert await queue.enqueue("j0", {"again": True})  # so the same id can come back


async def test_a_stale_ack_in_a_batch_does_not_free_the_next_instance(client: CountingRedis) -> None:
    queue = JobQueue(client, "batch", "w1")
    await queue.enqueue("round:1", {})
    await queue.enqueue("round:2", {})
    first, second = await queue.fetch(count=2, block_ms=0)
    assert await queue.requeue(first, 0)  # round:1 runs again as a new entry
    [again] = await queue.fetch(block_ms=0)
    # the old entry of round:1 is acked late, in the same batch as round:2
    await asyncio.gather(queue.ack(first), queue.ack(second))
    assert await queue.is_queued("round:1")  # its live instance keeps its marker
    assert not await queue.is_queued("round:2")
    await queue.ack(again)
    assert not await queue.is_queued("round:1")


async def test_every_caller_of_a_failed_batch_gets_the_error_and_the_next_batch_works(
    client: CountingRedis,
) -> None:
    queue = JobQueue(client, "batch", "w1")
    await _warm(queue)
    client.fail = True
    results = await asyncio.gather(*(queue.enqueue(f"j{i}", {}) for i in range(20)), return_exceptions=True)
    assert all(isinstance(r, RedisConnectionError) for r in results)
    client.fail = False
    assert await asyncio.gather(*(queue.enqueue(f"j{i}", {}) for i in range(20))) == [True] * 20
    assert len(await _drain(queue)) == 20


@pytest.mark.parametrize("job_id", ['quote"d', "back\\slash", "tab\there", "naïve ✓", "a/b", "", "x" * 300])
async def test_any_job_id_and_payload_come_back_as_enqueued(client: CountingRedis, job_id: str) -> None:
    queue = JobQueue(client, "batch", "w1")
    payload = {"text": 'he said "hi"\n', "n": [1, 2.5, None], "nested": {"ok": True}}
    assert await queue.enqueue(job_id, payload)
    [job] = await queue.fetch(block_ms=0)
    assert (job.id, job.payload, job.deliveries) == (job_id, payload, 1)
    await queue.ack(job)
    assert not await queue.is_queued(job_id)


async def test_a_fetch_that_blocks_still_decodes_jobs(client: CountingRedis) -> None:
    queue = JobQueue(client, "batch", "w1")
    await queue.ensure_group()
    waiting = asyncio.create_task(queue.fetch(count=5, block_ms=2000))
    await asyncio.sleep(0.3)  # the fetch is now blocked on the stream
    await queue.enqueue('late "job"', {"k": "v"})
    [job] = await asyncio.wait_for(waiting, 3)
    assert (job.id, job.payload) == ('late "job"', {"k": "v"})


async def test_concurrent_settles_share_a_call_and_each_job_gets_its_own_end(client: CountingRedis) -> None:
    """Issue 14: jobs' ends (ack or requeue, then their leases released) of concurrent jobs go in one
    script call; each job is acked or re-enqueued as asked, and each lease is deleted only while it
    still holds the job's token."""
    queue = JobQueue(client, "settle", "w1")
    await _warm(queue)
    for i in range(40):
        assert await queue.enqueue(f"round:{i}", {"i": i})
    jobs = await _drain(queue)
    assert len(jobs) == 40
    leases: dict[int, list[tuple[str, int]]] = {}
    for i in range(40):
        leases[i] = [(f"lease:user:{i}", 100 + i), (f"lease:account:{i}", 200 + i)]
        await client.set(f"lease:user:{i}", 100 + i)
        # every fourth job's account lease was lost and taken by another holder: it stays
        await client.set(f"lease:account:{i}", 999 if i % 4 == 0 else 200 + i)
    client.sent = 0
    # even jobs go back with a delay and a new payload, odd ones are done
    results = await asyncio.gather(*(
        queue.settle(job, i % 2 == 0, 30.0, {"i": i, "next": True} if i % 2 == 0 else None, leases[i])
        for i, job in enumerate(jobs)))
    assert client.sent <= 3  # not 40: the first call alone (plus loading the script), the rest together
    assert results == [i % 2 == 0 for i in range(40)]
    depth = await queue.depth()
    assert (depth.pending, depth.delayed) == (0, 20)
    for i in range(40):
        assert await queue.is_queued(f"round:{i}") == (i % 2 == 0)
        assert await client.get(f"lease:user:{i}") is None
        assert await client.get(f"lease:account:{i}") == (b"999" if i % 4 == 0 else None)
    await queue.promote_due()  # nothing is due before its delay
    assert await queue.fetch(block_ms=0) == []
