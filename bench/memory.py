"""Memory: RSS of one worker process with 1,000 sandbox accounts live at once.

    .venv/bin/python -m bench.memory [--accounts 1000] [--groups 5]

1,000 sandbox accounts are logged in through the sandbox gateway (the sandbox runs in this
process; the worker reaches it over HTTP). One worker replica (tests/chaos/worker_proc.py: the
scheduler plus run_worker, as ROLE=worker runs them) is started with WORKER_CONCURRENCY equal to
the number of accounts and a 1-2 s gap, so that every account's round is in flight at the same
time (each job holds its user's lock and sleeps the gap between its sends). Its RSS is sampled
every 0.2 s. Baseline, same run: the same process idle before any round is due. Target <= 500 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import redis.asyncio as aioredis

from accounts.crypto import SessionCipher, generate_key
from accounts.sandbox_gateway import SandboxGateway
from bench.common import database, fresh_database, machine, servers
from config.settings import SandboxSettings
from sandbox.client import SandboxClient
from sandbox.server import run_sandbox
from storage import keys
from tests.integration.engine_sandbox import create_world_users

ROOT = Path(__file__).resolve().parents[1]


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--gap", type=float, default=3.0, help="gap_min; gap_max is gap + 1")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with servers() as srv:
        url = await fresh_database(srv.pg_url)
        sandbox = await run_sandbox(
            SandboxSettings(host="127.0.0.1", port=0, rate_limits=False, seed_file="")
        )
        client, gateway = SandboxClient(sandbox.url), SandboxGateway(sandbox.url)
        redis = aioredis.Redis.from_url(srv.redis_url)
        key = generate_key()
        logs = Path(tempfile.mkdtemp(prefix="bench-memory-"))
        proc = None
        try:
            async with database(url, 4) as db:
                async with db.connection() as conn:
                    await create_world_users(
                        client,
                        gateway,
                        conn,
                        SessionCipher(key),
                        list(range(1, args.accounts + 1)),
                        args.groups,
                    )
                    await conn.execute("UPDATE campaigns SET next_run_at = now() + interval '1 hour'")
                host, _, port = sandbox.url.removeprefix("http://").partition(":")
                env = {
                    **os.environ,
                    "PYTHONPATH": str(ROOT),
                    "DATABASE_URL": url,
                    "REDIS_URL": srv.redis_url,
                    "ACCOUNT_GATEWAY": "sandbox",
                    "SANDBOX_HOST": host,
                    "SANDBOX_PORT": port,
                    "SESSION_ENCRYPTION_KEY": key,
                    "WORKER_CONCURRENCY": str(args.accounts),
                    "DATABASE_POOL_MAX": "20",
                    "GAP_MIN": str(args.gap),
                    "GAP_MAX": str(args.gap + 1),
                    "LEASE_TTL": "30",
                    "SCHEDULER_TICK": "0.5",
                    "LOG_LEVEL": "WARNING",
                    "METRICS_PORT": "0",
                    "DATA_DIR": str(logs),
                }
                with (logs / "worker.log").open("ab") as log:
                    proc = subprocess.Popen(  # noqa: ASYNC220 - starting it is instant
                        [sys.executable, str(ROOT / "tests/chaos/worker_proc.py")],
                        env=env,
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                ps = psutil.Process(proc.pid)
                await asyncio.sleep(5)
                idle = ps.memory_info().rss
                async with db.connection() as conn:
                    await conn.execute("UPDATE campaigns SET next_run_at = now()")
                peak, live_peak, peak_at, started = idle, 0, 0.0, time.monotonic()
                while time.monotonic() - started < 90:
                    peak = max(peak, ps.memory_info().rss)
                    live = len(
                        [k async for k in redis.scan_iter(match=keys.LEASE.format(name="user:*"), count=1000)]
                    )
                    live_peak = max(live_peak, live)
                    async with db.connection() as conn:
                        open_rounds = await conn.fetchval(
                            "SELECT count(*) FROM rounds WHERE finished_at IS NULL"
                        )
                        rounds = await conn.fetchval("SELECT count(*) FROM rounds")
                    if rounds >= args.accounts and open_rounds == 0:
                        break
                    if live == live_peak and live:
                        peak_at = time.monotonic() - started
                    await asyncio.sleep(0.2)
                took = time.monotonic() - started
                async with db.connection() as conn:
                    sent = await conn.fetchval("SELECT count(*) FROM attempts WHERE status = 'sent'")
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
            await redis.aclose()
            await gateway.close()
            await client.close()
            await sandbox.close()
            shutil.rmtree(logs, ignore_errors=True)
    mb = 1024 * 1024
    print(f"machine: {machine()}")
    print(
        f"{args.accounts} sandbox accounts x {args.groups} groups, WORKER_CONCURRENCY={args.accounts}, "
        f"gap {args.gap}-{args.gap + 1} s; all rounds done in {took:.1f} s, "
        f"most locks held at {peak_at:.1f} s"
    )
    print(
        f"worker RSS idle (baseline): {idle / mb:.0f} MB; peak with {live_peak} user locks held at once: "
        f"{peak / mb:.0f} MB (target <= 500 MB); ratio peak/idle {peak / idle:.2f}; "
        f"{(peak - idle) / max(live_peak, 1) / 1024:.0f} KB per live account; {sent} sends"
    )


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
