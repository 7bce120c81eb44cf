"""What operating restate-pg needs: deployments and the services they register, restart lineage,
and cron schedules.

- `deployment`: one row per application version that ran workers; invocations are pinned to the
  deployment that first ran them (`invocation.deployment_id`, mirrored on `task` for the claim).
- `service`: the registry of services with the settings an operator may change at run time.
- `cron_job`: scheduled invocations from cron expressions, one row per schedule.

Its SQL, frozen since release: `migrations/sql/0004_operations/upgrade.sql` and
`downgrade.sql` (migrations/README.md).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0004_operations", "upgrade")


def downgrade() -> None:
    run("0004_operations", "downgrade")
