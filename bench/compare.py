"""Two revisions of restate-pg measured side by side: `python -m bench` runs interleaved, one ratio each.

The machine drifts 20-30 % between runs, so a before/after figure taken an hour apart says little.
This command alternates the two revisions (before, after; then after, before; ...) in one sitting,
each round a fresh `python -m bench` of each, and prints per figure the median of each revision and
their ratio. The before revision is checked out in a temporary git worktree and imported through
PYTHONPATH, so both run with this virtualenv's dependencies:

    python -m bench.compare 33701bf                 # 33701bf against the working tree, 3 rounds, --quick
    python -m bench.compare 33701bf HEAD --rounds 5 --workloads W1,W2,W3
    python -m bench.compare HEAD HEAD --after-arg=--processes=2   # one revision, two deployments
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: The figures compared, and whether more is better.
FIGURES = {
    "w1.p50_ms": False,
    "w2.invocations_per_s": True,
    "w2.p50_ms": False,
    "w2.p99_ms": False,
    "w3.one_key_calls_per_s": True,
    "w3.spread_calls_per_s": True,
    "w4.completions_per_s": True,
    "w5.lateness_p99_ms": False,
    "cost.engine_cpu_ms_per_inv": False,
    "cost.total_cpu_ms_per_inv": False,
}


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _checkout(rev: str, into: Path) -> Path:
    """A detached worktree of `rev`, or the working tree itself for the special name `WORKTREE`."""
    if rev == "WORKTREE":
        return REPO
    path = into / rev.replace("/", "_")
    _git("worktree", "add", "--detach", str(path), rev)
    # the wheel ships migrations/ as restate_pg.migrations (pyproject's package-dir); through
    # PYTHONPATH the checkout needs the same name, else the editable install's would be found
    (path / "restate_pg" / "migrations").symlink_to(path / "migrations", target_is_directory=True)
    return path


def _run_bench(checkout: Path, out: Path, bench_args: list[str]) -> dict[str, float]:
    """One `python -m bench` of the restate-pg in `checkout`: its medians by figure."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}  # before the editable install's finder
    cmd = [sys.executable, "-m", "bench", *bench_args, "--json", str(out)]
    done = subprocess.run(cmd, cwd=checkout, env=env, stdout=subprocess.DEVNULL)
    if done.returncode == 2 or not out.exists():
        raise SystemExit(f"python -m bench could not run (exit status {done.returncode})")
    summary = json.loads(out.read_text())["systems"]["restate-pg"]["summary"]
    medians = {key: value["median"] for key, value in summary.items()}
    # a failed check (exit status 1) leaves the figures of the workloads that ran: keep those
    print("  " + ", ".join(f"{key} {medians[key]:,.1f}" for key in FIGURES if key in medians)
          + ("" if done.returncode == 0 else "  (a check failed: see the run's output)"), flush=True)
    return medians


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.splitlines()[0])
    parser.add_argument("before", help="git revision measured as 'before'")
    parser.add_argument("after", nargs="?", default="WORKTREE", help="git revision (default: the working tree)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of one run each (default: 3)")
    parser.add_argument("--workloads", default="W1,W2,W3,W4", help="passed to python -m bench (default: W1,W2,W3,W4)")
    parser.add_argument("--full", action="store_true", help="full-size runs instead of --quick")
    parser.add_argument("--json", type=Path, help="also write every run's medians here")
    parser.add_argument("--bench-arg", action="append", default=[], metavar="ARG",
                        help="passed to both runs of python -m bench, repeatable: --bench-arg=--processes=2")
    parser.add_argument("--before-arg", action="append", default=[], metavar="ARG",
                        help="passed to the before runs only (say, another deployment of the same revision)")
    parser.add_argument("--after-arg", action="append", default=[], metavar="ARG", help="passed to the after runs only")
    args = parser.parse_args(argv)

    bench_args = ["--runs", "1", "--workloads", args.workloads, *args.bench_arg] + ([] if args.full else ["--quick"])
    side_args = {"before": args.before_arg, "after": args.after_arg}
    scratch = Path(tempfile.mkdtemp(prefix="restate-pg-compare-"))
    checkouts = {}
    try:
        checkouts = {name: _checkout(rev, scratch / name) for name, rev in (("before", args.before), ("after", args.after))}
        runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
        for round_no in range(args.rounds):
            order = ("before", "after") if round_no % 2 == 0 else ("after", "before")
            for name in order:
                print(f"round {round_no + 1}/{args.rounds}: {name} ({args.before if name == 'before' else args.after})",
                      flush=True)
                runs[name].append(_run_bench(checkouts[name], scratch / f"{name}-{round_no}.json",
                                             bench_args + side_args[name]))
    finally:
        for path in checkouts.values():
            if path != REPO:
                subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO, check=False)
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"\nmedians of {args.rounds} interleaved rounds; ratio = after / before\n")
    print(f"| figure | before ({args.before}) | after ({args.after}) | ratio | better |")
    print("|---|---|---|---|---|")
    for key, higher_is_better in FIGURES.items():
        values = {name: [run[key] for run in runs[name] if key in run] for name in runs}
        if not values["before"] or not values["after"]:
            continue
        before, after = statistics.median(values["before"]), statistics.median(values["after"])
        ratio = after / before if before else float("nan")
        print(f"| {key} | {before:,.2f} | {after:,.2f} | {ratio:.2f}x | {'higher' if higher_is_better else 'lower'} |")
    if args.json:
        args.json.write_text(json.dumps({"before": args.before, "after": args.after, "runs": runs}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
