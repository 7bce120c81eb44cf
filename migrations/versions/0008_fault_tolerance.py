"""Fault tolerance: a due delayed invocation starts as a call would, taking its object key or
queueing behind it, before any worker claims it (`start_due_scheduled()`, with the partial index
`task_scheduled`); and only the holder of an object key may hand it over (`release_object_key`).

Frozen copies of those functions of `store/sql/functions/` at this revision (and, for
downgrade, of `release_object_key` at revision 0006); tests check that the database agrees.

Its SQL, frozen since release: `migrations/sql/0008_fault_tolerance/upgrade.sql` and
`downgrade.sql` (migrations/README.md).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0008_fault_tolerance", "upgrade")


def downgrade() -> None:
    run("0008_fault_tolerance", "downgrade")
