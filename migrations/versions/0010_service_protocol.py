"""Restate's service protocol: a deployment may be an SDK endpoint (its uri, protocol versions
and mode, HTTP version, extra headers, the manifest it answered discovery with); a journal entry
keeps the protocol message an endpoint sent (`journal.message`, replayed byte for byte, which
`flush()` now stores); signals delivered by name (`notification.signal_name`) and by index
(`resolve_signal()`).

Its SQL, frozen since release: `migrations/sql/0010_service_protocol/upgrade.sql` and
`downgrade.sql` (migrations/README.md).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_pg.migrations._sql import run

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run("0010_service_protocol", "upgrade")


def downgrade() -> None:
    run("0010_service_protocol", "downgrade")
