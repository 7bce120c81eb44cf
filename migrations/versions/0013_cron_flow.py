"""Cron schedules with flow control (docs/flow-control.md): a schedule's scope, limit key and
priority, given to the invocation of each tick.

Its SQL: `migrations/sql/0013_cron_flow/upgrade.sql` and `downgrade.sql` (migrations/README.md).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0013_cron_flow", "upgrade")


def downgrade() -> None:
    run("0013_cron_flow", "downgrade")
