"""Durable promises of workflows, and the commands waiting for promises or for invocations.

Its SQL, frozen since release: `migrations/sql/0003_promises/upgrade.sql` and
`downgrade.sql` (migrations/README.md).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0003_promises", "upgrade")


def downgrade() -> None:
    run("0003_promises", "downgrade")
