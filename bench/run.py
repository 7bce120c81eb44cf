"""Run the benchmark suite: `python -m bench` (or `python bench/run.py`); `--help` lists the options.

Each run deploys every chosen system in turn (restate-pg, and optionally the real Restate and DBOS)
on fresh storage, drives the workloads through its HTTP ingress with hey and stops it; then it
measures PostgreSQL's own limit with pgbench. Systems are compared within a run, and the figures
are the medians over the runs, with their spread.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import re
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

if __package__ in (None, ""):  # run as a script: python bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import database, procs, report
from bench.database import Database
from bench.loadgen import BenchError, package_version, require_tools
from bench.peers import env as peers
from bench.peers.dbos_system import Dbos, peer_database
from bench.peers.restate_system import Restate
from bench.stats import Spread
from bench.systems import REPO, RestatePg, System, engine_version
from bench.workloads import FULL, LIMIT, QUICK, WORKLOADS, Context, Notes, Sizes, limit_pgbench, smoke

RESULTS = REPO / "bench" / "results"
README = REPO / "bench" / "README.md"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/restate_pg_bench"
ALL = [*WORKLOADS, LIMIT]
SYSTEMS = ["restate-pg", *peers.PEERS]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark restate-pg through its HTTP ingress (workloads of issue 3), optionally beside "
                    "the real Restate and DBOS, and pgbench's limit.",
    )
    parser.add_argument("--systems", default="restate-pg",
                        help=f"comma-separated subset of {','.join(SYSTEMS)}, or 'all' for restate-pg and every "
                             f"installed peer (default: restate-pg); a peer named here is installed on first use "
                             f"under {peers.CACHE}")
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
    parser.add_argument("--processes", type=int, default=1,
                        help="serving processes of `dev` (each an ingress and a worker) or of `serve`, sharing the "
                             "port: `--processes N` (default: 1)")
    parser.add_argument("--engine-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for every restate-pg process, repeatable: --engine-arg=--pool-size=20")
    parser.add_argument("--port", type=int, default=0, help="ingress port (default: a free one)")
    parser.add_argument("--rule", action="append", default=[], metavar="PATTERN",
                        help="restate-pg only: set a flow-control rule on PATTERN that never binds (concurrency 1,000,000)")
    parser.add_argument("--update-readme", action="store_true",
                        help="write the results table into bench/README.md")
    args = parser.parse_args(argv)
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in args.workloads if w not in ALL]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(ALL)}")
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    names = [n.strip() for n in args.systems.split(",") if n.strip()]
    args.all_systems = names == ["all"]
    args.systems = SYSTEMS if args.all_systems else list(dict.fromkeys(names))
    unknown = [n for n in args.systems if n not in SYSTEMS]
    if unknown or not args.systems:
        parser.error(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}, or all")
    return args


@dataclasses.dataclass
class RunResult:
    metrics: dict[str, float]
    failures: list[str]
    warnings: list[str]
    processes: list[str]
    logs: str


def choose_systems(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The systems to run, and notes on the peers left out. `all` takes the installed peers; a
    peer named explicitly is installed now if it is missing (a BenchError says why it could not be)."""
    chosen, notes = [], []
    for name in args.systems:
        if name in peers.PEERS and peers.versions(peers.PEERS[name]) is None:
            if args.all_systems:
                notes.append(f"{name}: not installed, skipped (install it with `{peers.INSTALL_HINT} {name}`)")
                continue
            peers.install(peers.PEERS[name])
        chosen.append(name)
    return chosen, notes


def make_system(name: str, args: argparse.Namespace) -> System:
    main = Database(args.database_url)
    if name == "restate-pg":
        return RestatePg(main, deployment=args.deployment, workers=args.workers, serving_processes=args.processes,
                         port=args.port, engine_args=args.engine_arg, rules=args.rule)
    if name == "restate":
        return Restate()
    if name == "dbos":
        return Dbos(peer_database(main))
    raise BenchError(f"unknown system {name!r}")


def run_system(index: int, system: System, args: argparse.Namespace, sizes: Sizes, logs: Path,
               sdk_pids: list[int] | None = None) -> RunResult:
    """One system's turn in a run: fresh storage, start, smoke, the workloads, stop. `sdk_pids`:
    the SDK endpoint processes serving its handlers, when they run apart (bench/typescript)."""
    if system.db is not None:
        system.db.recreate()
    home = system.db or Database(args.database_url)
    logs.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, float] = {}
    label = f"{index + 1} {system.name}"
    with home.connect() as conn:
        ctx = Context(system=system, db=home, conn=conn, sizes=sizes, sdk_pids=list(sdk_pids or []))
        _wait_quiet(ctx)
        try:
            _progress(label, "starting" + (f" ({args.deployment})" if system.name == "restate-pg" else ""))
            system.start(logs)
            smoke(ctx)
            for name in (w for w in args.workloads if w in WORKLOADS):
                _progress(label, name)
                started = time.monotonic()
                try:
                    metrics.update(WORKLOADS[name](ctx))
                except BenchError:
                    raise
                except Exception as exc:  # one broken workload should not hide the others' figures
                    ctx.fail(f"{name} crashed: {type(exc).__name__}: {exc}")
                _progress(label, f"{name} done in {time.monotonic() - started:.0f} s")
            metrics["engine.rss_end_mb"] = sum(procs.rss_mb(pid) or 0.0 for pid in procs.tree_pids(system.pids()))
        finally:
            system.stop()
        _scan_logs(ctx, logs)
    rounded = {key: round(value, 4) for key, value in metrics.items()}
    return RunResult(rounded, ctx.failures, ctx.warnings, system.processes(), str(logs))


