"""Queue comparison: this project's JobQueue against BullMQ for Python, arq and saq on the same Redis.

    bench/queues/setup.sh                         # once: installs the contenders outside the repo
    .venv/bin/python -m bench.queue_compare [--jobs 20000] [--concurrency 32]

Each contender runs in its own process on the same embedded Redis (flushed before each): enqueue
``--jobs`` no-op jobs with a unique id each (the dedupe id), then one consumer with
``--concurrency`` jobs at once drains them, acknowledging every job. Figures: enqueue and drain
rates. Baseline: our JobQueue on uvloop (the project's event loop), measured in the same run;
ratios are ours/contender (how many times faster ours is). Ours also runs on the standard asyncio
loop, the one the Python contenders use. BullMQ for Python (the ``bullmq`` package on PyPI) runs
in three variants (``BULLMQ_PY_VARIANTS``: ``Queue.add`` or its batch API ``Queue.addBulk``, on a
pooled redis-py client like ours or on its own default single-connection client) and the target
is judged against its best figure in each column. BullMQ's Node.js implementation runs too, as an
informative line.

The contenders are optional extras installed only for this benchmark, outside the project's
virtualenv (their redis-py and other pins differ from the project's): ``BENCH_QUEUE_DEPS``
(default /tmp/bench-queue-deps) holds ``venv/`` (arq, saq), ``venv-bullmq/`` (bullmq) and
``node_modules/`` (BullMQ for Node.js). A contender whose dependencies are missing is reported
as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import machine
from storage.embedded import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "bench" / "queues"
# BullMQ for Python: (label, BENCH_ENQUEUE, BENCH_CONNECTION); the target is judged against the
# best figure of any of them. The first uses the same call pattern and client setup as ours.
BULLMQ_PY_VARIANTS = [
    ("add, pooled client", "add", "pool"),
    ("addBulk, pooled client", "bulk", "pool"),
    ("add, URL", "add", "url"),
]


def contenders(deps: Path) -> list[tuple[str, list[str], dict[str, str]]]:
    side_python = deps / "venv" / "bin" / "python"
    bullmq_python = deps / "venv-bullmq" / "bin" / "python"
    bullmq_node = deps / "node_modules" / "bullmq" / "dist" / "cjs" / "index.js"
    no_venv = {"SKIP": "no venv"}
    return [
        ("ours (uvloop)", [sys.executable, str(HERE / "ours.py")], {"PYTHONPATH": str(ROOT)}),
        (
            "ours (asyncio)",
            [sys.executable, str(HERE / "ours.py")],
            {"PYTHONPATH": str(ROOT), "BENCH_LOOP": "asyncio"},
        ),
        *(
            (
                f"BullMQ for Python ({label})",
                [str(bullmq_python), str(HERE / "bullmq_py_bench.py")],
                {"BENCH_ENQUEUE": enqueue, "BENCH_CONNECTION": connection}
                if bullmq_python.exists()
                else no_venv,
            )
            for label, enqueue, connection in BULLMQ_PY_VARIANTS
        ),
        ("arq", [str(side_python), str(HERE / "arq_bench.py")], {} if side_python.exists() else no_venv),
        ("saq", [str(side_python), str(HERE / "saq_bench.py")], {} if side_python.exists() else no_venv),
        (
            "BullMQ (Node.js)",
            ["node", str(HERE / "bullmq_bench.mjs")],
            {"BULLMQ_ENTRY": str(bullmq_node)} if bullmq_node.exists() else {"SKIP": "bullmq not installed"},
        ),
    ]


def run_all(deps: Path, jobs: int, concurrency: int) -> dict[str, tuple[float, float]]:
    """Each contender in turn on one embedded Redis: name -> (enqueue seconds, drain seconds)."""
    base = Path(tempfile.mkdtemp(prefix="bench-queues-"))
    redis = EmbeddedRedis(base / "redis", port=0)
    results: dict[str, tuple[float, float]] = {}
    try:
        url = redis.start()
        for name, command, env in contenders(deps):
            if "SKIP" in env:
                print(f"{name}: skipped ({env['SKIP']})")
                continue
            out = subprocess.run(
                [*command, url, str(jobs), str(concurrency)],
                cwd=ROOT,
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                timeout=600,
            )
            if out.returncode != 0:
                print(f"{name}: failed\n{out.stderr[-2000:]}")
                continue
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            # the label given here, not the one the script prints (the Node script calls itself "BullMQ")
            results[name] = (float(figures["enqueue_s"]), float(figures["drain_s"]))
    finally:
        redis.stop()
        shutil.rmtree(base, ignore_errors=True)
    return results


def report(results: dict[str, tuple[float, float]], jobs: int) -> None:
    ours = results.get("ours (uvloop)")
    width = max(map(len, results), default=0)
    for name, (enqueue_s, drain_s) in results.items():
        rates = f"enqueue {jobs / enqueue_s:7,.0f} jobs/s   drain {jobs / drain_s:7,.0f} jobs/s"
        line = f"  {name:<{width}} {rates}"
        if ours is not None and name != "ours (uvloop)":
            line += f"   ours/this: enqueue {enqueue_s / ours[0]:5.2f}, drain {drain_s / ours[1]:5.2f}"
        print(line)
    bullmq = [results[n] for n in results if n.startswith("BullMQ for Python")]
    others = [results[n] for n in ("arq", "saq") if n in results]
    if ours is None or not bullmq or len(others) < 2:
        print("target: not judged (a contender is missing)")
        return
    # the contenders' best figure of each column, whichever variant gave it
    best_bullmq = (min(b[0] for b in bullmq), min(b[1] for b in bullmq))
    best_other = (min(o[0] for o in others), min(o[1] for o in others))
    vs_bullmq = (best_bullmq[0] / ours[0], best_bullmq[1] / ours[1])
    vs_others = (best_other[0] / ours[0], best_other[1] / ours[1])
    verdict = "met" if min(vs_bullmq) >= 2.0 and min(vs_others) > 1.0 else "NOT met"
    print(
        f"target: ours (uvloop) >= 2x BullMQ for Python's best, ahead of arq and saq -> {verdict}\n"
        f"  ours/best BullMQ for Python: enqueue {vs_bullmq[0]:.2f}, drain {vs_bullmq[1]:.2f}; "
        f"ours/best of arq and saq: enqueue {vs_others[0]:.2f}, drain {vs_others[1]:.2f}"
    )
    if (asyncio_ours := results.get("ours (asyncio)")) is not None:
        print(
            f"  on the same loop as theirs, ours (asyncio)/best BullMQ for Python: "
            f"enqueue {best_bullmq[0] / asyncio_ours[0]:.2f}, drain {best_bullmq[1] / asyncio_ours[1]:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    deps = Path(os.environ.get("BENCH_QUEUE_DEPS", "/tmp/bench-queue-deps"))
    results = run_all(deps, args.jobs, args.concurrency)
    print(f"machine: {machine()}")
    print(f"{args.jobs} no-op jobs with unique ids, one consumer process, concurrency {args.concurrency}")
    report(results, args.jobs)


if __name__ == "__main__":
    main()
