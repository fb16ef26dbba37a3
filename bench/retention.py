"""Storage under retention: 60 simulated days in compressed time, table sizes per day (issue 14).

    .venv/bin/python -m bench.retention [--days 60] [--window 30] [--users 8] [--groups 5]
                                        [--rounds-per-day 12] [--batch 1000]

Each simulated day writes one day of a small workload with that day's timestamps (rounds every
24 h / rounds-per-day with one attempt per group, a notification per round, a message edit every 3
days, every other one with a photo, a few audit rows, a weekly announcement to every user; see
tests/integration/retention_sim.py), then
runs the retention job with its clock at the end of the day, then VACUUM (autovacuum's stand-in).
The baseline is the same run with retention effectively off (a window longer than the run), in the
same invocation: its day-N/day-W ratio is what growth looks like; with retention the ratio stays ~1.
Figures: rows and pg_total_relation_size (heap + indexes + TOAST) per table per day, and the ratio
day N / day W for both runs.
"""

from __future__ import annotations

import argparse
import asyncio

from bench.common import database, fresh_database, machine, servers
from config.settings import RetentionSettings
from tests.integration.retention_sim import DayFigures, Workload, simulate

TABLES = ("rounds", "attempts", "messages", "media", "notifications", "announcement_deliveries", "audit_log",
          "round_summaries")
HISTORY = ("rounds", "attempts", "messages", "media", "notifications", "announcement_deliveries")


def _total(figure: DayFigures, tables: tuple[str, ...] = HISTORY) -> int:
    return sum(figure.sizes[t][1] for t in tables)


def _line(figure: DayFigures) -> str:
    rows = " ".join(f"{figure.sizes[t][0]:>7}" for t in TABLES)
    deleted = sum(figure.report.deleted.values())
    return (f"{figure.day:>3} {rows} {_total(figure) / 1024:>9.0f} KB  deleted {deleted:>6} in "
            f"{figure.report.batches:>2} batches, {figure.seconds * 1000:>6.1f} ms")


async def run(pg_url: str, args: argparse.Namespace, settings: RetentionSettings,
              label: str) -> list[DayFigures]:
    url = await fresh_database(pg_url)
    workload = Workload(users=args.users, groups=args.groups, rounds_per_day=args.rounds_per_day)
    print(f"--- {label}")
    print("day " + " ".join(f"{t[:7]:>7}" for t in TABLES) + "   history bytes (rounds .. announcement_d)")

    def show(figure: DayFigures) -> None:
        if args.verbose or figure.day in (1, args.window, args.days) or figure.day % 5 == 0:
            print(_line(figure), flush=True)

    async with database(url) as db:
        return await simulate(db, workload, args.days, settings, on_day=show)


def ratios(figures: list[DayFigures], first: int, last: int) -> dict[str, tuple[float, float]]:
    by_day = {f.day: f for f in figures}
    base, end = by_day[first], by_day[last]
    out = {}
    for table in TABLES:
        rows0, size0 = base.sizes[table]
        rows1, size1 = end.sizes[table]
        out[table] = (rows1 / rows0 if rows0 else float("nan"), size1 / size0 if size0 else float("nan"))
    out["history total"] = (float("nan"), _total(end) / _total(base))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--window", type=int, default=30)
    parser.add_argument("--audit-window", type=int, default=45)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--rounds-per-day", type=int, default=12)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--verbose", action="store_true", help="print every day, not every fifth")
    args = parser.parse_args()
    print(machine())
    print(f"{args.users} users x {args.groups} groups, {args.rounds_per_day} rounds a day each, "
          f"{args.days} simulated days; RETENTION_DAYS={args.window}, "
          f"AUDIT_RETENTION_DAYS={args.audit_window}, RETENTION_BATCH={args.batch}")
    with servers() as started:
        kept = RetentionSettings(days=args.window, audit_days=args.audit_window, batch=args.batch, pause=0.0)
        off = RetentionSettings(days=100_000, audit_days=0, batch=args.batch, pause=0.0)
        with_retention = asyncio.run(run(started.pg_url, args, kept, "with retention"))
        baseline = asyncio.run(run(started.pg_url, args, off, "baseline: retention off"))
    on_ratio = ratios(with_retention, args.window, args.days)
    off_ratio = ratios(baseline, args.window, args.days)
    print(f"ratio day{args.days}/day{args.window}   rows with / without retention   bytes with / without")
    for table, (rows, size) in on_ratio.items():
        base_rows, base_size = off_ratio[table]
        print(f"  {table:<23} {rows:>6.2f} / {base_rows:>5.2f}      {size:>6.2f} / {base_size:>5.2f}")
    steady = max(args.window, args.days - 10)
    growth = ratios(with_retention, steady, args.days)["history total"][1]
    print(f"with retention, history bytes day{args.days}/day{steady}: {growth:.3f} "
          "(still growing? ~1.00 = no)")
    end_on, end_off = with_retention[-1], baseline[-1]
    print(f"history tables at day {args.days}: {_total(end_on) / 1024:.0f} KB with retention, "
          f"{_total(end_off) / 1024:.0f} KB without (ratio {_total(end_on) / _total(end_off):.2f})")


if __name__ == "__main__":
    main()
