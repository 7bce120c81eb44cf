"""The attempts an invocation took are written by the functions that complete it (`flush` and
`finish_invocation`, in their UPDATE of its row), not by the trigger `invocation_keep_attempts`
(`keep_attempts()`), which is dropped: the trigger cost each completion about 35 us of
PostgreSQL's CPU, its WHEN clause read back from the catalogue and its PL/pgSQL function entered
at every UPDATE of an invocation's status. What the row holds is unchanged.

Its SQL: `migrations/sql/0020_attempts_in_place/upgrade.sql` and `downgrade.sql` (migrations/README.md).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0020_attempts_in_place", "upgrade")


def downgrade() -> None:
    run("0020_attempts_in_place", "downgrade")
