"""Server-side functions of the write path: submit, flush and their group, `apply()`.

Each flush of an attempt, and each submission, becomes one call of `apply()` with a JSON
argument, whose statements run from plans cached per session (issue 3). Frozen copy of the
functions in `store/sql/functions/` at this revision; a test checks that the two agree, and a later
change to those functions needs a new revision.

Its SQL, frozen since release: `migrations/sql/0002_write_path_functions/upgrade.sql` and
`downgrade.sql` (migrations/README.md).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0002_write_path_functions", "upgrade")


def downgrade() -> None:
    run("0002_write_path_functions", "downgrade")
