"""Introspection: views with Restate's SQL table names (`sys_invocation`, `sys_journal`, `state`...).

The table `state` becomes `state_entry`, leaving its name to the view `state`, and the functions
that write it (`eager_state`, `flush`) are re-created to match. Frozen copies of
`store/sql/views/` and of those two functions of `store/sql/functions/` at
this revision; tests check that they agree.

Its SQL, frozen since release: `migrations/sql/0005_introspection/upgrade.sql` and
`downgrade.sql` (migrations/README.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0005_introspection", "upgrade")


def downgrade() -> None:
    run("0005_introspection", "downgrade")
