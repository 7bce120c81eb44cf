"""Exceptions restate-pg raises for conditions a user is expected to fix.

Each carries a message written to be shown as is, on one line: the command-line interface prints
`restate-pg: error: <message>` for any `RestatePgError` instead of a traceback.
"""

from __future__ import annotations

__all__ = ["DatabaseUnavailable", "RestatePgError", "SchemaNotMigrated"]


class RestatePgError(Exception):
    """Base class of the errors restate-pg reports to its users."""


class DatabaseUnavailable(RestatePgError):
    """PostgreSQL cannot be reached, or refused the connection (wrong host, credentials, database)."""


class SchemaNotMigrated(RestatePgError):
    """The restate-pg schema is missing, or at a revision other than the one this version expects."""
