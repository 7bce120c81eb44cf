"""append_journal() is PL/pgSQL instead of SQL: PostgreSQL before 18 parses and plans a SQL
function's body at each call it cannot inline (PERFORM's are never inlined), PL/pgSQL once per
session; a flush's entries cost a third as much. apply() finds the task rows of a group's
journal-only flushes by their key alone: without statistics (autovacuum off, or a fresh table) the
planner scanned every lease of the worker for each flush through `task_owner`, which made this one
statement a third of a busy group's time. release_object_key() takes the key's lock only to free
the key: handing it to the head of a non-empty inbox races with no submission (which appends at
the tail under that lock, and sees the key held either way), so the completion of a busy key no
longer waits for a submission to it; an inbox that looks empty is read again under the lock.

Its SQL: `migrations/sql/0019_planned_once/upgrade.sql` and `downgrade.sql` (migrations/README.md).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0019_planned_once", "upgrade")


def downgrade() -> None:
    run("0019_planned_once", "downgrade")
