"""Running a revision's frozen SQL files (`migrations/sql/<revision>/upgrade.sql`, `downgrade.sql`).

A released revision's SQL never changes: a database migrated by it must stay identical to one
migrated later by the same revision. `MANIFEST` holds the sha256 of every file, and
tests/test_migrations.py fails when a file differs from it (migrations/README.md says how to
add a revision). The files' one placeholder is `{schema}`: the schema's bare name, which
`validate_schema_name()` restricts to lower-case letters, digits and underscores, so the SQL may
write it plain (`{schema}.task`) or quoted (`"{schema}".task`) alike.
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

from restate_pg.migrations._schema import target_schema

#: The folder of the frozen SQL files, next to this module (it ships in the wheel as package data).
SQL_DIR = Path(__file__).parent / "sql"

#: The checksum manifest: `sha256  <revision>/<file>.sql` per line, as `sha256sum` writes it.
MANIFEST = SQL_DIR / "MANIFEST"


def sql_text(revision: str, step: str, schema: str) -> str:
    """The SQL of `revision`'s `step` (upgrade or downgrade), with the schema name filled in."""
    return (SQL_DIR / revision / f"{step}.sql").read_text(encoding="utf-8").replace("{schema}", schema)


def run(revision: str, step: str) -> None:
    """Execute `revision`'s `step` in the current alembic run (one statement batch, no parameters)."""
    op.execute(sql_text(revision, step, target_schema()))
