"""The architecture's never-rules (docs/architecture.md), enforced.

The import contracts are import-linter's, configured in pyproject.toml: layers, `api` and `store`
importing nothing above `core`, psycopg only under `store`, transports never importing the
worker, no import cycle. They are shown to hold on the code and to fail on a copy of it into which
a violation was written, so that a contract that silently checks nothing would be noticed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 500


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` over the restate_pg package found at `root`, with the repository's contracts."""
    env = {**os.environ, "PYTHONPATH": str(root)}  # ahead of the editable install
    return subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
         "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )


def test_the_import_contracts_hold() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("module", "violation", "contract"),
    [
        ("core/ids.py", "import restate_pg.store.driver", "Layers: each imports only those below it"),
        ("api/durations.py", "import restate_pg.runtime.machine", "api imports only core"),
        ("runtime/machine.py", "import psycopg", "psycopg only under store"),
        ("ingress/requests.py", "import restate_pg.worker.engine", "transports go through services, never the worker"),
        ("store/rows.py", "import restate_pg.services.outcomes", "store imports nothing above core"),
        ("endpoints/manifest.py", "import restate_pg.store.catalog", "endpoints never import the store"),
        ("services/outcomes.py", "import restate_pg.admin.router", "Layers: each imports only those below it"),
        ("protocol/framing.py", "import restate_pg.store.codec", "protocol imports only core, the stdlib, google.protobuf"),
        ("protocol/messages.py", "import httpx", "protocol imports only core, the stdlib, google.protobuf"),
        ("ui/timeline.py", "import restate_pg.runtime.machine", "ui acts through services, never the worker or runtime"),
        ("ui/pages.py", "import restate_pg.admin.router", "Layers: each imports only those below it"),
    ],
)
def test_a_violation_breaks_its_contract(tmp_path: Path, module: str, violation: str, contract: str) -> None:
    shutil.copytree(REPO / "restate_pg", tmp_path / "restate_pg", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "restate_pg" / module
    target.write_text(target.read_text() + f"\n{violation}  # deliberately wrong\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert any(line.startswith(contract) for line in broken), result.stdout


def test_no_module_is_over_500_lines() -> None:
    """One concept per module: a module that grows past this is two."""
    long = {str(path.relative_to(REPO)): n for path in [*(REPO / "restate_pg").rglob("*.py"), *(REPO / "migrations").rglob("*.py")]
            if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, long
