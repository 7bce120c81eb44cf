"""Run the benchmark suite: `python -m bench` (or `python bench/run.py`); `--help` lists the options.

Each run creates the benchmark database afresh, deploys restate-pg on it as a user would, drives
the workloads through its HTTP ingress with hey, stops it, and measures PostgreSQL's own limit
with pgbench. The figures are the medians over the runs, with their spread.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

if __package__ in (None, ""):  # run as a script: python bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import database, procs, report
from bench.database import Database
from bench.loadgen import BenchError, package_version, require_tools
from bench.systems import REPO, RestatePg
from bench.workloads import FULL, LIMIT, QUICK, WORKLOADS, Context, Sizes, limit_pgbench, smoke

RESULTS = REPO / "bench" / "results"
README = REPO / "bench" / "README.md"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/restate_pg_bench"
ALL = [*WORKLOADS, LIMIT]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark restate-pg through its HTTP ingress (workloads of issue 3), beside pgbench's limit.",
    )
    parser.add_argument("--runs", type=int, default=None, help="runs to take medians over (default: 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a fast smoke: far fewer calls, one run")
    parser.add_argument("--workloads", default=",".join(ALL),
                        help=f"comma-separated subset of {','.join(ALL)} (default: all)")
    parser.add_argument("--json", type=Path, default=RESULTS / "latest.json", metavar="PATH",
                        help="where to write the results (default: bench/results/latest.json)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL),
                        help="database to DROP and recreate for every run; its name must contain 'bench' "
                             f"(default: $BENCH_DATABASE_URL, else {DEFAULT_URL})")
    parser.add_argument("--deployment", choices=["dev", "serve+workers"], default="dev",
                        help="dev: one `restate-pg dev` process (ingress + in-process worker); "
                             "serve+workers: `restate-pg serve` + N `restate-pg worker` processes (default: dev)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes for serve+workers (default: 1)")
    parser.add_argument("--engine-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for every restate-pg process, repeatable: --engine-arg=--pool-size=20")
    parser.add_argument("--port", type=int, default=0, help="ingress port (default: a free one)")
    parser.add_argument("--update-readme", action="store_true",
                        help="write the results table into bench/README.md")
    args = parser.parse_args(argv)
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in args.workloads if w not in ALL]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(ALL)}")
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    return args


@dataclasses.dataclass
class RunResult:
    metrics: dict[str, float]
    failures: list[str]
    warnings: list[str]
    processes: list[str]
    logs: str


def run_once(index: int, args: argparse.Namespace, sizes: Sizes, logs: Path) -> RunResult:
    db = Database(args.database_url)
    db.recreate()
    logs.mkdir(parents=True, exist_ok=True)
    system = RestatePg(db, deployment=args.deployment, workers=args.workers, port=args.port,
                       engine_args=args.engine_arg)
    metrics: dict[str, float] = {}
    with db.connect() as conn:
        ctx = Context(system, db, conn, sizes)
        _wait_quiet(ctx)
        served = [w for w in args.workloads if w in WORKLOADS]
        if served:
            try:
                _progress(index, "starting " + args.deployment)
                system.start(logs)
                smoke(ctx)
                for name in served:
                    _progress(index, name)
                    started = time.monotonic()
                    try:
                        metrics.update(WORKLOADS[name](ctx))
                    except BenchError:
                        raise
                    except Exception as exc:  # one broken workload should not hide the others' figures
                        ctx.fail(f"{name} crashed: {type(exc).__name__}: {exc}")
                    _progress(index, f"{name} done in {time.monotonic() - started:.0f} s")
                metrics["engine.rss_end_mb"] = sum(procs.rss_mb(pid) or 0.0 for pid in system.pids())
            finally:
                system.stop()
            _scan_logs(ctx, logs)
        if LIMIT in args.workloads:
            _progress(index, "limit (pgbench)")
            metrics.update(limit_pgbench(ctx))
    rounded = {key: round(value, 4) for key, value in metrics.items()}
    return RunResult(rounded, ctx.failures, ctx.warnings, system.processes(), str(logs))


def _wait_quiet(ctx: Context, max_wait_s: float = 30.0, threshold: float = 0.2) -> None:
    """Wait (up to `max_wait_s`) for the machine to go quiet before the system starts, and warn
    if it does not: whatever else runs shares the 2 cores with the system under test."""
    deadline = time.monotonic() + max_wait_s
    while True:
        busy, top = procs.busiest(2.0, exclude={os.getpid()})
        if busy < threshold:
            return
        if time.monotonic() >= deadline:
            ctx.warn(f"the machine stayed busy before the run ({busy:.1f} CPUs in use), "
                     f"busiest: {'; '.join(top) or 'the kernel'}")
            return


def _progress(index: int, what: str) -> None:
    print(f"[run {index + 1}] {what}", file=sys.stderr, flush=True)


_TROUBLE = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b|\bWARNING\b|Exception")


def _scan_logs(ctx: Context, logs: Path) -> None:
    """Warn about warnings and errors the system logged (it runs at --log-level warning)."""
    for log in sorted(logs.glob("*.log")):
        lines = [line for line in log.read_text(errors="replace").splitlines() if _TROUBLE.search(line)]
        if lines:
            distinct = list(dict.fromkeys(line.strip()[:200] for line in lines))
            ctx.warn(f"{log.name}: {len(lines)} warning/error line(s), e.g. {' | '.join(distinct[:3])}")


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gb": round(mem_kb / 1024**2, 1),
            "kernel": platform.release(), "python": platform.python_version()}


def engine_version() -> str:
    """The commit the engine was measured at, '+changes' when restate_pg/ differs from it."""
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" +uncommitted changes in restate_pg/" if git("status", "--porcelain", "restate_pg") else "")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    signal.signal(signal.SIGTERM, _terminate)  # clean up the system's processes on SIGTERM too
    sizes = QUICK if args.quick else FULL
    try:
        require_tools("hey", "pgbench")
        version_before = engine_version()
        Database(args.database_url)  # validates the name before anything starts
        started = datetime.now(UTC)
        stamp = started.strftime("%Y%m%dT%H%M%SZ")
        runs = [run_once(i, args, sizes, RESULTS / "logs" / stamp / f"run-{i + 1}") for i in range(args.runs)]
        with Database(args.database_url).connect() as conn:
            pg_version = database.server_version(conn)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted (the system's processes were stopped)", file=sys.stderr)
        return 130

    summary = report.summarise([run.metrics for run in runs])
    version = engine_version()
    if version != version_before:
        runs[-1].warnings.append(f"the engine changed during the benchmark: from {version_before} to {version}")
    sizes_dict = dataclasses.asdict(sizes)
    main_rows, limit_rows = report.rows(summary, sizes_dict)
    failures = [f"run {i + 1}: {f}" for i, run in enumerate(runs) for f in run.failures]
    warnings = [f"run {i + 1}: {w}" for i, run in enumerate(runs) for w in run.warnings]
    bound = report.limit_bound(summary, sizes.limit_clients)
    config = {
        "date": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "postgres": pg_version,
        "system": "restate-pg",
        "engine_version": version,
        "deployment": args.deployment,
        "processes": runs[0].processes,
        "load_generator": f"hey {package_version('hey')} (Debian); pgbench {package_version('postgresql-client-15')}",
        "runs": args.runs,
        "quick": args.quick,
        "workloads": args.workloads,
        "sizes": sizes_dict,
    }
    print()
    _print_config(config)
    print()
    print(report.text_table(main_rows))
    if limit_rows:
        print("\nThe limit: pgbench on the same server (one one-row INSERT per transaction, -M prepared)")
        print(report.text_table(limit_rows))
    if bound:
        print(bound)
    for warning in warnings:
        print(f"warning: {warning}")
    for failure in failures:
        print(f"FAILED: {failure}")

    document = {
        **config,
        "summary": {key: dataclasses.asdict(spread) for key, spread in summary.items()},
        "runs_detail": [dataclasses.asdict(run) for run in runs],
        "failures": failures,
        "warnings": warnings,
    }
    report.write_json(args.json, document)
    print(f"\nresults written to {args.json}")
    if args.update_readme:
        report.update_readme(README, _readme_section(config, main_rows, limit_rows, bound, failures, warnings))
        print(f"results table written to {README}")
    return 1 if failures else 0


def _print_config(config: dict[str, Any]) -> None:
    m = config["machine"]
    print(f"restate-pg benchmark, {config['date']}, {config['runs']} run(s){' (quick)' if config['quick'] else ''}")
    print(f"machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gb']} GB; "
          f"PostgreSQL {config['postgres']} on the same machine")
    print(f"deployment ({config['deployment']}): " + "; ".join(config["processes"]))
    print(f"engine: restate-pg at {config['engine_version']}")
    print(f"load generator: {config['load_generator']}")


def _readme_section(config: dict[str, Any], main_rows: list[list[str]], limit_rows: list[list[str]],
                    bound: str | None, failures: list[str], warnings: list[str]) -> str:
    m = config["machine"]
    parts = [
        f"Latest run: {config['date'][:10]}, {config['runs']} run(s){' (--quick)' if config['quick'] else ''}, "
        f"{m['cpus']} CPUs ({m['cpu_model']}), PostgreSQL {config['postgres']}, "
        f"restate-pg at {config['engine_version']}, "
        f"deployment `{config['deployment']}`: " + "; ".join(f"`{p}`" for p in config["processes"]) + ".",
        "",
        report.markdown_table(main_rows),
    ]
    if limit_rows:
        parts += ["", "The limit, pgbench on the same server in the same runs:", "", report.markdown_table(limit_rows)]
    if bound:
        parts += ["", bound]
    if failures:
        parts += ["", "Checks that failed in this run:", "", *(f"- {f}" for f in failures)]
    if warnings:
        parts += ["", "Warnings:", "", *(f"- {w}" for w in warnings)]
    return "\n".join(parts)


def _terminate(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
