"""Scale-out: 1, 2 and 4 worker processes on one PostgreSQL and one Redis, the same workload.

    .venv/bin/python -m bench.scale_out [--users 400] [--groups 25] [--workers 1,2,4] [--repeat 2]

Each run starts from a fresh database seeded with ``--users`` users x ``--groups`` groups (a
connected account, a message, a running campaign each), starts N worker replicas as real OS
processes (``bench.scale_worker``: the worker role, scheduler and worker loops, on a zero-latency
gateway; pacing gaps 0, the account limiter on but wide), waits until they are up, then creates
every round in one scheduler tick and times until the last round is done. Reported per run:

- durable sends/s and the ratio to the 1-worker run (the baseline, best of its repeats);
- CPU time over the timed window of each worker process, of PostgreSQL (the postmaster and every
  backend), of Redis and of this process, from ``/proc/<pid>/stat``, as % of one core and per send,
  and what the whole machine was busy with (``/proc/stat``; the rest is other people's work on a
  shared machine);
- DB round trips/s and Redis commands/s sent by the workers' clients, and PostgreSQL commits/s.

From the per-send CPU costs it projects what a machine with more cores would do (see
bench/README.md, "Scale-out").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis

from accounts.crypto import SessionCipher, generate_key
from bench.common import database, fresh_database, machine, pg_transactions, redis_server_calls, seed, servers
from config.settings import EngineSettings, Settings
from roles.worker.loop import round_queue
from scheduler.jobs import SchedulerJobs
from storage.lease import Leases
from tests.chaos.cluster import Servers

ROOT = Path(__file__).resolve().parents[1]
WIDE = 10**9
TICK = os.sysconf("SC_CLK_TCK")

# the worker role as ROLE=worker runs it, with pacing off and the limiter wide (as bench.throughput)
WORKER_ENV = {
    "ROLE": "worker",
    "GAP_MIN": "0",
    "GAP_MAX": "0",
    "BATCH_SIZE": "5",
    "LEASE_TTL": "30",
    # the scheduler runs (under its lease) as in the role, but the benchmark's own tick creates the
    # rounds, at a known moment: the replicas' first tick finds nothing due and the next is an hour away
    "SCHEDULER_TICK": "3600",
    "SEND_LIMIT_MINUTE": str(WIDE),
    "SEND_LIMIT_HOUR": str(WIDE),
    "SEND_LIMIT_DAY": str(WIDE),
    "BREAK_AFTER": str(WIDE),
    "LOG_LEVEL": "WARNING",
    "METRICS_PORT": "0",
}


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process (all its threads), in clock ticks; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5), counted after the name


def children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == parent:
                found.append(int(entry.name))
    return found


def machine_ticks() -> tuple[int, int]:
    """(busy, total) ticks of all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Snapshot:
    at: float
    procs: dict[str, dict[int, int]]  # group -> pid -> ticks
    machine: tuple[int, int]


def snapshot(groups: dict[str, list[int]]) -> Snapshot:
    ticks = {g: {pid: cpu_ticks(pid) for pid in pids} for g, pids in groups.items()}
    return Snapshot(time.perf_counter(), ticks, machine_ticks())


def cpu_seconds(before: Snapshot, after: Snapshot, group: str) -> float:
    end = after.procs.get(group, {})
    start = before.procs.get(group, {})
    return sum(ticks - start.get(pid, 0) for pid, ticks in end.items()) / TICK


@dataclass
class Run:
    workers: int
    sends: int
    elapsed: float
    cpu: dict[str, float]  # seconds of CPU in the window: "w0".. "postgres", "redis", "bench"
    machine_busy_cores: float
    db_round_trips: int
    redis_commands: int
    redis_server_calls: int
    pg_commits: int  # includes the replicas' few start-up and shutdown transactions
    wal_bytes: int
    per_worker_sends: list[int] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.sends / self.elapsed

    def worker_cpu(self) -> float:
        return sum(v for k, v in self.cpu.items() if k.startswith("w"))

    def stack_cpu(self) -> float:
        return self.worker_cpu() + self.cpu["postgres"] + self.cpu["redis"]


def pg_pids(pg_dir: Path) -> list[int]:
    postmaster = int((pg_dir / "postmaster.pid").read_text().splitlines()[0])
    return [postmaster, *children(postmaster)]


