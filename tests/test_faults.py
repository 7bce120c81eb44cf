"""The fault-injection suite (issue 11) in its short version, run exactly as a person runs it.

`python -m bench.faults --short` starts a PostgreSQL cluster of its own, `restate-pg serve` and
three `restate-pg worker` processes, sends deposits through the ingress and injects every fault
class in turn (SIGKILL, SIGSTOP, PostgreSQL restarts and outages, terminated backends, a killed
ingress, faults at the store boundary). The suite judges each class from the database; this test
holds it to its verdict and to the figures it printed: every class accepted work, and every
accepted send completed. docs/faults.md says what each figure means.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.faults.classes import CLASSES

REPO = Path(__file__).resolve().parents[1]


def printed_rows(stdout: str) -> list[dict[str, str]]:
    """The rows of the Markdown table the suite prints, by column name."""
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True))
            for line in lines[2:]]


@pytest.mark.slow
def test_short_fault_suite_loses_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.faults", "--short", "--runs", "1", "--seed", "11", "--logs", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    report = f"{done.stdout}\n--- stderr ---\n{done.stderr[-4000:]}"
    rows = printed_rows(done.stdout)
    assert [row["class"] for row in rows] == list(CLASSES), report
    for row in rows:
        assert int(row["accepted"]) > 0, report
        assert row["completed"] == row["accepted"], f"{row['class']}: not every accepted send completed\n{report}"
    assert done.returncode == 0, report
