"""The operator UI's keyset pagination: invocations by (created_at, id), for all services and
for one, so that its pages stay fast with a million completed invocations retained.

Its SQL: `migrations/sql/0011_ui_indexes/upgrade.sql` and `downgrade.sql` (migrations/README.md).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0011_ui_indexes", "upgrade")


def downgrade() -> None:
    run("0011_ui_indexes", "downgrade")
