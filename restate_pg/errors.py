"""Exceptions restate-pg raises for conditions a user is expected to fix (see `restate_pg.core.errors`)."""

from restate_pg.core.errors import DatabaseUnavailable, RestatePgError, SchemaNotMigrated

__all__ = ["DatabaseUnavailable", "RestatePgError", "SchemaNotMigrated"]