async def one_run(srv: Servers, n: int, users: int, groups: int, concurrency: int) -> Run:
    if srv.pg is None or srv.redis is None:
        raise SystemExit("scale_out measures the CPU of its own embedded servers: "
                         "unset TEST_DATABASE_URL and TEST_REDIS_URL")
    pg_url, redis_url, pg_dir, redis_dir = srv.pg_url, srv.redis_url, srv.pg.data_dir, srv.redis.data_dir
    url = await fresh_database(pg_url)
    key = generate_key()
    redis = aioredis.Redis.from_url(redis_url)
    await redis.flushall()
    async with database(url, 4) as db:
        async with db.connection() as conn:
            # due in a day: nothing is scheduled before the timed tick below
            await seed(conn, SessionCipher(key), range(1, users + 1), groups, due_offset=86400)
        env = {**os.environ, **WORKER_ENV, "PYTHONPATH": str(ROOT), "DATABASE_URL": url,
               "REDIS_URL": redis_url, "SESSION_ENCRYPTION_KEY": key, "WORKER_CONCURRENCY": str(concurrency),
               "DATABASE_POOL_MAX": str(concurrency + 8)}
        async with db.connection() as conn:
            commits_before = await pg_transactions(conn)
        # started before the timed window
        procs = [subprocess.Popen([sys.executable, "-m", "bench.scale_worker"], env=env,  # noqa: ASYNC220
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=None) for _ in range(n)]
        try:
            for proc in procs:
                assert proc.stdout is not None
                line = await asyncio.to_thread(proc.stdout.readline)
                if line.strip() != b"ready":
                    raise RuntimeError(f"worker did not start: {line!r}")
            await asyncio.sleep(1.0)  # the fetch loops are blocked on the empty stream
            settings = Settings(engine=EngineSettings(gap_min=0.0, gap_max=0.0, batch_size=5, lease_ttl=30.0))
            pids = {
                **{f"w{i}": [p.pid] for i, p in enumerate(procs)},
                "postgres": pg_pids(pg_dir),
                "redis": [int((redis_dir / "redis.pid").read_text())],
                "bench": [os.getpid()],
            }
            async with db.connection() as conn:
                await conn.execute("UPDATE campaigns SET next_run_at = now() - interval '1 second'")
                wal_before = await conn.fetchval("SELECT pg_current_wal_lsn()")
                server_before = await redis_server_calls(redis)
                before = snapshot(pids)
                created = await SchedulerJobs(db, round_queue(redis, "bench", settings), Leases(redis),
                                              settings.engine, redis).tick()
                assert created.created == users, created
                # polling a count of the small rounds table (one row per user), ~50 cheap reads a second
                while await conn.fetchval(  # noqa: ASYNC110
                        "SELECT count(*) FROM rounds WHERE finished_at IS NULL") > 0:
                    await asyncio.sleep(0.02)
                pids["postgres"] = pg_pids(pg_dir)  # backends started during the run
                after = snapshot(pids)
                wal = int(await conn.fetchval("SELECT pg_current_wal_lsn() - $1::pg_lsn", wal_before))
                server_calls = await redis_server_calls(redis) - server_before - 1
                sent = int(await conn.fetchval("SELECT count(*) FROM attempts WHERE status = 'sent'"))
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            outputs = []
            for proc in procs:
                out, _ = await asyncio.to_thread(proc.communicate, timeout=30)
                outputs.append(json.loads(out.decode().strip().splitlines()[-1]) if out.strip() else {})
            await redis.aclose()
        await asyncio.sleep(0.5)
        async with db.connection() as conn:
            # a backend's commit counts reach pg_stat_database when it exits (the workers' have)
            commits = await pg_transactions(conn) - commits_before - 2
    assert sent == users * groups, (sent, users * groups)
    busy = (after.machine[0] - before.machine[0]) / (after.at - before.at) / TICK
    return Run(
        workers=n, sends=sent, elapsed=after.at - before.at,
        cpu={g: cpu_seconds(before, after, g) for g in pids},
        machine_busy_cores=busy,
        db_round_trips=sum(o.get("db", 0) for o in outputs),
        redis_commands=sum(o.get("redis", 0) for o in outputs),
        redis_server_calls=server_calls, pg_commits=commits, wal_bytes=wal,
        per_worker_sends=[o.get("sends", 0) for o in outputs],
    )