def run_limit(index: int, args: argparse.Namespace, sizes: Sizes) -> RunResult:
    """pgbench on the benchmark database, after every system of the run has stopped."""
    notes = Notes()
    _progress(str(index + 1), "limit (pgbench)")
    metrics = limit_pgbench(Database(args.database_url), sizes, notes)
    return RunResult({k: round(v, 4) for k, v in metrics.items()}, notes.failures, notes.warnings, [], "")


def run_all(args: argparse.Namespace, names: list[str], sizes: Sizes,
            logs: Path) -> tuple[dict[str, list[RunResult]], list[RunResult], dict[str, str]]:
    """Every run: each system in turn (the order rotates from run to run, so that none always goes
    first), then the limit. Returns the results per system, the limit's per run, and what each
    system measured (versions)."""
    results: dict[str, list[RunResult]] = {name: [] for name in names}
    limits: list[RunResult] = []
    versions: dict[str, str] = {}
    serves = any(w in WORKLOADS for w in args.workloads)
    for i in range(args.runs):
        main = Database(args.database_url)
        main.recreate()  # restate-pg recreates it again before its turn; the others read the clock there
        for name in (names[i % len(names):] + names[: i % len(names)]) if serves else []:
            system = make_system(name, args)
            try:
                results[name].append(run_system(i, system, args, sizes, logs / f"run-{i + 1}" / name))
            except BenchError as exc:
                if name == "restate-pg":
                    raise
                # A peer that cannot run is a failed check of this run, not the end of the others'.
                print(f"  FAILED: {name}: {exc}", file=sys.stderr, flush=True)
                results[name].append(RunResult({}, [f"could not run: {exc}"], [], system.processes(),
                                               str(logs / f"run-{i + 1}" / name)))
            versions[name] = system.version()
        if LIMIT in args.workloads:
            limits.append(run_limit(i, args, sizes))
    return {name: runs for name, runs in results.items() if runs}, limits, versions


def _wait_quiet(notes: Notes, max_wait_s: float = 30.0, threshold: float = 0.2) -> None:
    """Wait (up to `max_wait_s`) for the machine to go quiet before the system starts, and warn
    if it does not: whatever else runs shares the 2 cores with the system under test."""
    deadline = time.monotonic() + max_wait_s
    while True:
        busy, top = procs.busiest(2.0, exclude={os.getpid()})
        if busy < threshold:
            return
        if time.monotonic() >= deadline:
            notes.warn(f"the machine stayed busy before the run ({busy:.1f} CPUs in use), "
                     f"busiest: {'; '.join(top) or 'the kernel'}")
            return


def _progress(label: str, what: str) -> None:
    print(f"[run {label}] {what}", file=sys.stderr, flush=True)


_TROUBLE = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b|\bWARN(ING)?\b|Exception")


# restate-server asks GitHub for its latest release at every start, with no setting to turn that
# off; without a way out (as here) it logs this error, which says nothing about the benchmark.
_HARMLESS = re.compile(r"ERROR octocrab: failed with error client error \(Connect\)")


