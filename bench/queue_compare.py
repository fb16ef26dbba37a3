"""Queue comparison: this project's JobQueue against BullMQ, arq and saq on the same Redis.

    bench/queues/setup.sh                         # once: installs the contenders outside the repo
    .venv/bin/python -m bench.queue_compare [--jobs 20000] [--concurrency 32]

Each contender runs in its own process on the same embedded Redis (flushed before each): enqueue
``--jobs`` no-op jobs with a unique id each (the dedupe id), then one consumer with
``--concurrency`` jobs at once drains them, acknowledging every job. Figures: enqueue and drain
rates. Baseline: our JobQueue on uvloop (the project's event loop), measured in the same run;
ratios are ours/contender (how many times faster ours is). Ours also runs on the standard asyncio
loop, the one the Python contenders use.

The contenders are optional extras installed only for this benchmark, outside the project's
virtualenv (arq and saq need an older redis-py than the project's): ``BENCH_QUEUE_DEPS``
(default /tmp/bench-queue-deps) holds ``venv/`` (arq, saq) and ``node_modules/`` (bullmq).
A contender whose dependencies are missing is reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from bench.common import machine
from storage.embedded import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "bench" / "queues"


def contenders(deps: Path) -> list[tuple[str, list[str], dict[str, str]]]:
    side_python = deps / "venv" / "bin" / "python"
    bullmq = deps / "node_modules" / "bullmq" / "dist" / "cjs" / "index.js"
    return [
        ("ours (uvloop)", [sys.executable, str(HERE / "ours.py")], {"PYTHONPATH": str(ROOT)}),
        (
            "ours (asyncio)",
            [sys.executable, str(HERE / "ours.py")],
            {"PYTHONPATH": str(ROOT), "BENCH_LOOP": "asyncio"},
        ),
        (
            "BullMQ",
            ["node", str(HERE / "bullmq_bench.mjs")],
            {"BULLMQ_ENTRY": str(bullmq)} if bullmq.exists() else {"SKIP": "bullmq not installed"},
        ),
        (
            "arq",
            [str(side_python), str(HERE / "arq_bench.py")],
            {} if side_python.exists() else {"SKIP": "no venv"},
        ),
        (
            "saq",
            [str(side_python), str(HERE / "saq_bench.py")],
            {} if side_python.exists() else {"SKIP": "no venv"},
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    deps = Path(os.environ.get("BENCH_QUEUE_DEPS", "/tmp/bench-queue-deps"))
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="bench-queues-"))
    redis = EmbeddedRedis(base / "redis", port=0)
    results: list[dict[str, object]] = []
    try:
        url = redis.start()
        for name, command, env in contenders(deps):
            if "SKIP" in env:
                print(f"{name}: skipped ({env['SKIP']})")
                continue
            out = subprocess.run(
                [*command, url, str(args.jobs), str(args.concurrency)],
                cwd=ROOT,
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                timeout=600,
            )
            if out.returncode != 0:
                print(f"{name}: failed\n{out.stderr[-2000:]}")
                continue
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        redis.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f"machine: {machine()}")
    print(f"{args.jobs} no-op jobs with unique ids, one consumer process, concurrency {args.concurrency}")
    ours = next((r for r in results if str(r["name"]).startswith("ours")), None)
    for r in results:
        enq = args.jobs / float(r["enqueue_s"])  # type: ignore[arg-type]
        drain = args.jobs / float(r["drain_s"])  # type: ignore[arg-type]
        line = f"  {r['name']:<16} enqueue {enq:9,.0f} jobs/s   drain {drain:9,.0f} jobs/s"
        if ours is not None and r is not ours:
            line += (
                f"   ours/this: enqueue {float(r['enqueue_s']) / float(ours['enqueue_s']):.2f}, "  # type: ignore[arg-type]
                f"drain {float(r['drain_s']) / float(ours['drain_s']):.2f}"
            )  # type: ignore[arg-type]
        print(line)


if __name__ == "__main__":
    main()
