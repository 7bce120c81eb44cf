"""Memory over 1,000,000 invocations: the resident memory of one serving process as invocations
go through it, which should stay flat (issue 18).

    python -m bench.memory [--invocations 1000000] [--samples 20] [--concurrency 32]
                           [--database-url postgresql://postgres@127.0.0.1:5432/restate_pg_bench_memory]
                           [--json PATH]

It recreates the database (its name must contain "bench"), starts one `restate-pg dev
bench.app:app` process (no admin API), calls `Bench/one_step` once (the first sample), then sends
the invocations with `hey -c 32` in `--samples` rounds of equal size (what divides evenly by the
concurrency), reading the process's RSS (psutil, with any children it has) after each round. It
prints the table of invocations against RSS and the growth over the last 90 % of the invocations
(from the sample nearest 10 % to the last). `one_step` is the cheapest realistic invocation: a
call that journals one `ctx.run` step and returns, answered only once completed, so no backlog
builds up between samples. The completed invocations stay in the database (a day's retention):
what the process holds of them, if anything, is what the table shows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench import database, procs, report
from bench.database import Database
from bench.loadgen import BenchError, HeyResult, hey, hey_requests, package_version, require_tools
from bench.run import machine
from bench.systems import RestatePg, engine_version

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/restate_pg_bench_memory"
HANDLER = "Bench/one_step"
BODY = '"memory"'


@dataclass(frozen=True)
class Sample:
    invocations: int  # answered so far
    rss_mb: float  # of the serving process and its children
    seconds: float  # since the first call


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, in MB (MiB, as /proc counts)."""
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def growth_over_last_90(samples: list[Sample]) -> tuple[Sample, Sample]:
    """The sample nearest 10 % of the invocations (but after the first call), and the last."""
    last = samples[-1]
    rest = samples[1:] or samples
    start = min(rest, key=lambda s: abs(s.invocations - last.invocations / 10))
    return start, last


def drive(system: RestatePg, invocations: int, rounds: int, concurrency: int) -> tuple[list[Sample], HeyResult]:
    """One call, then `invocations` in `rounds` hey runs, the RSS read after each."""
    url = f"{system.base_url}/{HANDLER}"
    pid = system.pids()[0]
    started = time.monotonic()
    total = hey(url, 1, 1, BODY)
    samples = [Sample(total.count(200), rss_mb(pid), 0.0)]
    print(f"{'invocations':>12} {'RSS MB':>8} {'seconds':>8} {'per s':>7}", flush=True)
    print(f"{samples[0].invocations:>12,} {samples[0].rss_mb:>8.1f} {0.0:>8.1f} {'':>7}", flush=True)
    per_round = hey_requests(invocations // rounds, concurrency)
    sent = 0
    for i in range(rounds):
        n = per_round if i < rounds - 1 else hey_requests(invocations - sent, concurrency)
        result = hey(url, n, concurrency, BODY)
        total.merge(result)
        sent += result.requested
        sample = Sample(total.count(200), rss_mb(pid), time.monotonic() - started)
        rate = result.answered / result.wall_s if result.wall_s else 0.0
        samples.append(sample)
        print(f"{sample.invocations:>12,} {sample.rss_mb:>8.1f} {sample.seconds:>8.1f} {rate:>7,.0f}", flush=True)
    return samples, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=1_000_000, help="how many to send (default: 1,000,000)")
    parser.add_argument("--samples", type=int, default=20, help="RSS readings, one per equal round (default: 20)")
    parser.add_argument("--concurrency", type=int, default=32, help="hey's connections (default: 32)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL),
                        help=f"database to DROP and recreate; its name must contain 'bench' (default: {DEFAULT_URL})")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results there")
    args = parser.parse_args(argv)
    if args.samples < 1 or args.concurrency < 1 or args.invocations < args.samples * args.concurrency:
        parser.error("--invocations must be at least --samples times --concurrency")
    try:
        require_tools("hey")
        db = Database(args.database_url)
        db.recreate()
        logs = Path(tempfile.mkdtemp(prefix="bench-memory-"))
        system = RestatePg(db, engine_args=["--no-admin"])
        system.start(logs)
        try:
            samples, total = drive(system, args.invocations, args.samples, args.concurrency)
            peak = procs.rss_mb(system.pids()[0], "VmHWM")
        finally:
            system.stop()
        with db.connect() as conn:
            completed = int(database.scalar(conn, "SELECT count(*) FROM restate.invocation WHERE status = 'completed'"))
            postgres = database.server_version(conn)
    except BenchError as exc:
        print(f"bench.memory: {exc}", file=sys.stderr)
        return 2
    start, last = growth_over_last_90(samples)
    growth = last.rss_mb - start.rss_mb
    failed = total.requested - total.count(200)
    print(f"growth over the last 90 %: {growth:+.1f} MB ({start.rss_mb:.1f} MB after {start.invocations:,} "
          f"invocations, {last.rss_mb:.1f} MB after {last.invocations:,}); peak {peak or 0:.1f} MB; "
          f"{completed:,} completed in the database; {failed:,} requests not answered 200 "
          f"({dict(total.statuses)}, {total.transport_errors} without a response); logs in {logs}")
    if args.json:
        report.write_json(args.json, {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "engine": engine_version(), "command": system.processes(), "handler": HANDLER,
            "machine": {**machine(), "postgres": postgres, "hey": package_version("hey")},
            "invocations": args.invocations, "concurrency": args.concurrency,
            "samples": [asdict(s) for s in samples], "peak_rss_mb": peak,
            "growth_last_90_pct_mb": growth, "growth_from": asdict(start), "growth_to": asdict(last),
            "completed_in_database": completed, "statuses": dict(total.statuses),
            "transport_errors": total.transport_errors,
        })
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
