"""Released migrations are frozen: each revision runs its own SQL files, whose checksums are in
`migrations/sql/MANIFEST`, and a server function keeps its signature for as long as it exists
(a new contract is a new name). No database needed; migrations/README.md explains the rules."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIGRATIONS = REPO / "migrations"
SQL_DIR = MIGRATIONS / "sql"
STEPS = ("upgrade", "downgrade")


def _revisions() -> list[str]:
    return sorted(path.stem for path in (MIGRATIONS / "versions").glob("[0-9]*.py"))


def _manifest() -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in (SQL_DIR / "MANIFEST").read_text().splitlines():
        digest, path = line.split("  ", 1)
        assert path not in entries, f"MANIFEST lists {path} twice"
        entries[path] = digest
    return entries


def test_every_released_sql_file_matches_the_manifest() -> None:
    """Editing a released revision's SQL, or adding a file to it, fails here: a database that ran
    the old text would silently differ from one that runs the new. Add a revision instead."""
    on_disk = {
        path.relative_to(SQL_DIR).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(SQL_DIR.glob("*/*"))
    }
    manifest = _manifest()
    assert sorted(on_disk) == sorted(manifest), "files and MANIFEST lines differ (see migrations/README.md)"
    changed = sorted(path for path, digest in on_disk.items() if manifest[path] != digest)
    assert not changed, f"released migration SQL changed: {changed} (add a new revision instead)"


def test_each_revision_runs_its_own_upgrade_and_downgrade_files() -> None:
    revisions = _revisions()
    assert revisions and revisions[0] == "0001_initial"
    assert sorted(path.name for path in SQL_DIR.iterdir() if path.is_dir()) == revisions
    for stem in revisions:
        source = (MIGRATIONS / "versions" / f"{stem}.py").read_text()
        for step in STEPS:
            assert (SQL_DIR / stem / f"{step}.sql").is_file(), (stem, step)
            assert f'run("{stem}", "{step}")' in source, (stem, step)
        assert "op.execute" not in source and "op.create" not in source, f"{stem}: its SQL belongs in migrations/sql/"


def _created_functions(text: str) -> list[tuple[str, str, str]]:
    """(name, argument types, return type) of each CREATE FUNCTION in a revision's SQL."""
    found = []
    for match in re.finditer(
        r'CREATE (?:OR REPLACE )?FUNCTION "?\{schema\}"?\.(\w+)\((.*?)\)\s*RETURNS (\w+(?:\[\])?)', text, re.DOTALL
    ):
        arguments = [" ".join(arg.split()[1:]) for arg in match.group(2).split(",") if arg.strip()]
        found.append((match.group(1), ", ".join(arguments), match.group(3)))
    return found


def test_a_server_function_never_changes_its_signature() -> None:
    """During a rolling upgrade old and new workers run side by side, each calling the functions
    it knows: a function whose arguments or result change must get a new name (`flush_v2`) in a
    new revision, the old one kept until a later release drops it. CREATE OR REPLACE with other
    argument types would instead add an overload, or fail on another return type."""
    signatures: dict[str, set[tuple[str, str]]] = {}
    for stem in _revisions():
        for name, arguments, returns in _created_functions((SQL_DIR / stem / "upgrade.sql").read_text()):
            signatures.setdefault(name, set()).add((arguments, returns))
    assert {"apply", "flush", "fence", "submit_invocation"} <= set(signatures)
    changed = {name: sorted(found) for name, found in signatures.items() if len(found) > 1}
    assert not changed, f"give a function whose contract changes a new name: {changed}"
