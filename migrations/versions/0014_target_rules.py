"""Flow-control rules on a service or a handler (docs/flow-control.md): tasks of the targets they
name are marked for the flow-controlled claim; concurrency per tenant key, a default priority
and a debounce window; sys_rules shows them.

Its SQL: `migrations/sql/0014_target_rules/upgrade.sql` and `downgrade.sql` (migrations/README.md).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0014_target_rules", "upgrade")


def downgrade() -> None:
    run("0014_target_rules", "downgrade")
