"""Flow control (docs/flow-control.md): scopes, limit keys, priorities and debounce keys of
invocations; the rules and rate counters; the claim under flow control; sys_rules, sys_vqueues,
sys_user_limits.

Its SQL: `migrations/sql/0012_flow_control/upgrade.sql` and `downgrade.sql` (migrations/README.md).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0012_flow_control", "upgrade")


def downgrade() -> None:
    run("0012_flow_control", "downgrade")
