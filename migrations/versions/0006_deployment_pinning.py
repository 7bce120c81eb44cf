"""Deployment pinning: an invocation that starts at once on the worker that submitted it (or that
got an object key from the invocation before it) is pinned to that worker's deployment, as claims
pin the invocations they start; workers resume only invocations of their own deployment or of
one an operator marked compatible.

Frozen copies of `submit_invocation` and `release_object_key` of `store/sql/functions/` at
this revision (and, for downgrade, at revision 0002); tests check that the database agrees.

Its SQL, frozen since release: `migrations/sql/0006_deployment_pinning/upgrade.sql` and
`downgrade.sql` (migrations/README.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0006_deployment_pinning", "upgrade")


def downgrade() -> None:
    run("0006_deployment_pinning", "downgrade")
