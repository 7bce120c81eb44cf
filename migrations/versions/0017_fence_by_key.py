"""fence() finds the invocation's task row by its key alone and compares the lease after: with the
lease in its WHERE clause, a session that planned it while `task` was small kept an index scan of
every task of the worker (`task_owner`), whose cost grew with the worker's running invocations.

Its SQL: `migrations/sql/0017_fence_by_key/upgrade.sql` and `downgrade.sql` (migrations/README.md).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0017_fence_by_key", "upgrade")


def downgrade() -> None:
    run("0017_fence_by_key", "downgrade")
