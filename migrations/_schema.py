"""Which schema a migration run targets, for the revision scripts.

`env.py` resolves the schema name (from the caller, `-x schema=...` or `$RESTATE_PG_SCHEMA`) and
stores it in the alembic config's attributes; revisions read it here instead of hard-coding one.
"""

from __future__ import annotations

from alembic import context

#: Key of the resolved schema name in `alembic.config.Config.attributes`.
SCHEMA_ATTRIBUTE = "schema"


def target_schema() -> str:
    """Return the schema the current migration run creates or changes."""
    schema = context.config.attributes.get(SCHEMA_ATTRIBUTE)
    if not schema:
        raise RuntimeError("restate-pg migrations must run through their env.py, which sets the schema")
    return str(schema)
