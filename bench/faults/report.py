"""The suite's output: a header, one table row per class, the evidence behind failing rows, JSON."""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.faults.checks import STUCK_KINDS

if TYPE_CHECKING:
    from bench.faults.classes import Sizes
    from bench.faults.cluster import Cluster
    from bench.faults.runner import ClassRun
    from bench.faults.system import System

COLUMNS = ("run", "class", "sent", "accepted", "completed", "lost", "wrong keys", "overlaps", "dup steps",
           "dup runs / kills", "stuck", "p50 ms", "p99 ms", "drain s", "verdict")
_NOTABLE = re.compile(r"\b(ERROR|CRITICAL|WARNING|Traceback)\b")
_SAMPLES = 4


def header(args: argparse.Namespace, sizes: Sizes, cluster: Cluster, system: System, engine: str, logs: Path) -> str:
    mode = "short" if sizes.short else "full"
    return "\n".join([
        f"bench.faults ({mode}, seed {args.seed}, {args.runs} run(s)), restate-pg at {engine}",
        f"  {cluster.describe()}",
        f"  restate-pg serve + {len(system.worker_procs)} x restate-pg worker --lease-seconds {system.lease_s:g}, "
        f"ingress {system.base_url}; logs in {logs}",
        f"  per class: {sizes.sends} sends over {sizes.keys} keys at concurrency {sizes.concurrency}, "
        f"drain deadline {sizes.drain_s:g} s",
    ])


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f}"


def _stuck(result: ClassRun) -> str:
    stuck = result.figures.stuck
    if not stuck.total:
        return "0"
    parts = [f"{kind} {getattr(stuck, kind)}" for kind in STUCK_KINDS if getattr(stuck, kind)]
    return f"{stuck.total} ({', '.join(parts)})"


def cells(result: ClassRun) -> list[str]:
    f = result.figures
    return [str(result.run), result.name, str(result.sent), str(result.accepted), str(f.completed),
            str(result.lost), str(f.wrong_keys), str(f.overlaps), str(f.dup_steps),
            f"{f.dup_effects} / {result.kills}", _stuck(result), _ms(f.p50_ms), _ms(f.p99_ms),
            "-" if result.drain_s is None else f"{result.drain_s:.1f}", verdict(result)]


def verdict(result: ClassRun) -> str:
    """`ok`, or `FAIL:` and the short names of the criteria it failed."""
    failed = result.failed_criteria()
    return f"FAIL: {', '.join(failed)}" if failed else "ok"


def one_line(result: ClassRun) -> str:
    row = dict(zip(COLUMNS, cells(result), strict=True))
    shown = ", ".join(f"{k} {v}" for k, v in row.items() if k not in ("run", "class"))
    return f"{shown}; load {result.load_s:.1f} s" + ("; not drained" if result.drain_s is None else "")


def table(results: list[ClassRun]) -> str:
    """A Markdown table (so a run's output can go into docs/faults.md as it is)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" if i < 2 else "---:" for i in range(len(COLUMNS))) + "|"]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in results]
    return "\n".join(lines)


def details(results: list[ClassRun], unexpected_exits: list[str], elapsed_s: float) -> str:
    """Per class: what was done, why it failed, examples of each failing figure, and notable log lines."""
    out = []
    for r in results:
        out.append(f"\nrun {r.run}, {r.name} (tag {r.tag}, load {r.load_s:.1f} s"
                   + (f", drained in {r.drain_s:.1f} s)" if r.drain_s is not None else ", NOT drained by the deadline)"))
        out += [f"  - {note}" for note in r.notes]
        failures = r.failures()
        if failures:
            out.append("  FAIL: " + "; ".join(failures))
        out += [f"  {r.refused[0]} (and {len(r.refused) - 1} more)"] if r.refused else []
        for kind, examples in r.figures.examples.items():
            out.append(f"  {kind}:")
            out += [f"    {e}" for e in examples]
        for log, lines in r.log_lines.items():
            out.append(f"  {log}:")
            out += [f"    {line}" for line in lines]
    if unexpected_exits:
        out.append("\nprocesses that exited without being killed: " + "; ".join(unexpected_exits))
    out.append(f"\n{len(results)} class run(s) in {elapsed_s:.0f} s; "
               f"{sum(1 for r in results if r.failures())} failed")
    return "\n".join(out)


def scan_logs(offsets: dict[str, int]) -> tuple[dict[str, list[str]], str]:
    """The log lines written since `offsets` that report a problem (counted, a few quoted per log),
    and everything the workers wrote (for faults the workers log themselves)."""
    notable: dict[str, list[str]] = {}
    worker_text = []
    for path_text, offset in offsets.items():
        path = Path(path_text)
        if not path.exists():
            continue
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        if path.name.startswith("worker"):
            worker_text.append(text)
        lines = [line.strip() for line in text.splitlines() if _NOTABLE.search(line)]
        if lines:
            samples, seen = [], set()
            for line in lines:
                shape = re.sub(r"\d+|inv_\w+|'[^']*'", "#", line)[:100]
                if shape not in seen:
                    seen.add(shape)
                    samples.append(line[:300])
            notable[path.name] = [f"{len(lines)} warning/error line(s), {len(seen)} kind(s); e.g.:",
                                  *samples[:_SAMPLES]]
    return notable, "\n".join(worker_text)


def write_json(path: Path, header_text: str, results: list[ClassRun], elapsed_s: float) -> None:
    document: dict[str, Any] = {"header": header_text, "elapsed_s": elapsed_s, "classes": [r.as_dict() for r in results],
                                "failed": sum(1 for r in results if r.failures())}
    path.write_text(json.dumps(document, indent=2, default=str))
