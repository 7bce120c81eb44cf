"""fence() key-share-locks the invocation's task row instead of share-locking it: the same
contract, since every statement that takes a lease away locks the row FOR UPDATE or deletes it,
at a fraction of PostgreSQL's CPU per invocation.

Its SQL: `migrations/sql/0017_key_share_fence/upgrade.sql` and `downgrade.sql` (migrations/README.md).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0017_key_share_fence", "upgrade")


def downgrade() -> None:
    run("0017_key_share_fence", "downgrade")
