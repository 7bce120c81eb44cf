"""Flow control made exact under concurrency (docs/flow-control.md): submissions and a rule's
creation are ordered by a per-service lock, and a backlog's count and insert by a per-scope or
per-service lock; a service rule's backlog counts the whole service's queue.

Its SQL: `migrations/sql/0015_exact_flow_limits/upgrade.sql` and `downgrade.sql` (migrations/README.md).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0015_exact_flow_limits", "upgrade")


def downgrade() -> None:
    run("0015_exact_flow_limits", "downgrade")
