"""Each worker records its lease length, and the reaper judges each worker by its own lease (a
worker with a shorter lease no longer declares live workers with a longer one dead).

Its SQL: `migrations/sql/0016_worker_lease/upgrade.sql` and `downgrade.sql` (migrations/README.md).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0016_worker_lease", "upgrade")


def downgrade() -> None:
    run("0016_worker_lease", "downgrade")
