"""Introspection: the view `sys_invocation_status` (Restate's persisted invocation status), which
Restate's CLI reads to find the invocations it cancels, kills, purges, pauses or resumes.

A frozen copy of that view of `store/sql/views/` at this revision; a test checks
that they agree.

Its SQL, frozen since release: `migrations/sql/0007_sys_invocation_status/upgrade.sql` and
`downgrade.sql` (migrations/README.md).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0007_sys_invocation_status", "upgrade")


def downgrade() -> None:
    run("0007_sys_invocation_status", "downgrade")
