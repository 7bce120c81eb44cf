"""Initial schema: invocations, tasks, journal, notifications, state, object locks, inbox, workers.

Written out rather than generated from `restate_pg.store.schema`, so that this revision keeps
creating exactly these objects whatever that module later says; `docs/invocation-lifecycle.md`
explains each table.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from restate_pg.migrations._schema import target_schema

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("restate_pg",)
depends_on: str | Sequence[str] | None = None

_TABLES = ("invocation", "task", "journal", "notification", "state", "object_lock", "inbox", "worker")


def _ts(name: str, *, nullable: bool = True, default_now: bool = False) -> sa.Column:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=sa.text("now()") if default_now else None,
    )


def _fence_sql(schema: str) -> str:
    # Frozen copy of schema.fence_function_sql() at this revision; a later change to fence() needs
    # a revision of its own (tests/test_migrations.py compares the two).
    return f"""
CREATE OR REPLACE FUNCTION "{schema}".fence(p_invocation_id text, p_owner text, p_epoch integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM "{schema}".task
     WHERE invocation_id = p_invocation_id AND lease_owner = p_owner AND epoch = p_epoch
       FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'restate-pg: attempt % of invocation % lost its lease', p_epoch, p_invocation_id
            USING ERRCODE = 'RPG01';
    END IF;
END
$$;
"""


def upgrade() -> None:
    schema = target_schema()
    op.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')

    op.create_table(
        "invocation",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("handler", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=True),
        sa.Column("service_ty", sa.Text(), nullable=False),
        sa.Column("handler_ty", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("input", sa.LargeBinary(), nullable=False),
        sa.Column(
            "headers",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
        ),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("invoked_by", sa.Text(), nullable=False),
        sa.Column("caller_id", sa.Text(), nullable=True),
        sa.Column("caller_command", sa.Integer(), nullable=True),
        sa.Column("waiter", sa.Text(), nullable=True),
        _ts("created_at", nullable=False, default_now=True),
        _ts("modified_at", nullable=False, default_now=True),
        _ts("scheduled_start_at"),
        _ts("completed_at"),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("output", sa.LargeBinary(), nullable=True),
        sa.Column("failure_code", sa.Integer(), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("failure_metadata", postgresql.JSONB(), nullable=True),
        _ts("retain_until"),
        sa.PrimaryKeyConstraint("id", name="invocation_pkey"),
        schema=schema,
    )
    op.create_index(
        "invocation_service_status", "invocation", ["service", "status"], schema=schema
    )
    op.create_index(
        "invocation_retain_until",
        "invocation",
        ["retain_until"],
        schema=schema,
        postgresql_where=sa.text("retain_until IS NOT NULL"),
    )

    op.create_table(
        "task",
        sa.Column("invocation_id", sa.Text(), nullable=False),
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("attempt", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("wakeups", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        _ts("last_start_at"),
        sa.Column("last_failure", sa.Text(), nullable=True),
        sa.Column("last_failure_code", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("invocation_id", name="task_pkey"),
        schema=schema,
        # Hot, small and updated in place on every claim, suspension and wake-up: leave room for
        # HOT updates and vacuum it eagerly.
        postgresql_with={
            "fillfactor": "70",
            "autovacuum_vacuum_scale_factor": "0.01",
            "autovacuum_vacuum_cost_delay": "0",
        },
    )
    op.create_index(
        "task_due",
        "task",
        ["run_at"],
        schema=schema,
        postgresql_where=sa.text("lease_owner IS NULL"),
    )
    op.create_index(
        "task_owner",
        "task",
        ["lease_owner"],
        schema=schema,
        postgresql_where=sa.text("lease_owner IS NOT NULL"),
    )

    op.create_table(
        "journal",
        sa.Column("invocation_id", sa.Text(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("command_index", sa.Integer(), nullable=True),
        sa.Column("completes", sa.Integer(), nullable=True),
        sa.Column("entry_type", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("params", postgresql.JSONB(), nullable=True),
        sa.Column("completed", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("value", sa.LargeBinary(), nullable=True),
        sa.Column("failure_code", sa.Integer(), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("failure_metadata", postgresql.JSONB(), nullable=True),
        _ts("sleep_wakeup_at"),
        _ts("appended_at", nullable=False, default_now=True),
        sa.PrimaryKeyConstraint("invocation_id", "index", name="journal_pkey"),
        schema=schema,
    )

    op.create_table(
        "notification",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("invocation_id", sa.Text(), nullable=False),
        sa.Column("command_index", sa.Integer(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=True),
        sa.Column("failure_code", sa.Integer(), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("failure_metadata", postgresql.JSONB(), nullable=True),
        _ts("created_at", nullable=False, default_now=True),
        sa.PrimaryKeyConstraint("seq", name="notification_pkey"),
        schema=schema,
    )
    op.create_index(
        "notification_invocation", "notification", ["invocation_id", "seq"], schema=schema
    )

    op.create_table(
        "state",
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("service", "key", "name", name="state_pkey"),
        schema=schema,
    )

    op.create_table(
        "object_lock",
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("invocation_id", sa.Text(), nullable=False),
        _ts("acquired_at", nullable=False, default_now=True),
        sa.PrimaryKeyConstraint("service", "key", name="object_lock_pkey"),
        schema=schema,
    )

    op.create_table(
        "inbox",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("invocation_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="inbox_pkey"),
        sa.UniqueConstraint("invocation_id", name="inbox_invocation_id_key"),
        schema=schema,
    )
    op.create_index("inbox_key", "inbox", ["service", "key", "seq"], schema=schema)

    op.create_table(
        "worker",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("hostname", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("services", postgresql.ARRAY(sa.Text()), nullable=False),
        _ts("started_at", nullable=False, default_now=True),
        _ts("heartbeat_at", nullable=False, default_now=True),
        sa.PrimaryKeyConstraint("id", name="worker_pkey"),
        schema=schema,
    )

    op.execute(_fence_sql(schema))


def downgrade() -> None:
    # The schema itself stays: it holds alembic's version table, and may hold other objects.
    schema = target_schema()
    op.execute(f'DROP FUNCTION IF EXISTS "{schema}".fence(text, text, integer)')
    for table in reversed(_TABLES):
        op.drop_table(table, schema=schema)  # drops the table's indexes with it
