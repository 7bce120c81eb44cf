"""Durable promises of workflows, and the commands waiting for promises or for invocations.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from restate_pg.migrations._schema import target_schema

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    schema = target_schema()
    op.create_table(
        "promise",
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("completed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=True),
        sa.Column("failure_code", sa.Integer(), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("failure_metadata", postgresql.JSONB(), nullable=True),
        sa.Column("completed_by", sa.Text(), nullable=True),
        sa.Column("completed_by_command", sa.Integer(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("service", "key", "name", name="promise_pkey"),
        schema=schema,
    )
    op.create_table(
        "promise_waiter",
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("invocation_id", sa.Text(), nullable=False),
        sa.Column("command_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("service", "key", "name", "invocation_id", "command_index", name="promise_waiter_pkey"),
        schema=schema,
    )
    op.create_table(
        "invocation_waiter",
        sa.Column("invocation_id", sa.Text(), nullable=False),
        sa.Column("waiter_id", sa.Text(), nullable=False),
        sa.Column("command_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("invocation_id", "waiter_id", "command_index", name="invocation_waiter_pkey"),
        schema=schema,
    )


def downgrade() -> None:
    schema = target_schema()
    op.drop_table("invocation_waiter", schema=schema)
    op.drop_table("promise_waiter", schema=schema)
    op.drop_table("promise", schema=schema)
