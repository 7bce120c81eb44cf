"""`python -m bench.faults`: the cluster, the processes, and each class in turn (issue 11).

One cluster of the suite's own and one set of processes serve every class; a class is judged on
its own rows (see checks.py), after the system drained or a deadline passed. Processes a class
killed are started again by the class itself; anything else that died is started again before the
next class and reported.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from bench import procs
from bench.faults import checks, report
from bench.faults.app import DDL
from bench.faults.classes import CLASSES, Scene, Sizes
from bench.faults.cluster import Cluster
from bench.faults.load import Load, plan
from bench.faults.system import System
from bench.loadgen import BenchError
from bench.systems import REPO, engine_version

DBNAME = "restate_pg_faults"
LEASE_S = 3.0
WORKERS = 3
_DRAIN_POLL_S = 0.25


@dataclass
class ClassRun:
    """Everything one class of one run produced: its row and what explains it."""

    run: int
    name: str
    tag: str
    sent: int
    accepted: int
    refused: list[str]
    figures: checks.Figures
    kills: int
    unreaped: int
    load_s: float
    drain_s: float | None  # None: not drained by the deadline
    notes: list[str] = field(default_factory=list)
    log_lines: dict[str, list[str]] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return self.accepted - self.figures.completed

    def _criteria(self) -> list[tuple[str, int, str]]:
        """(short name, count, what it counts) of every criterion a class must meet with 0."""
        f = self.figures
        return [("lost", self.lost, "lost"), ("refused", len(self.refused), "never accepted"),
                ("wrong", f.wrong_keys, "keys with wrong state"), ("overlaps", f.overlaps, "overlapping exclusive runs"),
                ("dup steps", f.dup_steps, "duplicate database-step rows"), ("stuck", f.stuck.total, "stuck rows"),
                ("unreaped", self.unreaped, "stopped worker(s) not reaped within 3 leases"),
                # with no fault at all, a ctx.run closure has no reason to run twice
                ("dup runs", f.dup_effects if self.name == "baseline" else 0, "duplicate ctx.run effects without any fault")]

    def failed_criteria(self) -> list[str]:
        return [name for name, count, _ in self._criteria() if count]

    def failures(self) -> list[str]:
        """Why this class fails (empty: it passes)."""
        return [f"{count} {what}" for _, count, what in self._criteria() if count]

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.run, "class": self.name, "tag": self.tag, "sent": self.sent, "accepted": self.accepted,
                "completed": self.figures.completed, "lost": self.lost, "refused": self.refused[:10],
                "kills": self.kills, "unreaped": self.unreaped, "load_s": self.load_s, "drain_s": self.drain_s,
                "figures": self.figures.as_dict(), "failures": self.failures(), "notes": self.notes,
                "log_lines": self.log_lines}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = ", ".join(CLASSES)
    parser = argparse.ArgumentParser(
        prog="python -m bench.faults",
        description="Fault-injection suite: the load, then each fault class in turn, against a PostgreSQL "
                    "cluster of its own. Exits 1 when a class lost, doubled or stranded work (see docs/faults.md).")
    parser.add_argument("--short", action="store_true", help="a few seconds per class (what CI runs)")
    parser.add_argument("--runs", type=int, default=1, help="run every class this many times (default 1)")
    parser.add_argument("--classes", default=",".join(CLASSES), help=f"comma-separated subset of: {names}")
    parser.add_argument("--seed", type=int, default=11, help="seed of the plan and of the faults' choices (default 11)")
    parser.add_argument("--keep", action="store_true", help="leave the cluster and processes running for inspection")
    parser.add_argument("--json", type=Path, help="also write every figure, note and example to this file")
    parser.add_argument("--logs", type=Path, help="where the processes log (default bench/results/faults/<time>)")
    args = parser.parse_args(argv)
    args.class_names = [n.strip() for n in args.classes.split(",") if n.strip()]
    unknown = [n for n in args.class_names if n not in CLASSES]
    if unknown or not args.class_names:
        parser.error(f"unknown class(es) {', '.join(unknown) or '(none given)'}; choose from {', '.join(CLASSES)}")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def prepare(cluster: Cluster) -> str:
    """The database, migrated with the real CLI, and the app's side tables; returns its URL."""
    cluster.create_database(DBNAME)
    url = cluster.url(DBNAME)
    out = subprocess.run([sys.executable, "-m", "restate_pg", "migrate", "--database-url", url],
                         cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        raise BenchError(f"restate-pg migrate failed: {out.stderr.strip()}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DDL)
    return url


def run_class(run: int, index: int, name: str, system: System, cluster: Cluster, url: str,
              sizes: Sizes, seed: int) -> tuple[ClassRun, Callable[[], None]]:
    """Run one class; returns its result and what undoes its setup (called before the next class,
    so that the last class costs no restart of the processes it changed)."""
    fault = CLASSES[name]
    tag = f"r{run}c{index}"
    rng = random.Random(f"{seed}/{run}/{name}")
    revived = system.revive()
    healthy = system.wait_healthy(3 * LEASE_S)
    offsets = system.log_sizes()
    load = Load(system.base_url, plan(tag, sizes.sends, sizes.keys, rng), sizes.concurrency, sizes.send_deadline_s)
    scene = Scene(system, cluster, DBNAME, load, sizes, rng)
    if revived:
        scene.note(f"started again before the class (had exited): {', '.join(revived)}")
    if not healthy:
        scene.note(f"the workers were not all heartbeating {3 * LEASE_S:g} s after the previous class")
    fault.setup(scene)

    async def load_and_faults() -> None:
        await asyncio.gather(load.run(), fault.inject(scene))

    asyncio.run(load_and_faults())
    accepted_ids = [o.invocation_id for o in load.outcomes if o.invocation_id is not None]
    drain_start = time.monotonic()
    drained = procs.wait_until(lambda: _drained(url, tag, accepted_ids), sizes.drain_s, _DRAIN_POLL_S)
    drain_s = time.monotonic() - drain_start if drained else None
    with psycopg.connect(url, autocommit=True) as conn:
        figures = checks.measure(conn, tag, accepted_ids)
    log_lines, worker_text = report.scan_logs(offsets)
    scene.kills += fault.logged_faults(worker_text)
    refused = [f"{o.send.deposit}: {o.refused}" for o in load.outcomes if o.refused is not None]
    retried = sum(1 for o in load.outcomes if o.retried_because)
    if retried:
        scene.note(f"{retried} sends retried by the client "
                   f"({sum(1 for o in load.outcomes if o.status == 'PreviouslyAccepted')} answered PreviouslyAccepted)")
    result = ClassRun(run, name, tag, len(load.sends), len(accepted_ids), refused, figures, scene.kills, scene.unreaped,
                      load.wall_s, drain_s, scene.notes, log_lines)
    return result, lambda: fault.teardown(scene)


def _drained(url: str, tag: str, accepted_ids: list[str]) -> bool:
    """Every accepted send completed and nothing of the class is left in the work tables."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
            return (checks.completed_count(conn, accepted_ids) == len(accepted_ids)
                    and checks.stuck_rows(conn, tag).total == 0)
    except psycopg.OperationalError:
        return False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = Sizes.of(args.short)
    logs = args.logs or REPO / "bench" / "results" / "faults" / datetime.now().strftime("%Y%m%d-%H%M%S")
    logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    cluster = system = None
    results: list[ClassRun] = []
    try:
        cluster = Cluster.create()
        url = prepare(cluster)
        system = System(url, logs, workers=WORKERS, lease_s=LEASE_S)
        header = report.header(args, sizes, cluster, system, engine_version(), logs)
        print(header, file=sys.stderr, flush=True)
        system.start()
        print(f"[{time.monotonic() - started:5.1f} s] cluster and processes ready", file=sys.stderr, flush=True)
        undo: Callable[[], None] = lambda: None  # noqa: E731
        for run in range(1, args.runs + 1):
            for index, name in enumerate(args.class_names, start=1):
                print(f"[{time.monotonic() - started:5.1f} s] run {run}, {name}: {CLASSES[name].summary} ...",
                      file=sys.stderr, flush=True)
                undo()
                result, undo = run_class(run, index, name, system, cluster, url, sizes, args.seed)
                results.append(result)
                print("  " + report.one_line(result), file=sys.stderr, flush=True)
    except BenchError as exc:
        print(f"bench.faults: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep and cluster is not None:
            pids = " ".join(str(p.pid) for p in system.procs if p.alive()) if system is not None else ""
            print(f"kept: {cluster.describe()}, database {DBNAME}; to stop: kill {pids}; "
                  f"{cluster.bindir / 'pg_ctl'} -D {cluster.data} stop (as {cluster.user.pw_name if cluster.user else 'you'})",
                  file=sys.stderr)
        else:
            if system is not None:
                system.stop()
            if cluster is not None:
                cluster.destroy()
    elapsed = time.monotonic() - started
    print(report.table(results))
    print(report.details(results, system.unexpected_exits if system else [], elapsed))
    if args.json:
        report.write_json(args.json, header, results, elapsed)
    return 1 if any(r.failures() for r in results) else 0
