"""``python -m bench`` (``make bench``): every benchmark in turn, each printing its figures and ratios.

The queue comparison needs extras installed outside the project (bench/queues/setup.sh) and is
run on its own: ``python -m bench.queue_compare``.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = ("throughput", "fairness", "scheduler_tick", "rotation_tick", "memory", "media_upload",
              "bot_latency", "retention")


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        print(f"=== bench.{name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
