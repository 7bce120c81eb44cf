"""Initial schema: invocations, tasks, journal, notifications, state, object locks, inbox, workers.

Written out rather than generated from `restate_pg.store.schema`, so that this revision keeps
creating exactly these objects whatever that module later says; `docs/invocation-lifecycle.md`
explains each table.

Its SQL, frozen since release: `migrations/sql/0001_initial/upgrade.sql` and
`downgrade.sql` (migrations/README.md).

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("restate_pg",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0001_initial", "upgrade")


def downgrade() -> None:
    run("0001_initial", "downgrade")