def _scan_logs(ctx: Context, logs: Path) -> None:
    """Warn about warnings and errors the system logged (it runs at --log-level warning)."""
    for log in sorted(logs.glob("*.log")):
        lines = [line for line in log.read_text(errors="replace").splitlines()
                 if _TROUBLE.search(line) and not _HARMLESS.search(line)]
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    signal.signal(signal.SIGTERM, _terminate)  # clean up the systems' processes on SIGTERM too
    sizes = QUICK if args.quick else FULL
    try:
        require_tools("hey", "pgbench")
        version_before = engine_version()
        Database(args.database_url)  # validates the name before anything starts
        names, notes = choose_systems(args)
        for note in notes:
            print(f"bench: {note}", file=sys.stderr)
        started = datetime.now(UTC)
        stamp = started.strftime("%Y%m%dT%H%M%SZ")
        results, limits, versions = run_all(args, names, sizes, RESULTS / "logs" / stamp)
        with Database(args.database_url).connect() as conn:
            pg_version = database.server_version(conn)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted (the systems' processes were stopped)", file=sys.stderr)
        return 130

    summaries = {name: report.summarise([run.metrics for run in runs]) for name, runs in results.items()}
    limit_summary = report.summarise([run.metrics for run in limits])
    version = engine_version()
    if version != version_before:
        notes.append(f"the engine changed during the benchmark: from {version_before} to {version}")
    sizes_dict = dataclasses.asdict(sizes)
    failures = [f"run {i + 1} {name}: {f}" for name, runs in results.items()
                for i, run in enumerate(runs) for f in run.failures]
    failures += [f"run {i + 1} limit: {f}" for i, run in enumerate(limits) for f in run.failures]
    warnings = [f"run {i + 1} {name}: {w}" for name, runs in results.items()
                for i, run in enumerate(runs) for w in run.warnings]
    warnings += [f"run {i + 1} limit: {w}" for i, run in enumerate(limits) for w in run.warnings] + notes
    bounds = [b for name, summary in summaries.items()
              if (b := report.limit_bound(name, summary, limit_summary, sizes.limit_clients))]
    config = {
        "date": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "postgres": pg_version,
        "systems_run": list(results),
        "engine_version": version,
        "deployment": args.deployment,
        "processes": args.processes,
        "load_generator": f"hey {package_version('hey')} (Debian); pgbench {package_version('postgresql-client-15')}",
        "runs": args.runs,
        "quick": args.quick,
        "workloads": args.workloads,
        "sizes": sizes_dict,
    }
    systems = {name: {"version": versions[name], "processes": runs[0].processes} for name, runs in results.items()}
    tables = Tables(summaries, limit_summary, sizes_dict, bounds)
    print()
    _print_config(config, systems)
    print()
    print(tables.text())
    for warning in warnings:
        print(f"warning: {warning}")
    for failure in failures:
        print(f"FAILED: {failure}")

    document = {
        **config,
        "systems": {
            name: {**systems[name],
                   "summary": {key: dataclasses.asdict(spread) for key, spread in summaries[name].items()},
                   "runs_detail": [dataclasses.asdict(run) for run in runs]}
            for name, runs in results.items()
        },
        "limit": {"summary": {key: dataclasses.asdict(spread) for key, spread in limit_summary.items()},
                  "runs_detail": [dataclasses.asdict(run) for run in limits]},
        "failures": failures,
        "warnings": warnings,
    }
    report.write_json(args.json, document)
    print(f"\nresults written to {args.json}")
    if args.update_readme:
        report.update_readme(README, _readme_section(config, systems, tables, failures, warnings))
        print(f"results table written to {README}")
    return 1 if failures else 0


@dataclasses.dataclass
class Tables:
    """The figures of every system and the limit, as text or Markdown: with several systems, a
    comparison of the medians first, then each system's detail (median and spread)."""

    summaries: dict[str, dict[str, Spread]]
    limit: dict[str, Spread]
    sizes: dict[str, Any]
    bounds: list[str]

    def _parts(self, table: Callable[..., str]) -> list[str]:
        parts = []
        if len(self.summaries) > 1:
            header, cells = report.compare_rows(self.summaries, self.sizes)
            parts += ["Medians, one column per system (compare systems within one run only):", table(cells, header)]
        for name, summary in self.summaries.items():
            if len(self.summaries) > 1:
                parts.append(f"{name}, each figure's median and spread:")
            parts.append(table(report.rows(summary, self.sizes)))
        limit_rows = report.limit_rows(self.limit, self.sizes)
        if limit_rows:
            parts += ["The limit: pgbench on the same server (one one-row INSERT per transaction, -M prepared), "
                      "after the systems stopped:", table(limit_rows)]
        if self.bounds:
            parts.append("\n".join(self.bounds))
        return parts

    def text(self) -> str:
        return "\n\n".join(self._parts(report.text_table))

    def markdown(self) -> str:
        return "\n\n".join(self._parts(report.markdown_table))


def _print_config(config: dict[str, Any], systems: dict[str, dict[str, Any]]) -> None:
    m = config["machine"]
    print(f"restate-pg benchmark, {config['date']}, {config['runs']} run(s){' (quick)' if config['quick'] else ''}")
    print(f"machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gb']} GB; "
          f"PostgreSQL {config['postgres']} on the same machine")
    for name, system in systems.items():
        print(f"{name} ({system['version']}): " + "; ".join(system["processes"]))
    print(f"load generator: {config['load_generator']}")


def _readme_section(config: dict[str, Any], systems: dict[str, dict[str, Any]], tables: Tables,
                    failures: list[str], warnings: list[str]) -> str:
    m = config["machine"]
    parts = [
        f"Latest run: {config['date'][:10]}, {config['runs']} run(s){' (--quick)' if config['quick'] else ''}, "
        f"{m['cpus']} CPUs ({m['cpu_model']}), PostgreSQL {config['postgres']}.",
        "",
        *(f"- {name} ({system['version']}): " + "; ".join(f"`{p}`" for p in system["processes"])
          for name, system in systems.items()),
        "",
        tables.markdown(),
    ]
    if failures:
        parts += ["", "Checks that failed in this run:", "", *(f"- {f}" for f in failures)]
    if warnings:
        parts += ["", "Warnings:", "", *(f"- {w}" for w in warnings)]
    return "\n".join(parts)


def _terminate(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
