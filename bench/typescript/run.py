"""`python -m bench.typescript`: the workloads W1-W5 with TypeScript handlers, restate-pg against
restate-server, interleaved, with the SAME endpoint process for both.

One node process serves bench/typescript/src/main.ts for the whole sitting. Every run starts each
server in turn on fresh storage (the order alternates from run to run), registers the endpoint
with it through its admin API, drives the workloads through its ingress (bench/workloads.py, as
`python -m bench` does) and stops it. The figures are the medians over the runs; the ratios
compare the two servers' medians. CPU is split between the server, the SDK endpoint process and
PostgreSQL (per process, from /proc), commits come from pg_stat_database.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import database, report
from bench.database import Database
from bench.loadgen import BenchError, package_version, require_tools
from bench.run import DEFAULT_URL, README, RESULTS, RunResult, _terminate, machine, run_system
from bench.stats import Spread
from bench.systems import System, engine_version
from bench.typescript import endpoint as ts
from bench.typescript.systems import RestatePgServer, RestateServer
from bench.workloads import FULL, QUICK, WORKLOADS

SYSTEMS = ("restate-pg", "restate")
BEGIN, END = "<!-- typescript:begin -->", "<!-- typescript:end -->"

#: The figures compared, whether more is better, and their labels where the Python benchmark's say
#: something else here.
COMPARED: dict[str, bool] = {
    "w1.p50_ms": False, "w1.p90_ms": False, "w1.p99_ms": False,
    "w2.invocations_per_s": True, "w2.p50_ms": False, "w2.p99_ms": False,
    "w3.one_key_calls_per_s": True, "w3.spread_calls_per_s": True,
    "w4.completions_per_s": True, "w4.sends_per_s": True,
    "w5.lateness_p50_ms": False, "w5.lateness_p99_ms": False, "w5.overrun_p50_ms": False, "w5.overrun_p99_ms": False,
    "cost.engine_cpu_ms_per_inv": False, "cost.sdk_cpu_ms_per_inv": False, "cost.pg_cpu_ms_per_inv": False,
    "cost.total_cpu_ms_per_inv": False, "cost.loadgen_cpu_ms_per_inv": False,
    "cost.commits_per_inv": False, "cost.wal_bytes_per_inv": False, "engine.rss_end_mb": False,
}
LABELS = {
    "cost.engine_cpu_ms_per_inv": "CPU s per 1,000 invocations (W2): the server",
    "cost.sdk_cpu_ms_per_inv": "CPU s per 1,000 invocations (W2): the TypeScript endpoint",
    "cost.total_cpu_ms_per_inv": "CPU s per 1,000 invocations (W2): server + endpoint + PostgreSQL",
    "engine.rss_end_mb": "memory (RSS) of the server at the end",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.typescript", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="runs to take medians over (default: 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="far fewer calls, one run")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated subset of W1-W5 (default: all)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="restate-pg, restate or both (default: both)")
    parser.add_argument("--json", type=Path, default=RESULTS / "typescript.json", metavar="PATH",
                        help="where to write the results (default: bench/results/typescript.json)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL),
                        help=f"database to DROP and recreate for every run; its name must contain 'bench' (default: {DEFAULT_URL})")
    parser.add_argument("--engine-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for every restate-pg process, repeatable")
    parser.add_argument("--protocol-version", type=int, choices=(6, 7), default=6,
                        help="the service protocol both servers speak with the endpoint (default: 6, what "
                             "restate-server 1.7 negotiates unless its V7 is enabled; 7 enables it there)")
    parser.add_argument("--update-readme", action="store_true", help="write the results into bench/README.md")
    args = parser.parse_args(argv)
    # `restate-pg dev` without an application: `serve` still needs one (it hosts no endpoint driver).
    args.deployment, args.workers = "dev", 1
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if not args.workloads or any(w not in WORKLOADS for w in args.workloads):
        parser.error(f"workloads are a subset of {', '.join(WORKLOADS)}")
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if not args.systems or any(s not in SYSTEMS for s in args.systems):
        parser.error(f"systems are a subset of {', '.join(SYSTEMS)}")
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    return args


#: How each server is told the highest service protocol version to negotiate with the endpoint
#: (restate-server 1.7 speaks V6 unless `experimental-enable-protocol-v7` is set; restate-pg
#: speaks up to RESTATE_PG_PROTOCOL_VERSION_MAX, by default V7 as Restate 1.8 does).
PROTOCOL_ENV = {
    "restate-pg": {6: {"RESTATE_PG_PROTOCOL_VERSION_MAX": "6"}, 7: {"RESTATE_PG_PROTOCOL_VERSION_MAX": "7"}},
    "restate": {6: {}, 7: {"RESTATE_EXPERIMENTAL_ENABLE_PROTOCOL_V7": "true"}},
}


def make_system(name: str, args: argparse.Namespace, uri: str) -> System:
    """One of the two servers, speaking the same service protocol version with the endpoint: a
    comparison of servers, not of protocol versions (V7 adds two AwaitingOn messages and an ack
    per `ctx.run`, which the endpoint encodes and the server reads)."""
    env = PROTOCOL_ENV[name][args.protocol_version]
    if name == "restate-pg":
        return RestatePgServer(Database(args.database_url), engine_args=args.engine_arg, endpoint_uri=uri, extra_env=env)
    return RestateServer(endpoint_uri=uri, extra_env=env)


def run_all(args: argparse.Namespace, sdk: ts.Endpoint, logs: Path) -> tuple[dict[str, list[RunResult]], dict[str, str]]:
    results: dict[str, list[RunResult]] = {name: [] for name in args.systems}
    versions: dict[str, str] = {}
    sizes = QUICK if args.quick else FULL
    for i in range(args.runs):
        Database(args.database_url).recreate()  # restate-server's turn reads the clock there
        order = args.systems[i % len(args.systems):] + args.systems[: i % len(args.systems)]
        for name in order:
            system = make_system(name, args, sdk.uri)
            results[name].append(run_system(i, system, args, sizes, logs / f"run-{i + 1}" / name, sdk_pids=[sdk.pid]))
            versions[name] = system.version()
    return results, versions


def ratio(key: str, ours: Spread | None, theirs: Spread | None) -> str:
    """How far restate-pg is ahead (> 1) or behind (< 1) on a figure, from the two medians."""
    if ours is None or theirs is None:
        return "–"
    a, b = ours.median, theirs.median
    if not COMPARED[key]:
        a, b = b, a  # less is better: restate's over ours
    if b <= 0 or math.isnan(a) or math.isnan(b):
        return "–"
    return f"{a / b:.2f}x"


def _cell(figure: report.Figure, spread: Spread | None) -> str:
    if spread is None:
        return "–"
    median = report._with_unit(figure, spread.median)
    if spread.runs == 1:
        return median
    return f"{median} ({report._number(spread.low, figure.digits)}–{report._number(spread.high, figure.digits)})"


def comparison(summaries: dict[str, dict[str, Spread]], sizes: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """A row per figure: each system's median (min–max) and restate-pg's lead over restate."""
    figures = {figure.key: figure for figure in report.FIGURES}
    header = ["figure", *(f"{name} median (min–max)" for name in summaries)]
    both = "restate-pg" in summaries and "restate" in summaries
    if both:
        header.append("restate-pg ahead by")
    cells = []
    for key in COMPARED:
        spreads = [summary.get(key) for summary in summaries.values()]
        if all(s is None for s in spreads):
            continue
        figure = figures[key]
        row = [LABELS.get(key, figure.label).format(**sizes), *(_cell(figure, s) for s in spreads)]
        if both:
            row.append(ratio(key, summaries["restate-pg"].get(key), summaries["restate"].get(key)))
        cells.append(row)
    return header, cells


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    started = datetime.now(UTC)
    logs = RESULTS / "logs" / f"typescript-{started.strftime('%Y%m%dT%H%M%SZ')}"
    sdk: ts.Endpoint | None = None
    try:
        require_tools("hey")
        Database(args.database_url)  # validates the name before anything starts
        version_before = engine_version()
        ts.build()
        sdk = ts.start(logs / "typescript-endpoint.log")
        results, versions = run_all(args, sdk, logs)
        with Database(args.database_url).connect() as conn:
            pg_version = database.server_version(conn)
    except BenchError as exc:
        print(f"bench.typescript: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench.typescript: interrupted (the processes were stopped)", file=sys.stderr)
        return 130
    finally:
        if sdk is not None:
            sdk.stop()
    assert sdk is not None
    sdk_warnings = [line.strip()[:200] for line in sdk.log.read_text(errors="replace").splitlines()
                    if ("WARN" in line or "ERROR" in line or "Error" in line)
                    and "without validating request signatures" not in line]
    summaries = {name: report.summarise([run.metrics for run in runs]) for name, runs in results.items()}
    sizes = dataclasses.asdict(QUICK if args.quick else FULL)
    failures = [f"run {i + 1} {name}: {f}" for name, runs in results.items() for i, run in enumerate(runs) for f in run.failures]
    warnings = [f"run {i + 1} {name}: {w}" for name, runs in results.items() for i, run in enumerate(runs) for w in run.warnings]
    if sdk_warnings:
        warnings.append(f"the TypeScript endpoint logged {len(sdk_warnings)} warning/error line(s), e.g. "
                        + " | ".join(dict.fromkeys(sdk_warnings[:3])))
    if engine_version() != version_before:
        warnings.append(f"the engine changed during the benchmark: from {version_before} to {engine_version()}")
    processes = {name: [*runs[0].processes, sdk.describe()] for name, runs in results.items()}
    header, cells = comparison(summaries, sizes)
    m = machine()
    intro = [
        f"{started.date()}, {args.runs} run(s){' (--quick)' if args.quick else ''}, interleaved; {m['cpus']} CPUs "
        f"({m['cpu_model']}), PostgreSQL {pg_version}; hey {package_version('hey')}; service protocol "
        f"V{args.protocol_version} on both servers.",
        "",
        *(f"- {name} ({versions[name]}): " + "; ".join(f"`{p}`" for p in processes[name]) for name in results),
    ]
    print("\n".join(intro) + "\n\n" + report.text_table(cells, header))
    for warning in warnings:
        print(f"warning: {warning}")
    for failure in failures:
        print(f"FAILED: {failure}")
    document = {
        "date": started.isoformat(timespec="seconds"), "machine": m, "postgres": pg_version,
        "engine_version": engine_version(), "deployment": args.deployment, "runs": args.runs, "quick": args.quick,
        "protocol_version": args.protocol_version,
        "workloads": args.workloads, "sizes": sizes, "failures": failures, "warnings": warnings,
        "systems": {name: {"version": versions[name], "processes": processes[name],
                           "summary": {k: dataclasses.asdict(v) for k, v in summaries[name].items()},
                           "runs_detail": [dataclasses.asdict(run) for run in runs]}
                    for name, runs in results.items()},
    }
    report.write_json(args.json, document)
    print(f"\nresults written to {args.json}")
    if args.update_readme:
        section = [*intro, "", report.markdown_table(cells, header)]
        if failures:
            section += ["", "Checks that failed in this run:", "", *(f"- {f}" for f in failures)]
        if warnings:
            section += ["", "Warnings:", "", *(f"- {w}" for w in warnings)]
        report.update_readme(README, "\n".join(section), BEGIN, END)
        print(f"results written to {README}")
    return 1 if failures else 0
