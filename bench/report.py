"""The results: the table printed after a run, the JSON file, and the table in bench/README.md."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stats import Spread


@dataclass(frozen=True)
class Figure:
    key: str
    label: str  # may name a field of the sizes: {w3_keys}
    unit: str
    target: str = ""
    digits: int = 1


FIGURES: list[Figure] = [
    Figure("w1.p50_ms", "W1 latency p50, sequential calls", "ms", "≤ 4"),
    Figure("w1.p90_ms", "W1 latency p90", "ms"),
    Figure("w1.p99_ms", "W1 latency p99", "ms"),
    Figure("w2.invocations_per_s", "W2 invocations/s at concurrency {concurrency}", "/s", "≥ 1,000", 0),
    Figure("w2.p50_ms", "W2 latency p50", "ms"),
    Figure("w2.p99_ms", "W2 latency p99", "ms"),
    Figure("w3.one_key_calls_per_s", "W3 counter add calls/s, one key", "/s", "≥ 600", 0),
    Figure("w3.spread_calls_per_s", "W3 counter add calls/s, {w3_keys} keys", "/s", "≥ 1,000", 0),
    Figure("w4.completions_per_s", "W4 completions/s, first send to last completion", "/s", "≥ 1,200", 0),
    Figure("w4.sends_per_s", "W4 sends accepted/s", "/s", "", 0),
    Figure("w5.lateness_p50_ms", "W5 timer lateness p50, {w5_sleepers} sleepers", "ms"),
    Figure("w5.lateness_p99_ms", "W5 timer lateness p99", "ms", "< 25"),
    Figure("w5.overrun_p50_ms", "W5 completion minus (send + {w5_sleep_ms} ms) p50", "ms", "", 0),
    Figure("w5.overrun_p99_ms", "W5 completion minus (send + {w5_sleep_ms} ms) p99", "ms", "", 0),
    Figure("cost.engine_cpu_ms_per_inv", "CPU s per 1,000 invocations (W2): the system's processes", "s", "", 2),
    Figure("cost.sdk_cpu_ms_per_inv", "CPU s per 1,000 invocations (W2): the SDK endpoint process", "s", "", 2),
    Figure("cost.pg_cpu_ms_per_inv", "CPU s per 1,000 invocations (W2): PostgreSQL", "s", "", 2),
    Figure("cost.total_cpu_ms_per_inv", "CPU s per 1,000 invocations (W2): system + PostgreSQL", "s", "< 2.5", 2),
    Figure("cost.loadgen_cpu_ms_per_inv", "CPU s per 1,000 invocations (W2): hey", "s", "", 2),
    Figure("cost.commits_per_inv", "commits per invocation (W2)", "", "≤ 5", 2),
    Figure("cost.wal_bytes_per_inv", "WAL bytes per invocation (W2)", "B", "", 0),
    Figure("engine.rss_end_mb", "memory (RSS) of the system's processes at the end", "MB", "", 0),
]


def limit_figures(clients: tuple[int, ...]) -> list[Figure]:
    figures = []
    for c in clients:
        figures.append(Figure(f"limit.c{c}_tps", f"pgbench one-row INSERT, {c} client(s): TPS", "/s", "", 0))
        figures.append(Figure(f"limit.c{c}_latency_ms", f"pgbench one-row INSERT, {c} client(s): latency", "ms", "", 2))
    return figures


def summarise(runs: list[dict[str, float]]) -> dict[str, Spread]:
    keys = sorted({key for run in runs for key in run})
    return {key: Spread.of([run[key] for run in runs if key in run]) for key in keys}


def _number(value: float, digits: int) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def _with_unit(figure: Figure, value: float) -> str:
    unit = f" {figure.unit}" if figure.unit and figure.unit != "/s" else ""
    return _number(value, figure.digits) + unit


def _cells(figure: Figure, spread: Spread | None, sizes: dict[str, Any]) -> list[str]:
    label = figure.label.format(**sizes)
    if spread is None:
        return [label, "not run", "", figure.target]
    median = _with_unit(figure, spread.median)
    span = "" if spread.runs == 1 else f"{_number(spread.low, figure.digits)}–{_number(spread.high, figure.digits)}"
    return [label, median, span, figure.target]


def rows(summary: dict[str, Spread], sizes: dict[str, Any]) -> list[list[str]]:
    """One system's figures as table cells (median, min–max, target); figures never measured are left out."""
    return [_cells(f, summary.get(f.key), sizes) for f in FIGURES if f.key in summary]


def limit_rows(summary: dict[str, Spread], sizes: dict[str, Any]) -> list[list[str]]:
    """The pgbench limit as table cells."""
    limits = limit_figures(tuple(sizes["limit_clients"]))
    return [_cells(f, summary.get(f.key), sizes) for f in limits if f.key in summary]


def compare_rows(summaries: dict[str, dict[str, Spread]], sizes: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, cells) of the comparison: a figure a row, each system's median in its column
    ('–' where a system has no such figure, e.g. PostgreSQL's share for Restate)."""
    header = ["figure", *summaries, "target"]
    cells = []
    for figure in FIGURES:
        if not any(figure.key in summary for summary in summaries.values()):
            continue
        spreads = [summary.get(figure.key) for summary in summaries.values()]
        medians = ["–" if spread is None else _with_unit(figure, spread.median) for spread in spreads]
        cells.append([figure.label.format(**sizes), *medians, figure.target])
    return header, cells


HEADER = ["figure", "median", "min–max", "target"]


def text_table(cells: list[list[str]], header: list[str] = HEADER) -> str:
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), "  ".join("-" * w for w in widths)]
    for row in cells:
        cells_right = (c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))
        lines.append("  ".join([row[0].ljust(widths[0]), *cells_right]))
    return "\n".join(lines)


def markdown_table(cells: list[list[str]], header: list[str] = HEADER) -> str:
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def limit_bound(system: str, summary: dict[str, Spread], limit: dict[str, Spread],
                clients: tuple[int, ...]) -> str | None:
    """What the pgbench limit means for a system's invocations, at its measured commits per invocation."""
    top = f"limit.c{max(clients)}_tps" if clients else ""
    if top not in limit or "cost.commits_per_inv" not in summary:
        return None
    tps, commits = limit[top].median, summary["cost.commits_per_inv"].median
    if commits <= 0:
        return None
    return (f"{system}: at {commits:.1f} commits per invocation, {tps:,.0f} one-row commits/s at {max(clients)} "
            f"clients bound W2 near {tps / commits:,.0f} invocations/s.")


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def update_readme(readme: Path, section: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the text between the results markers (`begin`, `end`) of bench/README.md."""
    text = readme.read_text()
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"{readme} has no {begin} ... {end} section")
    readme.write_text(pattern.sub(lambda _: f"{begin}\n{section.strip()}\n{end}", text))
