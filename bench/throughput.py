"""Throughput: durable sends per second of one worker process at 1, 5 and 50 groups per round,
its cost per send, and the same with 100 rounds of history per user.

    .venv/bin/python -m bench.throughput [--shapes 1,5,50] [--sends 10000] [--history 100]
                                         [--concurrency 32] [--repeat 1] [--limiter-off]

The worker (run_worker: queue, per-user and per-account locks, micro-batches of 5, every send
claimed durably before it is made and its outcome written after) runs against a zero-latency
gateway with pacing off: gaps of 0 and the account limiter on but set wide (caps and breaks far
above the workload), so every send still makes its limiter call. ``--limiter-off`` adds, at the
last shape, a run with that call replaced by an immediate grant (the limiter's share).

Each shape has ``--sends`` sends in all (10,000 users x 1 group, 2,000 x 5, 200 x 50). Counted per
send: client round trips to PostgreSQL (statements and BEGIN/COMMIT; the pool's connections go back
without a reset query, ``storage.db.keep_session``) and PostgreSQL transactions; Redis round trips
(requests the client waits for: an EVALSHA or a
pipeline is one), Redis commands the client sent (a pipeline counts its items) and what the Redis
server executed including the calls inside Lua scripts (INFO commandstats). And the CPU time per
send of the worker process, the PostgreSQL server (postmaster, backends, background processes) and
the Redis server, beside the whole machine's busy time: on a shared machine that runs out of CPU,
sends/s is the CPU this stack gets divided by its CPU per send.

Baseline, same run, same data shape: a plain 32-way asyncio loop with no queue, lock or limiter
doing the same durable writes (claim ``sending`` committed, send, write ``sent``) in its best
configuration: one pooled connection per task for the whole run (pool sized for the tasks) and
both statements prepared once per connection.

History: the last shape (default 50 groups) runs again on a database that first got ``--history``
finished rounds per user, each with its attempts, and VACUUM ANALYZE; the ratio history/empty is
printed (target >= 0.9) against the empty runs just before and after it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench.common import (
    NullGateway,
    counting,
    database,
    engine_settings,
    fresh_database,
    machine,
    new_cipher,
    now,
    pg_transactions,
    redis_server_calls,
    seed,
    seed_history,
    servers,
)
from domain.limits import Verdict
from roles.worker.loop import round_queue, run_worker
from scheduler.jobs import SchedulerJobs
from storage.db import Database
from storage.lease import Leases
from storage.send_limiter import SendLimiter

# the limiter on, but no cap or break the workload can reach
WIDE = 10**9
_HZ = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> tuple[float, int]:
    """CPU seconds of a process, its reaped children included, and its parent pid ((0, -1): gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, -1
    return sum(int(x) for x in fields[11:15]) / _HZ, int(fields[1])


def _pid(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(path.read_text().split()[0])
    return None


class StackCpu:
    """CPU seconds of the worker (this process), the PostgreSQL server tree and the Redis server,
    and the machine's busy seconds (every process, others' included), read from /proc."""

    def __init__(self, srv: Any) -> None:
        self.pg = _pid(srv.pg.data_dir / "postmaster.pid") if getattr(srv, "pg", None) else None
        self.redis = _pid(srv.redis.data_dir / "redis.pid") if getattr(srv, "redis", None) else None

    def snapshot(self) -> dict[str, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out = {"worker": usage.ru_utime + usage.ru_stime, "pg": 0.0, "redis": 0.0}
        if self.pg is not None:
            out["pg"] = _proc_cpu(self.pg)[0]
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    cpu, parent = _proc_cpu(int(entry))
                    if parent == self.pg:
                        out["pg"] += cpu
        if self.redis is not None:
            out["redis"] = _proc_cpu(self.redis)[0]
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
        out["machine"] = (sum(ticks) - ticks[3] - ticks[4]) / _HZ
        return out


@contextlib.contextmanager
def limiter_timed(enabled: bool) -> Iterator[list[float]]:
    """Time every limiter call; with ``enabled`` False each call is granted at once, without Redis."""
    original = SendLimiter.reserve
    spent: list[float] = []

    async def timed(self: SendLimiter, *args: Any, **kw: Any) -> Verdict:
        started = time.perf_counter()
        try:
            if enabled:
                return await original(self, *args, **kw)
            return Verdict(0.0, "ok", (0, 0, 0), 1.0, 0.0, 0, 0.0, 0.0)
        finally:
            spent.append(time.perf_counter() - started)

    SendLimiter.reserve = timed  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        SendLimiter.reserve = original  # type: ignore[method-assign]


async def prepare(
    pg_url: str, redis: aioredis.Redis, users: int, groups: int, concurrency: int, batch: int,
    history: int = 0,
) -> tuple[str, object]:
    url = await fresh_database(pg_url)
    settings = engine_settings(
        gap_min=0.0, gap_max=0.0, batch_size=batch, worker_concurrency=concurrency, lease_ttl=30.0,
        limit_minute=WIDE, limit_hour=WIDE, limit_day=WIDE, break_after=WIDE,
    )
    cipher = new_cipher()
    async with database(url, 4) as db:
        async with db.connection() as conn:
            await seed(conn, cipher, range(1, users + 1), groups)
            if history:
                await seed_history(conn, history)
        await redis.flushall()
        queue = round_queue(redis, "bench", settings)
        scheduler = SchedulerJobs(db, queue, Leases(redis), settings.engine, redis)
        created = 0
        while created < users:  # a tick creates at most MAX_PER_TICK rounds
            tick = await scheduler.tick()
            assert tick.created > 0, tick
            created += tick.created
        assert created == users, created
    return url, (settings, cipher)


async def run_engine(
    pg_url: str, redis: aioredis.Redis, users: int, groups: int, concurrency: int, batch: int,
    limiter: bool = True, history: int = 0, cpu: StackCpu | None = None,
) -> dict[str, float]:
    url, (settings, cipher) = await prepare(  # type: ignore[misc]
        pg_url, redis, users, groups, concurrency, batch, history)
    total = users * groups
    async with database(url, concurrency + 8) as db:
        gateway = NullGateway()
        stop = asyncio.Event()
        queue = round_queue(redis, "bench", settings)
        async with db.connection() as conn:
            tx_before = await pg_transactions(conn)
        server_before = await redis_server_calls(redis)
        cpu_before = cpu.snapshot() if cpu is not None else {}
        with counting() as counts, limiter_timed(limiter) as spent:
            started = now()
            worker = asyncio.create_task(
                run_worker(db, redis, gateway, settings, stop, "bench", cipher=cipher, queue=queue)
            )
            while gateway.sends < total:  # noqa: ASYNC110 - polling a counter, no DB or Redis
                await asyncio.sleep(0.005)
            elapsed = now() - started
            cpu_after = cpu.snapshot() if cpu is not None else {}
            stop.set()
            await worker
        server_calls = await redis_server_calls(redis) - server_before - 1
        async with db.connection() as conn:
            tx = await pg_transactions(conn) - tx_before - 1
            done = await conn.fetchval("SELECT count(*) FROM rounds WHERE status = 'done' AND sent > 0 "
                                       "AND finished_at > now() - interval '1 hour'")
            sent = await conn.fetchval("SELECT count(*) FROM attempts WHERE status = 'sent' "
                                       "AND finished_at > now() - interval '1 hour'")
    assert (done, sent) == (users, total), (done, sent)
    return {
        "sends_per_s": total / elapsed,
        "elapsed": elapsed,
        "db_per_send": counts.db_statements / total,
        "pg_tx_per_send": tx / total,
        "redis_rt_per_send": counts.redis_round_trips / total,
        "redis_per_send": counts.redis_commands / total,
        "redis_server_per_send": server_calls / total,
        "limiter_calls_per_send": len(spent) / total,
        "limiter_ms_per_call": 1000 * sum(spent) / max(1, len(spent)),
        **{f"cpu_{k}": cpu_after[k] - cpu_before[k] for k in cpu_after},
    }


async def run_baseline(
    pg_url: str, redis: aioredis.Redis, users: int, groups: int, concurrency: int,
    cpu: StackCpu | None = None,
) -> dict[str, float]:
    """The same durable writes in a plain ``concurrency``-way loop: no queue, lock or batching."""
    url, _ = await prepare(pg_url, redis, users, groups, 1, 5)
    total = users * groups
    gateway = NullGateway()
    async with database(url, concurrency + 2) as db:
        async with db.connection() as conn:
            rows = await conn.fetch("SELECT attempt_id, round_id FROM attempts ORDER BY round_id, attempt_id")
        by_round: dict[int, list[int]] = {}
        for row in rows:
            by_round.setdefault(row["round_id"], []).append(row["attempt_id"])
        rounds = iter(by_round.values())
        cpu_before = cpu.snapshot() if cpu is not None else {}
        started = now()
        await asyncio.gather(*(plain_loop(db, gateway, rounds) for _ in range(concurrency)))
        elapsed = now() - started
        cpu_after = cpu.snapshot() if cpu is not None else {}
    assert gateway.sends == total
    return {"sends_per_s": total / elapsed, "elapsed": elapsed,
            **{f"cpu_{k}": cpu_after[k] - cpu_before[k] for k in cpu_after}}


async def plain_loop(db: Database, gateway: NullGateway, rounds: Iterator[list[int]]) -> None:
    """One task: its own connection for the run, both statements prepared once."""
    from accounts.gateway import AccountRef, GroupRef, OutgoingMessage

    account, message = AccountRef(1, "s"), OutgoingMessage("bench")
    async with db.connection() as conn:
        claim = await conn.prepare(
            "UPDATE attempts SET status = 'sending', tries = tries + 1, sending_at = now() "
            "WHERE attempt_id = $1 AND status = 'pending' RETURNING peer_id")
        finish = await conn.prepare(
            "UPDATE attempts SET status = 'sent', sent_message_id = $2, finished_at = now() "
            "WHERE attempt_id = $1 AND status = 'sending'")
        for ids in rounds:
            for attempt_id in ids:
                peer = await claim.fetchval(attempt_id)
                sent_id = await gateway.send_message(account, GroupRef(peer, 1, "supergroup"), message)
                await finish.fetchval(attempt_id, sent_id)


def _line(label: str, res: dict[str, float]) -> str:
    return (f"  {label:<22} {res['sends_per_s']:>7,.0f} sends/s ({res['elapsed']:5.2f} s)  "
            f"DB {res['db_per_send']:.2f} round trips ({res['pg_tx_per_send']:.2f} tx)  "
            f"Redis {res['redis_rt_per_send']:.2f} round trips, {res['redis_per_send']:.2f} commands "
            f"({res['redis_server_per_send']:.2f} server-side)  limiter {res['limiter_ms_per_call']:.2f} ms"
            + _cpu_line(res))


def _cpu_line(res: dict[str, float]) -> str:
    if "cpu_machine" not in res:
        return ""
    total = res["sends_per_s"] * res["elapsed"]
    ours = res["cpu_worker"] + res["cpu_pg"] + res["cpu_redis"]  # the loop's Redis is idle: ~0
    per_send = {k: 1000 * res[f"cpu_{k}"] / total for k in ("worker", "pg", "redis")}
    return (f"\n  {'':<22} CPU per send: worker {per_send['worker']:.2f} ms, "
            f"PostgreSQL {per_send['pg']:.2f} ms, Redis {per_send['redis']:.2f} ms; "
            f"this stack used {ours / res['elapsed']:.2f} cores, "
            f"the machine was busy {res['cpu_machine'] / res['elapsed']:.2f} of {os.cpu_count()}")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shapes", default="1,5,50", help="groups per round, comma-separated")
    parser.add_argument("--sends", type=int, default=10_000, help="sends per shape (users = sends / groups)")
    parser.add_argument("--history", type=int, default=100, help="finished rounds per user (0: skip)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=1, help="engine/baseline pairs per shape")
    parser.add_argument("--limiter-off", action="store_true", help="also the engine without the limiter call")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    shapes = [int(g) for g in args.shapes.split(",")]
    print(f"machine: {machine()}; load average at start {load_average()}")
    print(f"workload: {args.sends} sends per shape, batch {args.batch}, concurrency {args.concurrency}, "
          f"zero-latency gateway, pacing off (limiter on, wide), fsync on")
    empty: dict[str, float] = {}
    with servers() as srv:
        redis = aioredis.Redis.from_url(srv.redis_url)
        cpu = StackCpu(srv)
        try:
            for groups in shapes:
                users = max(1, args.sends // groups)
                print(f"{groups} group(s) per round: {users} users")
                ratios = []
                for _ in range(args.repeat):
                    res = await run_engine(srv.pg_url, redis, users, groups, args.concurrency, args.batch,
                                           cpu=cpu)
                    base = await run_baseline(srv.pg_url, redis, users, groups, args.concurrency, cpu=cpu)
                    ratios.append(res["sends_per_s"] / base["sends_per_s"])
                    print(_line("engine", res))
                    label = f"baseline {args.concurrency}-way loop"
                    print(f"  {label:<22} {base['sends_per_s']:>7,.0f} sends/s   -> engine/baseline = "
                          f"{ratios[-1]:.2f}" + _cpu_line(base))
                    empty = res
                if args.repeat > 1:
                    print(f"  engine/baseline over {args.repeat} pairs: {min(ratios):.2f}-{max(ratios):.2f}")
            groups = shapes[-1]
            users = max(1, args.sends // groups)
            if args.limiter_off:
                off = await run_engine(srv.pg_url, redis, users, groups, args.concurrency, args.batch,
                                       limiter=False, cpu=cpu)
                print(_line("engine, no limiter", off) +
                      f"   -> with/without = {empty['sends_per_s'] / off['sends_per_s']:.2f}")
            if args.history:
                hist = await run_engine(srv.pg_url, redis, users, groups, args.concurrency, args.batch,
                                        history=args.history, cpu=cpu)
                again = await run_engine(srv.pg_url, redis, users, groups, args.concurrency, args.batch,
                                         cpu=cpu)
                print(f"history: {groups} groups, {users} users, {args.history} finished rounds per user "
                      f"({users * args.history * groups:,} attempts) before the run")
                print(_line("engine, history", hist))
                print(_line("engine, empty (again)", again))
                # the machine's load drifts: the empty database is measured before and after
                mean_empty = (empty["sends_per_s"] + again["sends_per_s"]) / 2
                best_empty = max(empty["sends_per_s"], again["sends_per_s"])
                print(f"  history/empty = {hist['sends_per_s'] / mean_empty:.2f} against the mean of the "
                      f"empty runs before and after, {hist['sends_per_s'] / best_empty:.2f} against the "
                      f"better (target >= 0.9)")
        finally:
            await redis.aclose()
    print(f"load average at end {load_average()}")


def load_average() -> str:
    import os

    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
