"""What operating restate-pg needs: deployments and the services they register, restart lineage,
and cron schedules.

- `deployment`: one row per application version that ran workers; invocations are pinned to the
  deployment that first ran them (`invocation.deployment_id`, mirrored on `task` for the claim).
- `service`: the registry of services with the settings an operator may change at run time.
- `cron_job`: scheduled invocations from cron expressions, one row per schedule.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from restate_pg.migrations._schema import target_schema

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    schema = target_schema()
    op.add_column("invocation", sa.Column("deployment_id", sa.Text(), nullable=True), schema=schema)
    op.add_column("invocation", sa.Column("restarted_from", sa.Text(), nullable=True), schema=schema)
    op.add_column("task", sa.Column("deployment_id", sa.Text(), nullable=True), schema=schema)
    op.add_column("worker", sa.Column("deployment_id", sa.Text(), nullable=True), schema=schema)
    op.create_table(
        "deployment",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("services", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("compatible_with", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="deployment_pkey"),
        schema=schema,
    )
    op.create_table(
        "service",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("ty", sa.Text(), nullable=False),
        sa.Column("deployment_id", sa.Text(), nullable=False),
        sa.Column("handlers", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("public", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("idempotency_retention", sa.Interval(), nullable=True),
        sa.Column("workflow_retention", sa.Interval(), nullable=True),
        sa.Column("journal_retention", sa.Interval(), nullable=True),
        sa.Column("inactivity_timeout", sa.Interval(), nullable=True),
        sa.Column("abort_timeout", sa.Interval(), nullable=True),
        sa.Column("revision", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("name", name="service_pkey"),
        schema=schema,
    )
    op.create_table(
        "cron_job",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("handler", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=True),
        sa.Column("schedule", sa.Text(), nullable=False),
        sa.Column("timezone", sa.Text(), server_default=sa.text("'UTC'"), nullable=False),
        sa.Column("input", sa.LargeBinary(), nullable=True),
        sa.Column("headers", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("catch_up", sa.Text(), server_default=sa.text("'latest'"), nullable=False),
        sa.Column("source", sa.Text(), server_default=sa.text("'api'"), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_tick_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_invocation_id", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("name", name="cron_job_pkey"),
        schema=schema,
    )
    op.create_index(
        "cron_job_due", "cron_job", ["next_at"], schema=schema, postgresql_where=sa.text("enabled")
    )


def downgrade() -> None:
    schema = target_schema()
    op.drop_index("cron_job_due", table_name="cron_job", schema=schema)
    op.drop_table("cron_job", schema=schema)
    op.drop_table("service", schema=schema)
    op.drop_table("deployment", schema=schema)
    op.drop_column("worker", "deployment_id", schema=schema)
    op.drop_column("task", "deployment_id", schema=schema)
    op.drop_column("invocation", "restarted_from", schema=schema)
    op.drop_column("invocation", "deployment_id", schema=schema)
