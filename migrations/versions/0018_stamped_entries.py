"""flush() stores each journal entry's `appended_at` as the engine stamped it when it created the
entry (an SDK endpoint's attempt does), else the transaction's now(): Restate stamps a record when
it is proposed, so a timer's completion says when the timer fired, not when its group commit began.
The entries are written by a new function, append_journal(), which reads them as a record set (a
field left out is NULL: the client leaves out those that are None); a flush that only appends
entries (a step's result, a sleep: most flushes) returns right after them, and apply() fences and
appends all such flushes of a group at once. submit_invocation() aggregates a service's
flow-control rules only when one exists, and looks for an object key's holder only for an
exclusive handler (`a AND EXISTS (...)` ran the query always).

Its SQL: `migrations/sql/0018_stamped_entries/upgrade.sql` and `downgrade.sql` (migrations/README.md).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0018_stamped_entries", "upgrade")


def downgrade() -> None:
    run("0018_stamped_entries", "downgrade")