def describe(run: Run, base: float) -> list[str]:
    t = run.elapsed
    workers = [f"{100 * run.cpu[f'w{i}'] / t:.0f}" for i in range(run.workers)]
    per_send = {k: 1e6 * v / run.sends for k, v in run.cpu.items()}
    return [
        f"{run.workers} worker(s): {run.rate:,.0f} sends/s ({run.sends} in {t:.2f} s), "
        f"x{run.rate / base:.2f} the 1-worker rate; sends per worker {run.per_worker_sends}",
        f"  CPU % of one core: workers {' + '.join(workers)} = {100 * run.worker_cpu() / t:.0f}, "
        f"postgres {100 * run.cpu['postgres'] / t:.0f}, redis {100 * run.cpu['redis'] / t:.0f}, "
        f"bench {100 * run.cpu['bench'] / t:.0f}; whole machine busy {run.machine_busy_cores:.2f} of "
        f"{os.cpu_count()} cores (others' share {run.machine_busy_cores - sum(run.cpu.values()) / t:.2f})",
        f"  CPU us per send: workers {sum(v for k, v in per_send.items() if k.startswith('w')):.0f}, "
        f"postgres {per_send['postgres']:.0f}, redis {per_send['redis']:.0f}; "
        f"{run.sends / run.stack_cpu():,.0f} sends per CPU-second of the stack (workers + postgres + redis)",
        f"  DB round trips/s {run.db_round_trips / t:,.0f} ({run.db_round_trips / run.sends:.2f} per send), "
        f"PostgreSQL commits {run.pg_commits / run.sends:.2f} per send, WAL {run.wal_bytes / run.sends:,.0f} "
        f"bytes per send ({run.wal_bytes / t / 1e6:.1f} MB/s)",
        f"  Redis commands/s {run.redis_commands / t:,.0f} "
        f"(server-side incl. Lua {run.redis_server_calls / t:,.0f})",
    ]


def projection(runs: list[Run]) -> list[str]:
    """Sends/s a machine with C free cores could do, from the CPU each part spends per send with the
    most workers measured (the configuration one scales out; the median of its repeats)."""
    most = max(r.workers for r in runs)
    mine = [r for r in runs if r.workers == most]
    w = statistics.median(r.worker_cpu() / r.sends for r in mine)
    p = statistics.median(r.cpu["postgres"] / r.sends for r in mine)
    r = statistics.median(x.cpu["redis"] / x.sends for x in mine)
    lines = [f"projection from the CPU per send with {most} workers (median): worker {1e6 * w:.0f} us, "
             f"postgres {1e6 * p:.0f} us, redis {1e6 * r:.0f} us"]
    for cores in (2, 8, 16, 32):
        cpu_bound = cores / (w + p + r)
        redis_bound = 1 / r  # Redis executes commands on one thread
        lines.append(f"  {cores:>2} cores: CPU allows {cpu_bound:,.0f} sends/s, one Redis thread "
                     f"{redis_bound:,.0f} -> ~{min(cpu_bound, redis_bound):,.0f} sends/s "
                     f"with ~{max(1, round(cores * w / (w + p + r)))} workers")
    return lines


async def main_async(users: int, groups: int, counts: list[int], repeat: int, concurrency: int) -> None:
    load_before = os.getloadavg()
    runs: list[Run] = []
    with servers() as srv:
        for _ in range(repeat):
            for n in counts:
                run = await one_run(srv, n, users, groups, concurrency)
                runs.append(run)
                print(f"  ... {n} worker(s): {run.rate:,.0f} sends/s", flush=True)
    load_after = os.getloadavg()
    print(f"machine: {machine()}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    print(f"workload: {users} users x {groups} groups = {users * groups} sends per run, batch 5, "
          f"concurrency {concurrency} per worker, zero-latency gateway, pacing off, limiter wide, fsync on")
    by_n = {n: [r for r in runs if r.workers == n] for n in counts}
    base = max(r.rate for r in by_n[counts[0]])
    for n in counts:
        for run in by_n[n]:
            print("\n".join(describe(run, base)))
    medians = {n: statistics.median(r.rate for r in by_n[n]) for n in counts}
    bests = {n: max(r.rate for r in by_n[n]) for n in counts}
    print("ratios (best of repeats / median): " + ", ".join(
        f"{n}/{counts[0]} = {bests[n] / bests[counts[0]]:.2f} / {medians[n] / medians[counts[0]]:.2f}"
        for n in counts[1:]))
    print("\n".join(projection(runs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--groups", type=int, default=25)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32, help="WORKER_CONCURRENCY of each worker")
    args = parser.parse_args()
    asyncio.run(main_async(args.users, args.groups, [int(x) for x in args.workers.split(",")], args.repeat,
                           args.concurrency))


if __name__ == "__main__":
    main()
