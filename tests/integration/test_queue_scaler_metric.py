"""What KEDA's streamLength trigger reads (XLEN of the round stream) is the queue's ready + pending
entries: acknowledged entries leave the stream, delayed ones are not in it until due."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from config.settings import Settings
from roles.worker.loop import round_queue

pytestmark = pytest.mark.integration


async def test_stream_length_is_ready_plus_pending(redis_client: aioredis.Redis) -> None:
    queue = round_queue(redis_client, "scaler-probe", Settings())
    for n in range(5):
        assert await queue.enqueue(f"job-{n}", {"n": n})
    assert await queue.enqueue("later", {"n": 9}, delay=3600)  # delayed: not ready, not counted
    delivered = await queue.fetch(count=2, block_ms=10)
    assert len(delivered) == 2
    groups = {g["name"].decode(): g for g in await redis_client.xinfo_groups(queue.stream)}
    pending = groups[queue.group]["pending"]
    assert pending == 2
    assert await redis_client.xlen(queue.stream) == 3 + pending  # 3 ready + 2 pending
    await queue.ack(delivered[0])
    await queue.ack_many([delivered[1]])
    assert await redis_client.xlen(queue.stream) == 3  # acknowledged entries leave the stream
