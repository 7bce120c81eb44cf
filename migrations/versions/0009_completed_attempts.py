"""Completed invocations keep their attempt count: `invocation.attempts`, copied from the
live-work row (`task.attempt`, deleted at completion) by the trigger `invocation_keep_attempts`
(`keep_attempts()`), whichever function completes the invocation. `restate-pg invocations
list/describe` show it.

Its SQL, frozen since release: `migrations/sql/0009_completed_attempts/upgrade.sql` and
`downgrade.sql` (migrations/README.md).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0009_completed_attempts", "upgrade")


def downgrade() -> None:
    run("0009_completed_attempts", "downgrade")
